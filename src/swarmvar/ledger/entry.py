"""Ledger entries: what is recorded, and the hash that chains each to the one before.

An entry is ``index, timestamp, kind, data, previous_hash`` plus
``hash = H(canonical_json({"data", "index", "kind", "previous_hash", "timestamp"}))``
with ``H`` SHA3-256 by default, hashes written as lowercase hex inside the
JSON, and the timestamp as UTC ISO 8601 with microseconds and a ``Z``. Entry 0
is the genesis entry, whose previous hash is 32 zero bytes.

``data`` must be a JSON object; its canonical JSON (``swarmvar.canonical``)
may be at most :data:`MAX_DATA_BYTES` bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..canonical import Canonical, NotCanonical, canonical_text, loads
from ..errors import InvalidEntry, LedgerCorrupted
from .columnar import Irregular, canonical_texts
from .merkle import HashAlgorithm

#: Largest canonical JSON of one entry's ``data``: 1 MiB.
MAX_DATA_BYTES = 1 << 20
#: Deepest nesting of objects and arrays in one entry's ``data`` (the data
#: object itself is level 1). Deeper (or self-referencing) data is refused.
MAX_DATA_DEPTH = 64

#: previous_hash of the genesis entry.
ZERO_HASH = bytes(32)

#: Years are written with four digits; ledgers written before that was fixed
#: may hold strftime's shorter years (``999-...``), whose hashes cover them.
_TIMESTAMP = re.compile(r"\d{1,4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


class EntryKind(StrEnum):
    """What an entry records."""

    GENESIS = "genesis"
    ESTIMATE = "estimate"
    FORECAST = "forecast"
    CONSENSUS = "consensus"
    DECISION = "decision"
    ACTION = "action"
    PULSE = "pulse"
    FLOW = "flow"
    VARIANT = "variant"
    BACKTEST = "backtest"


_KINDS = frozenset(k.value for k in EntryKind)
_DICT = frozenset({dict})


@dataclass(frozen=True)
class Entry:
    """One recorded, hash-chained event.

    Attributes
    ----------
    index : int
        Position in the ledger, 0 for genesis.
    timestamp : str
        Wall time of the append, UTC ISO 8601 with microseconds (``...Z``).
    kind : EntryKind
    data : dict
        The recorded JSON object.
    previous_hash, hash : bytes
        32-byte digests (hex in JSON forms).
    """

    index: int
    timestamp: str
    kind: EntryKind
    data: dict[str, Any]
    previous_hash: bytes
    hash: bytes

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (hashes as hex), as exported."""
        return {
            "index": self.index,
            "timestamp": self.timestamp,
            "kind": self.kind.value,
            "data": self.data,
            "previous_hash": self.previous_hash.hex(),
            "hash": self.hash.hex(),
        }


def format_timestamp(when: datetime) -> str:
    """UTC ISO 8601 with microseconds and ``Z``; refuses naive datetimes."""
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise InvalidEntry(f"timestamp {when!r} must be a timezone-aware datetime")
    try:
        t = when.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidEntry(f"timestamp {when!r} has no UTC time between years 1 and 9999: "
                           f"{exc}") from None
    # Not strftime: glibc writes year 999 as "999", which the format refuses.
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:"
            f"{t.second:02d}.{t.microsecond:06d}Z")


def check_timestamp(text: str) -> str:
    """Return ``text`` if it is in the ledger's timestamp format, else raise InvalidEntry."""
    if not isinstance(text, str) or not _TIMESTAMP.match(text):
        raise InvalidEntry(
            f"timestamp {text!r} is not UTC ISO 8601 like 2024-01-31T12:00:00.000000Z"
        )
    return text


def parse_kind(kind: EntryKind | str) -> EntryKind:
    """The EntryKind for ``kind`` (an EntryKind or its value), or InvalidEntry."""
    if type(kind) is EntryKind:
        return kind
    try:
        return EntryKind(kind)
    except ValueError:
        known = ", ".join(sorted(_KINDS))
        raise InvalidEntry(f"unknown entry kind {kind!r}; known kinds: {known}") from None


def canonical_data(data: Mapping[str, Any] | Canonical) -> str:
    """Canonical JSON text of an entry's data, checked.

    A :class:`~swarmvar.canonical.Canonical` is taken as written (its maker
    vouches for its form); it must be a JSON object's text (``{...}``), and
    its size, UTF-8 and depth are checked as any entry's.

    Raises
    ------
    InvalidEntry
        If ``data`` is not a JSON object, holds NaN/inf or non-JSON values, or
        its canonical JSON exceeds :data:`MAX_DATA_BYTES`.
    """
    if type(data) is Canonical:
        text = data.text
        if type(text) is not str or text[:1] != "{" or text[-1:] != "}":
            raise InvalidEntry(f"entry data must be a JSON object, got the text {text!r:.80}")
        if not data.vouched:  # hand-made: parsed back, and it must be what it claims
            try:
                same = canonical_text(loads(text)) == text
            except (ValueError, NotCanonical, RecursionError):
                same = False
            if not same:
                raise InvalidEntry(f"entry data text is not canonical JSON: {text!r:.80}")
    else:
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                kind = type(data).__name__
                raise InvalidEntry(f"entry data must be a JSON object (a dict), got {kind}")
            data = dict(data)
        try:
            text = canonical_text(data)
        except NotCanonical as exc:
            raise InvalidEntry(f"entry data is not canonical JSON: {exc}") from None
        except RecursionError:  # a self-referencing or absurdly deep object
            raise InvalidEntry(_TOO_DEEP) from None
    try:
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise InvalidEntry(f"entry data is not canonical JSON: {exc}") from None
    if size > MAX_DATA_BYTES:
        raise InvalidEntry(
            f"entry data is {size} bytes of canonical JSON, over the limit of "
            f"{MAX_DATA_BYTES} bytes (1 MiB); store large payloads elsewhere and record their hash"
        )
    check_depth(text)
    return text


_TOO_DEEP = (
    f"entry data nests objects/arrays more than {MAX_DATA_DEPTH} levels deep (or refers to "
    "itself); flatten it"
)


def check_depth(text: str) -> None:
    """Raise InvalidEntry if canonical JSON ``text`` nests deeper than MAX_DATA_DEPTH.

    Cheap for most entries: nesting needs at least as many brackets, and
    ``str.count`` runs in C; only texts with more brackets are scanned.
    """
    if text.count("{") + text.count("[") <= MAX_DATA_DEPTH:
        return
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            if depth > MAX_DATA_DEPTH:
                raise InvalidEntry(_TOO_DEEP)
        elif ch in "}]":
            depth -= 1


def canonical_datas(datas: Sequence[Mapping[str, Any] | Canonical]) -> list[str]:
    """:func:`canonical_data` of each of ``datas``: the same texts, the same errors.

    Dicts are encoded together, column by column (:mod:`.columnar`), and only
    then checked for size and UTF-8; if anything is amiss the batch is encoded
    again one entry at a time, so the first bad entry raises as it would alone.

    Raises
    ------
    InvalidEntry
        For the first entry that :func:`canonical_data` refuses.
    """
    if _DICT.issuperset(map(type, datas)):
        try:
            texts = canonical_texts(datas)
        except (Irregular, RecursionError):
            pass
        else:
            if _fits(texts):
                for text in texts:
                    check_depth(text)
                return texts
    return [canonical_data(data) for data in datas]


def _fits(texts: list[str]) -> bool:
    """True if every text has a UTF-8 form of at most MAX_DATA_BYTES bytes."""
    if not texts:
        return True
    if max(map(len, texts)) > MAX_DATA_BYTES:  # UTF-8 is never shorter than the str
        return False
    if all(map(str.isascii, texts)):
        return True
    try:
        return all(len(text.encode("utf-8")) <= MAX_DATA_BYTES for text in texts)
    except UnicodeEncodeError:  # a lone surrogate
        return False


def preimage(index: int, timestamp: str, kind: str, data_json: str, previous_hash: bytes) -> bytes:
    """Bytes that an entry's hash covers: canonical JSON of its fields but the hash.

    Built by concatenation for speed; byte-identical to
    ``canonical_json({"data", "index", "kind", "previous_hash" (hex), "timestamp"})``
    because keys are written in sorted order, ``data_json`` is already
    canonical, and kind, timestamp and hex hashes need no escaping.
    """
    return (
        f'{{"data":{data_json},"index":{index},"kind":"{kind}",'
        f'"previous_hash":"{previous_hash.hex()}","timestamp":"{timestamp}"}}'
    ).encode()


def entry_hash(
    index: int,
    timestamp: str,
    kind: str,
    data_json: str,
    previous_hash: bytes,
    algorithm: HashAlgorithm = HashAlgorithm.SHA3_256,
) -> bytes:
    """The chained hash of an entry (32 bytes)."""
    return algorithm.new()(preimage(index, timestamp, kind, data_json, previous_hash)).digest()


def genesis_data(algorithm: HashAlgorithm) -> dict[str, Any]:
    """The data of entry 0."""
    return {"ledger": "swarmvar", "format": 1, "hash_algorithm": algorithm.value}


def make_entry(
    index: int, timestamp: str, kind: str, data_json: str, previous_hash: bytes, hash_: bytes
) -> Entry:
    """An :class:`Entry` from stored columns (no verification).

    Raises
    ------
    LedgerCorrupted
        If the stored kind is unknown or the data is not a JSON object.
    """
    try:
        data = loads(data_json)
        entry_kind = EntryKind(kind)
    except (ValueError, TypeError, RecursionError) as exc:
        raise LedgerCorrupted(
            f"entry {index} is damaged: its stored kind or data is not readable ({exc}); "
            "run `swarmvar ledger verify`"
        ) from None
    if type(data) is not dict:
        raise LedgerCorrupted(f"entry {index} is damaged: its data is not a JSON object")
    return Entry(index, timestamp, entry_kind, data, previous_hash, hash_)
