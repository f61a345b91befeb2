"""README's "Use it" section and docs/validation.md's examples, each run by a test of its own.

README's ``bash`` commands run in order in one folder holding the files they
name (the fast agents' commands here, every agent's under ``slow``); its
``python`` blocks each in a namespace of its own, as a reader pastes them.
docs/validation.md's report and backtest-driver examples and its command
line run as written. These blocks are in ``_docs_blocks.covered_elsewhere``,
so the page sweeps of test_docs_pages.py do not run them twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT, blocks, commands, readme_use_it, validation_example  # noqa: E402


@pytest.mark.slow
def test_validation_command_line_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/validation.md's "Command line" block (in ``OWN_TESTS``: the page has no shell
    fixture, and the command fits over 2,500 days)."""
    from swarmvar.cli import app

    (block,) = [b for b in blocks("docs/validation.md")
                if b.code.startswith("swarmvar backtest --data sp500 --last 2500")]
    assert block.lang == "bash"
    (command,) = commands(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    result = CliRunner().invoke(app, list(command.args))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.html").read_text().startswith("<!DOCTYPE html>")



FAST_AGENTS = {"nig", "bootstrap", "bb", "NormalInverseGamma", "BayesianBootstrap"}


def readme_use_it_commands() -> list[tuple[str, ...]]:
    return [c.args for b in readme_use_it("bash") for c in commands(b)]


def _heavy(args: tuple[str, ...]) -> bool:
    """Fits every agent (no --agents) or an MCMC agent: minutes, not seconds.

    ``arbiter replay`` backtests every agent over the whole history (38 s, then 8 s for the
    drill from its cache, load average 9.7); ``run --workers`` starts worker processes that
    each import and fit the swarm (26 s at load 9.7).
    """
    if args[:2] == ("arbiter", "replay") or (args[0] == "run" and "--workers" in args):
        return True
    if args[0] not in ("var", "backtest"):
        return False
    if "--agents" not in args:
        return True
    names = set(args[args.index("--agents") + 1].split(","))
    return not names <= FAST_AGENTS


def _user_files(folder: Path) -> None:
    """The files README's "Use it" names: my_prices.csv, my_returns.parquet, gappy.csv."""
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2015-01-01", periods=800)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(idx.size)))
    pd.DataFrame({"date": idx, "close": close}).to_csv(folder / "my_prices.csv", index=False)
    pd.DataFrame({"date": idx, "pnl": 0.01 * rng.standard_t(4, idx.size)}).to_parquet(
        folder / "my_returns.parquet", index=False)
    gappy = close.copy()
    gappy[[10, 11, 300]] = np.nan
    pd.DataFrame({"date": idx, "close": gappy}).to_csv(folder / "gappy.csv", index=False)


def _run_readme(commands: list[tuple[str, ...]], folder: Path,
                monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands in order, in one folder (``ledger verify`` checks what the others wrote)."""
    from swarmvar.cli import app

    monkeypatch.chdir(folder)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    _user_files(folder)
    runner = CliRunner()
    for args in commands:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        if "--report" in args:
            assert (folder / args[args.index("--report") + 1]).read_text().startswith(
                "<!DOCTYPE html>")
        if "--csv" in args:
            assert (folder / args[args.index("--csv") + 1] / "summary.csv").exists()


def test_the_readme_lists_runnable_commands() -> None:
    commands = readme_use_it_commands()
    assert {c[0] for c in commands} >= {"var", "backtest", "config", "ledger"}
    assert any(not _heavy(c) for c in commands if c[0] == "var")


def test_readme_shell_examples_that_use_fast_agents(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [c for c in readme_use_it_commands() if not _heavy(c)]
    commands.sort(key=lambda c: c[0] == "ledger")  # verify what the others recorded
    _run_readme(commands, tmp_path, monkeypatch)
    assert (tmp_path / ".swarmvar" / "ledger.sqlite").exists()


@pytest.mark.slow
def test_readme_shell_examples_with_every_agent(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _run_readme([c for c in readme_use_it_commands() if _heavy(c)], tmp_path, monkeypatch)
    assert (tmp_path / "bt.html").exists() and (tmp_path / "bt.png").exists()


def test_readme_python_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    found = readme_use_it("python")
    assert len(found) >= 2
    for block in found:  # each in a namespace of its own, as a reader pastes it
        code = "\n" * (block.line - 1) + block.code
        exec(compile(code, str(ROOT / "README.md"), "exec"), {})  # noqa: S102 - our docs
    out = capsys.readouterr().out
    assert "consensus" in out and "2018-12-31" in out


def test_validation_doc_report_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    block = validation_example("## Report")
    code = "\n" * (block.line - 1) + block.code
    exec(compile(code, str(ROOT / block.page), "exec"), {})  # noqa: S102
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_validation_doc_driver_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    block = validation_example("## The backtest driver")
    code = "\n" * (block.line - 1) + block.code
    exec(compile(code, str(ROOT / block.page), "exec"), {})  # noqa: S102
    assert (tmp_path / "backtest.html").exists()
