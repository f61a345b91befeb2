"""Canonical JSON of many values at once, encoded column by column.

A batch of ledger entries mostly repeats a few shapes: a thousand estimates
with the same keys, a backtest's days with the same rows. Encoding them one
by one spends most of the time on what they share (dispatching on types,
sorting and escaping the same keys); here each shape is handled once and its
fields are encoded a column at a time by C-level ``map`` calls
(``float.__repr__``, ``int.__repr__``, the JSON string escaper), then the
pieces are joined. The output is, byte for byte, what
:func:`swarmvar.canonical.canonical_text` gives each value, because every
piece is written by the same function the C JSON encoder calls for it:

* ``float`` → ``float.__repr__`` (after a finiteness check), ``int`` →
  ``int.__repr__``, ``str`` → ``json.encoder.encode_basestring``
  (``ensure_ascii=False``), ``True``/``False``/``None`` → literals;
* a dict → its keys in sorted order, ``"key":value`` joined by ``,``;
* a list or tuple → ``[a,b,...]``.

Only exact types take the columns; anything else (subclasses, small or mixed
groups, deep nesting) is encoded one value at a time by ``canonical_text``,
whose output composes the same way. Values that have no canonical form raise
:class:`Irregular`, and the caller encodes the batch one entry at a time,
which raises the precise error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from itertools import chain, islice, repeat
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from ..canonical import NotCanonical, canonical_text

#: Fewer values than this in a column: the per-column setup costs more than it saves.
MIN_COLUMN = 8
#: Lists up to this long, all of one length, are split into one column per position.
_MAX_POSITIONS = 32
#: Nesting deeper than this is left to the one-value-at-a-time encoder.
_MAX_DEPTH = 24

_BOOL = {True: "true", False: "false"}
_STR = frozenset({str})


class Irregular(Exception):
    """A value with no canonical JSON form (or too unusual to batch): encode one by one."""


def canonical_texts(values: Sequence[Any]) -> list[str]:
    """``[canonical_text(v) for v in values]``, faster when values share shapes.

    Raises
    ------
    Irregular
        If some value has no canonical JSON form (NaN, non-string keys, ...).
    """
    return _column(values, 0)


def _column(values: Sequence[Any], depth: int) -> list[str]:
    if len(values) < MIN_COLUMN or depth > _MAX_DEPTH:
        return _one_by_one(values)
    kinds = set(map(type, values))
    if len(kinds) > 1:
        return _grouped(values, list(map(type, values)), depth, _column)
    kind = kinds.pop()
    if kind is float:
        if not all(map(math.isfinite, values)):
            raise Irregular("NaN or infinity")
        return list(map(float.__repr__, values))
    if kind is str:
        return list(map(encode_basestring, values))
    if kind is int:
        try:
            return list(map(int.__repr__, values))
        except ValueError as exc:  # more digits than str() allows
            raise Irregular(str(exc)) from None
    if kind is bool:
        return list(map(_BOOL.__getitem__, values))
    if kind is type(None):
        return ["null"] * len(values)
    if kind is dict:
        return _dicts(values, depth)
    if kind is list or kind is tuple:
        return _lists(values, depth)
    return _one_by_one(values)


def _one_by_one(values: Sequence[Any]) -> list[str]:
    try:
        return list(map(canonical_text, values))
    except (NotCanonical, RecursionError) as exc:
        raise Irregular(str(exc)) from None


def _grouped(
    values: Sequence[Any],
    keys: Sequence[Hashable],
    depth: int,
    encode: Callable[[Sequence[Any], int], list[str]],
) -> list[str]:
    """Encode ``values`` in groups of equal ``keys`` (types, or dict shapes; not all equal)."""
    if len(set(keys)) * MIN_COLUMN > len(values):  # mostly small groups
        return _one_by_one(values)
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    out = [""] * len(values)
    for where in groups.values():
        group = [values[i] for i in where]
        for i, text in zip(where, encode(group, depth + 1), strict=True):
            out[i] = text
    return out


def _dicts(values: Sequence[dict[str, Any]], depth: int) -> list[str]:
    """Dicts, a field at a time; grouped by their keys if they differ."""
    first = values[0]
    if not _STR.issuperset(map(type, first)):
        return _one_by_one(values)  # refused (not a str), or a str subclass
    keys = sorted(first)
    if len(values) < MIN_COLUMN * max(1, len(keys) // 4):
        return _one_by_one(values)  # few dicts with many keys
    if list(map(len, values)).count(len(keys)) == len(values):
        try:
            fields = [list(map(itemgetter(key), values)) for key in keys]
        except KeyError:  # same sizes, other keys
            pass
        else:  # the same keys, if they are all exact str (equal is not enough)
            if not _STR.issuperset(map(type, chain.from_iterable(values))):
                return _one_by_one(values)
            if not keys:
                return ["{}"] * len(values)
            names = list(map(encode_basestring, keys))
            seps = ["{" + names[0] + ":"] + ["," + name + ":" for name in names[1:]]
            return _join(seps, [_column(field, depth + 1) for field in fields], "}")
    shapes = list(map(tuple, values))
    if len(set(shapes)) * MIN_COLUMN > len(values) or not _STR.issuperset(
        map(type, chain.from_iterable(shapes))
    ):
        return _one_by_one(values)  # mostly small groups, or odd keys
    return _grouped(values, shapes, depth, _dicts)


def _lists(values: Sequence[Sequence[Any]], depth: int) -> list[str]:
    lengths = list(map(len, values))
    n = lengths[0]
    if lengths.count(n) == len(lengths) and n <= _MAX_POSITIONS:
        if n == 0:
            return ["[]"] * len(values)
        columns = [_column(position, depth + 1) for position in zip(*values, strict=True)]
        return _join(["["] + [","] * (n - 1), columns, "]")
    # Any lengths: all items in one column, then cut back into lists.
    items = iter(_column(list(chain.from_iterable(values)), depth + 1))
    return ["[" + ",".join(islice(items, n)) + "]" for n in lengths]


def _join(seps: list[str], columns: list[list[str]], close: str) -> list[str]:
    """Row ``i`` of the result is ``seps[0] + columns[0][i] + seps[1] + ... + close``."""
    parts: list[Any] = []
    for sep, column in zip(seps, columns, strict=True):
        parts.append(repeat(sep))
        parts.append(column)
    parts.append(repeat(close))
    return list(map("".join, zip(*parts, strict=False)))  # repeat() never ends
