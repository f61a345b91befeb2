"""The desk's second review: an observer skips a beat without levels quietly (no log
line, nothing counted; any other fault of it is an ERROR, counted in the metrics), an
agent's own error is read from the swarm (not re-run) and named by ``GET /var``, ``GET
/var`` reads one sync, a write that waits too long for the process's computation is
refused with 503 + Retry-After (nothing stored), creating an existing name is a 409 at
once even then, and ``busy_after`` is checked."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.errors import InvalidSignal
from swarmvar.service.desk import Desk

from .conftest import Keys, TestClient, app_with_book, day, history


def _desk(c: TestClient) -> Desk:
    desk = c.app.state.desk
    assert isinstance(desk, Desk)
    return desk


def test_a_beat_without_levels_decides_nothing_and_a_fault_is_counted(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        caplog: pytest.LogCaptureFixture) -> None:
    path, k = session_keys
    with app_with_book(tmp_path, path, k.writer) as c:
        desk = _desk(c)
        last = desk.latest("book")
        # a portfolio the arbiter never saw, its beat with no consensus and no forecast:
        # the arbiter decides nothing on it, quietly (no fault)
        empty = dataclasses.replace(last, portfolio="ghost", seq=1, forecasts={},
                                    consensus=(), breaches={}, log_scores={})
        with caplog.at_level(logging.WARNING, logger="swarmvar.service"):
            assert desk.observing.observe(empty, None) == ()
        assert not caplog.records, caplog.records
        line = 'swarmvar_observer_beats_skipped_total{observer="Arbiter",reason="fault"}'
        assert line not in c.get("/metrics").text
        # a beat with levels the arbiter cannot read is a fault: an ERROR, counted
        faulty = dataclasses.replace(last, seq=last.seq + 1, realized=float("nan"))
        with pytest.raises(InvalidSignal):  # the arbiter's own refusal of it
            Arbiter(record_decisions=False).observe(faulty)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="swarmvar.service"):
            assert desk.observing.observe(faulty, None) == ()
        assert [r.levelno for r in caplog.records] == [logging.ERROR], caplog.records
        assert "failed on beat" in caplog.records[0].getMessage()
        assert f"{line} 1.0" in c.get("/metrics").text


def test_get_var_reads_one_sync(tmp_path: Path, session_keys: tuple[Path, Keys],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with app_with_book(tmp_path, path, k.writer) as c:
        store = _desk(c).ledger.store
        calls: list[int] = []
        real = store.size

        def counted() -> int:
            calls.append(1)
            return real()

        monkeypatch.setattr(store, "size", counted)
        r = c.get("/v1/portfolios/book/var", headers=w)
        assert r.status_code == 200, r.text
        assert len(calls) == 1, calls
        body = r.json()
        assert body["seq"] == 0 and body["horizon"] == 1 and body["levels"], body


def test_a_write_waiting_too_long_is_refused_with_503(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with app_with_book(tmp_path, path, k.writer) as c:
        desk = _desk(c)
        desk.busy_after = 0.05  # seconds
        size = desk.ledger.store.size()
        assert desk._computing.acquire(timeout=5)  # another computation in progress
        try:
            r = c.post("/v1/portfolios/book/returns", json={"date": day(1), "return": 0.01},
                       headers=w)
            made = c.post("/v1/portfolios", json={"name": "other", "history": history(60)},
                          headers=w)
            # reads go on meanwhile
            assert c.get("/v1/portfolios/book", headers=w).json()["beats"] == 0
        finally:
            desk._computing.release()
        for answer in (r, made):
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"].isdigit()
            err = answer.json()["error"]
            assert err["type"] == "DeskBusy" and "nothing was stored" in err["message"], err
        assert desk.ledger.store.size() == size
        assert [p["name"] for p in c.get("/v1/portfolios", headers=w).json()] == ["book"]
        again = c.post("/v1/portfolios/book/returns", json={"date": day(1), "return": 0.01},
                       headers=w)
        assert again.status_code == 201, again.text
        spec = c.get("/openapi.json").json()["paths"]["/v1/portfolios/{name}/returns"]["post"]
        assert "computing another batch" in spec["responses"]["503"]["description"]


def test_get_var_names_the_error_of_an_agent_whose_forecast_failed(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: a forecast failure showed a bare "no forecast" (only refit failures were named)."""
    from swarmvar.errors import InvalidParameter
    from swarmvar.models.nig import NormalInverseGamma

    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with app_with_book(tmp_path, path, k.writer) as c:
        def refuses(*args: object, **kwargs: object) -> object:
            raise InvalidParameter("a forecast refused in this test")

        monkeypatch.setattr(NormalInverseGamma, "forecast", refuses)
        r = c.post("/v1/portfolios/book/returns", json={"date": day(1), "return": 0.01},
                   headers=w)
        assert r.status_code == 201, r.text
        monkeypatch.undo()
        var = c.get("/v1/portfolios/book/var", headers=w)
        assert var.status_code == 200, var.text
        why = var.json()["rejected"]["NormalInverseGamma"]
        assert why.startswith("no forecast since beat 1 ") and \
            "a forecast refused in this test" in why, why
        # the swarm keeps the error outside its state (no number depends on it)
        swarm = _desk(c)._book("book").swarm
        assert "a forecast refused in this test" in swarm.errors["NormalInverseGamma"]
        after = swarm.state(rebase=False)
        swarm.errors["NormalInverseGamma"] = "another refusal"
        assert swarm.state(rebase=False) == after


def test_creating_an_existing_name_is_a_409_at_once_while_computing(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    """Was: it waited behind the computation in progress, then answered 503."""
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with app_with_book(tmp_path, path, k.writer) as c:
        desk = _desk(c)
        desk.busy_after = 60.0  # a wait would show as a 503 after a minute, not a 409
        assert desk._computing.acquire(timeout=5)  # another computation in progress
        try:
            r = c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                       headers=w)
        finally:
            desk._computing.release()
        assert r.status_code == 409, r.text
        assert "exists already" in r.json()["error"]["message"]


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), "5", True, None])
def test_busy_after_must_be_a_finite_number_of_seconds(
        tmp_path: Path, bad: object) -> None:
    from swarmvar.errors import InvalidParameter
    from swarmvar.ledger import Ledger

    with Ledger.open(tmp_path) as ledger, pytest.raises(InvalidParameter, match="busy_after"):
        Desk(ledger, tmp_path, busy_after=bad)  # type: ignore[arg-type]
