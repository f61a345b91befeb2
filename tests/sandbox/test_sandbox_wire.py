"""The frame format: what comes back is checked field by field (hypothesis)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import SandboxViolation, Violation
from swarmvar.sandbox import wire

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       shape=st.lists(st.integers(0, 4), max_size=3),
       dtype=st.sampled_from(wire.DTYPES))
def test_frames_round_trip(values: dict[str, object], shape: list[int], dtype: str) -> None:
    array = np.arange(int(np.prod(shape)) if shape else 1).astype(dtype).reshape(shape or ())
    frame = wire.encode({"values": values}, {"a": array})
    header, arrays = wire.read_frame(io.BytesIO(frame))
    np.testing.assert_array_equal(arrays["a"], array)
    assert arrays["a"].dtype == array.dtype
    got = header["values"]
    assert set(got) == {str(k) for k in values}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_frames_are_malformed_never_a_crash(blob: bytes) -> None:
    stream = io.BytesIO(len(blob).to_bytes(8, "big") + blob)
    try:
        wire.read_frame(stream)
    except SandboxViolation as exc:
        assert exc.violation in (Violation.MALFORMED_RESULT, Violation.OVERSIZED_RESULT)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_bit_flips_in_a_frame_are_caught(position: int, noise: bytes) -> None:
    frame = bytearray(wire.encode({"ok": True, "values": {"x": 1.5}},
                                  {"v": np.arange(6.0)}))
    i = 8 + position % (len(frame) - 8)
    frame[i:i + len(noise)] = noise
    del frame[len(frame):]
    try:
        header, arrays = wire.read_frame(io.BytesIO(bytes(frame)))
    except (SandboxViolation, EOFError):
        return
    assert isinstance(header, dict)  # a flip inside the numbers is still a well-formed frame
    assert all(a.dtype.name in wire.DTYPES for a in arrays.values())


def test_oversized_frames_are_refused_before_reading_them() -> None:
    stream = io.BytesIO((1 << 40).to_bytes(8, "big"))
    with pytest.raises(SandboxViolation) as caught:
        wire.read_frame(stream, limit=1 << 20)
    assert caught.value.violation is Violation.OVERSIZED_RESULT
