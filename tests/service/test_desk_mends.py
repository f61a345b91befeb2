"""The desk's second review: an observer skips only a beat without levels quietly
(counted in the metrics; any other fault of it is an ERROR counted apart), an agent's own
error is read from the swarm (not re-run), ``GET /var`` reads one sync, and a write that
waits too long for the process's computation is refused with 503 + Retry-After (nothing
stored)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.errors import InvalidSignal
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.desk import Desk

from .conftest import Keys, TestClient, day, history


def _app(tmp_path: Path, path: Path) -> TestClient:
    return TestClient(create_app(ServiceConfig(home=tmp_path, keys=path)))


def _desk(c: TestClient) -> Desk:
    desk = c.app.state.desk
    assert isinstance(desk, Desk)
    return desk


def test_a_beat_without_levels_decides_nothing_and_a_fault_is_counted(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        caplog: pytest.LogCaptureFixture) -> None:
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with _app(tmp_path, path) as c:
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=w).status_code == 201
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
    with _app(tmp_path, path) as c:
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=w).status_code == 201
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
    with _app(tmp_path, path) as c:
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=w).status_code == 201
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


def test_an_agents_own_error_is_kept_by_the_swarm_outside_its_state(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with _app(tmp_path, path) as c:
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=w).status_code == 201
        swarm = _desk(c)._book("book").swarm
        assert swarm.errors == {}
        before = swarm.state(rebase=False)
        swarm.errors["NormalInverseGamma"] = "a refusal"
        assert swarm.state(rebase=False) == before
