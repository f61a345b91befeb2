"""The README's "Use it" examples and docs/validation.md's report example, executed.

Shell lines run through the CLI (Typer's runner) in a temporary working
directory holding the files they name; Python blocks run as written. Examples
that fit every agent on 2,500 days run under the ``slow`` mark.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FAST_AGENTS = {"nig", "bootstrap", "bb", "NormalInverseGamma", "BayesianBootstrap"}


def _section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start: nxt if nxt != -1 else len(text)]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _commands() -> list[list[str]]:
    lines = []
    for block in _blocks(_section(ROOT / "README.md", "## Use it"), "bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                words = shlex.split(line)
                assert Path(words[0]).name == "swarmvar", line
                lines.append(words[1:])
    return lines


def _heavy(args: list[str]) -> bool:
    """Fits every agent (no --agents) or an MCMC agent: minutes, not seconds.

    ``arbiter replay`` backtests every agent over the whole history (38 s, then 8 s for the
    drill from its cache, load average 9.7); ``run --workers`` starts worker processes that
    each import and fit the swarm (26 s at load 9.7).
    """
    if args[:2] == ["arbiter", "replay"] or (args[0] == "run" and "--workers" in args):
        return True
    if args[0] not in ("var", "backtest"):
        return False
    if "--agents" not in args:
        return True
    names = set(args[args.index("--agents") + 1].split(","))
    return not names <= FAST_AGENTS


def _user_files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2015-01-01", periods=800)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(idx.size)))
    pd.DataFrame({"date": idx, "close": close}).to_csv(folder / "my_prices.csv", index=False)
    pd.DataFrame({"date": idx, "pnl": 0.01 * rng.standard_t(4, idx.size)}).to_parquet(
        folder / "my_returns.parquet", index=False)
    gappy = close.copy()
    gappy[[10, 11, 300]] = np.nan
    pd.DataFrame({"date": idx, "close": gappy}).to_csv(folder / "gappy.csv", index=False)


def _run(commands: list[list[str]], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli import app

    monkeypatch.chdir(folder)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    _user_files(folder)
    runner = CliRunner()
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        if "--report" in args:
            assert (folder / args[args.index("--report") + 1]).read_text().startswith(
                "<!DOCTYPE html>")
        if "--csv" in args:
            assert (folder / args[args.index("--csv") + 1] / "summary.csv").exists()


def test_the_readme_lists_runnable_commands() -> None:
    commands = _commands()
    assert {c[0] for c in commands} >= {"var", "backtest", "config", "ledger"}
    assert any(not _heavy(c) for c in commands if c[0] == "var")


def test_readme_shell_examples_that_use_fast_agents(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [c for c in _commands() if not _heavy(c)]
    commands.sort(key=lambda c: c[0] == "ledger")  # verify what the others recorded
    _run(commands, tmp_path, monkeypatch)
    assert (tmp_path / ".swarmvar" / "ledger.sqlite").exists()


@pytest.mark.slow
def test_readme_shell_examples_with_every_agent(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _run([c for c in _commands() if _heavy(c)], tmp_path, monkeypatch)
    assert (tmp_path / "bt.html").exists() and (tmp_path / "bt.png").exists()


def test_readme_python_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(_section(ROOT / "README.md", "## Use it"), "python")
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert "consensus" in out and "2018-12-31" in out


def test_validation_doc_report_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in _blocks(_section(ROOT / "docs" / "validation.md", "## Report"),
                                 "python")]
    assert len(blocks) == 1
    scope: dict[str, object] = {}
    exec(compile(blocks[0], "docs/validation.md", "exec"), scope)  # noqa: S102
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_validation_doc_driver_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(_section(ROOT / "docs" / "validation.md", "## The backtest driver"),
                     "python")
    exec(compile(blocks[0], "docs/validation.md", "exec"), {})  # noqa: S102
    assert (tmp_path / "backtest.html").exists()
