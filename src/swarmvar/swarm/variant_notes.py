"""The ledger's side of a variant change's note (:class:`~swarmvar.evolution.noted.NoteBook`):
one class for the command line's records (``swarmvar variants promote``, ``rollback
variant``, a restore) and a canary's automatic rollback (:mod:`swarmvar.swarm.
canary_sandbox`).

A note is a ``variant`` entry whose data carries a ``request_id`` of its own (so no other
entry has its canonical text), appended with compare-and-append at the ledger's size
(:meth:`~swarmvar.ledger.Ledger.add_entry` with ``if_size``, stamped by the ledger's
clock; again, at most :data:`RETRIES` times, when another writer appended first): where
it was appended is known. When its append raised an error with which it may have landed
(:func:`~swarmvar.errors.may_have_landed`), :meth:`LedgerNotes.landed` asks the ledger
whether it holds the note there (:meth:`~swarmvar.ledger.Ledger.holds`, which waits for
an append still committing); a void (``event: void``) names the note's index and hash,
the action, the variant or rollback point, and the store's error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ..errors import SwarmVarError
from ..ledger import EntryKind, Ledger
from ..ledger.entry import canonical_data

#: The tries :meth:`LedgerNotes.note` makes while other writers append first.
RETRIES = 200


class LedgerNotes:
    """A variant change's note and its void in a ledger (a
    :class:`~swarmvar.evolution.noted.NoteBook`).

    Parameters
    ----------
    ledger : Ledger or callable
        The ledger, or what opens it (called once, on the first note; a ledger opened
        so is closed on leaving the ``with`` block, one given is the caller's).
    event : str or None
        The note's ``event``, put before its data (the command line's ``promote``);
        None when the data carries its own (a canary's ``check_note``).

    Attributes
    ----------
    written : list of int
        The indices this object appended (the note, a void), in order.
    """

    def __init__(self, ledger: Ledger | Callable[[], Ledger], event: str | None = None
                 ) -> None:
        self._ledger: Ledger | None = ledger if isinstance(ledger, Ledger) else None
        self._opener = None if isinstance(ledger, Ledger) else ledger
        self._event = event
        self._request = str(uuid.uuid4())  # makes the note one of a kind
        self._at: int | None = None  # where the note's last append was tried
        self.written: list[int] = []

    def __enter__(self) -> LedgerNotes:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._opener is not None and self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def _opened(self) -> Ledger:
        if self._ledger is None:
            assert self._opener is not None
            self._ledger = self._opener()
        return self._ledger

    def _data(self, data: dict[str, Any]) -> dict[str, Any]:
        head = {} if self._event is None else {"event": self._event}
        return {**head, **data, "request_id": self._request}

    def _text(self, data: dict[str, Any]) -> str:
        return canonical_data(self._data(data))

    def note(self, data: dict[str, Any]) -> int:
        """Append the note of ``data`` at the ledger's size, again (at most
        :data:`RETRIES` times) when another writer appended first; its index.

        Raises
        ------
        SwarmVarError
            The ledger's error (it may have landed: :meth:`landed`), or it kept changing
            under the append (nothing appended).
        """
        ledger, note = self._opened(), self._data(data)
        for _ in range(RETRIES):
            self._at = None  # nothing tried yet: nothing to look for
            size = ledger.size
            self._at = size
            entry = ledger.add_entry(EntryKind.VARIANT, note, if_size=size)
            if entry is not None:
                self.written.append(entry.index)
                return entry.index
        self._at = None
        raise SwarmVarError(f"the ledger kept changing under a variant change's note "
                            f"({RETRIES} tries, another writer appended first each time): "
                            "the note was not appended and the change was not made; retry")

    def landed(self, data: dict[str, Any]) -> int | None:
        """After :meth:`note` of ``data`` raised: the note's index if the ledger holds it
        where its append was tried (the same kind and canonical text; then in
        :attr:`written` too), else None (also when no append was tried: the error came
        before it).

        Raises
        ------
        SwarmVarError
            The ledger cannot be read now (whether it landed is not known).
        """
        if self._at is None:
            return None
        at = self._at
        if not self._opened().holds(at, EntryKind.VARIANT, self._text(data)):
            return None
        if at not in self.written:  # its append raised, but it is this object's
            self.written.append(at)
        return at

    def void(self, index: int, data: dict[str, Any], error: str) -> int:
        """Append the void of the note at ``index`` (of ``data``), whose change the store
        did not keep for ``error``; its index.

        Raises
        ------
        SwarmVarError
            The ledger's error.
        """
        ledger = self._opened()
        voided = ledger.entry(index)
        void: dict[str, Any] = {
            "event": "void", "voids": {"index": index, "hash": voided.hash.hex()},
            "action": data.get("event", self._event), "error": error}
        void.update({k: data[k] for k in ("variant_id", "point_id") if k in data})
        self.written.append(int(ledger.add_entry(EntryKind.VARIANT, void).index))
        return self.written[-1]
