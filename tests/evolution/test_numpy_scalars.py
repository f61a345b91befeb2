"""numpy real scalars are numbers to the evolution's hand-written checks; bool and complex
are not, and the refusal names the argument."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar.errors import InvalidParameter
from swarmvar.evolution import (
    BreakerConfig,
    BreakerSnapshot,
    Database,
    HealthPolicy,
    MetricStats,
    StateConfig,
    StateStore,
    candidate,
    new_variant,
)

STATS = {"latency_s": MetricStats(10, 1.0, 0.5, 2.0)}


@pytest.mark.parametrize("scale", [np.float32(0.5), np.float16(0.5), np.int64(2), np.uint8(2)])
def test_latency_scale_takes_numpy_reals(constructors: Any, scale: Any) -> None:
    v = new_variant("GarchLike", {"nu": 5.0}, constructors, now=0.0)
    got = candidate(v, STATS, BreakerSnapshot(), BreakerConfig(), latency_scale_s=scale)
    want = candidate(v, STATS, BreakerSnapshot(), BreakerConfig(), latency_scale_s=float(scale))
    assert got.base == want.base


@pytest.mark.parametrize("scale", [np.bool_(True), True, np.complex64(1.0), "1", np.float32(0),
                                   np.float64(np.inf)])
def test_latency_scale_refuses_what_is_not_a_positive_real(constructors: Any,
                                                           scale: Any) -> None:
    v = new_variant("GarchLike", {"nu": 5.0}, constructors, now=0.0)
    with pytest.raises(InvalidParameter, match="latency_scale_s must be"):
        candidate(v, STATS, BreakerSnapshot(), BreakerConfig(), latency_scale_s=scale)


def test_a_health_policy_takes_numpy_scalars_and_keeps_python_numbers() -> None:
    policy = HealthPolicy(np.float32(0.9), np.float32(0.5), np.float64(0.05), np.int64(5))
    assert policy == HealthPolicy(float(np.float32(0.9)), 0.5, 0.05, 5)
    assert type(policy.min_success_rate) is float and type(policy.min_records) is int


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"min_records": np.bool_(True)}, "min_records np.True_ is not a count"),
    ({"min_records": np.float32(3.0)}, r"min_records np.float32\(3.0\) is not a count"),
    ({"min_success_rate": np.complex64(0.5)}, "min_success_rate .* is not a rate"),
    ({"min_kupiec_p": np.bool_(False)}, "min_kupiec_p np.False_ is not a rate"),
    ({"max_latency_s": np.float32("nan")}, r"max_latency_s np.float32\(nan\) is not a latency"),
])
def test_a_health_policy_refuses_flags_complex_and_fractions_naming_them(
        kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidParameter, match=words):
        HealthPolicy(**kwargs)


def test_prune_takes_a_numpy_integer_and_refuses_others(tmp_path: Path) -> None:
    store = StateStore(Database(tmp_path), config=StateConfig(fsync=False))
    for i in range(4):
        store.put("a", bytes([i]) * 10, now=time.time())
    assert store.prune("a", keep=np.int64(2)) == [2, 1]
    for bad in (np.bool_(True), np.float32(2.0), 2.0, "2"):
        with pytest.raises(InvalidParameter, match="keep="):
            store.prune("a", keep=bad)
