"""The desk's lost-answer adoption end to end on the real PostgreSQL ledger store.

``test_desk_lost_answer.py`` raises psycopg's error from a wrapped append; here the
ledger's own :class:`~swarmvar.ledger.postgres.PostgresStore` meets it: the server commits
the beats' append, then the connection closes before the COMMIT's answer is read (the
transaction's exit patched to close it and raise what psycopg raises then). The store
says ``LedgerUnreachable`` ``landed`` and opens a new connection on its next call; the
desk's sync finds the beats and takes them as its own: the ingest is answered as stored,
or - when that sync cannot reach the server either - with the words to resend, and the
resend as already recorded. Either way each beat and each decision is stored once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import Transaction

from swarmvar.errors import LedgerUnreachable
from swarmvar.ledger import Ledger

_NAME = "swarmvar_tests_desk_lost_answer"
if _NAME not in sys.modules:  # the SQLite/stub tests' helpers (importlib mode: by path)
    _spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).with_name("test_desk_lost_answer.py"))
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
_helpers = sys.modules[_NAME]
HIST, BATCH, _check_once, _desk = (_helpers.HIST, _helpers.BATCH, _helpers._check_once,
                                   _helpers._desk)


def _lose_the_first_commit_answer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next transaction that commits: committed by the server, then its connection
    closed and psycopg's error of a lost connection raised. The list counts them."""
    real_exit = Transaction.__exit__
    lost: list[int] = []

    def exit_then_lose(self: Transaction, *exc: Any) -> Any:
        done = real_exit(self, *exc)
        if exc[0] is None and not lost:
            lost.append(1)
            self._conn.close()  # the connection gone after the server committed
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return done

    monkeypatch.setattr(Transaction, "__exit__", exit_then_lose)
    return lost


def test_the_commit_lands_and_its_answer_is_lost(postgres_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(postgres_url) as ledger:
        desk = _desk(ledger, tmp_path)
        desk.create("s", HIST, key_id="k")
        lost = _lose_the_first_commit_answer(monkeypatch)
        got = desk.ingest("s", BATCH, key_id="k")
        monkeypatch.undo()
        assert lost == [1]
        assert [(r.seq, r.duplicate) for r in got] == [(i, False) for i in range(1, 6)]
        assert desk._landings == () and desk._undecided == []
        assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_the_server_still_out_of_reach_then_the_resend(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync right after the lost answer cannot connect either: the ingest says the
    returns may have been stored and to resend them (LedgerUnreachable, ``landed``); the
    resend, once the server answers, finds the beats, decides once and says recorded."""
    with Ledger(postgres_url) as ledger:
        desk = _desk(ledger, tmp_path)
        desk.create("s", HIST, key_id="k")
        store: Any = ledger.store
        real_connect = store._connect
        refused: list[str] = []

        def connect_once_refused(doing: str) -> Any:
            if not refused:
                refused.append(doing)
                raise LedgerUnreachable(doing, "connection refused", where="test")
            return real_connect(doing)

        monkeypatch.setattr(store, "_connect", connect_once_refused)
        _lose_the_first_commit_answer(monkeypatch)
        with pytest.raises(LedgerUnreachable) as got:
            desk.ingest("s", BATCH, key_id="k")
        monkeypatch.undo()
        said = str(got.value)
        assert got.value.landed and refused == ["read"], (refused, said)
        assert "the returns may have been stored; resend the same returns" in said, said
        assert "postgres" not in said.replace("PostgreSQL", ""), said  # no URL part
        assert desk._books["s"].seq == 0 and len(desk._landings) == 1
        again = desk.ingest("s", BATCH, key_id="k")
        assert [(r.seq, r.duplicate) for r in again] == [(i, True) for i in range(1, 6)]
        assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
        _check_once(ledger, tmp_path)
        desk.shutdown()
