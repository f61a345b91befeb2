"""``swarmvar variants promote`` and ``rollback variant`` record the change in the ledger
inside the variant store's transaction: a record that cannot be written changes nothing,
and a COMMIT that fails after the record was appended voids it (a ``void`` entry naming
its index and hash and the store's error), which ``variants history`` shows. The record's
append is real; on SQLite the COMMIT raises SQLite's own ``OperationalError`` "disk I/O
error" (SQLITE_IOERR) from the store's connection, wrapped only at COMMIT; on PostgreSQL a
deferred constraint trigger fails the real COMMIT with SQLSTATE 58030 (I/O error)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from _commit_fails import fail_commit_after, stored  # tests/_commit_fails.py (tests/conftest.py)
from swarmvar.cli.variants import app
from swarmvar.errors import LedgerUnreachable
from swarmvar.evolution import Database, VariantStatus, open_home
from swarmvar.ledger import EntryKind, Ledger

runner = CliRunner()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def point_then_assigned(home: str, vid: str) -> str:
    """Assign ``vid`` to nig, take a rollback point, then assign ``vid`` to t too; create the
    ledger (empty) in ``home``. Returns the point's id."""
    h = open_home(home)
    try:
        h.assignments.assign("nig", vid)
        point = h.points.create("before", now=0.0).id
        h.assignments.assign("t", vid)
    finally:
        h.close()
    Ledger(Path(home)).close()
    return point


def invoke(home: str, *args: str, code: int = 0, stderr: bool = False) -> str:
    res = runner.invoke(app, [*args, "--home", home])
    assert res.exit_code == code, (res.output, res.stderr)
    return res.output + (res.stderr if code or stderr else "")


def created(home: str) -> str:
    m = UUID.search(invoke(home, "create", "nig", "--set", "forgetting=0.96"))
    assert m
    return m.group(0)


def check_voided(home: str, ledger: Ledger, size: int, event: str, vid: str) -> None:
    """The ledger holds the record at ``size`` and its void after it; the chain verifies;
    ``variants history`` shows the record voided."""
    note, void = ledger.entry(size), ledger.entry(size + 1)
    assert ledger.size == size + 2
    assert note.kind is void.kind is EntryKind.VARIANT
    assert note.data["event"] == event and note.data["variant_id"] == vid
    assert void.data["event"] == "void" and void.data["action"] == event
    assert void.data["voids"] == {"index": note.index, "hash": note.hash.hex()}
    assert void.data["variant_id"] == vid and "I/O error" in void.data["error"]
    assert "://" not in void.data["error"]
    assert ledger.verify_chain(processes=1).ok
    [line] = [x for x in invoke(home, "history").splitlines() if x.startswith(f"#{size} ")]
    assert event in line and vid in line
    # the void's class and cause, not its message (a path, a remedy)
    assert line.endswith(f"VOIDED by #{void.index} (VariantStoreUnwritable (I/O error))")


def test_a_promotion_and_a_rollback_whose_commit_fails_are_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = str(tmp_path)
    vid = created(home)
    Ledger(tmp_path).close()
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        before = stored(home, vid)
        out = invoke(home, "promote", vid, "--force", code=2)
        assert failed == [1] and "I/O error" in out
        assert stored(home, vid) == before  # the store unchanged
        check_voided(home, ledger, size, "promote", vid)

        assert "promoted" in invoke(home, "promote", vid, "--force")  # the COMMIT passes
        assert stored(home, vid)[0] is VariantStatus.ACTIVE
        last = ledger.size - 1
        [line] = [x for x in invoke(home, "history").splitlines() if x.startswith(f"#{last} ")]
        assert "promote" in line and "forced" in line and "VOIDED" not in line

        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        before = stored(home, vid)
        invoke(home, "rollback", "variant", vid, code=2)
        assert failed == [1] and stored(home, vid) == before
        check_voided(home, ledger, size, "rollback", vid)


def test_a_record_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    """Before, the promotion was stored first and its record written after: a ledger that
    cannot take it left a promotion on no record."""
    home = str(tmp_path)
    vid = created(home)
    (tmp_path / "ledger.sqlite").write_bytes(b"not a ledger" * 100)
    before = stored(home, vid)
    invoke(home, "promote", vid, "--force", code=2)
    invoke(home, "rollback", "variant", vid, code=2)
    assert stored(home, vid) == before


def test_a_failed_commit_on_postgres_is_voided(postgres_url: str) -> None:
    import psycopg

    vid = created(postgres_url)
    Ledger(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # fails every COMMIT
        conn.execute("CREATE FUNCTION io_error() RETURNS trigger LANGUAGE plpgsql AS $$ "
                     "BEGIN RAISE EXCEPTION 'could not write block' USING ERRCODE = '58030'; "
                     "END $$")
        conn.execute("CREATE CONSTRAINT TRIGGER at_commit AFTER UPDATE ON variants "
                     "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION io_error()")
    with Ledger(postgres_url, create=False) as ledger:
        size = ledger.size
        before = stored(postgres_url, vid)
        out = invoke(postgres_url, "promote", vid, "--force", code=2)
        assert "SQLSTATE 58030" in out and "I/O error" in out  # the cause, not the server's words
        assert stored(postgres_url, vid) == before
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert void.data["voids"] == {"index": note.index, "hash": note.hash.hex()}
        assert void.data["error"].startswith("VariantStoreUnwritable")
        assert "://" not in void.data["error"] and ledger.size == size + 2
        assert ledger.verify_chain(processes=1).ok
        [line] = [x for x in invoke(postgres_url, "history").splitlines()
                  if x.startswith(f"#{size} ")]
        assert f"VOIDED by #{void.index}" in line


def test_a_commit_that_took_effect_before_its_error_is_answered_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The COMMIT is made, then raises (a server's answer lost): the store holds the
    promotion, so its record stands, unvoided, and the command says it promoted (exit 0,
    a warning on stderr). Before: exit 2, "nothing was changed", and a retry refused."""
    home = str(tmp_path)
    vid = created(home)
    Ledger(tmp_path).close()
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size, commit_first=True)
        said = invoke(home, "promote", vid, "--force", stderr=True)
        assert failed == [1] and "promoted" in said
        assert "warning" in said and "the change is stored" in said
        assert stored(home, vid)[0] is VariantStatus.ACTIVE
        assert ledger.size == size + 1 and ledger.entry(size).data["event"] == "promote"
        assert "VOIDED" not in invoke(home, "history")


def test_a_record_whose_append_may_have_landed_is_voided_when_it_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's append commits, then its answer is lost (``LedgerUnreachable`` with
    ``landed``, as PostgreSQL's): the promotion is rolled back and the record, found by its
    data (its request id), is voided; the command fails (exit 2) saying nothing was made."""
    from swarmvar.ledger.sqlite import SQLiteStore

    home = str(tmp_path)
    vid = created(home)
    Ledger(tmp_path).close()
    real = SQLiteStore.append
    lost: list[int] = []

    def append(self: SQLiteStore, drafts: Any, *, if_size: int | None = None) -> Any:
        rows = real(self, drafts, if_size=if_size)
        if not lost and '"promote"' in drafts[0][1]:
            lost.append(1)
            raise LedgerUnreachable("append", "connection lost", landed=True)
        return rows

    monkeypatch.setattr(SQLiteStore, "append", append)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        before = stored(home, vid)
        said = invoke(home, "promote", vid, "--force", code=2)
        assert lost == [1] and "was not made" in said and "voided by" in said
        assert stored(home, vid) == before
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert ledger.size == size + 2 and note.data["event"] == "promote"
        assert void.data["voids"] == {"index": size, "hash": note.hash.hex()}
        assert any(x.startswith(f"#{size} ") and "VOIDED" in x
                   for x in invoke(home, "history").splitlines())


def test_a_void_naming_another_hash_does_not_void(tmp_path: Path) -> None:
    """History matches a void to its record by index and hash: a void whose hash is not
    the record's (another ledger's entry at that index, say) leaves it standing."""
    with Ledger(tmp_path) as ledger:
        note = ledger.add_entry(EntryKind.VARIANT, {"event": "promote", "variant_id": "v1"})
        ledger.add_entry(EntryKind.VARIANT, {
            "event": "void", "voids": {"index": note.index, "hash": "00" * 32},
            "action": "promote", "variant_id": "v1", "error": "X: y"})
        ledger.add_entry(EntryKind.VARIANT, {
            "event": "void", "voids": {"index": note.index + 5, "hash": note.hash.hex()},
            "action": "promote", "variant_id": "v1", "error": "X: y"})
    [line] = invoke(str(tmp_path), "history").splitlines()
    assert line.startswith(f"#{note.index} ") and "v1" in line and "VOIDED" not in line


def test_a_refused_change_creates_no_ledger_and_history_needs_none(tmp_path: Path) -> None:
    """A transition the lifecycle refuses (a draft rolled back) is checked before the
    ledger is opened: none is created; ``history`` on a home without one says none was
    recorded (exit 0)."""
    home = str(tmp_path)
    vid = created(home)
    assert not (tmp_path / "ledger.sqlite").exists()
    invoke(home, "rollback", "variant", vid, code=2)
    assert not (tmp_path / "ledger.sqlite").exists()
    assert invoke(home, "history").strip() == "no promotions or rollbacks recorded"


def test_a_restored_rollback_point_is_recorded_and_voided_likewise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rollback to POINT`` changes which variant each agent runs: recorded in the ledger
    inside the store's transaction (``event: rollback-to``), voided when its COMMIT fails;
    an unknown point creates no ledger."""
    home = str(tmp_path)
    vid = created(home)
    invoke(home, "rollback", "to", "no-such-point", code=2)
    assert not (tmp_path / "ledger.sqlite").exists()
    point = point_then_assigned(home, vid)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        assert "I/O error" in invoke(home, "rollback", "to", point, code=2)
        assert failed == [1]
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert note.data["event"] == "rollback-to" and note.data["point_id"] == point
        assert note.data["assignments"] == {"nig": vid}
        assert void.data["voids"] == {"index": size, "hash": note.hash.hex()}
        assert void.data["action"] == "rollback-to" and void.data["point_id"] == point
        h = open_home(home)
        try:
            assert h.assignments.all() == {"nig": vid, "t": vid}  # unchanged
        finally:
            h.close()

        assert "restored" in invoke(home, "rollback", "to", point)
        last = ledger.size - 1
        assert ledger.entry(last).data["event"] == "rollback-to"
        lines = invoke(home, "history").splitlines()
        [voided] = [x for x in lines if x.startswith(f"#{size} ")]
        [stands] = [x for x in lines if x.startswith(f"#{last} ")]
        assert "rollback-to" in voided and point in voided and "VOIDED" in voided
        assert "1 agent assigned" in stands and "VOIDED" not in stands


def nested_variant(home: str) -> str:
    """A variant whose parameter is nested (the store gives it back as nested tuples)."""
    from swarmvar.evolution import new_variant

    h = open_home(home)
    try:
        return h.variants.add(new_variant("Nig", {"grid": [[0.9, 0.95], [0.99]]},
                                          {"Nig": ("grid",)}, now=0.0)).id
    finally:
        h.close()


def racing_append(monkeypatch: pytest.MonkeyPatch, others: list[tuple[str, str]],
                  lands: bool) -> list[int]:
    """The ledger's appends from now on: another writer appends ``others`` (kind, text)
    before the first ``promote`` record's append when that one ``lands``, else right after
    it; the record's append (the first that passes its size check) lands or not, then
    raises ``LedgerUnreachable`` with ``landed``. Its tries are counted (-1: raised)."""
    from swarmvar.ledger.sqlite import SQLiteStore

    real = SQLiteStore.append
    tries: list[int] = []

    def append(self: SQLiteStore, drafts: Any, *, if_size: int | None = None) -> Any:
        if tries and tries[-1] < 0 or '"promote"' not in drafts[0][1] \
                or '"void"' in drafts[0][1]:
            return real(self, drafts, if_size=if_size)
        theirs = [(k, t, drafts[0][2]) for k, t in others]
        if not tries and lands:
            real(self, theirs)
        tries.append(len(tries) + 1)
        if if_size is not None and self.size() != if_size:
            return None  # compare-and-append: another writer was first
        if lands:
            real(self, drafts, if_size=if_size)
        else:
            real(self, theirs)  # at the index the lost append was tried at
        tries.append(-1)
        raise LedgerUnreachable("append", "connection lost", landed=True)

    monkeypatch.setattr(SQLiteStore, "append", append)
    return tries


def test_a_nested_record_appended_after_another_writers_batch_is_found_and_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer's batch (1,000 entries) is appended between the ledger's size read
    and the record's append: the compare-and-append tries again at the new size, so the
    record whose answer is lost is looked for where it was appended, and found by its
    canonical text though its nested parameters came back from the store as tuples."""
    home = str(tmp_path)
    vid = nested_variant(home)
    Ledger(tmp_path).close()
    batch = [(EntryKind.ACTION.value, f'{{"i":{i},"type":"tick"}}') for i in range(1000)]
    tries = racing_append(monkeypatch, batch, lands=True)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        said = invoke(home, "promote", vid, "--force", code=2)
        assert tries == [1, 2, -1], tries  # refused once at the old size, then appended
        assert f"it landed as #{size + 1000}" in said and "voided by" in said
        note, void = ledger.entry(size + 1000), ledger.entry(size + 1001)
        assert note.data["parameters"] == {"grid": [[0.9, 0.95], [0.99]]}
        assert void.data["voids"] == {"index": note.index, "hash": note.hash.hex()}
        assert ledger.size == size + 1002 and stored(home, vid)[0] is VariantStatus.DRAFT


def test_another_writers_variant_entry_where_the_record_was_tried_is_not_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record did not land; another process's ``variant`` record (another request's
    promotion of the same variant) stands where it was tried: it is not the record (its
    text differs), so nothing is voided and the command says the record did not land."""
    home = str(tmp_path)
    vid = nested_variant(home)
    Ledger(tmp_path).close()
    other = (EntryKind.VARIANT.value,
             f'{{"event":"promote","request_id":"other","variant_id":"{vid}"}}')
    tries = racing_append(monkeypatch, [other], lands=False)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        said = invoke(home, "promote", vid, "--force", code=2)
        assert tries == [1, -1] and "it did not land" in said
        assert ledger.size == size + 1 and ledger.entry(size).data["request_id"] == "other"
        assert "VOIDED" not in invoke(home, "history")


def test_a_restore_whose_commit_may_have_landed_says_to_run_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's server is lost while the restore's COMMIT is answered (``landed``) and
    the read-back does not show it: the answer says to run the restore again (it is
    idempotent), not to look at the variants' list, and the record stands unvoided."""
    from contextlib import contextmanager

    from swarmvar.evolution.errors import VariantStoreUnreachable

    home = str(tmp_path)
    vid = created(home)
    point = point_then_assigned(home, vid)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        real = Database.transaction
        lost: list[int] = []

        @contextmanager
        def transaction(self: Database) -> Any:
            with real(self) as conn:
                yield conn
                if not lost and ledger.size > size:  # the record appended: COMMIT lost
                    lost.append(1)
                    raise VariantStoreUnreachable("postgresql://h/db", "lost", landed=True)

        monkeypatch.setattr(Database, "transaction", transaction)
        said = " ".join(invoke(home, "rollback", "to", point, code=2).split())
        assert lost == [1] and "may have been made" in said
        assert f"run `swarmvar variants rollback to {point}` again" in said
        assert "variants list" not in said
        assert ledger.size == size + 1 and ledger.entry(size).data["event"] == "rollback-to"
