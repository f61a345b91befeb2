"""The rule of a variant change noted inside the store's transaction
(:func:`swarmvar.evolution.noted.noted_change`), on a real SQLite variant store and a
ledger of lists: a COMMIT that fails leaves a void unless the store holds the change (then
the change is answered as made, with a warning) or whether it was made is not known (the
store not read back, or its server lost as the COMMIT was answered: no void, an error
said, and an answer saying it may have been made); a note whose append may have landed is
looked for and voided. ``as_kept`` keeps an error's class, cause and first clause on one
line, without a URL or its parts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from swarmvar.errors import LedgerUnreachable, LedgerUnwritable, may_have_landed
from swarmvar.evolution import EvolutionHome, Variant, VariantStatus, new_variant, open_home
from swarmvar.evolution.errors import (
    VariantStoreUnreachable,
    VariantStoreUnwritable,
)
from swarmvar.evolution.noted import (
    as_kept,
    may_have_been_made,
    noted_change,
    point_held,
    said_head,
    variant_held,
)

URL = "postgresql://u:pw@h.example:5433/db"
LOST = VariantStoreUnreachable("postgresql://u@h.example/db", "connection lost", landed=True)


class Book:
    """A ledger of lists: notes and voids; ``fail_note``/``fail_void``/``fail_look``
    raise there (``fail_note`` after storing the note when ``lands``)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = [("genesis", {})]
        self.fail_note: BaseException | None = None
        self.lands = False
        self.fail_void: Exception | None = None
        self.fail_look: Exception | None = None

    def note(self, data: dict[str, Any]) -> int:
        if self.fail_note is not None and not self.lands:
            raise self.fail_note
        self.entries.append(("note", data))
        if self.fail_note is not None:
            raise self.fail_note
        return len(self.entries) - 1

    def landed(self, data: dict[str, Any]) -> int | None:
        if self.fail_look is not None:
            raise self.fail_look
        last = len(self.entries) - 1
        return last if self.entries[last] == ("note", data) else None

    def void(self, index: int, data: dict[str, Any], error: str) -> int:
        if self.fail_void is not None:
            raise self.fail_void
        self.entries.append(("void", {"voids": index, "variant": data["variant"],
                                      "error": error}))
        return len(self.entries) - 1

    def kinds(self) -> list[str]:
        return [k for k, _ in self.entries[1:]]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[EvolutionHome]:
    h = open_home(tmp_path)
    try:
        yield h
    finally:
        h.close()


def _variant(h: EvolutionHome) -> Variant:
    return h.variants.add(new_variant("Nig", {"forgetting": 0.9}, {"Nig": ("forgetting",)},
                                      now=time.time()))


def failing(h: EvolutionHome, exc: BaseException, *, commit_first: bool
            ) -> Callable[[], Any]:
    """The store's transaction, its COMMIT raising ``exc`` (after committing, or not)."""

    @contextmanager
    def transaction() -> Iterator[Any]:
        with h.db.transaction() as conn:
            yield conn
            if not commit_first:
                raise exc  # the body's end: the store rolls back
        raise exc

    return transaction


def run(h: EvolutionHome, v: Variant, book: Book, transaction: Callable[[], Any],
        read_back: Callable[[str], Variant] | None = None, check: str | None = None
        ) -> tuple[Any, list[tuple[int, str]]]:
    said_lines: list[tuple[int, str]] = []

    def change() -> tuple[Variant, Variant, dict[str, Any]]:
        w = h.variants.promote(v, now=time.time())
        return w, w, {"variant": w.id}

    def report(level: int, line: str) -> None:
        said_lines.append((level, line))

    more = {} if check is None else {"check": check}
    try:
        got: Any = noted_change(transaction, change, book,
                                variant_held(read_back or h.variants.get), report,
                                f"promotion of {v.id}", URL, **more)
    except BaseException as exc:  # the answer (an interrupt raised again too)
        got = exc
    return got, said_lines


def test_a_commit_that_fails_voids_the_note(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    err = VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "disk I/O error")
    got, lines = run(home, v, book, failing(home, err, commit_first=False))
    assert got is err and home.variants.get(v.id).status is v.status
    assert book.kinds() == ["note", "void"] and lines == []
    assert book.entries[2][1]["voids"] == 1
    assert book.entries[2][1]["error"].startswith("VariantStoreUnwritable (I/O error): ")


def test_a_commit_stored_though_it_raised_is_answered_made(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    got, lines = run(home, v, book, failing(home, LOST, commit_first=True))
    assert isinstance(got, Variant) and got.status is VariantStatus.ACTIVE
    assert home.variants.get(v.id).status is VariantStatus.ACTIVE
    assert book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.WARNING and "the change is stored" in line and "#1" in line


def test_a_lost_server_at_commit_not_seen_yet_is_not_known(home: EvolutionHome) -> None:
    """``landed``: the read-back (a new connection) does not show it, but the COMMIT in
    flight on the old one may still land: no void."""
    v, book = _variant(home), Book()
    got, lines = run(home, v, book, failing(home, LOST, commit_first=False))
    assert isinstance(got, VariantStoreUnreachable) and got.landed
    assert "may have been made" in str(got) and "variants list" in str(got)
    assert home.variants.get(v.id).status is v.status
    assert book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.ERROR and "not voided" in line


def test_a_lost_server_and_no_read_back_is_not_known(home: EvolutionHome) -> None:
    """Not ``landed`` but the store cannot be read back: no void either."""
    v, book = _variant(home), Book()
    lost = VariantStoreUnreachable("postgresql://u@h.example/db", "connection refused")

    def unread(vid: str) -> Variant:
        raise lost

    got, lines = run(home, v, book, failing(home, lost, commit_first=False), unread)
    assert isinstance(got, VariantStoreUnreachable) and "may have been made" in str(got)
    assert book.kinds() == ["note"] and [lv for lv, _ in lines] == [logging.ERROR]
    assert "cannot be read back" in lines[0][1]


def test_a_lost_server_not_landed_and_not_kept_is_voided(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    lost = VariantStoreUnreachable("postgresql://u@h.example/db", "connection refused")
    got, lines = run(home, v, book, failing(home, lost, commit_first=False))
    assert got is lost and book.kinds() == ["note", "void"] and lines == []


def test_a_void_that_cannot_be_appended_is_said_at_error_level(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    book.fail_void = LedgerUnwritable("/x/ledger.sqlite", "disk full", "full", "append")
    err = VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "disk I/O error")
    got, lines = run(home, v, book, failing(home, err, commit_first=False))
    assert got is err and book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.ERROR and "could not be appended" in line and "#1" in line


@pytest.mark.parametrize("lands", [True, False])
def test_a_note_that_may_have_landed_is_voided_if_it_did(home: EvolutionHome,
                                                         lands: bool) -> None:
    v, book = _variant(home), Book()
    book.fail_note, book.lands = LedgerUnreachable("append", "connection lost", landed=True), lands
    got, lines = run(home, v, book, home.db.transaction)
    assert isinstance(got, LedgerUnreachable) and got.landed
    assert "was not made" in str(got)
    assert home.variants.get(v.id).status is v.status  # rolled back
    assert book.kinds() == (["note", "void"] if lands else [])
    assert ("voided by #2" in str(got)) is lands and lines == []


def test_a_note_that_may_have_landed_and_cannot_be_looked_for(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    book.fail_note, book.lands = LedgerUnreachable("append", "lost", landed=True), True
    book.fail_look = LedgerUnreachable("read", "connection refused")
    got, lines = run(home, v, book, home.db.transaction)
    assert isinstance(got, LedgerUnreachable) and "may have landed" in str(got)
    assert book.kinds() == ["note"] and [lv for lv, _ in lines] == [logging.ERROR]


def test_a_note_refused_outright_is_not_looked_for(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    book.fail_note = book.fail_look = LedgerUnreachable("append", "connection refused")
    got, lines = run(home, v, book, home.db.transaction)
    assert got is book.fail_note and book.kinds() == [] and lines == []


def test_said_keeps_class_cause_and_first_clause_without_a_url() -> None:
    exc = VariantStoreUnwritable(f"{URL}?sslmode=require", "I/O error",
                                 "at h.example port 5433\n  for u on db with pw")
    text = as_kept(exc, URL)
    assert text.startswith("VariantStoreUnwritable (I/O error): the variant store <url> ")
    for part in ("pw", "h.example", "5433", "\n", "nothing was changed", "check its disk"):
        assert part not in text, (part, text)
    assert said_head(text) == "VariantStoreUnwritable (I/O error)"
    assert as_kept(RuntimeError(f"cannot reach {URL}, user u")) == \
        "RuntimeError: cannot reach <url> user u"
    long = as_kept(RuntimeError("x" * 1000))
    assert len(long) == 300 and as_kept(RuntimeError()) == "RuntimeError"
    assert said_head("VariantStoreUnwritable: an old void's text") == "VariantStoreUnwritable"


def test_a_point_is_held_when_every_assignment_and_state_is(home: EvolutionHome) -> None:
    """``point_held``: the store's assignments are the point's, no more, and each of the
    point's agents has its state version current."""
    v = _variant(home)
    home.assignments.assign("nig", v.id)
    p = home.points.create("one", now=time.time())
    held = point_held(home.db)
    assert held(p)
    home.assignments.assign("t", v.id)
    assert not held(p)
    home.points.rollback(p.id)
    assert held(p)
    home.assignments.assign("nig", "other")
    assert not held(p)


def test_a_caller_says_what_to_do_when_it_may_have_been_made(home: EvolutionHome) -> None:
    """A restore's caller points at running it again, not at the variant's status."""
    v, book = _variant(home), Book()
    got, _ = run(home, v, book, failing(home, LOST, commit_first=False),
                 check="run `rollback to p1` again")
    assert isinstance(got, VariantStoreUnreachable)
    assert "run `rollback to p1` again" in str(got) and "variants list" not in str(got)


@pytest.mark.parametrize("commit_first", [False, True])
def test_an_interrupt_at_commit_voids_a_note_not_kept_and_is_raised_again(
        home: EvolutionHome, commit_first: bool) -> None:
    """A ``KeyboardInterrupt`` at the COMMIT: the store is read back; a change it does not
    hold has its note voided, one it holds keeps it (a warning); the interrupt is raised
    again either way, never answered as success."""
    v, book = _variant(home), Book()
    stop = KeyboardInterrupt()
    got, lines = run(home, v, book, failing(home, stop, commit_first=commit_first))
    assert got is stop
    if commit_first:
        assert home.variants.get(v.id).status is VariantStatus.ACTIVE
        assert book.kinds() == ["note"] and [lv for lv, _ in lines] == [logging.WARNING]
    else:
        assert home.variants.get(v.id).status is v.status
        assert book.kinds() == ["note", "void"] and lines == []
        assert book.entries[2][1]["error"] == "KeyboardInterrupt"


def test_an_interrupt_at_commit_with_no_read_back_leaves_the_note(home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    stop = KeyboardInterrupt()

    def unread(vid: str) -> Variant:
        raise VariantStoreUnreachable("postgresql://u@h.example/db", "connection refused")

    got, lines = run(home, v, book, failing(home, stop, commit_first=False), unread)
    assert got is stop and book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.ERROR and "interrupted" in line and "not voided" in line


@pytest.mark.parametrize("lands", [True, False])
def test_a_note_whose_append_raised_an_unknown_error_is_looked_for(home: EvolutionHome,
                                                                  lands: bool) -> None:
    """An error the ledger does not know (the OS's own) may have come after the append
    landed (the desk's rule): the note is looked for and voided if there; the error is
    raised as it was, what became of the note said at error level."""
    v, book = _variant(home), Book()
    book.fail_note, book.lands = OSError("socket closed"), lands
    got, lines = run(home, v, book, home.db.transaction)
    assert got is book.fail_note and home.variants.get(v.id).status is v.status
    assert book.kinds() == (["note", "void"] if lands else [])
    [(level, line)] = lines
    assert level == logging.ERROR and "OSError: socket closed" in line
    assert ("landed as #1 and is voided by #2" if lands else "did not land") in line


def test_may_have_landed_is_the_desks_rule() -> None:
    """One rule, in errors.py: the desk's and the note's are it (not copies)."""
    from swarmvar.evolution import noted
    from swarmvar.service import desk

    assert noted.may_have_landed is may_have_landed is desk._may_have_landed
    assert may_have_landed(LedgerUnreachable("append", "lost", landed=True))
    assert not may_have_landed(LedgerUnreachable("append", "refused"))
    assert not may_have_landed(LedgerUnwritable("/x/ledger.sqlite", "disk full", "full",
                                                "append"))
    assert may_have_landed(OSError("reset")) and may_have_landed(KeyboardInterrupt())


def test_said_cuts_the_remedy_after_the_first_clause() -> None:
    assert as_kept(RuntimeError("disk full; free space, then retry")) == "RuntimeError: disk full"


def test_a_point_is_not_held_while_a_state_version_differs(home: EvolutionHome) -> None:
    """The assignments match, but an agent's current state version is not the point's."""
    v = _variant(home)
    home.assignments.assign("nig", v.id)
    home.states.put("nig", b"old", now=1.0)
    p = home.points.create("one", now=time.time())
    held = point_held(home.db)
    assert held(p) and p.states == {"nig": 1}
    home.states.put("nig", b"new", now=2.0)
    assert not held(p)
    home.points.rollback(p.id)
    assert held(p)


def test_a_change_with_nothing_to_note_is_the_stores_alone(home: EvolutionHome) -> None:
    """A change whose data is None (a canary check that only ramped) appends nothing and
    commits; its COMMIT failing leaves nothing to void and raises the store's error."""
    v, book = _variant(home), Book()

    def change() -> tuple[Variant, Variant, dict[str, Any] | None]:
        w = home.variants.save(v.moved_to(VariantStatus.CANARY, time.time()))
        return w, w, None

    def report(level: int, line: str) -> None:
        raise AssertionError(line)

    got = noted_change(home.db.transaction, change, book, variant_held(home.variants.get),
                       report, f"canary check of {v.id}")
    assert got.status is VariantStatus.CANARY
    assert home.variants.get(v.id).status is VariantStatus.CANARY
    assert book.kinds() == []
    err = VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "disk I/O error")
    v2 = _variant(home)

    def change2() -> tuple[Variant, Variant, dict[str, Any] | None]:
        w = home.variants.save(v2.moved_to(VariantStatus.CANARY, time.time()))
        return w, w, None

    with pytest.raises(VariantStoreUnwritable):
        noted_change(failing(home, err, commit_first=False), change2, book,
                     variant_held(home.variants.get), report, f"canary check of {v2.id}")
    assert home.variants.get(v2.id).status is VariantStatus.DRAFT and book.kinds() == []


def test_a_change_that_wrote_none_is_still_voided_when_its_commit_fails(
        home: EvolutionHome) -> None:
    """What ``change`` wrote may be None (a value, not "the body did not finish"): the
    COMMIT's failure after the note is still dealt with (the store read back, the note
    voided), not taken for a failure before the note."""
    v, book = _variant(home), Book()
    err = VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "disk I/O error")
    seen: list[object] = []

    def change() -> tuple[str, None, dict[str, Any]]:
        home.variants.promote(v, now=time.time())
        return "made", None, {"variant": v.id}

    def held(written: None) -> bool:
        seen.append(written)
        return False

    with pytest.raises(VariantStoreUnwritable):
        noted_change(failing(home, err, commit_first=False), change, book, held,
                     lambda level, line: None, f"promotion of {v.id}")
    assert seen == [None] and book.kinds() == ["note", "void"]
    assert home.variants.get(v.id).status is v.status


@pytest.mark.parametrize("commit_first", [True, False])
def test_any_commit_error_with_no_read_back_is_not_known(home: EvolutionHome,
                                                         commit_first: bool) -> None:
    """Not only a lost server: a COMMIT that raised anything and a store that cannot be
    read back leave the note (whether the change was made is not known)."""
    v, book = _variant(home), Book()
    err = VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "at commit")

    def unread(vid: str) -> Variant:
        raise VariantStoreUnwritable("/x/variants.sqlite", "I/O error", "at read")

    got, lines = run(home, v, book, failing(home, err, commit_first=commit_first), unread)
    assert type(got) is VariantStoreUnwritable and got is not err and got.__cause__ is err
    assert "may have been made" in str(got) and "nothing was changed" not in str(got)
    assert book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.ERROR and "cannot be read back" in line and "not voided" in line


def test_an_error_not_swarmvars_with_no_read_back_is_raised_as_it_was(
        home: EvolutionHome) -> None:
    v, book = _variant(home), Book()
    err = RuntimeError("the OS said no")

    def unread(vid: str) -> Variant:
        raise RuntimeError("still no")

    got, lines = run(home, v, book, failing(home, err, commit_first=False), unread)
    assert got is err and book.kinds() == ["note"]
    assert [lv for lv, _ in lines] == [logging.ERROR] and "not voided" in lines[0][1]
    assert may_have_been_made(got)  # marked: a canary run's entry says "not known"


def test_a_note_found_but_not_voided_is_named_as_landed(home: EvolutionHome) -> None:
    """The look found the note; its void failed: the answer names the note's index."""
    v, book = _variant(home), Book()
    book.fail_note, book.lands = LedgerUnreachable("append", "lost", landed=True), True
    book.fail_void = LedgerUnwritable("/x/ledger.sqlite", "disk full", "full", "append")
    got, lines = run(home, v, book, home.db.transaction)
    assert isinstance(got, LedgerUnreachable) and "was not made" in str(got)
    assert "landed as #1 and could not be voided (LedgerUnwritable (disk full))" in str(got)
    assert "could not be looked for" not in str(got)
    assert home.variants.get(v.id).status is v.status and book.kinds() == ["note"]
    [(level, line)] = lines
    assert level == logging.ERROR and "landed as #1" in line
