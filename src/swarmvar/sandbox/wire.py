"""Tasks and results as data, and the frames that carry them across the sandbox wall.

A task names a function by ``"package.module:function"`` and hands it JSON
parameters, a seed and numeric arrays; the function returns JSON values and
numeric arrays. Nothing pickled ever crosses: a frame is a 4-byte length, a
canonical-JSON header and the arrays' raw bytes, and the host checks every
field of what comes back (types, dtypes, shapes, sizes) before it believes it.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from ..errors import InvalidParameter, SandboxViolation, Violation

#: The dtypes an array may have on the wire (no objects, no pickles).
DTYPES = ("float64", "float32", "int64", "int32", "uint8", "bool")

#: Frames above this size are refused outright, whatever a profile allows.
MAX_FRAME_BYTES = 1 << 30

_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class Task:
    """One unit of sandboxed work.

    Attributes
    ----------
    entry : str
        ``"package.module:function"``; the function is called as
        ``function(params, arrays, seed)`` and returns ``(values, arrays)``.
    params : Mapping[str, JSON]
        Plain JSON parameters (e.g. an agent name and its constructor arguments).
    arrays : Mapping[str, numpy.ndarray]
        Numeric inputs (e.g. the returns), one of :data:`DTYPES` each.
    seed : int
        The task's seed; the same task gives the same numbers anywhere.
    """

    entry: str
    params: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        module, sep, func = self.entry.partition(":")
        if not sep or not module or not func.isidentifier():
            raise InvalidParameter(
                f"task entry {self.entry!r} must read 'package.module:function'")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InvalidParameter(f"task seed must be a non-negative integer, got {self.seed!r}")
        for name, value in self.arrays.items():
            _check_array(name, value, InvalidParameter)


@dataclass(frozen=True)
class TaskResult:
    """What a task returned, checked on the way out, and its wall time inside."""

    values: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]
    seconds: float


def _check_array(name: str, value: object, error: type[Exception]) -> None:
    if not isinstance(name, str) or not name:
        raise error(f"array names must be non-empty strings, got {name!r}")
    if not isinstance(value, np.ndarray):
        raise error(f"array {name!r} must be a numpy array, got {type(value).__name__}")
    if value.dtype.name not in DTYPES:
        raise error(f"array {name!r} has dtype {value.dtype}; allowed: {', '.join(DTYPES)}")


def _finite_json(value: Any) -> Any:
    """Non-finite floats as strings so the header stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _restore_floats(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__float__"} and value["__float__"] in ("nan", "inf", "-inf"):
            return float(value["__float__"])
        return {k: _restore_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_floats(v) for v in value]
    return value


def encode(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """One frame: length, canonical JSON header (with the arrays' layout), raw bytes."""
    layout = []
    blobs = []
    for name, value in arrays.items():
        contiguous = np.ascontiguousarray(value)
        layout.append({"name": name, "dtype": contiguous.dtype.name,
                       "shape": list(contiguous.shape), "nbytes": contiguous.nbytes})
        blobs.append(contiguous.tobytes())
    head = json.dumps(_finite_json({**header, "arrays": layout}), sort_keys=True,
                      separators=(",", ":"), allow_nan=False).encode()
    body = _LENGTH.pack(len(head)) + head + b"".join(blobs)
    return _LENGTH.pack(len(body)) + body


def write_frame(stream: BinaryIO, header: Mapping[str, Any],
                arrays: Mapping[str, np.ndarray] | None = None) -> None:
    stream.write(encode(header, arrays or {}))
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("the stream ended inside a frame")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO, limit: int = MAX_FRAME_BYTES
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check one frame; anything malformed or too large is a violation."""
    raw = stream.read(_LENGTH.size)
    if not raw:
        raise EOFError("no frame: the other side closed the stream")
    if len(raw) < _LENGTH.size:
        raw += _read_exact(stream, _LENGTH.size - len(raw))
    (size,) = _LENGTH.unpack(raw)
    if size > min(limit, MAX_FRAME_BYTES):
        raise SandboxViolation(Violation.OVERSIZED_RESULT,
                               f"a frame of {size:,} bytes exceeds the limit of {limit:,}")
    return decode(_read_exact(stream, size))


def decode(body: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a frame's body (after its length), checking every field."""
    def bad(why: str) -> SandboxViolation:
        return SandboxViolation(Violation.MALFORMED_RESULT, why)

    if len(body) < _LENGTH.size:
        raise bad("a frame shorter than its header length")
    (head_size,) = _LENGTH.unpack(body[:_LENGTH.size])
    if head_size > len(body) - _LENGTH.size:
        raise bad("a header longer than its frame")
    try:
        header = json.loads(body[_LENGTH.size:_LENGTH.size + head_size])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise bad(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise bad("the header is not an object with an 'arrays' list")
    offset = _LENGTH.size + head_size
    arrays: dict[str, np.ndarray] = {}
    for meta in header.pop("arrays"):
        try:
            name, dtype, shape, nbytes = (meta["name"], meta["dtype"], meta["shape"],
                                          meta["nbytes"])
        except (TypeError, KeyError):
            raise bad(f"array layout {meta!r} lacks name/dtype/shape/nbytes") from None
        if (not isinstance(name, str) or dtype not in DTYPES or not isinstance(shape, list)
                or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(nbytes, int)):
            raise bad(f"array layout {meta!r} is not valid")
        count = math.prod(shape)
        if count * np.dtype(dtype).itemsize != nbytes or offset + nbytes > len(body):
            raise bad(f"array {name!r}: {nbytes} bytes do not match shape {shape} of {dtype}")
        arrays[name] = np.frombuffer(body, dtype=dtype, count=count,
                                     offset=offset).reshape(shape).copy()
        offset += nbytes
    if offset != len(body):
        raise bad(f"{len(body) - offset} stray bytes after the arrays")
    return _restore_floats(header), arrays
