"""A canary's sandbox violation that rolls its release back notes the rollback in the ledger
inside the variant store's transaction (``event: rollback``, ``by: canary-violation``),
before the run's ``canary_validation`` entry; voided when the store's COMMIT fails after
it. The sandbox here answers a violation without running anything (no process started)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar import sandbox
from swarmvar.errors import LedgerUnreachable, SandboxViolation, Violation
from swarmvar.evolution import EvolutionHome, VariantStatus, new_variant, open_home, start_canary
from swarmvar.evolution.errors import VariantStoreUnreachable, VariantStoreUnwritable
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger.entry import canonical_data
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.swarm.canary_sandbox import CanaryVerdict, validate_variant
from swarmvar.swarm.variant_notes import LedgerNotes

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from test_cli_variant_void import fail_commit_after, invoke  # noqa: E402


class _Breaks:
    """A sandbox that answers every task with a network violation."""

    backend = "bwrap"

    def __init__(self) -> None:
        box = sandbox.create("none", "validation")  # its profile only: nothing is run
        self.profile = box.profile
        box.kill()

    def run(self, task: object) -> object:
        raise SandboxViolation(Violation.NETWORK, "connect() to 203.0.113.9:443")


def one_failure_from_rollback(h: EvolutionHome) -> str:
    """A canary that has failed all but its last allowed check."""
    now = time.time()
    v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.96},
                                   {"NormalInverseGamma": NormalInverseGamma}, now=now))
    v = start_canary(h.variants, v, h.config.canary, now)
    assert v.canary is not None
    failed = replace(v.canary, failed_checks=h.config.canary.max_failed_checks - 1)
    return h.variants.save(replace(v, canary=failed, updated=now)).id


def violate(h: EvolutionHome, ledger: Ledger, vid: str, box: _Breaks | None = None
            ) -> object:
    r = np.random.default_rng(0).standard_t(5, 60) * 0.01
    return validate_variant(vid, r, home=h, ledger=ledger,
                            box=box or _Breaks(),  # type: ignore[arg-type]
                            clock=time.time, window=30)


def losing(monkeypatch: pytest.MonkeyPatch, target: object, name: str, value: object
           ) -> _Breaks:
    """A breaking sandbox that sets ``target.name`` to ``value`` while it runs (after the
    breaker's ``allow``): the variant store lost during the run."""
    box = _Breaks()

    def run(task: object) -> object:
        monkeypatch.setattr(target, name, value)
        return _Breaks.run(box, task)

    monkeypatch.setattr(box, "run", run)
    return box


def test_a_violation_that_rolls_back_is_noted_and_shown_in_history(tmp_path: Path) -> None:
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        with Ledger(tmp_path) as ledger:
            ev = violate(h, ledger, vid)
            entries = [e for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]
            assert ledger.verify_chain(processes=1).ok
        assert ev.verdict is CanaryVerdict.VIOLATION  # type: ignore[attr-defined]
        assert h.variants.get(vid).status is VariantStatus.ROLLED_BACK
    finally:
        h.close()
    note, run = (e.data for e in entries)
    assert note["event"] == "rollback" and note["variant_id"] == vid
    assert note["by"] == "canary-violation"
    assert run["event"] == "canary_validation" and run["check"] == "rolled_back"
    assert ev.ledger_entries == tuple(e.index for e in entries)  # type: ignore[attr-defined]
    [line] = [x for x in invoke(str(tmp_path), "history").splitlines() if vid in x]
    assert "rollback" in line and line.endswith("by sandbox violation")


def test_a_violations_rollback_whose_commit_fails_is_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
    finally:
        h.close()
    with Ledger(tmp_path) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        h = open_home(tmp_path)  # its connection fails the COMMIT after the note
        try:
            with pytest.raises(VariantStoreUnwritable, match="I/O error"):
                violate(h, ledger, vid)
            assert h.variants.get(vid).status is VariantStatus.CANARY
        finally:
            h.close()
        assert failed == [1] and ledger.size == size + 3
        note, void, run = ledger.entry(size), ledger.entry(size + 1), ledger.entry(size + 2)
        # the violation is in the ledger still, with why its check is not recorded
        assert run.data["event"] == "canary_validation" and run.data["violation"] == "network"
        assert run.data["check"] == "not recorded" and run.data["notes"] == [size, size + 1]
        assert run.data["error"].startswith("VariantStoreUnwritable (I/O error)")
        assert run.data["breaker"] == "open"
        assert note.data["event"] == "rollback" and note.data["by"] == "canary-violation"
        assert void.data["event"] == "void" and void.data["action"] == "rollback"
        assert void.data["voids"] == {"index": size, "hash": note.hash.hex()}
        assert ledger.verify_chain(processes=1).ok
    [line] = [x for x in invoke(str(tmp_path), "history").splitlines() if vid in x]
    assert "by sandbox violation" in line and f"VOIDED by #{size + 1}" in line


def _race(monkeypatch: pytest.MonkeyPatch, ledger: Ledger, lost: BaseException) -> list[int]:
    """The ledger's store: another writer appends just before the first note's append
    (which compare-and-append then refuses), and the note's append that lands raises
    ``lost`` (its answer lost, as PostgreSQL's). Returns the other writer's index."""
    store, other = ledger.store, []
    real = type(store).append

    def append(drafts: Any, *, if_size: int | None = None) -> Any:
        noted = '"request_id"' in drafts[0][1]
        if noted and not other:
            other.append(ledger.size)
            real(store, [(EntryKind.VARIANT.value, '{"event":"other"}', drafts[0][2])])
        rows = real(store, drafts, if_size=if_size)
        if noted and rows is not None:
            raise lost
        return rows

    monkeypatch.setattr(store, "append", append)
    return other


def test_a_rollback_note_that_landed_after_another_writer_is_found_and_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note's append retried after another writer's entry (compare-and-append), then
    its answer lost: the rollback is not made, the note is found where it landed and
    voided, and the run's canary_validation entry is still written, naming both and the
    error (check not recorded); the breaker's trip stands."""
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        with Ledger(tmp_path) as ledger:
            size = ledger.size
            other = _race(monkeypatch, ledger,
                          LedgerUnreachable("append", "connection lost", landed=True))
            with pytest.raises(LedgerUnreachable, match="was not made") as got:
                violate(h, ledger, vid)
            monkeypatch.undo()
            entries = list(ledger.entries(size))
            assert ledger.verify_chain(processes=1).ok
        assert h.variants.get(vid).status is VariantStatus.CANARY  # rolled back
        assert h.breakers.load(vid).state.value == "open"  # the trip stands
    finally:
        h.close()
    assert other == [size] and f"landed as #{size + 1}" in str(got.value)
    assert [e.data["event"] for e in entries] == ["other", "rollback", "void",
                                                  "canary_validation"]
    note, void, run = (e.data for e in entries[1:])
    assert void["voids"] == {"index": size + 1, "hash": entries[1].hash.hex()}
    assert run["check"] == "not recorded" and run["notes"] == [size + 1, size + 2]
    assert run["error"].startswith("LedgerUnreachable") and run["violation"] == "network"


def test_a_rollback_note_refused_before_any_append_is_not_looked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's size cannot be read before the note's first append (an error the
    ledger does not know, so it may have landed by the rule): nothing was tried, so
    nothing is looked for (no index 0 or stale index read)."""
    notes = LedgerNotes(Ledger.in_memory())
    looked: list[int] = []
    monkeypatch.setattr(Ledger, "size", property(lambda self: 1 / 0))
    monkeypatch.setattr(Ledger, "holds", lambda self, i, k, t: looked.append(i) or True)
    with pytest.raises(ZeroDivisionError):
        notes.note({"event": "rollback", "variant_id": "v"})
    assert notes.landed({"event": "rollback", "variant_id": "v"}) is None and looked == []


def test_landed_asks_the_ledger_which_waits_for_a_commit_in_flight(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the size read now does not show the note yet (its COMMIT still in flight on
    the old connection), ``Ledger.holds`` answers (PostgreSQL's waits for it): the note's
    index, at the index its append was tried, with its own canonical text."""
    ledger = Ledger.in_memory()
    notes = LedgerNotes(ledger, "promote")
    data = {"variant_id": "v"}
    asked: list[tuple[int, str, str]] = []
    _race(monkeypatch, ledger, OSError("connection reset"))
    with pytest.raises(OSError):
        notes.note(data)
    monkeypatch.undo()
    at = ledger.size - 1
    assert notes.landed(data) == at  # compare-and-append put it after the other's
    monkeypatch.setattr(Ledger, "holds",
                        lambda self, i, k, t: asked.append((i, str(k), t)) or False)
    assert notes.landed(data) is None  # the ledger's answer, not the size's
    [(i, kind, text)] = asked
    assert (i, kind) == (at, "variant") and text == canonical_data(ledger.entry(at).data)
    assert notes.landed({"variant_id": "w"}) is None  # another note's text: not it


@pytest.mark.parametrize("at", ["begin", "commit"])
def test_a_store_out_of_reach_at_the_check_still_gets_the_run_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    """The variant store goes away once the failed run's metric is stored: its check's
    transaction fails (at BEGIN: not recorded; at COMMIT after the rollback's note, its
    answer lost: may have landed, ``not known``, the note not voided) and the breakers'
    reads fail from then on. The run's entry is still appended, its breaker state the trip's."""
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        with Ledger(tmp_path) as ledger:
            size = ledger.size
            err = VariantStoreUnreachable(str(tmp_path), "server closed the connection",
                                          landed=at == "commit")
            real_tx, real_record, armed = h.db.transaction, h.metrics.record, []

            def gone(*_: object) -> Any:
                raise err

            def record(rows: Any) -> Any:
                out = real_record(rows)
                armed.append(1)  # the next transaction is the check's
                return out

            @contextmanager
            def tx() -> Iterator[Any]:
                if armed != [1]:  # not yet, or a transaction nested in the check's
                    with real_tx() as conn:
                        yield conn
                    return
                armed.append(2)
                monkeypatch.setattr(h.breakers, "load", gone)
                if at == "begin":
                    monkeypatch.setattr(h.variants, "get", gone)
                    raise err
                with pytest.raises(_Abort), real_tx() as conn:
                    yield conn
                    raise _Abort  # rolled back: the COMMIT's answer lost, it may have landed
                raise err

            monkeypatch.setattr(h.metrics, "record", record)
            monkeypatch.setattr(h.db, "transaction", tx)
            with pytest.raises(VariantStoreUnreachable) as raised:
                violate(h, ledger, vid)
            assert armed == [1, 2] and raised.value.landed is (at == "commit")
            run = ledger.entry(ledger.size - 1).data
            assert run["event"] == "canary_validation" and run["violation"] == "network"
            assert run["breaker"] == "open"
            if at == "begin":
                assert ledger.size == size + 1
                assert run["check"] == "not recorded" and run["notes"] == []
            else:  # the note is left (not voided): whether the rollback landed is not known
                assert ledger.size == size + 2 and ledger.entry(size).data["event"] == "rollback"
                assert run["check"] == "not known" and run["notes"] == [size]
            assert run["error"].startswith("VariantStoreUnreachable")
    finally:
        h.close()


class _Abort(Exception):
    """Rolls a test's transaction back."""


@pytest.mark.parametrize("at", ["breaker", "metrics"])
def test_a_store_lost_during_the_sandbox_run_still_gets_the_run_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    """The server is gone by the time the run has failed: the breaker's trip (then its
    state is not known) or the success-0 record raises, before the check's transaction.
    The run's entry is appended all the same, and the store's error raised."""
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        err = VariantStoreUnreachable(str(tmp_path), "server closed the connection")

        def gone(*_: object) -> Any:
            raise err

        box = losing(monkeypatch, h.breakers if at == "breaker" else h.metrics,
                     "update" if at == "breaker" else "record", gone)
        with Ledger(tmp_path) as ledger:
            size = ledger.size
            with pytest.raises(VariantStoreUnreachable) as raised:
                violate(h, ledger, vid, box)
            assert raised.value is err and ledger.size == size + 1
            run = ledger.entry(size).data
            assert run["event"] == "canary_validation" and run["violation"] == "network"
            assert run["breaker"] == ("not known" if at == "breaker" else "open")
            assert run["check"] == "not recorded" and run["notes"] == []
            assert run["error"].startswith("VariantStoreUnreachable")
        assert h.variants.get(vid).status is VariantStatus.CANARY  # no check made
    finally:
        h.close()


def test_a_failed_runs_entry_loses_the_stores_url_parts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check's error names the store's PostgreSQL server: the run's entry keeps its
    class and words, not the host, port or user of the home's location."""
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        monkeypatch.setattr(h.db, "path", "postgresql://alice@db.example.org:6543/swarm")
        err = VariantStoreUnwritable("database", "disk full",
                                     "at db.example.org port 6543 as alice")

        @contextmanager
        def tx() -> Iterator[Any]:
            raise err
            yield  # a generator: never reached

        with Ledger(tmp_path) as ledger:
            with pytest.raises(VariantStoreUnwritable):
                violate(h, ledger, vid, losing(monkeypatch, h.db, "transaction", tx))
            kept = ledger.entry(ledger.size - 1).data["error"]
        assert kept.startswith("VariantStoreUnwritable (disk full)") and "…" in kept
        assert not any(part in kept for part in ("db.example.org", "6543", "alice"))
    finally:
        h.close()


def test_a_check_whose_commit_may_have_landed_is_not_known_whatever_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback's COMMIT raises an I/O error and the store cannot be read back: the
    note stands (not voided) and the run's entry says ``not known``."""
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        err = VariantStoreUnwritable(str(tmp_path), "I/O error", "at commit")
        real_tx = h.db.transaction
        with Ledger(tmp_path) as ledger:
            size = ledger.size

            @contextmanager
            def check_tx() -> Iterator[Any]:
                try:
                    with real_tx() as conn:
                        yield conn
                        if ledger.size > size:  # the check's, its note appended last:
                            raise _Abort  # rolled back, its COMMIT failing ...
                except _Abort:  # ... and the store unreadable after
                    for read in ("read", "read_one"):
                        monkeypatch.setattr(h.db, read, lambda *_: (_ for _ in ()).throw(err))
                    raise err from None

            monkeypatch.setattr(h.db, "transaction", check_tx)
            with pytest.raises(VariantStoreUnwritable) as raised:
                violate(h, ledger, vid)
            assert "may have been made" in str(raised.value)
            assert ledger.size == size + 2 and ledger.entry(size).data["event"] == "rollback"
            run = ledger.entry(size + 1).data
            assert run["check"] == "not known" and run["notes"] == [size]
        monkeypatch.undo()
        assert h.variants.get(vid).status is VariantStatus.CANARY  # rolled back, after all
    finally:
        h.close()
