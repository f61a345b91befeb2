"""`swarmvar run --attribute-every`: a streamed book's attribution ledgered every N beats,
its top drivers in the live table; a bad N refused (exit 2) before the home opens."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import invoke, plain  # noqa: E402

BOOKS = {"pos": {"positions": {"AAPL": 100_000, "CVX": -20_000, "BAC": 50_000}}}
ARGS = ["--agents", "nig,bootstrap,student-t", "--window", "250", "-q", "--last", "258"]


def _records(home: Path) -> list[dict]:
    from swarmvar.ledger import Ledger

    with Ledger.open(home) as ledger:
        return [e.data["result"] for e in ledger.entries()
                if e.kind == "flow" and e.data.get("flow") == "attribution"]


def _run_books(tmp_path: Path, every: str) -> Path:
    """``swarmvar run`` of :data:`BOOKS` with ``--attribute-every every``; its home."""
    books = tmp_path / "books.json"
    books.write_text(json.dumps(BOOKS), encoding="utf-8")
    home = tmp_path / "home"
    code, text = invoke("run", "--data", "sp500-stocks", "--portfolios", str(books), *ARGS,
                        "--attribute-every", every, "--home", str(home))
    assert code == 0, text
    return home


def test_a_book_is_attributed_every_n_beats(tmp_path: Path) -> None:
    home = _run_books(tmp_path, "4")
    got = _records(home)
    assert [(r["portfolio"], r["seq"], r["action"]) for r in got] == [
        ("pos", 4, "attributed"), ("pos", 8, "attributed")]
    level = got[0]["detail"]["levels"][0]
    assert got[0]["detail"]["assets"] == ["AAPL", "CVX", "BAC"]
    assert sum(level["component_var"]) == pytest.approx(level["var"], rel=1e-9)  # Euler


def test_off_with_0(tmp_path: Path) -> None:
    home = _run_books(tmp_path, "0")
    assert _records(home) == []


@pytest.mark.parametrize("bad", ["-1", "100001", "1000000000"])
def test_a_bad_attribute_every_is_refused_before_the_home(tmp_path: Path, bad: str) -> None:
    home = tmp_path / "home"
    code, text = invoke("run", "--data", "sp500-stocks", *ARGS, "--attribute-every", bad,
                        "--home", str(home))
    assert code == 2, text
    assert "--attribute-every" in plain(text) and "from 0 (off) to 100,000" in plain(text)
    assert not home.exists()


def test_the_live_table_shows_the_top_drivers_once_one_landed(tmp_path: Path) -> None:
    from swarmvar import book_var
    from swarmvar.cli.run import _table
    from swarmvar.swarm import RoleConfig, Swarm

    sys.path.insert(0, str(Path(__file__).parents[1] / "swarm"))
    from test_attribution import (  # type: ignore[import-not-found]
        BOOK,
        WINDOW,
        asset_returns,
        tick,
    )

    frame = asset_returns(WINDOW + 2)
    with Swarm(BOOK, home=tmp_path / "h", agents=("NormalInverseGamma", "BayesianBootstrap",
                                                  "StudentT"), window=WINDOW, fsync=False,
               roles=RoleConfig.quiet(attribute_every=1), book_var=book_var) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.step(tick(frame, WINDOW))

        def render() -> str:
            console = Console(record=True, width=250, file=io.StringIO())
            console.print(_table(swarm, {}, {}, False, 250))
            return console.export_text()

        assert "top VaR drivers" not in render()  # none landed yet
        swarm._attr_running[("book", 1)][1].result(timeout=60)  # type: ignore[union-attr]
        swarm.step(tick(frame, WINDOW + 1))  # it lands with this beat
        latest = swarm.attribution("book")
        assert latest is not None and latest.seq == 1
        text = render()
        assert "top VaR drivers (share)" in text, text
        asset, share = latest.top(1)[0]
        assert f"{asset} {100 * share:.0f}%" in text, text
        narrow = Console(record=True, width=80, file=io.StringIO())
        narrow.print(_table(swarm, {}, {}, False, 80))
        assert "…" not in narrow.export_text()  # dropped whole when it does not fit


def test_run_says_it_waits_for_attributions_and_shows_their_warnings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker slower than the last beat whose ``book_var`` raises (caught in
    ``run_attribution``, as a bug in it is): before it closes, ``run`` says it waits for the
    attributions still running, and the book's first failure's WARNING is on stderr (the
    ``swarmvar`` logger has only a NullHandler: silent before; and a failure caught there
    was said nowhere); its next one in a row is not repeated there (INFO). Beat 8's is
    held until ``run`` has counted the ones still running (a gate, not a sleep)."""
    import threading

    from swarmvar.swarm import attribution as attribution_module

    counted = threading.Event()
    real_pending = attribution_module.pending_attributions
    real_run = attribution_module._attr_run

    def failing(*args: object, **kw: object) -> object:
        raise ValueError("a bug in the attribution")

    def slow_failing(job: Any, fn: object) -> object:
        if job.seq == 8:
            counted.wait(timeout=30)
        return real_run(job, failing)

    def pending(swarm: Any) -> int:
        n = real_pending(swarm)
        counted.set()
        return n

    monkeypatch.setattr(attribution_module, "_attr_run", slow_failing)
    monkeypatch.setattr(attribution_module, "pending_attributions", pending)
    books = tmp_path / "books.json"
    books.write_text(json.dumps(BOOKS), encoding="utf-8")
    home = tmp_path / "home"
    code, text = invoke("run", "--data", "sp500-stocks", "--portfolios", str(books), *ARGS,
                        "--attribute-every", "4", "--home", str(home))
    assert code == 0, text
    said = re.search(r"closing: waiting up to \d+ s for (1 attribution|2 attributions) still "
                     r"running \(Ctrl-C stops the wait", text)
    assert said is not None, text  # the one of beat 8, at least, still runs
    assert text.index(said.group(0)) < text.index("8 beats in")
    assert ("warning: attribution of pos at beat 4 failed: ValueError: a bug in the "
            "attribution (ledgered without levels") in text, text
    assert "at beat 8 failed" not in text, text
    records = _records(home)
    assert sorted(r["seq"] for r in records) == [4, 8]
    assert {r["detail"]["note"] for r in records} == {"ValueError: a bug in the attribution"}


def test_one_ctrl_c_stops_closes_wait_when_the_data_ran_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data ran out (no Ctrl-C yet) with beat 8's attribution still running: ``run``
    says a Ctrl-C stops close's wait, and one does (before: it took two; the first only
    asked the finished run to stop). The beats are ledgered; beat 8's is not."""
    import os
    import signal
    import threading

    from typer.testing import CliRunner

    from swarmvar.cli import build_app
    from swarmvar.swarm import attribution as attribution_module

    gate = threading.Event()
    real_landed = attribution_module._attr_landed

    def held(job: Any, fn: object) -> object:
        if job.seq == 8:
            gate.wait(timeout=10)  # before the fix: close's wait ends only here
        raise ValueError("held")

    def landed(swarm: Any, *, wait: float | None = None, into: Any = None) -> Any:
        if wait is not None:  # close's wait: a Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)
        return real_landed(swarm, wait=wait, into=into)

    monkeypatch.setattr(attribution_module, "_attr_run", held)
    monkeypatch.setattr(attribution_module, "_attr_landed", landed)
    books = tmp_path / "books.json"
    books.write_text(json.dumps(BOOKS), encoding="utf-8")
    home = tmp_path / "home"
    try:
        result = CliRunner().invoke(build_app(), [
            "run", "--data", "sp500-stocks", "--portfolios", str(books), *ARGS,
            "--attribute-every", "4", "--home", str(home)])
    finally:
        gate.set()
    assert "(Ctrl-C stops the wait" in result.output, result.output
    assert result.exit_code == 130, (result.exit_code, result.output)  # an interrupt
    assert 8 not in [r["seq"] for r in _records(home)]


def test_a_resume_under_another_attribute_every_names_the_flag_and_the_book(
        tmp_path: Path) -> None:
    """A resume of a home run with ``--attribute-every 4`` under 5, or 0: refused (exit 2)
    with one difference per book in the flag's words, not a Python dict."""
    home = _run_books(tmp_path, "4")
    for every in ("5", "0"):
        code, text = invoke("run", "--data", "sp500-stocks", "--portfolios",
                            str(tmp_path / "books.json"), *ARGS, "--attribute-every", every,
                            "--home", str(home))
        assert code == 2, text
        assert f"--attribute-every of pos: saved 4, now {every})" in text, text
        assert "{" not in text
