"""``Ledger.add_entry(kind, data, if_size=n)``: compare-and-append of one entry, at index
``n`` only while the ledger holds ``n`` entries (None, nothing written, once another
writer appended first), stamped by the ledger's clock; and a variant change's note
(:class:`~swarmvar.swarm.variant_notes.LedgerNotes`) appended through it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from swarmvar.errors import InvalidParameter
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger.entry import format_timestamp
from swarmvar.swarm.variant_notes import LedgerNotes

WHEN = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize("engine", ["sqlite", "memory"])
def test_if_size_appends_at_that_size_only(tmp_path: Path, engine: str) -> None:
    with (Ledger(tmp_path) if engine == "sqlite" else Ledger.in_memory()) as ledger:
        size = ledger.size
        entry = ledger.add_entry(EntryKind.VARIANT, {"event": "promote"}, if_size=size)
        assert entry is not None and entry.index == size and ledger.size == size + 1
        assert ledger.entry(size).data == {"event": "promote"}
        # the size it was asked at is gone: another writer appended first
        assert ledger.add_entry(EntryKind.VARIANT, {"event": "late"}, if_size=size) is None
        assert ledger.size == size + 1  # nothing written
        with pytest.raises(InvalidParameter):
            ledger.add_entry(EntryKind.VARIANT, {"event": "x"}, if_size=0)
        with pytest.raises(InvalidParameter):
            ledger.add_entry(EntryKind.VARIANT, {"event": "x"},
                             if_size=True)  # type: ignore[call-overload]
        assert ledger.size == size + 1


def test_a_note_is_stamped_by_the_ledgers_clock() -> None:
    with Ledger.in_memory(clock=lambda: WHEN) as ledger, LedgerNotes(ledger, "promote") as book:
        at = book.note({"variant_id": "v1"})
        entry = ledger.entry(at)
        assert entry.timestamp == format_timestamp(WHEN) and entry.data["event"] == "promote"
        assert book.landed({"variant_id": "v1"}) == at  # the same text it looks for
        void = ledger.entry(book.void(at, {"variant_id": "v1"}, "VariantStoreUnwritable"))
        assert void.timestamp == format_timestamp(WHEN) and book.written == [at, void.index]
