"""Canonical JSON: the fast path writes what the strict path writes, and refuses the same."""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.canonical import NotCanonical, canonical_json, canonical_text, loads


def reference(value: Any) -> bytes:
    """The definition, written independently: strict type walk, then json.dumps."""

    def check(v: Any) -> None:
        if v is None or isinstance(v, (bool, int, str)):
            return
        if isinstance(v, float):
            if not math.isfinite(v):
                raise NotCanonical("not finite")
            return
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise NotCanonical("key")
                check(item)
            return
        if isinstance(v, (list, tuple)):
            for item in v:
                check(item)
            return
        raise NotCanonical("type")

    check(value)
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


class Level(enum.IntEnum):
    LOW = 1


class Name(enum.StrEnum):
    VAR = "var"


class Ratio(float):
    pass


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()  # NaN and inf included: both paths must refuse them
    | st.text(max_size=12)
    | st.sampled_from([Level.LOW, Name.VAR, Ratio(0.25), 5e-324, -0.0, 1e22])
)
keys = st.text(max_size=6) | st.sampled_from([Name.VAR, 1, 2.5, True, None])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(OrderedDict)
    ),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None)
@given(value=values)
def test_fast_path_matches_the_strict_definition(value: Any) -> None:
    try:
        expected = reference(value)
    except NotCanonical:
        with pytest.raises(NotCanonical):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
    assert canonical_text(value) == expected.decode("utf-8")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"a": {"b": [0.5, math.nan]}}, "a.b[1]"),
        ({"x": math.inf}, "inf"),
        ({1: "one"}, "non-string key"),  # json.dumps alone would write {"1":"one"}
        ({True: 1}, "non-string key"),
        ({"b": b"\x00"}, "bytes"),
        ({"s": {1, 2}}, "set"),
        ({"n": 10**5000}, "no canonical JSON form"),
        ({"s": "\ud800"}, "UTF-8"),
    ],
)
def test_refusals_name_the_problem(value: Any, fragment: str) -> None:
    with pytest.raises(NotCanonical, match=None) as info:
        canonical_json(value)
    assert fragment in str(info.value)


def test_known_bytes() -> None:
    value = {"b": [1, 2.5, (True, None)], "a": "é", "c": {"z": 0.1, "y": Level.LOW}}
    assert canonical_json(value) == '{"a":"é","b":[1,2.5,[true,null]],"c":{"y":1,"z":0.1}}'.encode()
    assert loads(canonical_json(value))["c"] == {"y": 1, "z": 0.1}
    with pytest.raises(NotCanonical):
        loads("[NaN]")


def test_without_the_c_encoder_the_output_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar import canonical

    value = {"b": [1, 2.5, (True, None)], "a": "é", "c": {"z": 0.1}}
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert canonical._make_encoder()(value).encode() == reference(value)
