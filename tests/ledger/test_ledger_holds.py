"""``Ledger.holds(index, kind, text)``: whether the entry at a compare-and-append's index
is the one whose append may have landed (kind and canonical text), on SQLite and memory;
a store with its own ``holds`` (PostgreSQL's, which waits for an append still
committing) is asked instead of the size it would read now."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from swarmvar.errors import EntryNotFound, LedgerUnavailable
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger.entry import canonical_data
from swarmvar.ledger.store import MemoryStore


@pytest.mark.parametrize("engine", ["sqlite", "memory"])
def test_holds_the_entry_at_its_index_by_kind_and_text(tmp_path: Path, engine: str) -> None:
    with (Ledger(tmp_path) if engine == "sqlite" else Ledger.in_memory()) as ledger:
        data = {"event": "promote", "request_id": "r1"}
        at = ledger.add_entry(EntryKind.VARIANT, data).index
        text = canonical_data(data)
        assert ledger.holds(at, EntryKind.VARIANT, text)
        assert ledger.holds(at, "variant", text)  # the kind's value too
        assert not ledger.holds(at, EntryKind.ACTION, text)  # another kind
        assert not ledger.holds(at, EntryKind.VARIANT, canonical_data({**data, "x": 1}))
        assert not ledger.holds(at - 1, EntryKind.VARIANT, text)  # another entry
        assert not ledger.holds(at + 1, EntryKind.VARIANT, text)  # past the end: not landed
        with pytest.raises(EntryNotFound):
            ledger.holds(-1, EntryKind.VARIANT, text)
        with pytest.raises(EntryNotFound):
            ledger.holds("1", EntryKind.VARIANT, text)  # type: ignore[arg-type]


class _Committing(MemoryStore):
    """A store whose last append is still committing: its size and rows do not show it
    yet, but its own ``holds`` (waiting for the append's lock) does; or raises."""

    def __init__(self, created: str) -> None:
        super().__init__(created)
        self.asked: list[tuple[int, str, str]] = []
        self.fail: Exception | None = None

    def holds(self, index: int, kind: str, text: str) -> bool:
        self.asked.append((index, kind, text))
        if self.fail is not None:
            raise self.fail
        return True


def test_a_store_with_its_own_holds_is_asked_not_its_size() -> None:
    store = _Committing("2026-01-01T00:00:00.000000Z")
    ledger = Ledger.from_store(store)
    size = ledger.size
    assert ledger.holds(size, EntryKind.VARIANT, "{}")  # the size alone says "not yet"
    assert store.asked == [(size, "variant", "{}")]
    store.fail = LedgerUnavailable("the ledger's lock was not granted in 10 s")
    with pytest.raises(LedgerUnavailable):  # not known: never "it did not land"
        ledger.holds(size, EntryKind.VARIANT, "{}")


def test_a_row_missing_below_the_size_is_damage_not_a_no(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from swarmvar.errors import LedgerCorrupted

    with Ledger.in_memory() as ledger:
        ledger.add_entry(EntryKind.VARIANT, {"event": "promote"})

        def rows(self: Any, start: int = 0, stop: int | None = None) -> Any:
            return iter(())

        monkeypatch.setattr(MemoryStore, "rows", rows)
        with pytest.raises(LedgerCorrupted, match="missing"):
            ledger.holds(1, EntryKind.VARIANT, "{}")


def test_postgres_holds_says_a_row_missing_below_the_size_is_damage(
        postgres_url: str) -> None:
    """PostgreSQL's own ``holds`` reads the size in its locked transaction: a row deleted
    below it is ``LedgerCorrupted``, as for the generic look, while the index past the
    last row is a plain no."""
    import psycopg

    from swarmvar.errors import LedgerCorrupted

    with Ledger(postgres_url) as ledger:
        for i in range(3):
            ledger.add_entry(EntryKind.VARIANT, {"i": i})
        size, text = ledger.size, canonical_data({"i": 0})
        with psycopg.connect(postgres_url, autocommit=True) as c:
            c.execute("SET session_replication_role = replica")  # past the ledger's triggers
            c.execute("DELETE FROM ledger_entries WHERE idx = 1")
        with pytest.raises(LedgerCorrupted, match="entry 1 is missing"):
            ledger.holds(1, EntryKind.VARIANT, text)
        assert not ledger.holds(size, EntryKind.VARIANT, text)
        assert ledger.holds(2, EntryKind.VARIANT, canonical_data({"i": 1}))


def _exclusive_holder(url: str) -> Any:
    """Another connection holding the ledger table's EXCLUSIVE lock (an append's), in an
    open transaction."""
    import psycopg

    other = psycopg.connect(url)
    other.execute("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
    return other


def test_postgres_holds_waits_for_an_append_still_committing(postgres_url: str) -> None:
    """An append whose COMMIT is still running (its deferred trigger sleeps) holds the
    table's lock; ``holds`` at its index waits for it and says yes, where the size read
    at the same moment says it is not there."""
    import threading

    import psycopg

    with Ledger(postgres_url) as ledger, Ledger(postgres_url) as writer:
        with psycopg.connect(postgres_url, autocommit=True) as c:
            c.execute("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$")
            c.execute("CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON ledger_entries "
                      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()")
            data = {"event": "promote", "request_id": "r1"}
            at = ledger.size
            t = threading.Thread(target=writer.add_entry, args=(EntryKind.VARIANT, data))
            t.start()
            try:
                for _ in range(200):  # until the append holds its lock (bounded: 10 s)
                    if c.execute("SELECT count(*) FROM pg_locks WHERE mode = "
                                 "'ExclusiveLock' AND relation = 'ledger_entries'::regclass"
                                 " AND granted").fetchone()[0]:  # type: ignore[index]
                        break
                    time.sleep(0.05)
                else:
                    pytest.fail("the append never took its lock")
                seen = ledger.size  # no lock: the COMMIT in flight is not seen
                assert ledger.holds(at, EntryKind.VARIANT, canonical_data(data))
            finally:
                t.join(30)
        assert seen == at and ledger.size == at + 1


def test_postgres_holds_says_not_known_when_the_lock_is_not_granted(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.errors import LedgerFailed
    from swarmvar.ledger import postgres

    monkeypatch.setattr(postgres, "HOLDS_LOCK_TIMEOUT_S", 0.2)
    with Ledger(postgres_url) as ledger:
        text = canonical_data(ledger.entry(0).data)
        assert ledger.holds(0, EntryKind.GENESIS, text)
        assert _lock_timeout(ledger) == "0"  # SET LOCAL: the session's own setting is back
        assert not ledger.holds(1, EntryKind.GENESIS, text)
        other = _exclusive_holder(postgres_url)
        try:
            started = time.monotonic()
            with pytest.raises(LedgerFailed, match="55P03"):
                ledger.holds(0, EntryKind.GENESIS, text)
            assert time.monotonic() - started < 5
            assert _lock_timeout(ledger) == "0"  # rolled back with the failed transaction
        finally:
            other.close()
        assert ledger.holds(0, EntryKind.GENESIS, text)  # the lock released: read again


def _lock_timeout(ledger: Ledger) -> str:
    """``SHOW lock_timeout`` on the PostgreSQL store's own connection (under its lock)."""
    store: Any = ledger.store
    with store._lock:
        row = store._live("read").execute("SHOW lock_timeout").fetchone()
    return str(row[0])
