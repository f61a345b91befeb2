"""``swarmvar.toml`` on the book paths (``var --book/--positions``, ``backtest --book``): the
file's ``home`` (was: ``./.swarmvar`` whatever the file said), ``alphas``, ``horizon``,
``window``, ``refit_every`` and ``consensus`` read as on the single-series paths (flag >
file > default, a file's bad value named by its key, exit 2); its single-series keys
(``agents``, ``data``, ``last``, ``track_days``, ``policy``) left aside; ``config show``
saying which path reads which key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

POSITIONS = ["--positions", "AAPL=600000,MSFT=-400000"]


def _cli(args: list[str], toml: Path) -> tuple[int, str, str]:
    """Exit code, the output on one line (words as the user reads them) and stdout."""
    result = CliRunner().invoke(app, args, env={"SWARMVAR_CONFIG": str(toml)})
    return result.exit_code, " ".join(plain(result.output).split()), result.stdout


def _toml(folder: Path, text: str) -> Path:
    path = folder / "swarmvar.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the file's home, for real (cheap: one fast joint agent, few days) ---------------------

def test_var_positions_records_in_the_files_home(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ./.swarmvar would be here
    risk = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{risk}"\nalphas = [0.975]\n')
    code, out, stdout = _cli(["var", *POSITIONS, "--agents", "niw", "--last", "250",
                              "--no-consensus", "--json"], toml)
    assert code == 0, out
    assert (risk / "ledger.sqlite").is_file() and not (tmp_path / ".swarmvar").exists(), out
    doc = json.loads(stdout)
    assert doc["alphas"] == [0.975], doc["alphas"]
    assert {row["alpha"] for row in doc["forecasts"]} == {0.975}


def test_backtest_book_records_in_the_files_home(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    risk = tmp_path / "risk"
    book = tmp_path / "book.csv"
    book.write_text("asset,position\nAAPL,600000\nMSFT,-400000\n", encoding="utf-8")
    toml = _toml(tmp_path, f'home = "{risk}"\nalphas = [0.975]\nwindow = 120\n'
                           'refit_every = 10\n')
    code, out, stdout = _cli(["backtest", "--book", str(book), "--agents", "niw",
                              "--no-consensus", "--no-baseline", "--last", "20",
                              "--no-progress", "--workers", "1", "--json"], toml)
    assert code == 0, out
    doc = json.loads(stdout)
    assert doc["ledger"]["path"] == str(risk / "ledger.sqlite"), doc["ledger"]
    assert not (tmp_path / ".swarmvar").exists()
    assert {(r["alpha"], r["days"]) for r in doc["rows"]} == {(0.975, 20)}, doc["rows"]


# --- what reaches the engines: file, flag, and the keys left aside --------------------------

class _Stop(Exception):
    pass


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """book_var and book_backtest stubbed: what the CLI handed them, then a stop."""
    import swarmvar.book_api as book_api

    seen: dict[str, Any] = {}

    def capture(frame: Any, book: Any, **kwargs: Any) -> None:
        seen.clear()
        seen.update(kwargs, columns=list(frame.columns))
        raise _Stop

    monkeypatch.setattr(book_api, "book_var", capture)
    monkeypatch.setattr(book_api, "book_backtest", capture)
    return seen


def _handed(args: list[str], toml: Path, seen: dict[str, Any]) -> dict[str, Any]:
    result = CliRunner().invoke(app, args, env={"SWARMVAR_CONFIG": str(toml)})
    assert isinstance(result.exception, _Stop), result.output
    return dict(seen)


#: A file written for the single series: the book keys, and the single series' own keys.
_FILE = ('alphas = [0.975]\nhorizon = 5\nconsensus = false\nwindow = 150\nrefit_every = 7\n'
         'agents = ["nig", "garch-evt"]\ndata = "nasdaq"\nlast = 2500\ntrack_days = 1000\n'
         'policy = "median"\n')


def test_var_book_takes_the_files_keys_a_flag_wins(tmp_path: Path,
                                                   handed: dict[str, Any]) -> None:
    risk = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{risk}"\n{_FILE}')
    seen = _handed(["var", *POSITIONS], toml, handed)
    assert seen["home"] == risk and seen["alphas"] == (0.975,), seen
    assert seen["horizon"] == 5 and seen["consensus"] is False, seen
    # the single series' keys left aside: joint agents' default, the book's data, its
    # own --last and --track-days defaults
    assert seen["agents"] is None and "AAPL" in seen["columns"], seen
    assert seen["window"] == 1000 and seen["track_days"] == 0, seen
    other = tmp_path / "other"
    seen = _handed(["var", *POSITIONS, "--alpha", "0.99", "--horizon", "2", "--consensus",
                    "--home", str(other)], toml, handed)
    assert seen["home"] == other and seen["alphas"] == (0.99,), seen
    assert seen["horizon"] == 2 and seen["consensus"] is True, seen


def test_backtest_book_takes_the_files_keys_a_flag_wins(tmp_path: Path,
                                                        handed: dict[str, Any]) -> None:
    toml = _toml(tmp_path, f'home = "{tmp_path / "risk"}"\n{_FILE}')
    seen = _handed(["backtest", *POSITIONS, "--workers", "1"], toml, handed)
    assert seen["alphas"] == (0.975,) and seen["window"] == 150, seen
    assert seen["refit_every"] == 7 and seen["consensus"] is False, seen
    assert seen["agents"] is None and seen["last"] == 1000 and "AAPL" in seen["columns"], seen
    seen = _handed(["backtest", *POSITIONS, "--workers", "1", "--window", "200",
                    "--refit-every", "5", "--alpha", "0.99", "--consensus"], toml, handed)
    assert seen["alphas"] == (0.99,) and seen["window"] == 200, seen
    assert seen["refit_every"] == 5 and seen["consensus"] is True, seen


# --- a file's bad value: named by its key, before any work -----------------------------------

@pytest.mark.parametrize(("command", "line", "words", "flag"), [
    ("var", "horizon = 999", "horizon = 999: 999 is out of range; it must be between 1 and 250",
     "--horizon"),
    ("var", "alphas = [0.99, 0.99]", "alphas = [0.99, 0.99]: level 0.99 given more than once",
     "--alpha"),
    # the book's own bound (the single-series backtest takes a window of 2)
    ("backtest", "window = 60", "window = 60: 60 is out of range; it must be at least 100",
     "--window"),
])
def test_a_files_bad_value_is_named_by_its_key(tmp_path: Path, handed: dict[str, Any],
                                               command: str, line: str, words: str,
                                               flag: str) -> None:
    home = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{home}"\n{line}\n')
    code, out, _ = _cli([command, *POSITIONS, "--workers", "1"], toml)
    assert code == 2 and f"{toml}: {words}" in out, out
    assert flag not in out and not handed and not home.exists(), out


@pytest.mark.parametrize("command", [["var"], ["backtest", "--record"]])
def test_a_files_home_with_a_damaged_ledger_is_named_by_its_key(
        tmp_path: Path, handed: dict[str, Any], command: list[str]) -> None:
    home = tmp_path / "risk"
    home.mkdir()
    damaged = b"not a database, not even close " * 4
    (home / "ledger.sqlite").write_bytes(damaged)
    toml = _toml(tmp_path, f'home = "{home}"\n')
    code, out, _ = _cli([*command, *POSITIONS, "--workers", "1"], toml)
    assert code == 2 and f'{toml}: home = "{home}": ' in out, out
    assert "is not an SQLite database" in out and "--home" not in out and not handed, out
    assert (home / "ledger.sqlite").read_bytes() == damaged


# --- config show --------------------------------------------------------------------------

def test_config_show_says_which_book_path_reads_which_key(tmp_path: Path) -> None:
    from swarmvar.config import APPLIES, BOOK_APPLIES, BOOK_ASIDE, DEFAULTS

    assert set(BOOK_ASIDE) == set(BOOK_APPLIES)
    for path, keys in BOOK_APPLIES.items():  # per path: read + aside == its command's keys
        command = path.split()[0]
        aside = set(BOOK_ASIDE[path])
        assert set(keys) | aside == {k for k in DEFAULTS if command in APPLIES[k]}, path
        assert not set(keys) & aside, path
    toml = _toml(tmp_path, 'home = "/srv/risk"\nagents = ["nig"]\n')
    code, out, stdout = _cli(["config", "show", "--json"], toml)
    assert code == 0, out
    doc = json.loads(stdout)
    assert doc["book"] == {"var --book": ["home", "alphas", "horizon", "consensus"],
                           "backtest --book": ["home", "alphas", "window", "refit_every",
                                               "consensus"]}, doc["book"]
    assert set(doc["book_aside"]["var --book"]) == {"data", "agents", "last", "track_days",
                                                    "policy"}, doc["book_aside"]
    assert set(doc["book_aside"]["backtest --book"]) == {"data", "agents", "horizon", "last",
                                                         "policy"}, doc["book_aside"]
    assert "joint agents" in doc["book_aside"]["var --book"]["agents"]
    assert "one day ahead" in doc["book_aside"]["backtest --book"]["horizon"]
    result = CliRunner().invoke(app, ["config", "show"], env={"SWARMVAR_CONFIG": str(toml),
                                                              "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line.split("│")[4].strip()
            for line in result.output.splitlines() if line.count("│") == 6}
    assert rows["home"] == "var, var --book, backtest, backtest --book, run, serve", rows
    assert rows["agents"] == "var, backtest, run, serve", rows
    assert rows["horizon"] == "var, var --book, backtest, run", rows
    assert rows["window"] == "backtest, backtest --book, run, serve", rows
    text = " ".join(result.output.split())
    assert "with a book (--book/--positions), var and backtest read only the keys listed " \
           "with --book" in text and "agents: a book's agents are joint agents" in text, text
    backtest_part = text[text.index("backtest --book:"):]
    assert "horizon: a book backtest is one day ahead (no --horizon)" in backtest_part, text
    assert "horizon:" not in text[text.index("var --book:"):text.index("backtest --book:")]
