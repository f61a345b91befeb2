"""The batched append path writes exactly what the entry-by-entry path would.

Batches are encoded column by column (``ledger.columnar``), sealed a Merkle
level at a time (``store.batch_nodes``) and inserted with shared SQL
parameters; each is compared here with an independent reference: the JSON
module's own ``dumps`` and ``swarmvar.canonical``, RFC 6962 roots computed
from scratch, and rows read back from the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.canonical import canonical_text
from swarmvar.errors import InvalidEntry
from swarmvar.ledger import EntryKind, Ledger, MemoryStore, SQLiteStore
from swarmvar.ledger.columnar import MIN_COLUMN, Irregular, canonical_texts
from swarmvar.ledger.entry import ZERO_HASH, canonical_data, canonical_datas, entry_hash
from swarmvar.ledger.merkle import HashAlgorithm, leaf_hash, root
from swarmvar.ledger.store import push_leaf, seal_batch

STAMP = "2025-01-01T00:00:00.000000Z"

# Strings over all of Unicode, lone surrogates included (canonical_text lets
# them through; canonical_data refuses them), and the characters JSON escapes.
texts = st.text(st.characters(blacklist_categories=()), max_size=12) | st.sampled_from(
    ['"', "\\", "\n", "\x00", "\x1f", "\x7f", "é€😀", "\u2028", ""]
)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1e-300, 5e-324, 1e22, 1e16, 0.1, -2.5e-8, 1.7976931348623157e308]
)
scalars = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | floats | texts
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(texts, inner, max_size=4)
    ),
    max_leaves=16,
)
# One field of records that share a shape: mostly one type, as real batches are.
fields = st.sampled_from(
    [
        floats,
        st.integers(-(10**30), 10**30),
        texts,
        st.booleans(),
        st.none(),
        st.none() | floats,
        st.lists(floats, min_size=2, max_size=2),
        st.lists(floats | st.none(), max_size=40),
        st.tuples(st.integers(), texts),
        st.fixed_dictionaries({"lo": floats, "hi": floats, "tag": texts}),
        st.dictionaries(texts, floats, max_size=3),
        values,
    ]
)


@st.composite
def shaped_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records sharing keys (in random order), with some odd ones out."""
    keys = draw(st.lists(texts, max_size=7, unique=True))
    kinds = {key: draw(fields) for key in keys}
    batch = []
    for _ in range(draw(st.integers(0, 60))):
        order = draw(st.permutations(keys)) if draw(st.integers(0, 9)) == 0 else keys
        record = {key: draw(kinds[key]) for key in order}
        if draw(st.integers(0, 19)) == 0:  # a record with other keys
            record = draw(st.dictionaries(texts, values, max_size=4))
        batch.append(record)
    return batch


def _reference(value: Any) -> str:
    """The JSON module's own canonical settings, independent of swarmvar."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


@settings(max_examples=300, deadline=None)
@given(batch=shaped_batches())
def test_columns_encode_shaped_batches_byte_for_byte(batch: list[dict[str, Any]]) -> None:
    got = canonical_texts(batch)
    assert got == [canonical_text(v) for v in batch]
    assert got == [_reference(v) for v in batch]


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(values, max_size=40))
def test_columns_encode_any_json_values_byte_for_byte(batch: list[Any]) -> None:
    assert canonical_texts(batch) == [_reference(v) for v in batch]


class KeyLike:
    """Not a str, but hashes and compares like the key "var"."""

    def __hash__(self) -> int:
        return hash("var")

    def __eq__(self, other: object) -> bool:
        return other == "var"


class Key(str):
    pass


class Number(float):
    pass


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {"agent": f"a{i % 5}", "var": 0.02 + i / 1e4, "es": [0.03, i], "ok": i % 2 == 0}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("odd", "fragment"),
    [
        ({"agent": "x", "var": math.nan, "es": [0.03, 1], "ok": True}, "var"),
        ({"agent": "x", "var": 0.1, "es": [0.03, math.inf], "ok": True}, "es[1]"),
        ({"agent": "x", "var": 0.1, "es": [b"\x00", 1], "ok": True}, "bytes"),
        ({"agent": "x", KeyLike(): 0.1, "es": [0.0, 1], "ok": True}, "non-string key"),
        ({"agent": "x", 1: 0.1, "es": [0.0, 1], "ok": True}, "non-string key"),
        ({"agent": "\ud800", "var": 0.1, "es": [0.0, 1], "ok": True}, "utf-8"),
        ({"agent": "x", "var": 10**5000, "es": [0.0, 1], "ok": True}, "canonical JSON"),
        ({"agent": "x" * (1 << 20), "var": 0.1, "es": [0.0, 1], "ok": True}, "1 MiB"),
    ],
)
def test_a_bad_record_in_a_batch_raises_what_it_raises_alone(
    odd: dict[Any, Any], fragment: str
) -> None:
    batch: list[Any] = _records(3 * MIN_COLUMN)
    batch[2 * MIN_COLUMN] = odd
    with pytest.raises(InvalidEntry) as alone:
        canonical_data(odd)
    assert fragment in str(alone.value)
    with pytest.raises(InvalidEntry) as together:
        canonical_datas(batch)
    assert str(together.value) == str(alone.value)


def test_subclasses_and_cycles_take_the_one_by_one_path() -> None:
    batch: list[Any] = _records(3 * MIN_COLUMN)
    batch[5] = {Key("agent"): Key("b"), "var": Number(0.5), "es": (1, 2.0), "ok": None}
    assert canonical_datas(batch) == [canonical_data(d) for d in batch]
    cyclic: dict[str, Any] = {"agent": "c"}
    cyclic["self"] = cyclic
    with pytest.raises(Irregular):
        canonical_texts([cyclic] * MIN_COLUMN)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 300), m=st.integers(0, 140))
def test_sealed_batches_match_rfc6962_and_the_chain(
    algorithm: HashAlgorithm, size: int, m: int
) -> None:
    """Every stored node is the root of its perfect subtree, computed from scratch."""
    drafts = [("estimate", f'{{"i":{i}}}', STAMP) for i in range(size + m)]
    before, frontier = seal_batch(drafts[:size], 0, ZERO_HASH, [], algorithm)
    head = before[-1][5] if before else ZERO_HASH
    rows, after = seal_batch(drafts[size:], size, head, frontier, algorithm)
    leaves = [leaf_hash(r[5], algorithm) for r in before + rows]
    previous = head
    for index, timestamp, kind, data, prev, digest, nodes in rows:
        assert prev == previous
        assert digest == entry_hash(index, timestamp, kind, data, prev, algorithm)
        levels = (index ^ (index + 1)).bit_length() - 1  # subtrees this leaf completes
        assert len(nodes) == 32 * levels
        for level in range(1, levels + 1):
            subtree = leaves[index + 1 - (1 << level) : index + 1]
            assert nodes[32 * (level - 1) : 32 * level] == root(subtree, algorithm)
        previous = digest
    stack = list(frontier)
    new = algorithm.new()
    assert [push_leaf(stack, r[0], r[5], new) for r in rows] == [r[6] for r in rows]
    assert after == stack
    if leaves:
        folded = after[-1]
        for node in reversed(after[:-1]):
            folded = new(b"\x01" + node + folded).digest()
        assert folded == root(leaves, algorithm)


def test_sqlite_stores_exactly_the_rows_it_returns(tmp_path: Path) -> None:
    """Groups that share kind and timestamp bind fewer parameters; others do not."""
    kinds = ["estimate"] * 230 + ["forecast", "consensus"] * 60 + ["decision"] * 7
    drafts = [(k, f'{{"i":{i}}}', STAMP) for i, k in enumerate(kinds)]
    drafts[150] = ("estimate", '{"i":150}', "2025-01-01T00:00:01.000000Z")
    store = SQLiteStore(tmp_path / "l.sqlite", STAMP)
    memory = MemoryStore(STAMP)
    returned = []
    for start, stop in [(0, 1), (1, 101), (101, 350), (350, len(drafts))]:
        rows = store.append(drafts[start:stop])
        assert rows is not None
        assert rows == memory.append(drafts[start:stop])
        returned += rows
    assert list(store.rows()) == returned
    store.close()


def test_a_batch_with_a_bad_kind_and_bad_data_names_the_first(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        batch: list[Any] = [(EntryKind.ESTIMATE, r) for r in _records(40)]
        batch[10] = (EntryKind.ESTIMATE, {"var": math.nan})
        batch[20] = ("gossip", {"var": 0.1})
        with pytest.raises(InvalidEntry, match="not canonical"):
            ledger.add_entries(batch)
        batch[30] = batch[10]
        batch[10] = (EntryKind.GENESIS, {})
        with pytest.raises(InvalidEntry, match="genesis"):
            ledger.add_entries(batch)
        assert ledger.size == 1
        indices = ledger.add_entries((EntryKind.ESTIMATE, r) for r in _records(40))
        assert indices == range(1, 41)
        assert [e.data for e in ledger.entries(1)] == _records(40)
        assert ledger.verify_chain().ok
