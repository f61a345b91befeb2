"""HealthPolicy refuses thresholds no check could meaningfully pass or fail (the rule that
`variants canary check` relies on): a nonsense threshold would record failed checks, and
enough failed checks roll a canary back."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter
from swarmvar.evolution import HealthPolicy

ANY = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                st.booleans(), st.text(max_size=3), st.none())


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@given(rate=ANY, latency=ANY, kupiec=ANY, records=ANY)
@settings(max_examples=200, deadline=None)
def test_a_policy_is_built_exactly_when_every_threshold_is_sensible(
        rate: Any, latency: Any, kupiec: Any, records: Any) -> None:
    sensible = (_is_real(rate) and 0 <= rate <= 1
                and _is_real(latency) and not math.isnan(latency) and latency > 0
                and _is_real(kupiec) and 0 <= kupiec <= 1
                and isinstance(records, int) and not isinstance(records, bool)
                and records >= 0)
    if sensible:
        policy = HealthPolicy(rate, latency, kupiec, records)
        assert (policy.min_success_rate, policy.max_latency_s) == (rate, latency)
    else:
        with pytest.raises(InvalidParameter, match="min_success_rate|max_latency_s|"
                                                   "min_kupiec_p|min_records"):
            HealthPolicy(rate, latency, kupiec, records)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"min_success_rate": 2.0}, "min_success_rate 2.0 is not a rate"),
    ({"min_success_rate": math.nan}, "min_success_rate nan is not a rate"),
    ({"max_latency_s": -1.0}, "max_latency_s -1.0 is not a latency"),
    ({"max_latency_s": math.nan}, "max_latency_s nan is not a latency"),
    ({"min_kupiec_p": 1.5}, "min_kupiec_p 1.5 is not a rate"),
    ({"min_records": True}, "min_records True is not a count"),
])
def test_each_threshold_is_named(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidParameter, match=words):
        HealthPolicy(**kwargs)


def test_the_defaults_and_no_latency_limit_are_accepted() -> None:
    assert HealthPolicy().max_latency_s == math.inf
    assert HealthPolicy(min_success_rate=0, max_latency_s=1e-3, min_records=0).min_records == 0
