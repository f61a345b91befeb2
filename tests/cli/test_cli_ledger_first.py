"""An emptied or damaged ledger is refused before any work: `var`, `backtest --record` and
`serve` open ``<home>/ledger.sqlite`` first (one line, exit 2) and leave it as it was.

Before, `var` and `backtest` loaded the data and fitted the agents, printed the forecast,
and only then refused when they opened the ledger to record it (nothing lost, the work
wasted); `serve` ended in a uvicorn traceback at start-up. Here the fit (and uvicorn) are
replaced by functions that fail the test if reached.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()


def _reached(*args: object, **kwargs: object) -> None:
    raise AssertionError("reached the work past the ledger check")


@pytest.fixture(autouse=True)
def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fits and the server: none of them may run when the ledger is damaged."""
    import uvicorn

    import swarmvar.api
    import swarmvar.validation

    monkeypatch.setattr(uvicorn, "run", _reached)
    monkeypatch.setattr(swarmvar.api, "var", _reached)
    monkeypatch.setattr(swarmvar.validation, "backtest", _reached)


def _damaged(home: Path, how: str) -> bytes:
    """Write a damaged ledger file under ``home``; returns its bytes."""
    home.mkdir()
    path = home / "ledger.sqlite"
    if how == "emptied":
        path.write_bytes(b"")
    elif how == "not-sqlite":
        path.write_bytes(b"a text file where the ledger was\n" * 4)
    else:  # a SQLite file without the ledger's tables (another application's database)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (x)")
        db.close()
    return path.read_bytes()


COMMANDS = {
    "var": ["var", "--data", "sp500", "--quiet"],
    "backtest": ["backtest", "--data", "sp500", "--last", "5", "--quiet"],
    "serve": ["serve", "--port", "1"],
}


@pytest.mark.parametrize("how", ["emptied", "not-sqlite", "foreign-sqlite"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_ledger_is_refused_before_any_work(tmp_path: Path, command: str,
                                                     how: str) -> None:
    home = tmp_path / "home"
    before = _damaged(home, how)
    result = runner.invoke(build_app(), [*COMMANDS[command], "--home", str(home)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))  # not the AssertionError of a fit or uvicorn reached
    text = plain(result.output)
    assert result.exit_code == 2, text
    assert "error: --home" in text and "ledger.sqlite" in text and "nothing was" in text, text
    assert "Traceback" not in result.output and len(text.strip().splitlines()) == 1, text
    assert (home / "ledger.sqlite").read_bytes() == before  # nothing written to it
    assert sorted(p.name for p in home.iterdir()) == ["ledger.sqlite"]


def test_backtest_without_record_does_not_need_the_ledger(tmp_path: Path) -> None:
    """--no-record never opens the ledger: a damaged one does not stop the backtest (here
    it reaches the stubbed backtest)."""
    home = tmp_path / "home"
    before = _damaged(home, "emptied")
    result = runner.invoke(build_app(), [*COMMANDS["backtest"], "--no-record",
                                         "--home", str(home)])
    assert isinstance(result.exception, AssertionError), result.output
    assert (home / "ledger.sqlite").read_bytes() == before


def test_a_whole_ledger_passes_the_check(tmp_path: Path) -> None:
    """The check opens a whole ledger and goes on (to the stubbed server), adding nothing."""
    from swarmvar.ledger import Ledger

    home = tmp_path / "home"
    with Ledger(home) as ledger:
        ledger.record_action("note", {"n": 1})
        size = ledger.size
    result = runner.invoke(build_app(), [*COMMANDS["serve"], "--home", str(home)])
    assert isinstance(result.exception, AssertionError), result.output  # uvicorn reached
    with Ledger(home, create=False) as ledger:
        assert ledger.size == size
