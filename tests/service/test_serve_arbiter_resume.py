"""``swarmvar serve`` over a home whose beats another arbiter decided is refused, as a resume
of ``swarmvar run`` is: the arbiter's checkpoints hold the options it decided with, and a
desk restoring them under other options would replay every beat under the new ones. The
CLI exits 2 before it writes or listens (naming each option "saved X, now Y" and how to
go on), the app factory and the desk raise ``ArbiterOptionsMismatch``; nothing on disk
changes. ``--no-arbiter`` over a home whose checkpoints hold the arbiter's state is refused
too; the arbiter turned on for a home served without it is not (as in ``run``). Each
checkpoint is read on its own (a damaged one hides no other); one whose mark is not on this
ledger is not this ledger's history and counts for neither refusal; the desk's check and its
restore each refuse on their own. A ledger that cannot answer (a mark it cannot tell about,
a file it cannot open) counts every checkpoint as its own; a new PostgreSQL database holds
no ledger (no checkpoint is on it). Options the service does not take (the thresholds, u)
are named as the arbiter's."""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from swarmvar.arbiter import Arbiter, ArbiterConfig, Thresholds
from swarmvar.cli import build_app
from swarmvar.errors import ArbiterOptionsMismatch, ResumeMismatch
from swarmvar.ledger import Ledger
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.config import CONFIG_ENV
from swarmvar.service.desk import DatedReturn, Desk

from .conftest import Keys, Server, TestClient, day, free_port, history, start_server


def _files(home: Path) -> dict[str, str]:
    """Every file under ``home`` (the ledger, the variant store, the state packs, keys), by
    content hash."""
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _head(home: Path) -> tuple[int, str]:
    with Ledger.open(home, create=False) as ledger:
        size = ledger.store.size()
        (last,) = ledger.store.rows(size - 1, size)
        return size, bytes(last[5]).hex()


def _desk_home(home: Path, arbiter: Arbiter, beats: int = 3,
               names: tuple[str, ...] = ("s",)) -> None:
    """Portfolios ``names`` served by a desk with ``arbiter`` (the default rhythm, 250): each
    created, and ``beats`` returns ingested; its first beat checkpoints the arbiter's state."""
    rng = np.random.default_rng(3)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    with Ledger.open(home) as ledger:
        desk = Desk(ledger, home, observers=(arbiter,))
        for name in names:
            desk.create(name, hist, key_id="k")
            desk.ingest(name, [DatedReturn(date(2023, 1, 1) + timedelta(days=i),
                                           0.002 * (i - 1)) for i in range(beats)], key_id="k")


def _packs(home: Path, name: str) -> set[str]:
    """The pack files holding the arbiter's checkpoints of portfolio ``name``."""
    from swarmvar.evolution import Database

    db = Database(home, create=False)
    try:
        rows = db.read("SELECT pack FROM state_versions WHERE agent_id = ?",
                       (f"desk-observer:arbiter:{name}",))
    finally:
        db.close()
    return {str(r[0]) for r in rows}


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """uvicorn.run replaced by a recorder: a serve that would start records its call."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv(CONFIG_ENV, "")  # serve sets it; restored after the test
    yield calls


def _serve(home: Path, keys: Path, *args: str) -> Any:
    return CliRunner().invoke(build_app(), ["serve", "--home", str(home), "--keys", str(keys),
                                            "--port", str(free_port()), *args])


@pytest.mark.parametrize(("saved", "now", "words"), [
    (Arbiter.from_options(k_flows=3.0, record_decisions=False),
     Arbiter(record_decisions=False), ["k_flows (--k-flows", "saved 3.0, now 4.0"]),
    (Arbiter(ArbiterConfig(thresholds=Thresholds(release_beats=7)), record_decisions=False),
     Arbiter(record_decisions=False), ["thresholds.release_beats", "saved 7, now 5"]),
])
def test_a_desk_over_a_home_of_other_options_is_refused_and_writes_nothing(
        tmp_path: Path, saved: Arbiter, now: Arbiter, words: list[str]) -> None:
    home = tmp_path / "home"
    _desk_home(home, saved)
    before, head = _files(home), _head(home)
    with Ledger.open(home) as ledger, pytest.raises(ArbiterOptionsMismatch) as got:
        Desk(ledger, home, observers=(now,))
    for w in words:
        assert w in str(got.value), str(got.value)
    assert "the options it ran with, or give another home" in str(got.value)
    assert "'s'" in str(got.value)  # the portfolio
    assert _files(home) == before and _head(home) == head
    # the same options: it starts, restored at its first beat's checkpoint, and replays
    # the later beats to the state of the arbiter that decided them
    same = Arbiter(saved.config, record_decisions=False)
    with Ledger.open(home) as ledger:
        desk = Desk(ledger, home, observers=(same,))
        assert desk.observing.restored == {("s", 0): 1}
    assert same.checkpoint_state("s") == saved.checkpoint_state("s")


def test_the_app_factory_raises_it_before_any_write(tmp_path: Path,
                                                    session_keys: tuple[Path, Keys]) -> None:
    keys, k = session_keys
    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, t1=0.002, record_decisions=False))
    before, head = _files(home), _head(home)
    with pytest.raises(ArbiterOptionsMismatch, match=r"saved 3\.0, now 4\.0") as got:
        create_app(ServiceConfig(home=home, keys=keys))
    assert "saved 0.002, now 0.001" in str(got.value) and "p_nodes" not in str(got.value)
    # Python users set them on ServiceConfig (the arbiter's own words name its keywords)
    assert "ServiceConfig.k_flows in Python" in str(got.value)
    assert "ServiceConfig.t1 in Python" in str(got.value) and "k_flows=" not in str(got.value)
    with pytest.raises(ResumeMismatch, match="served with the arbiter on"):
        create_app(ServiceConfig(home=home, keys=keys, arbiter=False))
    assert _files(home) == before and _head(home) == head
    cfg = ServiceConfig(home=home, keys=keys, k_flows=3.0, t1=0.002)
    with TestClient(create_app(cfg)) as c:  # the options it ran with: it serves
        r = c.get("/v1/portfolios/s/var", headers={"X-API-Key": k.reader})
        assert r.status_code == 200, r.text
        assert c.app.state.desk.observing.restored == {("s", 0): 1}  # type: ignore[attr-defined]


def test_serve_restarted_with_other_options_exits_2_before_writing(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]]) -> None:
    """A home made through the served app (``--k-flows 3`` as serve hands it to its workers,
    a portfolio and two beats), then ``serve`` again: other options, or ``--no-arbiter``,
    exit 2 before anything is written or listened on; the same options start."""
    keys, k = session_keys
    home = tmp_path / "home"
    res = _serve(home, keys, "--k-flows", "3")
    assert res.exit_code == 0 and len(ran) == 1, res.output
    cfg = ServiceConfig.from_env()  # what each worker's app_from_env reads
    with TestClient(create_app(cfg)) as c:
        h = {"X-API-Key": k.writer}
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=h).status_code == 201
        r = c.post("/v1/portfolios/book/returns", headers=h, json={"returns": [
            {"date": day(i), "return": 0.002 * i} for i in range(2)]})
        assert r.status_code == 201, r.text
    before, head = _files(home), _head(home)
    for args, words in ((("--k-flows", "4", "--p-nodes", "6"),
                         ["--home", "'book'", "k_flows (--k-flows", "saved 3.0, now 4.0",
                          "p_nodes (--p-nodes", "saved 5.0, now 6.0",
                          "the options it ran with, or give another home"]),
                        ((), ["saved 3.0, now 4.0"]),
                        (("--no-arbiter",), ["--home", "served with the arbiter on",
                                             "'book'", "--no-arbiter", "another home"])):
        res = _serve(home, keys, *args)
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        for w in words:
            assert w in text, (w, res.output)
        assert "--t1" not in text or "--no-arbiter" in args, text
    assert len(ran) == 1  # none of them started
    assert _files(home) == before and _head(home) == head
    res = _serve(home, keys, "--k-flows", "3.0")
    assert res.exit_code == 0 and len(ran) == 2, res.output


def test_the_arbiter_turned_on_for_a_home_served_without_it_starts(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]]) -> None:
    """As ``run --arbiter`` over a home run without it: allowed, the arbiter decides from
    the next beat (after replaying the recorded ones)."""
    keys, k = session_keys
    home = tmp_path / "home"
    with TestClient(create_app(ServiceConfig(home=home, keys=keys, arbiter=False))) as c:
        h = {"X-API-Key": k.writer}
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=h).status_code == 201
        assert c.post("/v1/portfolios/book/returns", headers=h, json={
            "returns": [{"date": day(0), "return": 0.001}]}).status_code == 201
    res = _serve(home, keys, "--k-flows", "3")
    assert res.exit_code == 0 and len(ran) == 1, res.output
    # its first beat here is checkpointed (the home held no state of the portfolio): from
    # then on the home is the arbiter's, and served without it is refused
    with TestClient(create_app(ServiceConfig.from_env())) as c:
        assert c.app.state.desk.observing.restored == {}  # type: ignore[attr-defined]
        assert c.post("/v1/portfolios/book/returns", headers=h, json={
            "returns": [{"date": day(1), "return": -0.002}]}).status_code == 201
    res = _serve(home, keys, "--no-arbiter")
    assert res.exit_code == 2 and "served with the arbiter on" in res.output, res.output
    res = _serve(home, keys)
    assert res.exit_code == 2 and "saved 3.0, now 4.0" in " ".join(res.output.split())
    assert len(ran) == 1


def test_a_real_serve_restarted_with_other_options_is_refused(
        tmp_path: Path, session_keys: tuple[Path, Keys], server_factory: list[Server],
        ran: list[dict[str, Any]]) -> None:
    """A real ``swarmvar serve --k-flows 3`` (a loopback port the fixture picks) makes the
    home: a portfolio and one beat, then stopped. ``serve`` again with the default options
    exits 2 naming the option, and nothing on disk changed."""
    import httpx

    keys, k = session_keys
    home = tmp_path / "home"
    home.mkdir()  # the fixture writes the server's log there
    server = start_server(home, keys, "--k-flows", "3")
    server_factory.append(server)
    h = {"X-API-Key": k.writer}
    r = httpx.post(server.url + "/v1/portfolios", headers=h, timeout=60,
                   json={"name": "book", "history": history(60)})
    assert r.status_code == 201, r.text
    r = httpx.post(server.url + "/v1/portfolios/book/returns", headers=h, timeout=60,
                   json={"returns": [{"date": day(0), "return": -0.01}]})
    assert r.status_code == 201, r.text
    server.stop()
    log = server.log.read_bytes()
    server.log.unlink()  # the server's own output, not the home's state
    before, head = _files(home), _head(home)
    res = _serve(home, keys)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "saved 3.0, now 4.0" in text, (res.output, log)
    assert ran == [] and _files(home) == before and _head(home) == head


@pytest.mark.parametrize("damaged", ["a", "b"])
def test_one_unreadable_checkpoint_hides_no_other(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture, damaged: str) -> None:
    """Two portfolios checkpointed under ``--k-flows 3``, one's pack damaged: the other's is
    still read and checked, so ``serve`` with the default options exits 2 naming it (not a
    traceback in the server's start), and the damaged one is logged; the same options
    start (the desk replays the damaged one's every beat)."""
    keys, _ = session_keys
    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False), beats=2,
               names=("a", "b"))
    other = ({"a", "b"} - {damaged}).pop()
    (pack,) = _packs(home, damaged)
    assert pack not in _packs(home, other)
    path = home / "states" / "objects" / f"{pack}.pack"
    path.write_bytes(b"x" * path.stat().st_size)
    before, head = _files(home), _head(home)
    with caplog.at_level("WARNING", logger="swarmvar.service"):
        res = _serve(home, keys)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"checkpoint of '{other}'" in text and "saved 3.0, now 4.0" in text, text
    assert any(f"checkpoint of {damaged} " in r.getMessage() and "cannot be read"
               in r.getMessage() for r in caplog.records), caplog.text
    assert ran == [] and _files(home) == before and _head(home) == head
    res = _serve(home, keys, "--k-flows", "3")
    assert res.exit_code == 0 and len(ran) == 1, res.output


def test_a_checkpoint_off_this_ledger_is_ignored(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]]) -> None:
    """A checkpoint made under ``--k-flows 3`` whose ledger is gone (deleted; another
    ``--db`` is alike: its mark is on no ledger served) is not this ledger's history: serve
    starts under other options and without the arbiter, as the desk ignores it (logged) and
    replays this ledger's beats. A Desk over it starts too, restoring nothing, and its first
    beat of the portfolio records the options it runs with, which a later start holds."""
    keys, _ = session_keys
    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    for p in home.glob("ledger.sqlite*"):
        p.unlink()
    for args in ((), ("--no-arbiter",), ("--k-flows", "3")):
        res = _serve(home, keys, *args)
        assert res.exit_code == 0, (args, res.output)
    assert len(ran) == 3
    now = Arbiter(record_decisions=False)  # other options than the checkpoint's
    rng = np.random.default_rng(5)
    with Ledger.open(home) as ledger:
        desk = Desk(ledger, home, observers=(now,))
        assert desk.observing.restored == {}
        desk.create("s", [DatedReturn(date(2021, 1, 1) + timedelta(days=i),
                                      float(rng.normal(0, 0.01))) for i in range(60)],
                    key_id="k")
        desk.ingest("s", [DatedReturn(date(2023, 1, 1), 0.001)], key_id="k")
    res = _serve(home, keys, "--k-flows", "3")  # now the home's checkpoint is this ledger's
    assert res.exit_code == 2 and "saved 4.0, now 3.0" in " ".join(res.output.split())
    res = _serve(home, keys, "--no-arbiter")
    assert res.exit_code == 2 and "served with the arbiter on" in res.output, res.output
    assert len(ran) == 3


def test_no_arbiter_over_checkpoints_whose_packs_are_gone_is_refused(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]]) -> None:
    """The store's index lists the arbiter's checkpoint of 's', its packs folder is gone: the
    home was still served with the arbiter, so ``--no-arbiter`` is refused (as ``run``
    refuses it); nothing is made. With the arbiter it starts (the state cannot be read: the
    desk logs it and replays every beat)."""
    keys, _ = session_keys
    home = tmp_path / "home"
    _desk_home(home, Arbiter(record_decisions=False))
    shutil.rmtree(home / "states" / "objects")
    before = _files(home)
    res = _serve(home, keys, "--no-arbiter")
    assert res.exit_code == 2 and "served with the arbiter on" in res.output, res.output
    assert "'s'" in res.output
    assert ran == [] and _files(home) == before
    assert not (home / "states" / "objects").exists()  # not made by the check
    res = _serve(home, keys)
    assert res.exit_code == 0 and len(ran) == 1, res.output


def test_no_arbiters_check_logs_an_os_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """An OS error reading the home's checkpoints (outside a state's own read, which is
    counted as the arbiter's) is logged and left to the desk's start, as with the arbiter."""
    from swarmvar.service import desk_observers
    from swarmvar.service.app import check_resume

    def denied(home: Path, key: str) -> Any:
        raise PermissionError(13, "Permission denied", str(home))

    monkeypatch.setattr(desk_observers, "saved_states", denied)
    with caplog.at_level("WARNING"):
        check_resume(ServiceConfig(home=tmp_path, arbiter=False))
    assert [getattr(r, "fields", {}).get("type") for r in caplog.records
            if "cannot be read" in r.getMessage()] == ["PermissionError"], caplog.text


def test_the_desk_refuses_before_it_restores_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first refusal is the desk's check at its start (its restore has a second one):
    nothing is restored, replayed or written before it."""
    from swarmvar.service.desk_observers import Observing

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    restored: list[str] = []
    real = Observing.restore

    def spy(self: Observing, name: str, agents: Any) -> None:
        restored.append(name)
        real(self, name, agents)

    monkeypatch.setattr(Observing, "restore", spy)
    with Ledger.open(home) as ledger, pytest.raises(ArbiterOptionsMismatch):
        Desk(ledger, home, observers=(Arbiter(record_decisions=False),))
    assert restored == []
    same = Arbiter.from_options(k_flows=3.0, record_decisions=False)
    with Ledger.open(home) as ledger:  # the spy sees a start that restores
        assert Desk(ledger, home, observers=(same,)).observing.restored == {("s", 0): 1}
    assert restored == ["s"]


def test_the_restore_refuses_a_checkpoint_written_since_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint under other options written after the desk's check (another process's,
    in between) is refused by the restore, not replayed under the new options: the check
    left out here, the restore alone must raise, and nothing is written."""
    from swarmvar.service.desk_observers import Observing

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    before, head = _files(home), _head(home)
    monkeypatch.setattr(Observing, "check_saved", lambda self: None)
    with Ledger.open(home) as ledger, pytest.raises(ArbiterOptionsMismatch,
                                                    match=r"saved 3\.0, now 4\.0"):
        Desk(ledger, home, observers=(Arbiter(record_decisions=False),))
    assert _files(home) == before and _head(home) == head


@pytest.mark.parametrize(("saved", "words"), [
    (Arbiter(ArbiterConfig(thresholds=Thresholds(release_beats=7)), record_decisions=False),
     ["thresholds.release_beats", "saved 7, now 5",
      "(the service runs the arbiter's default thresholds: a home decided under others is "
      "served from Python by a Desk given that arbiter)"]),
    (Arbiter.from_options(u=math.e ** 3, record_decisions=False),
     ["the pulse's u (Arbiter.from_options(u=...) in Python)",
      "(the service runs the arbiter's default u: a home decided under others is served "
      "from Python by a Desk given that arbiter)"]),
])
def test_options_the_service_does_not_take_are_named_as_the_arbiters(
        tmp_path: Path, session_keys: tuple[Path, Keys], saved: Arbiter,
        words: list[str]) -> None:
    """ServiceConfig has no threshold nor u: the refusal names them as the arbiter's, and
    how such a home is served, never a ServiceConfig field or a keyword it lacks."""
    keys, _ = session_keys
    home = tmp_path / "home"
    _desk_home(home, saved)
    with pytest.raises(ArbiterOptionsMismatch) as got:
        create_app(ServiceConfig(home=home, keys=keys))
    said = " ".join(str(got.value).split())
    for w in words:
        assert w in said, said
    assert "u= in Python" not in said and "ServiceConfig.u" not in said, said


def test_the_options_without_a_flag_are_read_from_the_arbiters_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The service names as the arbiter's every pulse option its table gives no flag (no
    ServiceConfig field), not one spelled out: an option added without a flag is too."""
    from swarmvar.arbiter import checkpoint
    from swarmvar.service.app import _service_words

    monkeypatch.setattr(checkpoint, "PULSE_OPTIONS",
                        (*checkpoint.PULSE_OPTIONS, ("v", "v", None)))
    said = _service_words("saved: the pulse's v (v= in Python) and k_flows (--k-flows on "
                          "the command line, k_flows= in Python)")
    assert "the pulse's v (Arbiter.from_options(v=...) in Python)" in said, said
    assert "ServiceConfig.k_flows in Python" in said, said
    assert "the service runs the arbiter's default v:" in said, said


def test_a_mark_the_ledger_cannot_tell_about_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """``_standing``'s fallback: the ledger cannot be read when asked about a mark (a lock
    held past the timeout): the checkpoint counts as this ledger's (checked, logged), for
    both refusals; a mark the ledger says is not on it is not checked."""
    from swarmvar.errors import LedgerUnavailable
    from swarmvar.service import desk_observers
    from swarmvar.service.app import check_resume

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))

    def locked(*args: Any) -> bool:
        raise LedgerUnavailable("database is locked")

    monkeypatch.setattr(desk_observers, "mark_on_ledger", locked)
    with caplog.at_level("WARNING", logger="swarmvar.service"):
        with pytest.raises(ArbiterOptionsMismatch, match=r"saved 3\.0, now 4\.0"):
            check_resume(ServiceConfig(home=home))
        with pytest.raises(ResumeMismatch, match="served with the arbiter on"):
            check_resume(ServiceConfig(home=home, arbiter=False))
    assert any("cannot tell whether the checkpoint of s stands" in r.getMessage()
               for r in caplog.records), caplog.text
    monkeypatch.setattr(desk_observers, "mark_on_ledger", lambda *args: False)
    check_resume(ServiceConfig(home=home))  # not this ledger's: not checked
    check_resume(ServiceConfig(home=home, arbiter=False))


def test_a_ledger_that_cannot_be_opened_counts_every_mark_as_on_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``ledger_reader``'s fallback: the home's ledger is there but cannot be opened (not
    an SQLite file): every checkpoint counts as this ledger's (logged, naming the home),
    so both refusals stand; the ledger gone, neither does."""
    from swarmvar.service.app import check_resume

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    for p in home.glob("ledger.sqlite-*"):
        p.unlink()
    (home / "ledger.sqlite").write_bytes(b"x" * 8192)
    with caplog.at_level("WARNING", logger="swarmvar.service"):
        with pytest.raises(ArbiterOptionsMismatch, match=r"saved 3\.0, now 4\.0"):
            check_resume(ServiceConfig(home=home))
        with pytest.raises(ResumeMismatch, match="served with the arbiter on"):
            check_resume(ServiceConfig(home=home, arbiter=False))
    assert any(f"the ledger of {home} cannot be read" in r.getMessage()
               for r in caplog.records), caplog.text
    (home / "ledger.sqlite").unlink()
    check_resume(ServiceConfig(home=home))
    check_resume(ServiceConfig(home=home, arbiter=False))


def test_an_unreachable_database_is_named_without_its_password(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from swarmvar.service.app import check_resume

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    port = free_port()  # nothing listens there
    url = f"postgresql://risk:s3cret@127.0.0.1:{port}/swarm"
    with caplog.at_level("WARNING", logger="swarmvar.service"), \
            pytest.raises(ArbiterOptionsMismatch):
        check_resume(ServiceConfig(home=home, db=url))
    said = caplog.text
    assert f"the ledger postgresql://risk@127.0.0.1:{port}/swarm cannot be read" in said, said
    assert "s3cret" not in said and str(home) not in said, said


def test_a_new_postgresql_database_holds_no_ledger_yet(
        tmp_path: Path, postgres_server: Any) -> None:
    """``serve --db`` a new database over a home whose checkpoints (``--k-flows 3``) are of
    its SQLite ledger: the database holds no ledger tables (PostgresStore says so as
    LedgerCorrupted), so no mark is on it and the check passes for any options, as the
    desk, which makes the tables, restores nothing and starts."""
    from swarmvar.ledger.head import load_or_create_key
    from swarmvar.service.app import check_resume

    home = tmp_path / "home"
    _desk_home(home, Arbiter.from_options(k_flows=3.0, record_decisions=False))
    url = postgres_server.new_database()
    check_resume(ServiceConfig(home=home, db=url))
    check_resume(ServiceConfig(home=home, db=url, arbiter=False))
    with Ledger(url, signing_key=load_or_create_key(home / "ledger.key")) as led:
        desk = Desk(led, home, observers=(Arbiter(record_decisions=False),))
        assert desk.observing.restored == {} and desk.portfolios() == []
