"""``swarmvar arbiter replay``: the table from a cached history; bad flags exit 2."""

from __future__ import annotations

import re
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
    _check_difference(" ".join(out.split()), path)


def _check_difference(out: str, path: Path) -> None:
    """The trained-minus-design AUC difference and its DeLong se, as the study computes them
    on the same replay."""
    from swarmvar.arbiter import Arbiter, BeatHistory
    from swarmvar.arbiter.replay import replay, threat_study

    found = re.search(r"AUC trained (\d\.\d{3}), the design's fixed model (\d\.\d{3})", out)
    diff = re.search(r"trained minus the design's model: ([+-]\d\.\d{3}) \(DeLong se "
                     r"(\d\.\d{3});", out)
    assert found and diff, out
    trained, seed = float(found[1]), float(found[2])
    difference, se = float(diff[1]), float(diff[2])
    assert abs(difference - (trained - seed)) <= 0.0011  # each printed to 3 decimals
    assert 0.0 < se < 0.2  # a few hundred test beats: a se of a few hundredths
    outcome = replay(BeatHistory.load(path), Arbiter())
    study = threat_study(outcome.features[1:], outcome.breached[1:])
    assert difference == round(study.auc_trained - study.auc_seed, 3)
    assert se == round(study.difference_se, 3)


@pytest.mark.parametrize("args", [["--data", "ftse"], ["--k-flows", "0.1", "--p-nodes", "1"],
                                  ["--last", "3"], ["--t-threshold", "nan"]])
def test_bad_flags_are_usage_errors(args: list[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    result = runner.invoke(build_app("arbiter"), ["arbiter", "replay", *args])
    assert result.exit_code == 2, result.output
    assert not list(tmp_path.iterdir())  # nothing was computed or cached
