"""--json, --csv and --quiet; swarmvar.toml defaults and ``swarmvar config show``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import swarmvar
from swarmvar import data
from swarmvar.cli import app
from swarmvar.config import load_config

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()


def test_var_json_round_trips_and_matches_the_python_result(tmp_path: Path) -> None:
    args = ["var", "--agents", "nig,bootstrap,garch-t", "--alpha", "0.99,0.975", "--last", "700",
            "--track-days", "0", "--workers", "1", "--seed", "3", "--notional", "1e6",
            "--home", str(tmp_path / "h"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout holds the JSON document only
    assert doc["units"]["var, es, var_lo, var_hi, es_lo, es_hi"].startswith("loss over")
    py = swarmvar.var(data.load("sp500").iloc[-700:], ["nig", "bootstrap", "garch-t"],
                      alphas=(0.99, 0.975), seed=3, track_days=0)
    frame = py.to_frame()
    assert [f["agent"] for f in doc["forecasts"]] == list(frame["agent"])
    for got, want in zip(doc["forecasts"], frame.to_dict(orient="records"), strict=True):
        for key in ("alpha", "var", "es", "var_lo", "var_hi", "es_lo", "es_hi"):
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=0), key
        assert got["var_ccy"] == pytest.approx(-1e6 * math.expm1(-want["var"]))
    assert [c["var"] for c in doc["consensus"]] == pytest.approx(
        [c.var for c in py.agreed], rel=1e-12)
    assert doc["as_of"].startswith("2018-12-31") and doc["ledger"]["last_entry"] >= 1
    assert len(doc["ledger"]["merkle_root"]) == 64


def test_var_quiet_prints_nothing_and_still_records(tmp_path: Path) -> None:
    result = runner.invoke(app, ["var", "--agents", "nig", "--last", "300", "--quiet",
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "h" / "ledger.sqlite").exists()


def test_backtest_json_and_csv_carry_every_table(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    result = runner.invoke(app, [
        "backtest", "--agents", "nig,bootstrap", "--last", "260", "--window", "250",
        "--refit-every", "130", "--no-baseline", "--no-record", "--workers", "1", "--json",
        "--csv", str(out), "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rows"] == ["NormalInverseGamma", "BayesianBootstrap"] and doc["days"] == 260
    for table in ("summary", "tests", "zones", "breaches", "timings"):
        assert isinstance(doc[table], list)
    assert len(doc["summary"]) == 2 * 2 and len(doc["tests"]) == 2 * 2 * 5
    assert len(doc["zones"]) == 2 * 2 and doc["zones"][0]["windows"] == 260 - 250 + 1
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{t}.csv" for t in ("summary", "tests", "zones", "breaches",
                                                 "timings", "forecasts"))
    first = (out / "summary.csv").read_text().splitlines()[0]
    assert first.startswith("# units:")
    summary = pd.read_csv(out / "summary.csv", comment="#")
    assert list(summary["hits"]) == [line["hits"] for line in doc["summary"]]
    forecasts = pd.read_csv(out / "forecasts.csv", comment="#")
    assert len(forecasts) == 2 * 2 * 260 and "00:00:00" not in forecasts["date"].iloc[0]


def test_config_file_sets_defaults_flags_override_and_show_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.swarmvar]\nagents = ["nig"]\nalphas = [0.975]\nhome = "myhome"\nlast = 300\n')
    config = load_config()
    assert config.path == tmp_path / "pyproject.toml" and config.values["agents"] == ["nig"]
    result = runner.invoke(app, ["var", "--json", "--no-consensus"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["agent"] for f in doc["forecasts"]] == ["NormalInverseGamma"]
    assert doc["alphas"] == [0.975] and doc["data"]["returns"] == 300
    assert (tmp_path / "myhome" / "ledger.sqlite").exists()
    result = runner.invoke(app, ["var", "--json", "--alpha", "0.99", "--last", "250",
                                 "--no-consensus"])
    doc = json.loads(result.stdout)
    assert doc["alphas"] == [0.99] and doc["data"]["returns"] == 250  # flags win
    shown = runner.invoke(app, ["config", "show", "--json"])
    settings = json.loads(shown.stdout)["settings"]
    assert settings["agents"] == {"value": ["nig"], "source": f"{tmp_path / 'pyproject.toml'} "
                                  "[tool.swarmvar]", "commands": ["var", "backtest", "run",
                                                                  "serve"]}
    assert settings["horizon"] == {"value": 1, "source": "default",
                                   "commands": ["var", "backtest", "run"]}
    table = runner.invoke(app, ["config", "show"])
    assert table.exit_code == 0 and "pyproject.toml" in table.output
    # swarmvar.toml wins over pyproject.toml; a bad key or value is a usage error
    (tmp_path / "swarmvar.toml").write_text("horizon = 0\n")
    bad = runner.invoke(app, ["var"])
    assert bad.exit_code == 2 and "horizon must be a whole number >= 1" in plain(bad.output)
    (tmp_path / "swarmvar.toml").write_text("horizn = 5\n")
    bad = runner.invoke(app, ["config", "show"])
    assert bad.exit_code == 2 and "did you mean 'horizon'?" in plain(bad.output)
    (tmp_path / "swarmvar.toml").write_text("horizon = [\n")
    bad = runner.invoke(app, ["backtest"])
    assert bad.exit_code == 2 and "not valid TOML" in plain(bad.output)


def test_policy_flag_and_config_choose_the_consensus_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarmvar.cli._common import POLICIES
    from swarmvar.consensus import Aggregator

    assert set(POLICIES) == {a.value for a in Aggregator} - {"mean"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    bad = runner.invoke(app, ["var", "--policy", "medain", "--home", str(tmp_path / "h")])
    assert bad.exit_code == 2 and "did you mean 'median'?" in plain(bad.output)
    assert not (tmp_path / "h").exists()
    args = ["backtest", "--agents", "nig,bootstrap,bb", "--last", "30", "--window", "250",
            "--refit-every", "30", "--no-baseline", "--no-record", "--workers", "1", "--json"]
    assert runner.invoke(app, args).exit_code == 2  # bb is bootstrap: named twice
    (tmp_path / "swarmvar.toml").write_text('policy = "median"\nconsensus = true\n')
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    assert shown["settings"]["policy"] == {"value": "median",
                                           "source": str(tmp_path / "swarmvar.toml"),
                                           "commands": ["var", "backtest", "run"]}
    res = swarmvar.var(data.load("sp500").iloc[-300:], ["nig", "bootstrap"], consensus=True,
                       policy=None)
    assert "needs at least 3 agents" in res.note
    result = runner.invoke(app, ["var", "--agents", "nig,bootstrap", "--last", "300",
                                 "--json", "--policy", "krum", "--home", str(tmp_path / "h2")])
    doc = json.loads(result.stdout)
    assert doc["consensus"] == [] and "krum" in doc["note"].lower()
    assert "needs at least 5" in doc["note"]
