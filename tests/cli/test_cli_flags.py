"""Every bad flag is a usage error (exit 2) in the CLI's words, before any work or write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.cli._common import BUNDLED, agent_catalog, cli_words

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()


BAD = [
    (["--horizon", "0"], "--horizon", "between 1 and 250"),
    (["--horizon", "99999999999999999999999"], "--horizon", "between 1 and 250"),
    (["--horizon", "1000000000"], "--horizon", "between 1 and 250"),
    (["--seed", "-1"], "--seed", "out of range"),
    (["--agents", ""], "--agents", "no agent names given"),
    (["--agents", ","], "--agents", "no agent names given"),
    (["--agents", "nig,bootstrap,nig"], "--agents", "more than once: NormalInverseGamma"),
    (["--agents", "nug"], "--agents", "did you mean 'nig'?"),
    (["--agents", "GarchEVTT"], "--agents", "did you mean 'GarchEVT'?"),
    (["--data", "sp5OO"], "--data", "did you mean 'sp500'?"),
    (["--data", "nasdq"], "--data", "did you mean 'nasdaq'?"),
    (["--alpha", "1.5"], "--alpha", "strictly between 0.5 and 1"),
    (["--alpha", "0.3"], "--alpha", "strictly between 0.5 and 1"),
    (["--alpha", "0.5"], "--alpha", "strictly between 0.5 and 1"),
    (["--alpha", "0.99,abc"], "--alpha", "'abc' is not a number"),
    (["--alpha", "0.99,0.99"], "--alpha", "more than once"),
    (["--kind", "prices"], "--kind", "'price' or 'return'"),
    (["--last", "1"], "--last", "at least 2"),
]


@pytest.mark.parametrize("command", ["var", "backtest"])
@pytest.mark.parametrize(("args", "flag", "words"), BAD)
def test_bad_flags_are_usage_errors_before_any_write(
    tmp_path: Path, command: str, args: list[str], flag: str, words: str
) -> None:
    if command == "backtest" and args[0] == "--last":
        args, words = ["--last", "0"], "between 1 and"
    home = tmp_path / "home"
    result = runner.invoke(app, [command, *args, "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {flag}" in text and words in text, text
    assert "Traceback" not in result.output and "=True" not in text
    assert not home.exists()  # nothing created, nothing recorded


@pytest.mark.parametrize("command", ["var", "backtest"])
def test_home_that_is_a_file_and_bad_outputs_are_refused_up_front(tmp_path: Path,
                                                                  command: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, [command, "--home", str(afile)])
    assert result.exit_code == 2 and "is a file, not a directory" in plain(result.output)
    result = runner.invoke(app, [command, "--home", str(afile / "sub")])
    assert result.exit_code == 2 and "is a file" in plain(result.output)
    result = runner.invoke(app, [command, "--notional", "nan"] if command == "var"
                           else [command, "--plot", str(tmp_path / "x.xyz")])
    assert result.exit_code == 2
    assert ("--notional" if command == "var" else "--plot") in plain(result.output)
    result = runner.invoke(app, [command, "--csv", str(afile), "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and "is a file" in plain(result.output)
    assert not (tmp_path / "h").exists()


def test_notional_must_be_a_finite_positive_amount(tmp_path: Path) -> None:
    for value in ("nan", "inf", "-5", "0"):
        result = runner.invoke(app, ["var", "--notional", value, "--home", str(tmp_path / "h")])
        assert result.exit_code == 2 and "not a portfolio value" in plain(result.output)
    assert not (tmp_path / "h").exists()


def test_engine_messages_name_flags_not_keyword_arguments(tmp_path: Path) -> None:
    assert cli_words("drop rows with missing values (--dropna on the command line, "
                     "dropna=True in Python)") == "drop rows with missing values (--dropna)"
    assert cli_words("read it with kind='return'") == "read it with --kind return"
    idx = pd.bdate_range("2020-01-01", periods=400)
    prices = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400)))
    prices[[50, 51, 200]] = np.nan
    path = tmp_path / "gaps.csv"
    pd.DataFrame({"date": idx, "px": prices}).to_csv(path, index=False)
    result = runner.invoke(app, ["var", "--data", str(path), "--agents", "nig",
                                 "--home", str(tmp_path / "h")])
    text = plain(result.output)
    assert result.exit_code == 2 and "--dropna" in text and "dropna=True" not in text, text
    assert "in Python" not in text
    ok = runner.invoke(app, ["var", "--data", str(path), "--agents", "nig", "--dropna",
                             "--home", str(tmp_path / "h"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert ok.output == ""  # --quiet prints nothing but errors


def test_archs_wti_file_with_gaps_loads_with_dropna(tmp_path: Path) -> None:
    from arch.data import wti

    frame = wti.load()
    assert frame.iloc[:, 0].isna().any()  # the file has gaps
    path = tmp_path / "wti.csv"
    frame.to_csv(path)
    args = ["var", "--data", str(path), "--column", "DCOILWTICO", "--agents", "nig",
            "--home", str(tmp_path / "h"), "--json"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--dropna" in plain(refused.output)
    result = runner.invoke(app, [*args, "--dropna"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["data"]["name"] == "DCOILWTICO" or doc["data"]["returns"] > 1000
    assert doc["forecasts"][0]["var"] > 0


def test_help_lists_agent_names_and_the_catalog_matches_the_registry() -> None:
    from swarmvar import data
    from swarmvar.cli._common import default_agents, resolve_agents
    from swarmvar.models import DEFAULT_AGENTS
    from swarmvar.models.registry import AGENT_MODULES, ALIASES

    names, aliases = agent_catalog()
    assert names == tuple(AGENT_MODULES) and dict(aliases) == ALIASES
    # no --agents: the default swarm, not every registered agent
    assert default_agents() == DEFAULT_AGENTS and resolve_agents(None) == list(DEFAULT_AGENTS)
    assert set(BUNDLED) == set(data.DATASETS)
    for command in ("var", "backtest"):
        text = plain(runner.invoke(app, [command, "--help"]).output)
        for name in names:
            assert name in text
        assert "garch-evt" in text and "--dropna" in text and "--json" in text
    root = runner.invoke(app, ["--help"])
    assert root.exit_code == 0
    for command in ("var", "backtest", "ledger", "variants", "config"):
        assert command in root.output


def test_names_that_look_like_markup_are_printed_as_given(tmp_path: Path) -> None:
    idx = pd.bdate_range("2020-01-01", periods=300)
    prices = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(1).standard_normal(300)))
    folder = tmp_path / "[red]odd"
    folder.mkdir()
    path = folder / "p.csv"
    pd.DataFrame({"date": idx, "[/bold]": prices}).to_csv(path, index=False)
    result = runner.invoke(app, ["var", "--data", str(path), "--agents", "nig",
                                 "--home", str(folder / "home")])
    assert result.exit_code == 0, result.output
    assert "[/bold]" in result.output and "[red]odd" in result.output
