"""``swarmvar arbiter replay``: the table from a cached history; bad flags exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.arbiter.history import CACHE_ENV, cache_path, simulated_history
from swarmvar.cli import build_app
from swarmvar.models import DEFAULT_AGENTS

runner = CliRunner()


def test_replay_prints_counts_auc_and_the_table(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = cache_path("sp500", last=400, window=100, refit_every=20, alphas=(0.99, 0.975),
                      seed=0, agents=DEFAULT_AGENTS)
    simulated_history(days=400, seed=7).save(path)
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--data", "sp500", "--last", "400", "--window", "100"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("decisions", "alert", "AUC trained", "design's fixed model", "without",
                 "Kupiec", "FZ0", "ledger (in memory)", "399 beats"):
        assert text in out


@pytest.mark.parametrize("args", [["--data", "ftse"], ["--k-flows", "0.1", "--p-nodes", "1"],
                                  ["--last", "3"], ["--t-threshold", "nan"]])
def test_bad_flags_are_usage_errors(args: list[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    result = runner.invoke(build_app("arbiter"), ["arbiter", "replay", *args])
    assert result.exit_code == 2, result.output
    assert not list(tmp_path.iterdir())  # nothing was computed or cached
