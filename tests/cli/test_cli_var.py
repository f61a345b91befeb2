"""``swarmvar var`` end to end on the bundled S&P 500 (fast agents)."""

import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.swarm.consensus import SWARM_POLICY

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

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
    assert result.exit_code == 2 and "no agent called 'nope'" in plain(result.output)
    result = runner.invoke(app, ["var", "--agents", "nig", "--alpha", "1.5"])
    assert result.exit_code == 2 and "strictly between" in plain(result.output)
    result = runner.invoke(app, ["var", "--data", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "no such file" in plain(result.output)
    result = runner.invoke(app, ["var", "--agents", "nig,NormalInverseGamma,bb"])
    assert result.exit_code == 2 and "more than once: NormalInverseGamma" in plain(result.output)


def test_var_prints_and_records_the_signed_consensus_with_track_record_weights(tmp_path):
    result = runner.invoke(app, ["var", "--agents", "nig,bootstrap,garch-t", "--alpha",
                                 "0.99,0.975", "--last", "800", "--track-days", "30",
                                 "--workers", "1", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    # the rule in words for the roster (SWARM_POLICY.method stays the ledger's name)
    words = "trimmed mean of 3 agents dropping the highest and the lowest of each figure"
    assert f"swarm consensus (signed estimates): {words}" in plain(result.output)
    assert "tempered weights from each agent's FZ0 loss" in plain(result.output)
    assert "3/3" in result.output and "trimmed" in result.output
    keys = sorted((tmp_path / "keys" / "agents").glob("*.pem"))
    assert [k.stem for k in keys] == ["BayesianBootstrap", "GarchT", "NormalInverseGamma"]
    assert all(k.stat().st_mode & 0o077 == 0 for k in keys)  # private keys stay private
    with Ledger.open(tmp_path, create=False) as ledger:
        assert ledger.verify_chain().ok
        entries = list(ledger.entries(1))
    forecasts = {e.data["agent"]: e.data["forecast"]["levels"] for e in entries
                 if e.kind is EntryKind.FORECAST}
    agreed = [e.data for e in entries if e.kind is EntryKind.CONSENSUS]
    assert [c["alpha"] for c in agreed] == [0.99, 0.975]
    assert all(c["method"] == SWARM_POLICY.method for c in agreed)  # the machine name, kept
    for k, c in enumerate(agreed):
        views = [levels[k]["var"] for levels in forecasts.values()]
        assert min(views) <= c["var"] <= max(views)  # inside the honest range
        assert c["var_interval"][0] <= c["var"] <= c["var_interval"][1]
        assert len(c["used"]) + len(c["trimmed"]) == 3 and c["rejected"] == {}
        assert abs(sum(c["weights"].values()) - 1) < 1e-9
    assert agreed[0]["var"] >= agreed[1]["var"] and agreed[0]["es"] >= agreed[1]["es"]


def test_var_without_enough_agents_for_a_consensus_says_so(tmp_path):
    result = runner.invoke(app, ["var", "--agents", "nig", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no consensus" in result.output and "NotEnough" not in result.output


def test_a_second_var_reads_its_track_record_from_the_home(tmp_path):
    args = ["var", "--agents", "nig,bootstrap,student-t", "--alpha", "0.99", "--last", "400",
            "--track-days", "20", "--workers", "1", "--home", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "from the cache" not in plain(first.output)
    assert list((tmp_path / "cache" / "track").iterdir())
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "track record read from the cache" in plain(again.output)

    def consensus(output: str) -> list[str]:  # the consensus table's rows (m/n 3/3)
        return [line for line in output.splitlines() if "3/3" in line]

    assert consensus(first.output)
    assert consensus(again.output) == consensus(first.output)  # the same numbers
