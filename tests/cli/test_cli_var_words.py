"""``swarmvar var`` says the weights once: the consensus table names the rule, the note
says what the weights used (every weighting, horizon 1 and 5, with and without a track
record); every equal-weight note follows one template; and a line under the table says
in words what the trimmed mean kept when its weights column reads as one agent."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import swarmvar
import swarmvar.api
from swarmvar.cli import app
from swarmvar.cli.var import kept_words, rule_words
from swarmvar.consensus import Aggregator, Weighting
from swarmvar.errors import InvalidParameter
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.types import Consensus

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()

#: Phrases that make the weights' statement: each may appear at most once in rule + note.
ONCE = ("weights", "forecast", "non-overlapping", "out of sample", "days in")


def _consensus(m: int, weights: dict[str, float], *, alpha: float = 0.99,
               policy: object = SWARM_POLICY) -> Consensus:
    """A consensus of ``m`` agents whose VaR kept ``weights`` (the rest trimmed)."""
    trimmed = tuple(f"trimmed{i}" for i in range(m - len(weights)))
    return Consensus(alpha, 1, 0.02, 0.03, (0.01, 0.03), (0.02, 0.04),
                     getattr(policy, "method", ""), tuple(weights), trimmed=trimmed,
                     weights=weights, available=m, total=m)


# --- 1. the rule line and the note say the weights once -------------------------------------


@pytest.mark.parametrize("weighting", list(Weighting))
@pytest.mark.parametrize("horizon", [1, 5])
@pytest.mark.parametrize("scored", [None, 1, 60, 3000])
def test_the_rule_line_and_the_note_say_the_weights_once(weighting: Weighting, horizon: int,
                                                         scored: int | None) -> None:
    """Was: "...over its last 4 non-overlapping 5-day windows" in the table's rule line and
    "...over its last 20 days in 4 non-overlapping 5-day windows, out of sample" in the
    note."""
    policy = dataclasses.replace(SWARM_POLICY, weighting=weighting)
    rule = rule_words(_consensus(3, {"a": 1.0}, policy=policy), policy)
    note = policy.weights_note(scored, horizon)
    assert rule == "trimmed mean of 3 agents dropping the highest and the lowest of each figure"
    said = f"{rule}\n{note}"
    assert all(said.count(p) <= 1 for p in ONCE), said
    equal = scored is None or weighting is Weighting.EQUAL
    assert ("equal weights" in note) == equal and ("out of sample" in note) == (not equal)
    if not equal:  # the span the weights used, said in full once
        used = min(scored or 0, 1000)
        assert (f"its last {used} forecast" if horizon == 1 else
                f"its last {used * horizon} days in {used} non-overlapping 5-day window"
                ) in note, note


@pytest.mark.parametrize("aggregator", list(Aggregator))
def test_every_rule_line_names_the_rule_without_the_weights(aggregator: Aggregator) -> None:
    f = 0 if aggregator is Aggregator.MEAN else 1
    for weighting in Weighting:
        policy = dataclasses.replace(SWARM_POLICY, aggregator=aggregator, weighting=weighting,
                                     f=f)
        rule = rule_words(_consensus(7, {"a": 1.0}, policy=policy), policy)
        assert rule == policy.describe(7, weights=False)
        assert "weights" not in rule and policy.describe(7).startswith(f"{rule}; ")


# --- 2. one template for equal weights ------------------------------------------------------


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.random.default_rng(11).standard_t(5, 300) * 0.01


def test_too_few_returns_say_equal_weights_in_the_template(returns: np.ndarray) -> None:
    """Was: "300 returns are too few for a 100-day track record; the consensus uses equal
    weights"."""
    res = swarmvar.var(returns, agents=["nig", "bootstrap", "t"], track_days=100)
    assert res.agreed and res.record is None
    assert res.note == ("consensus: equal weights (300 returns are too few for a 100-day "
                        "track record)")


def test_a_failed_track_record_says_equal_weights_in_the_template(
        returns: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: "no track record (...); the consensus uses equal weights"."""
    def fails(*args: object, **kwargs: object) -> None:
        raise InvalidParameter("the agents' backtest failed")

    monkeypatch.setattr(swarmvar.api, "_instance_track", fails)
    x = np.concatenate([returns, returns])
    res = swarmvar.var(x, agents=["nig", "bootstrap", "t"], track_days=20)
    assert res.agreed and res.record is None
    assert res.note == ("consensus: equal weights (no track record: the agents' backtest "
                        "failed)")


# --- 3. the line under the table ------------------------------------------------------------


@pytest.mark.parametrize(("weighting", "why"), [
    (Weighting.TEMPERED, "the lowest FZ0 loss of them in the track record"),
    (Weighting.TRACK_RECORD, "the lowest FZ0 loss of them in the track record"),
    (Weighting.BMA, "the highest log score of them in the track record")])
def test_one_agent_carrying_the_weight_is_said_in_words(weighting: Weighting,
                                                        why: str) -> None:
    """The demo's "n eff 1.00 | GarchT 1.00, NormalInverseGamma 0.00; trimmed ..."."""
    policy = dataclasses.replace(SWARM_POLICY, weighting=weighting)
    rows = [_consensus(6, {"GarchT": 0.999, "NormalInverseGamma": 0.001}, alpha=a)
            for a in (0.99, 0.975)]
    assert kept_words(rows, policy, record=1000) == (
        f"the trimmed mean keeps 2 of 6 agents for each figure; of the VaR's, GarchT carries "
        f"the weight ({why})")
    most = [_consensus(5, {"GarchT": 0.85, "StudentT": 0.1, "NormalInverseGamma": 0.05})]
    assert kept_words(most, policy, record=60) == (
        f"the trimmed mean keeps 3 of 5 agents for each figure; of the VaR's, GarchT carries "
        f"most of the weight ({why})")


def test_the_levels_are_named_when_they_differ() -> None:
    rows = [_consensus(6, {"GarchT": 1.0}, alpha=0.99),
            _consensus(6, {"StudentT": 0.9, "GarchT": 0.1}, alpha=0.975),
            _consensus(6, {"StudentT": 0.5, "GarchT": 0.5}, alpha=0.95)]
    assert kept_words(rows, SWARM_POLICY, record=250) == (
        "the trimmed mean keeps 2 of 6 agents for each figure; of the VaR's, GarchT carries "
        "the weight at 0.99; StudentT carries most of the weight at 0.975 (the lowest FZ0 "
        "loss of them in the track record)")


def test_one_middle_agent_is_said_with_or_without_a_track_record() -> None:
    rows = [_consensus(3, {"StudentT": 1.0})]
    head = "the trimmed mean keeps 1 of 3 agents for each figure, the middle one (shown: the VaR's)"
    assert kept_words(rows, SWARM_POLICY, record=None) == head
    assert kept_words(rows, SWARM_POLICY, record=100) == f"{head}; weights cannot change it"


@pytest.mark.parametrize("case", ["spread", "equal", "no trim", "median", "none"])
def test_nothing_is_added_when_the_table_says_it(case: str) -> None:
    """Weights spread over the kept agents, equal weights (trimmed or not), a median of an
    even count (two agents' mean) or no consensus: the table reads as it is, no line
    (each rule's line when it is one agent: test_cli_var_policies.py)."""
    policy = SWARM_POLICY
    rows = [_consensus(6, {"GarchT": 0.6, "StudentT": 0.4})]
    record: int | None = 1000
    if case == "equal":
        rows, record = [_consensus(6, {"GarchT": 0.5, "StudentT": 0.5})], None
    elif case == "no trim":
        policy = dataclasses.replace(SWARM_POLICY, aggregator=Aggregator.MEAN, f=0,
                                     f_steps=())
        rows, record = [_consensus(4, dict.fromkeys(("GarchT", "a", "b", "c"), 0.25))], None
    elif case == "median":
        policy = dataclasses.replace(SWARM_POLICY, aggregator=Aggregator.MEDIAN)
        rows = [_consensus(6, {"GarchT": 0.5, "StudentT": 0.5})]
    elif case == "none":
        rows = []
    assert kept_words(rows, policy, record=record) == ""
    # the same rows with one agent carrying the weight do get the line (the test can fail)
    if case == "spread":
        rows = [_consensus(6, {"GarchT": 0.99, "StudentT": 0.01})]
        assert kept_words(rows, policy, record=record).startswith("the trimmed mean keeps 2")


# --- 4. a real run: the table, the line, the note, and --json -------------------------------


def test_var_says_the_rule_then_what_it_kept_then_the_weights(tmp_path: Path) -> None:
    args = ["var", "--agents", "nig,bootstrap,student-t", "--track-days", "0", "--last",
            "400", "--workers", "1", "--home", str(tmp_path)]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    text = plain(shown.output)
    rule = "trimmed mean of 3 agents dropping the highest and the lowest of each figure"
    kept = "the trimmed mean keeps 1 of 3 agents for each figure, the middle one (shown: the VaR's)"
    note = "consensus: equal weights (no track record: track_days=0)"
    assert f"swarm consensus (signed estimates): {rule}" in text
    assert text.index(rule) < text.index(kept) < text.index(note), text
    assert text.count("equal weights") == 1 and "weights cannot" not in text
    doc = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert (doc["consensus_rule"], doc["consensus_kept"], doc["note"]) == (rule, kept, note)
