"""The one canonical serialization for anything that is hashed, signed or chained.

Canonical JSON here means: sorted keys, compact separators, UTF-8, no NaN or
infinity, and floats written by ``repr`` (Python's shortest round-tripping
form), so that ``loads(dumps(x)) == x`` and equal values hash equally on every
machine. Tuples serialize as lists; ``bytes`` are not JSON and are refused
(encode them as hex first).

Speed: the ledger encodes every entry, so values built only of exact ``dict``
(string keys), ``list``, ``tuple``, ``str``, ``int``, ``float``, ``bool`` and
``None`` take a fast path: one type scan, then the C JSON encoder, whose
``allow_nan=False`` refuses NaN and infinity by itself. Anything else
(subclasses, bad keys, NaN, objects) goes through the strict recursive check,
which names the offending path. Both paths run the same encoder
configuration, so they produce the same bytes.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SwarmVarError


class NotCanonical(SwarmVarError, ValueError):
    """A value that has no canonical JSON form (NaN, inf, bytes, objects, ...)."""


_DUMPS_ARGS: dict[str, Any] = {
    "sort_keys": True,
    "separators": (",", ":"),
    "ensure_ascii": False,
    "allow_nan": False,
}

#: Types the C encoder writes exactly as the strict path would.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_STR = frozenset({str})


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _make_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, **_DUMPS_ARGS)`` without its per-call setup."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # private to json
    if c_make_encoder is None:  # no C accelerator: same output, slower
        return json.JSONEncoder(**_DUMPS_ARGS).encode
    # Arguments as JSONEncoder.iterencode passes them for _DUMPS_ARGS, except
    # markers=None (no cycle check): only values that passed _is_plain reach
    # it, and _is_plain's recursion fails on cycles as the strict check does.
    c_encode = c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


_encode = _make_encoder()


def _is_plain(value: Any) -> bool:
    """True if ``value`` holds only exact JSON types and string keys (floats unchecked)."""
    kind = type(value)
    if kind is dict:
        if not _STR.issuperset(map(type, value)):
            return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _SCALARS
    for item in items:
        if type(item) not in _SCALARS and not _is_plain(item):
            return False
    return True


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


@dataclass(frozen=True, slots=True)
class Canonical:
    """Canonical JSON text already written, embedded as is wherever it goes.

    Made by :func:`canonical_object` (and by writers whose output is tested
    equal to :func:`canonical_text`, such as the signed estimate record of
    :func:`swarmvar.consensus.signing.estimate_record`), never from arbitrary
    text: whoever builds one vouches that ``text`` is the canonical JSON of
    some value. :func:`canonical_text` returns ``text`` for it, and the
    ledger stores it as entry data (a JSON object) without encoding again:
    the bytes written once, e.g. for a signature, serve the record too.

    ``vouched`` is set by those writers only. The ledger takes a vouched text
    as written and parses any other one back, refusing it unless it is the
    canonical JSON of the value it holds (so a hand-made ``Canonical`` cannot
    slip malformed or ambiguous text into a hash chain).
    """

    text: str
    vouched: bool = field(default=False, repr=False, compare=False)


def canonical_object(fields: Mapping[str, Any]) -> Canonical:
    """The canonical JSON object of ``fields``, whose values may be :class:`Canonical`.

    The same text as ``canonical_text`` of the dict with every
    :class:`Canonical` replaced by its value: keys sorted, ``"key":value``
    joined by ``,``, keys escaped by the encoder's own string writer; a
    ``list``/``tuple`` holding :class:`Canonical` items is written as an array
    of their texts and the others' canonical texts.

    Raises
    ------
    NotCanonical
        A key that is not an exact ``str``, or a value :func:`canonical_text` refuses.
    """
    if type(fields) is not dict:
        fields = dict(fields)
    if not _STR.issuperset(map(type, fields)):
        bad = next(k for k in fields if type(k) is not str)
        raise NotCanonical(f"value has a non-string key {bad!r}")
    text = "{" + ",".join(
        f"{json.encoder.encode_basestring(key)}:{_text_of(fields[key])}"
        for key in sorted(fields)) + "}"
    return Canonical(text, vouched=all(_vouched(v) for v in fields.values()))


def _vouched(value: Any) -> bool:
    """False if ``value`` is, or a list/tuple holds, a :class:`Canonical` nobody vouched for."""
    kind = type(value)
    if kind is Canonical:
        return bool(value.vouched)
    if kind is list or kind is tuple:
        return all(x.vouched for x in value if type(x) is Canonical)
    return True


def _text_of(value: Any) -> str:
    kind = type(value)
    if kind is Canonical:
        return str(value.text)
    if (kind is list or kind is tuple) and any(type(x) is Canonical for x in value):
        return "[" + ",".join(map(_text_of, value)) + "]"
    return canonical_text(value)


def canonical_text(value: Any) -> str:
    """:func:`canonical_json` as ``str`` (before UTF-8 encoding).

    A string with a lone surrogate passes here; it has no UTF-8 form, and
    :func:`canonical_json` refuses it.

    Raises
    ------
    NotCanonical
        If ``value`` holds NaN, inf, non-string keys or non-JSON objects.
    """
    if type(value) is Canonical:
        return value.text
    if _is_plain(value):
        try:
            return _encode(value)
        except ValueError:  # NaN or inf; the strict path says where
            pass
    _check(value, "")
    try:
        return json.dumps(value, **_DUMPS_ARGS)
    except ValueError as exc:  # an int too long for str(), or a circular reference
        raise NotCanonical(f"value has no canonical JSON form: {exc}") from None


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` canonically (sorted keys, compact, UTF-8, finite floats).

    Raises
    ------
    NotCanonical
        If ``value`` holds NaN, inf, non-string keys or non-JSON objects.
    """
    try:
        return canonical_text(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NotCanonical(f"value holds a string with no UTF-8 form: {exc}") from None


def loads(data: bytes | str) -> Any:
    """Parse canonical JSON (or any JSON without NaN/inf)."""

    def _reject(token: str) -> Any:
        raise NotCanonical(f"JSON constant {token} is not canonical")

    return json.loads(data, parse_constant=_reject)
