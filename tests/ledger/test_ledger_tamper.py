"""Tampering directly in the SQLite file is caught, and named."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger import verify as verify_module
from swarmvar.ledger.entry import ZERO_HASH, canonical_data
from swarmvar.ledger.merkle import HashAlgorithm
from swarmvar.ledger.store import seal_batch
from swarmvar.ledger.verify import verify_rows

N = 40  # entries after genesis
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _build(home: Path) -> Path:
    with Ledger(home, signing_key=KEY) as led:
        led.add_entries(
            [
                (EntryKind.ESTIMATE, {"agent": f"a{i}", "var": 0.01 + i / 1000})
                for i in range(N // 2)
            ]
        )
        for i in range(N // 2):
            led.add_entry(EntryKind.CONSENSUS, {"var": 0.02, "beat": i})
    return home / "ledger.sqlite"


@contextmanager
def _attacker(db: Path) -> Iterator[sqlite3.Connection]:
    """Raw write access to the file: the append-only triggers are the first thing to go."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER entries_append_only_update")
    conn.execute("DROP TRIGGER entries_append_only_delete")
    try:
        yield conn
    finally:
        conn.close()


def _flip_byte(value: bytes | str, pos: int) -> bytes | str:
    if isinstance(value, str):
        raw = bytearray(value.encode())
        raw[pos % len(raw)] ^= 0x01
        return raw.decode("utf-8", errors="replace")
    raw = bytearray(value)
    raw[pos % len(raw)] ^= 0x01
    return bytes(raw)


def _verify(home: Path) -> tuple[bool, int | None, str | None]:
    """verify_chain in one pass, and split over 3 processes: the outcome must be the same."""
    with Ledger(home, create=False) as led:
        result = led.verify_chain(processes=1)
        assert led.verify_chain(processes=3) == result  # ranges [0, 13), [13, 27), [27, 41)
    return result.ok, result.first_bad, result.reason


@pytest.mark.parametrize("index", [0, 1, 17, 25, N])
@pytest.mark.parametrize("column", ["data", "hash", "previous_hash", "timestamp", "kind"])
def test_one_changed_byte_in_any_field_names_that_entry(
    tmp_path: Path, index: int, column: str
) -> None:
    db = _build(tmp_path)
    assert _verify(tmp_path) == (True, None, None)
    with _attacker(db) as conn:
        (value,) = conn.execute(f"SELECT {column} FROM entries WHERE idx = ?", (index,)).fetchone()
        conn.execute(
            f"UPDATE entries SET {column} = ? WHERE idx = ?", (_flip_byte(value, 7), index)
        )
    ok, bad, reason = _verify(tmp_path)
    assert not ok and bad == index, reason


@pytest.mark.parametrize(("i", "j"), [(3, 4), (10, 30), (1, N)])
def test_reordering_entries_names_the_first_moved(tmp_path: Path, i: int, j: int) -> None:
    db = _build(tmp_path)
    with _attacker(db) as conn:
        conn.execute("UPDATE entries SET idx = -1 WHERE idx = ?", (i,))
        conn.execute("UPDATE entries SET idx = ? WHERE idx = ?", (i, j))
        conn.execute("UPDATE entries SET idx = ? WHERE idx = -1", (j,))
    ok, bad, reason = _verify(tmp_path)
    assert not ok and bad == i, reason


def test_changed_merkle_node_is_named(tmp_path: Path) -> None:
    db = _build(tmp_path)
    with _attacker(db) as conn:  # entry 31 = 0b11111 holds five Merkle nodes
        (nodes,) = conn.execute("SELECT nodes FROM entries WHERE idx = 31").fetchone()
        assert len(nodes) == 5 * 32
        conn.execute("UPDATE entries SET nodes = ? WHERE idx = 31", (_flip_byte(nodes, 100),))
    ok, bad, reason = _verify(tmp_path)
    assert not ok and bad == 31 and "Merkle" in str(reason)


@pytest.mark.parametrize("index", [12, 13, 14, 26, 27])  # around the 3-process range bounds
def test_deleted_middle_entry_is_named(tmp_path: Path, index: int) -> None:
    db = _build(tmp_path)
    with _attacker(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx = ?", (index,))
    ok, bad, reason = _verify(tmp_path)
    assert not ok and bad == index and "missing" in str(reason)


def test_worker_processes_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranges really are checked by the workers (not by the fallback)."""
    _build(tmp_path)
    answers: list[object] = []
    real = verify_module._worker_result

    def spy(worker: subprocess.Popen[str]) -> object:
        answers.append(real(worker))
        return answers[-1]

    monkeypatch.setattr(verify_module, "_worker_result", spy)
    with Ledger(tmp_path, create=False) as led:
        assert led.verify_chain(processes=3).ok
    assert len(answers) == 2 and all(a is not None and a.ok for a in answers)  # type: ignore[attr-defined]


def test_a_worker_reading_another_file_is_not_believed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers that check a different (valid, same-size) ledger: caught at the end state."""
    _build(tmp_path / "a")
    other = _build(tmp_path / "b")
    with _attacker(other) as conn:  # same size, different history, internally valid
        conn.execute("DELETE FROM entries WHERE idx >= 20")
    with Ledger(tmp_path / "b", signing_key=KEY) as led:
        for i in range(N - 19):
            led.add_entry(EntryKind.DECISION, {"other": i})
    real = verify_module._start_worker
    monkeypatch.setattr(verify_module, "_start_worker", lambda _, alg, part: real(other, alg, part))
    with Ledger(tmp_path / "a", create=False) as led:
        assert led.verify_chain(processes=3) == led.verify_chain(processes=1)


def test_a_failed_worker_process_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies without an answer: its range is verified in the calling process."""
    db = _build(tmp_path)
    with Ledger(tmp_path, create=False) as led:
        good = led.verify_chain(processes=1)
    with _attacker(db) as conn:
        conn.execute("UPDATE entries SET data = '{}' WHERE idx = 33")

    def broken(*args: object) -> subprocess.Popen[str]:
        died = [sys.executable, "-c", "raise SystemExit(3)"]
        return subprocess.Popen(died, stdout=subprocess.PIPE, text=True)

    monkeypatch.setattr(verify_module, "_start_worker", broken)
    with Ledger(tmp_path, create=False) as led:
        result = led.verify_chain(processes=3)
    assert good.ok and not result.ok and result.first_bad == 33


def test_dropped_tail_is_caught_by_an_earlier_signed_head(tmp_path: Path) -> None:
    db = _build(tmp_path)
    with Ledger(tmp_path, signing_key=KEY) as led:
        head = led.signed_head()
        assert led.check_head(head).ok
    with _attacker(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx > ?", (N - 3,))
    with Ledger(tmp_path, signing_key=KEY) as led:
        assert led.verify_chain().ok  # a prefix of a valid chain is a valid chain...
        result = led.check_head(head)  # ...but not the one that was signed
    assert not result.ok and result.first_bad == N - 2 and "removed" in str(result.reason)


def test_truncated_then_regrown_ledger_fails_consistency(tmp_path: Path) -> None:
    """Drop the tail and append different entries: same size as the head, different history."""
    db = _build(tmp_path)
    with Ledger(tmp_path, signing_key=KEY) as led:
        head = led.signed_head()
    with _attacker(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx > ?", (N - 5,))
    with Ledger(tmp_path, signing_key=KEY) as led:
        for i in range(10):
            led.add_entry(EntryKind.DECISION, {"rewritten": i})
        assert led.verify_chain().ok and led.size > head.size
        result = led.check_head(head)
    assert not result.ok and "not consistent" in str(result.reason)


def test_consistently_rewritten_history_fails_against_signed_head(tmp_path: Path) -> None:
    """An attacker rewrites entry 5 and re-seals every later hash and Merkle node."""
    db = _build(tmp_path)
    with Ledger(tmp_path, signing_key=KEY) as led:
        head = led.signed_head()
        rows = list(led.store.rows())
    prefix = [(r[2], r[3], r[1]) for r in rows[:5]]  # (kind, data, timestamp) of entries 0..4
    resealed, prefix_frontier = seal_batch(prefix, 0, ZERO_HASH, [], head.hash_algorithm)
    assert resealed == rows[:5]
    drafts = [(r[2], r[3], r[1]) for r in rows[5:]]
    drafts[0] = (drafts[0][0], canonical_data({"agent": "forged", "var": 0.0}), drafts[0][2])
    forged, _ = seal_batch(drafts, 5, rows[4][5], prefix_frontier, head.hash_algorithm)
    with _attacker(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx >= 5")
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", forged)
    with Ledger(tmp_path, signing_key=KEY) as led:
        assert led.verify_chain().ok  # internally consistent forgery...
        assert led.entry(5).data["agent"] == "forged"
        result = led.check_head(head)  # ...that the signed head exposes
    assert not result.ok and "not consistent" in str(result.reason)


# --- property: any single mutation of the stored rows is named ------------------------


def _rows(n: int) -> list[tuple]:  # type: ignore[type-arg]
    drafts = [("genesis", "{}", "2025-01-01T00:00:00.000000Z")] + [
        ("estimate", canonical_data({"i": i, "s": "é" * (i % 3)}), "2025-01-01T00:00:01.000000Z")
        for i in range(1, n)
    ]
    rows, _ = seal_batch(drafts, 0, ZERO_HASH, [], HashAlgorithm.SHA3_256)
    return rows


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 80), data=st.data())
def test_any_single_mutation_is_named(n: int, data: st.DataObject) -> None:
    rows = _rows(n)
    assert verify_rows(rows, HashAlgorithm.SHA3_256).ok
    k = data.draw(st.integers(0, n - 1))
    how = data.draw(st.sampled_from(["drop", "swap", "flip"]))
    bad = list(rows)
    if how == "drop":
        del bad[k]
        expect = k if k < n - 1 else None  # dropping the tail leaves a valid prefix
    elif how == "swap":
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != k))
        bad[k], bad[j] = bad[j], bad[k]
        expect = min(k, j)
    else:
        field = data.draw(st.sampled_from([1, 2, 3, 4, 5, 6]))
        value = bad[k][field]
        if not value:  # an empty nodes column: add a byte instead
            value = b"\x00"
        else:
            bit = data.draw(st.integers(0, len(value) * 8 - 1))
            raw = bytearray(value.encode() if isinstance(value, str) else value)
            raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
            value = raw.decode("utf-8", "replace") if isinstance(value, str) else bytes(raw)
        if value == bad[k][field]:
            return  # a flip that decodes back to the same text changes nothing
        bad[k] = bad[k][:field] + (value,) + bad[k][field + 1 :]
        expect = k
    result = verify_rows(bad, HashAlgorithm.SHA3_256)
    if expect is None:
        assert result.ok and result.size == n - 1
    else:
        assert not result.ok and result.first_bad == expect, result.reason
