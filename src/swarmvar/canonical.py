"""The one canonical serialization for anything that is hashed, signed or chained.

Canonical JSON here means: sorted keys, compact separators, UTF-8, no NaN or
infinity, and floats written by ``repr`` (Python's shortest round-tripping
form), so that ``loads(dumps(x)) == x`` and equal values hash equally on every
machine. Tuples serialize as lists; ``bytes`` are not JSON and are refused
(encode them as hex first).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import SwarmVarError


class NotCanonical(SwarmVarError, ValueError):
    """A value that has no canonical JSON form (NaN, inf, bytes, objects, ...)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonical(f"{path or 'value'} is {value!r}; canonical JSON has no NaN or inf")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path or 'value'} has a non-string key {key!r}")
            _check(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    raise NotCanonical(
        f"{path or 'value'} is a {type(value).__name__}, which has no canonical JSON form; "
        "convert it to str, int, float, bool, None, list or dict"
    )


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` canonically (sorted keys, compact, UTF-8, finite floats).

    Raises
    ------
    NotCanonical
        If ``value`` holds NaN, inf, non-string keys or non-JSON objects.
    """
    _check(value, "")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse canonical JSON (or any JSON without NaN/inf)."""

    def _reject(token: str) -> Any:
        raise NotCanonical(f"JSON constant {token} is not canonical")

    return json.loads(data, parse_constant=_reject)
