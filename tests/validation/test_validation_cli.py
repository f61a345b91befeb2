"""The ``swarmvar backtest`` command, on its own typer app."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli.backtest import app
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.swarm.consensus import SWARM_POLICY


def test_backtest_command_prints_the_table_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, [
        "--data", "sp500", "--last", "120", "--window", "250", "--refit-every", "50",
        "--alpha", "0.99", "--alpha", "0.975", "--agents", "nig,bootstrap,garch-t",
        "--report", str(out), "--no-progress", "--home", str(tmp_path / "home"),
        "--plot", str(tmp_path / "fig" / "bt.png"), "--workers", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "BayesianBootstrap" in result.output and "arch GARCH(1,1)-t" in result.output
    assert "Kupiec" in result.output and re.search(r"pass|FAIL", result.output)
    assert "120 out-of-sample days" in result.output
    assert "consensus" in result.output and SWARM_POLICY.method in result.output
    html = out.read_text()
    assert html.count("<svg ") == 6 * 2 + 2  # rows x levels, and the consensus weights
    assert 'id="emergence"' in html and "best agent" in html  # swarmvar.emergence.summarize
    assert (tmp_path / "fig" / "bt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Ledger.open(tmp_path / "home", create=False) as ledger:
        assert ledger.verify_chain().ok
        entries = list(ledger.entries(1))
    days = [e for e in entries if e.kind is EntryKind.FORECAST]
    tests = [e for e in entries if e.kind is EntryKind.BACKTEST and "row" in e.data]
    summary = [e for e in entries if e.kind is EntryKind.BACKTEST and "summary" in e.data]
    assert len(days) == 120 and len(summary) == 1 and len(tests) == 6 * 2
    assert {e.data["backtest"] for e in entries} == {summary[0].data["backtest"]}
    rows = ("NormalInverseGamma", "BayesianBootstrap", "GarchT", "consensus",
            "arch GARCH(1,1)-t", "arch GJR-GARCH(1,1)-t")
    assert summary[0].data["rows"] == list(rows)
    assert days[0].data["rows"]["consensus"]["0.99"][0] > 0
    kupiec = [e.data["tests"]["kupiec"]["pvalue"] for e in tests if e.data["row"] == "consensus"]
    assert len(kupiec) == 2 and all(0 <= p <= 1 for p in kupiec)


def test_backtest_command_reads_a_file_and_reports_bad_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(400)))
    path = tmp_path / "p.csv"
    pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=400), "px": prices}).to_csv(
        path, index=False)
    ok = CliRunner().invoke(app, ["--data", str(path), "--column", "px", "--last", "100",
                                  "--window", "200", "--agents", "bootstrap", "--no-baseline",
                                  "--no-progress", "--no-record", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    assert "arch" not in ok.output and "100 out-of-sample days" in ok.output
    bad = CliRunner().invoke(app, ["--data", str(path), "--column", "nope", "--no-progress"])
    assert bad.exit_code == 2 and "no column 'nope'" in bad.output
    unknown = CliRunner().invoke(app, ["--agents", "oracle", "--no-progress"])
    assert unknown.exit_code == 2 and "no agent called 'oracle'" in " ".join(
        unknown.output.replace("│", " ").split())
    short = CliRunner().invoke(app, ["--data", str(path), "--window", "500",
                                     "--agents", "bootstrap", "--no-progress"])
    assert short.exit_code == 2 and "returns" in short.output
