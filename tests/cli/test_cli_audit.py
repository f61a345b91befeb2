"""Fixes from the user audit of the CLI: each refusal up front, each text true."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app

runner = CliRunner()


def plain(output: str) -> str:
    """The output without rich's error box, whitespace collapsed."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


@pytest.mark.parametrize("command", [["var"], ["backtest"], ["run"],
                                     ["var", "--positions", "AAPL=600000"],
                                     ["backtest", "--positions", "AAPL=600000"]])
def test_a_level_the_engines_refuse_is_refused_by_the_flag_check(tmp_path: Path,
                                                                  command: list[str]) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, [*command, "--alpha", "0.3", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "strictly between 0.5 and 1" in plain(result.output)
    assert not home.exists()
