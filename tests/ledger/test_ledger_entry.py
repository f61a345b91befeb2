"""Entry hashing, canonical form and bad input."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.canonical import canonical_json
from swarmvar.errors import InvalidEntry
from swarmvar.ledger import MAX_DATA_BYTES, EntryKind, Ledger
from swarmvar.ledger.entry import (
    ZERO_HASH,
    canonical_data,
    check_timestamp,
    entry_hash,
    format_timestamp,
    preimage,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    data=json_objects,
    index=st.integers(0, 10**12),
    kind=st.sampled_from(list(EntryKind)),
    previous=st.binary(min_size=32, max_size=32),
    when=st.datetimes(timezones=st.just(UTC)),
)
def test_preimage_is_the_canonical_json_of_the_entry(
    data: dict, index: int, kind: EntryKind, previous: bytes, when: datetime
) -> None:
    """The fast concatenated preimage equals swarmvar.canonical.canonical_json, byte for byte."""
    ts = format_timestamp(when)
    fields = {
        "index": index,
        "timestamp": ts,
        "kind": kind.value,
        "data": data,
        "previous_hash": previous.hex(),
    }
    body = preimage(index, ts, kind.value, canonical_data(data), previous)
    assert body == canonical_json(fields)
    assert (
        entry_hash(index, ts, kind.value, canonical_data(data), previous)
        == hashlib.sha3_256(canonical_json(fields)).digest()
    )


def test_timestamps_are_utc_with_microseconds() -> None:
    when = datetime(2024, 3, 1, 14, 30, 5, 12, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(when) == "2024-03-01T12:30:05.000012Z"
    assert check_timestamp("2024-03-01T12:30:05.000012Z")
    with pytest.raises(InvalidEntry):
        format_timestamp(datetime(2024, 3, 1))  # naive: ambiguous
    for bad in ["2024-03-01T12:30:05Z", "2024-03-01 12:30:05.000012Z", 5]:
        with pytest.raises(InvalidEntry):
            check_timestamp(bad)  # type: ignore[arg-type]


class Opaque:
    pass


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"var": math.nan}, "var"),
        ({"es": [0.1, math.inf]}, "es[1]"),
        ({"blob": b"\x00"}, "bytes"),
        ({"obj": Opaque()}, "Opaque"),
        ({1: "int key"}, "non-string key"),
        ([1, 2, 3], "JSON object"),
        ("text", "JSON object"),
        ({"big": "x" * MAX_DATA_BYTES}, "1 MiB"),
        ({"s": "lone \ud800 surrogate"}, "utf-8"),
        ({"n": 10**5000}, "canonical JSON"),
    ],
)
def test_bad_data_raises_invalid_entry_and_writes_nothing(
    tmp_path: Path, data: object, fragment: str
) -> None:
    ledger = Ledger(tmp_path)
    before = ledger.get_manifest()
    with pytest.raises(InvalidEntry, match=None) as info:
        ledger.add_entry(EntryKind.ESTIMATE, data)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    with pytest.raises(InvalidEntry):  # a bad item spoils its whole batch
        ledger.add_entries([(EntryKind.ESTIMATE, {"ok": 1}), (EntryKind.ESTIMATE, data)])  # type: ignore[list-item]
    assert ledger.get_manifest() == before
    assert ledger.verify_chain().ok
    ledger.close()


def test_size_limit_is_inclusive_of_exactly_1_mib(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        overhead = len(canonical_json({"s": ""}))
        entry = ledger.add_entry(EntryKind.ACTION, {"s": "y" * (MAX_DATA_BYTES - overhead)})
        assert len(canonical_json(entry.data)) == MAX_DATA_BYTES
        with pytest.raises(InvalidEntry, match="over the limit"):
            ledger.add_entry(EntryKind.ACTION, {"s": "y" * (MAX_DATA_BYTES - overhead + 1)})
        assert ledger.size == 2


def test_kinds_are_checked(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        with pytest.raises(InvalidEntry, match="unknown entry kind"):
            ledger.add_entry("gossip", {})  # type: ignore[arg-type]
        with pytest.raises(InvalidEntry, match="genesis"):
            ledger.add_entry(EntryKind.GENESIS, {})
        assert ledger.add_entry("decision", {"go": True}).kind is EntryKind.DECISION  # type: ignore[arg-type]


def test_genesis_entry(tmp_path: Path) -> None:
    fixed = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with Ledger(tmp_path, clock=lambda: fixed) as ledger:
        genesis = ledger.entry(0)
    assert genesis.kind is EntryKind.GENESIS
    assert genesis.previous_hash == ZERO_HASH
    assert genesis.timestamp == "2025-01-02T03:04:05.000006Z"
    assert genesis.data == {"ledger": "swarmvar", "format": 1, "hash_algorithm": "sha3-256"}
    expected = hashlib.sha3_256(
        canonical_json(
            {
                "index": 0,
                "timestamp": genesis.timestamp,
                "kind": "genesis",
                "data": genesis.data,
                "previous_hash": "00" * 32,
            }
        )
    ).digest()
    assert genesis.hash == expected


def test_entries_chain_and_carry_what_was_recorded(tmp_path: Path) -> None:
    ticks = iter(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in range(100))
    with Ledger(tmp_path, clock=lambda: next(ticks)) as ledger:
        a = ledger.add_entry(EntryKind.ESTIMATE, {"var": 0.021, "es": 0.03})
        b = ledger.record_action("reduce", {"by": 0.5})
        c = ledger.record_pulse({"beat": 3, "t_lambda": 0.0012})
        d = ledger.record_flow_result("backtest", {"kupiec_p": 0.41})
        assert [a.index, b.index, c.index, d.index] == [1, 2, 3, 4]
        assert b.previous_hash == a.hash and d.previous_hash == c.hash
        assert ledger.entry(2).data == {"type": "reduce", "details": {"by": 0.5}}
        assert ledger.entry(-1).data == {"flow": "backtest", "result": {"kupiec_p": 0.41}}
        assert [e.kind for e in ledger.entries(1)] == [
            EntryKind.ESTIMATE,
            EntryKind.ACTION,
            EntryKind.PULSE,
            EntryKind.FLOW,
        ]
        assert a.timestamp == "2025-01-01T00:00:01.000000Z"
        with pytest.raises(IndexError):
            ledger.entry(5)


def _golden_payload(i: int) -> dict[str, object]:
    return {
        "agent": f"a{i % 3}",
        "var": i / 7,
        "es": [1e-300 * i, -0.0, 1e22],
        "n": 10**20 + i,
        "s": 'é€😀"\\\n' * (i % 2),
        "nested": {"t": (True, None), "z": {}},
    }


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_hashes_match_ledgers_written_before_the_fast_paths(tmp_path: Path, where: str) -> None:
    """Golden values from the code before the canonical/seal fast paths (commit 9f4114a).

    Existing ledgers must keep verifying, so every byte hashed must stay the same.
    """
    fixed = datetime(2025, 1, 1, tzinfo=UTC)
    if where == "memory":
        ledger = Ledger.in_memory(clock=lambda: fixed)
    else:
        ledger = Ledger(tmp_path, clock=lambda: fixed)
    with ledger:
        for i in range(3):
            ledger.add_entry(EntryKind.ESTIMATE, _golden_payload(i))
        ledger.add_entries([(EntryKind.FORECAST, _golden_payload(i)) for i in range(3, 260)])
        assert ledger.size == 261
        assert ledger.entry(-1).hash.hex() == (
            "06b1ad14526930c0f1c76be3ee88eefe7153d21df3e92d77fc2092b80f10b8d5"
        )
        assert ledger.compute_merkle_root().hex() == (
            "4005f3a66296e3b22c682234f729a91526475efe24354b2988a7461cb202c495"
        )
        assert ledger.verify_chain().ok
