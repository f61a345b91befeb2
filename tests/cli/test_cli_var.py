"""``swarmvar var`` end to end on the bundled S&P 500 (fast agents)."""

import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.ledger import EntryKind, Ledger

runner = CliRunner()


def test_var_prints_each_agent_and_records_them_in_the_ledger(tmp_path):
    result = runner.invoke(app, ["var", "--agents", "nig,bootstrap", "--alpha", "0.99",
                                 "--alpha", "0.975", "--notional", "1000000",
                                 "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "NormalInverseGamma" in result.output and "BayesianBootstrap" in result.output
    assert "0.975" in result.output and "2018-12-31" in result.output
    with Ledger.open(tmp_path, create=False) as ledger:
        assert ledger.verify_chain().ok
        agents = [e.data["agent"] for e in ledger.entries(1) if e.kind is EntryKind.FORECAST]
        assert agents == ["NormalInverseGamma", "BayesianBootstrap"]
        level = ledger.entry(1).data["forecast"]["levels"][0]
        assert level["alpha"] == 0.99 and level["var"] > 0


def test_var_on_a_users_csv(tmp_path):
    idx = pd.bdate_range("2020-01-01", periods=300)
    prices = 100 * (1.0005 ** pd.Series(range(300), index=idx)) * (1 + 0.01 * (idx.day % 3 - 1))
    pd.DataFrame({"date": idx, "close": prices.to_numpy()}).to_csv(tmp_path / "p.csv", index=False)
    result = runner.invoke(app, ["var", "--data", str(tmp_path / "p.csv"), "--agents", "nig",
                                 "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    assert "p.csv" in result.output or "close" in result.output


def test_var_refuses_bad_input_clearly(tmp_path):
    result = runner.invoke(app, ["var", "--agents", "nope"])
    assert result.exit_code == 2 and "no agent called 'nope'" in result.output
    result = runner.invoke(app, ["var", "--agents", "nig", "--alpha", "1.5"])
    assert result.exit_code == 2 and "strictly between" in result.output
    result = runner.invoke(app, ["var", "--data", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "no such file" in result.output
