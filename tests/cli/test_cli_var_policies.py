"""Every consensus rule of ``swarmvar var --policy`` explains itself in one line when the
consensus is one agent's numbers (or leans on one agent's): the trimmed mean or median's
middle agent, Krum's pick, multi-Krum's or the mean's one weighted agent, the geometric
median on an agent's point. Was: the trimmed mean only; ``--policy median`` showed
"n eff 1.00 | StudentT 1.00" with nothing saying why."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.cli._common import POLICIES, swarm_policy
from swarmvar.cli.var import kept_words
from swarmvar.consensus import Aggregator, Policy
from swarmvar.swarm.consensus import REARRANGED, SWARM_POLICY
from swarmvar.types import Consensus

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()

WHY = " (the lowest FZ0 loss of them in the track record)"


def _policy(aggregator: Aggregator, **kw: Any) -> Policy:
    f = 0 if aggregator is Aggregator.MEAN else 1
    return dataclasses.replace(SWARM_POLICY, aggregator=aggregator, f=f,
                               f_steps=() if f == 0 else SWARM_POLICY.f_steps, **kw)


def _row(m: int, weights: dict[str, float], alpha: float = 0.99) -> Consensus:
    """A consensus of ``m`` agents whose VaR's weights are ``weights`` (the rest trimmed)."""
    trimmed = tuple(f"other{i}" for i in range(m - len(weights)))
    return Consensus(alpha, 1, 0.02, 0.03, (0.01, 0.03), (0.02, 0.04), "", tuple(weights),
                     trimmed=trimmed, weights=weights, available=m, total=m)


# --- 1. each rule's line, in words --------------------------------------------------------


@pytest.mark.parametrize(("record", "tail"), [(None, ""), (250, "; weights cannot change it")])
def test_an_odd_median_is_its_middle_agent(record: int | None, tail: str) -> None:
    policy = _policy(Aggregator.MEDIAN)
    rows = [_row(5, {"StudentT": 1.0}), _row(5, {"GarchT": 1.0}, 0.975)]
    assert kept_words(rows, policy, record=record) == (
        f"the median of 5 agents is the middle one of each figure (shown: the VaR's){tail}")
    # an even count: the mean of the two middle ones, no one agent
    assert kept_words([_row(4, {"StudentT": 0.5, "GarchT": 0.5})], policy, record=record) == ""


def test_krum_names_the_agent_it_took_at_each_level() -> None:
    policy = _policy(Aggregator.KRUM)
    same = [_row(5, {"StudentT": 1.0}), _row(5, {"StudentT": 1.0}, 0.975)]
    head = "Krum takes one agent's VaR and ES, the one closest to the others: "
    assert kept_words(same, policy) == f"{head}StudentT"
    assert kept_words(same, policy, record=100) == f"{head}StudentT; weights cannot change it"
    differ = [_row(5, {"StudentT": 1.0}), _row(5, {"GarchT": 1.0}, 0.975),
              _row(5, {"StudentT": 1.0}, 0.95)]
    assert kept_words(differ, policy) == f"{head}StudentT at 0.99 and 0.95; GarchT at 0.975"


def test_multi_krum_says_what_it_kept_and_who_carries_the_weight() -> None:
    policy = _policy(Aggregator.MULTI_KRUM)
    leaning = [_row(5, {"GarchT": 0.999, "StudentT": 0.001, "a": 0.0, "b": 0.0})]
    assert kept_words(leaning, policy, record=500) == (
        "multi-Krum keeps the 4 of 5 agents closest to the others; of them, GarchT carries "
        f"the weight{WHY}")
    spread = [_row(5, dict.fromkeys(("GarchT", "StudentT", "a", "b"), 0.25))]
    assert kept_words(spread, policy, record=None) == ""
    one = dataclasses.replace(policy, multi_krum_m=1)
    assert kept_words([_row(5, {"GarchT": 1.0})], one, record=500) == (
        "multi-Krum keeps 1 of 5 agents, the one closest to the others: GarchT; weights "
        "cannot change it")


def test_a_geometric_median_on_an_agents_point_says_so() -> None:
    policy = _policy(Aggregator.GEOMETRIC_MEDIAN)
    on = {"StudentT": 1.0, "GarchT": 0.0, "NormalInverseGamma": 0.0}
    off = {"StudentT": 0.6, "GarchT": 0.3, "NormalInverseGamma": 0.1}
    head = "the geometric median of 3 agents falls on one agent's VaR and ES, "
    tail = " (the others' pull is weaker than its weight)"
    assert kept_words([_row(3, on), _row(3, on, 0.975)], policy) == f"{head}StudentT's{tail}"
    assert kept_words([_row(3, off), _row(3, on, 0.975)], policy, record=60) == (
        f"{head}StudentT's at 0.975{tail}")
    assert kept_words([_row(3, off), _row(3, off, 0.975)], policy, record=60) == ""


def test_the_mean_says_who_carries_the_weight() -> None:
    policy = _policy(Aggregator.MEAN)
    rows = [_row(4, {"GarchT": 0.97, "a": 0.01, "b": 0.01, "c": 0.01})]
    assert kept_words(rows, policy, record=1000) == (
        f"the mean of 4 agents (nothing trimmed); GarchT carries most of the weight{WHY}")
    assert kept_words(rows, policy, record=None) == ""  # equal weights: no agent leads


@pytest.mark.parametrize("aggregator", list(Aggregator))
def test_every_rule_says_one_agent_carrying_the_weight(aggregator: Aggregator) -> None:
    """Whatever the rule, a consensus whose every level is one agent's gets a line naming
    what the rule did; a rule that weighs agents names the agent and why."""
    policy = _policy(aggregator)
    m = 5
    rows = [_row(m, {"GarchT": 1.0, "StudentT": 0.0, "a": 0.0}),
            _row(m, {"GarchT": 1.0, "StudentT": 0.0, "a": 0.0}, 0.975)]
    said = kept_words(rows, policy, record=1000)
    assert said and "\n" not in said, aggregator
    assert ("middle one" if aggregator is Aggregator.MEDIAN else "GarchT") in said, said
    if aggregator in (Aggregator.MEAN, Aggregator.MULTI_KRUM, Aggregator.TRIMMED_MEAN):
        assert said.endswith(WHY), said


def _level(alpha: float, var: float, weights: dict[str, float], method: str) -> Consensus:
    """One level of ``len(weights)`` agents whose VaR (and ES = 1.5 VaR) is ``var``."""
    return Consensus(alpha, 1, var, 1.5 * var, (0.9 * var, 1.1 * var),
                     (1.35 * var, 1.65 * var), method, tuple(weights), weights=weights,
                     available=len(weights), total=len(weights))


@pytest.mark.parametrize("aggregator", list(Aggregator))
def test_a_line_over_rearranged_levels_says_it_is_before_the_rearrangement(
        aggregator: Aggregator) -> None:
    """``uncrossed`` swaps VaR/ES between crossed levels and keeps each level's weights: a
    line naming the agent a level took is of the levels before that swap. Was: "Krum takes
    ... GarchT at 0.975; StudentT at 0.99", while 0.99 showed GarchT's 0.975 figures."""
    from swarmvar.swarm.consensus import uncrossed

    policy = _policy(aggregator)
    three = ("GarchT", "StudentT", "a")
    low = dict(zip(three, (1.0, 0.0, 0.0), strict=True))  # 0.975: GarchT's
    high = dict(zip(three, (0.0, 1.0, 0.0), strict=True))  # 0.99: StudentT's, lower
    if aggregator in (Aggregator.MEAN, Aggregator.MULTI_KRUM):
        low = dict(zip(three, (0.99, 0.005, 0.005), strict=True))
        high = dict(zip(three, (0.005, 0.99, 0.005), strict=True))
    crossed = [_level(0.99, 0.02, high, policy.method), _level(0.975, 0.03, low,
                                                               policy.method)]
    rows = uncrossed(crossed)
    assert [c.var for c in rows] == [0.03, 0.02]  # the figures moved between the levels
    assert [c.weights for c in rows] == [high, low]  # the weights did not
    assert all(c.method.endswith(", rearranged across levels") for c in rows)
    before = kept_words(crossed, policy, record=500)
    after = kept_words(rows, policy, record=500)
    assert before and "rearranged" not in before, before
    assert after == f"before the levels were rearranged: {before}"
    if aggregator is Aggregator.KRUM:
        assert after == ("before the levels were rearranged: Krum takes one agent's VaR and "
                         "ES, the one closest to the others: StudentT at 0.99; GarchT at "
                         "0.975; weights cannot change it")
    # one level moved is enough; levels in order get no such words
    one = [rows[0], dataclasses.replace(rows[1], method=policy.method)]
    assert kept_words(one, policy, record=500).startswith("before the levels were")
    assert kept_words(uncrossed(list(reversed(rows))), policy, record=500) == kept_words(
        list(reversed(rows)), policy, record=500)


@pytest.mark.parametrize("aggregator", list(Aggregator))
def test_one_agent_weighted_gets_no_line(aggregator: Aggregator) -> None:
    """One agent has no one to lean on, no middle one and no pick: no line under any rule
    (was: "the mean of 1 agents (nothing trimmed); StudentT carries the weight", and
    under Python's Policy(f=0) "the median of 1 agents is the middle one ..." and "the
    geometric median of 1 agents falls on one agent's VaR and ES ...")."""
    policy = dataclasses.replace(_policy(aggregator), f=0, f_steps=())
    for record in (None, 1000):
        one = [_row(1, {"StudentT": 1.0}), _row(1, {"StudentT": 1.0}, 0.975)]
        assert kept_words(one, policy, record=record) == ""
        moved = [dataclasses.replace(c, method=policy.method + REARRANGED) for c in one]
        assert kept_words(moved, policy, record=record) == ""
    if aggregator in (Aggregator.MEAN, Aggregator.TRIMMED_MEAN):
        two = [_row(2, {"StudentT": 0.999, "GarchT": 0.001})]
        assert kept_words(two, policy, record=1000) == (
            f"the mean of 2 agents (nothing trimmed); StudentT carries the weight{WHY}")
    elif aggregator is Aggregator.MEDIAN:  # three agents: the middle one is said
        assert kept_words([_row(3, {"StudentT": 1.0})], policy, record=1000).startswith(
            "the median of 3 agents is the middle one")


def test_multi_krum_keeps_what_the_rule_keeps() -> None:
    """``Policy.multi_krum_kept`` is what ``robust.multi_krum`` selects, and the words and
    the line say it."""
    import numpy as np

    from swarmvar.consensus.robust import multi_krum

    x = np.random.default_rng(3).normal(size=(6, 2))
    for m_given in (None, 1, 3):
        policy = _policy(Aggregator.MULTI_KRUM, multi_krum_m=m_given)
        assert policy.multi_krum_kept(6) == len(multi_krum(x, policy.f, m_given))
        assert f"mean of the {policy.multi_krum_kept(6)} agents" in policy.describe(6)


def test_a_rule_without_steps_says_no_steps_in_its_method() -> None:
    """The f steps apply to the trimmed mean only: ``--policy krum``'s method was "krum(f=1
    (f=2 from 6 agents on), tempered)". The numbers do not move: every rule's f over 7
    agents is the same."""
    assert swarm_policy(None).method == "trimmed_mean(f=1 (f=2 from 6 agents on), tempered)"
    for name in POLICIES:
        policy = swarm_policy(name)
        assert policy.f_steps == SWARM_POLICY.f_steps
        if name != "trimmed_mean":
            assert policy.method == f"{name}(f=1, tempered)"
            assert policy.f_for(7) == policy.f == 1


# --- 2. real runs: each --policy, the consensus equal to one agent's, the line names it ---

#: Per rule, the agents and track record under which its consensus is one agent's numbers
#: on the last 400 S&P 500 returns (a trimmed mean or median of 3: the middle agent; Krum:
#: its pick; multi-Krum and the geometric median: the weights of 60 days).
RUNS = {
    "trimmed_mean": ("nig,bootstrap,student-t", "0"),
    "median": ("nig,bootstrap,student-t", "0"),
    "krum": ("nig,bootstrap,student-t,garch-t,evt", "0"),
    "multi_krum": ("nig,bootstrap,student-t,garch-t,evt", "60"),
    "geometric_median": ("nig,bootstrap,student-t", "60"),
}


def test_every_cli_policy_has_a_run() -> None:
    assert set(RUNS) == set(POLICIES)


def _equal(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@pytest.mark.parametrize("policy", sorted(RUNS))
def test_var_explains_a_consensus_equal_to_one_agent(policy: str, tmp_path: Path) -> None:
    agents, days = RUNS[policy]
    args = ["var", "--agents", agents, "--policy", policy, "--track-days", days, "--last",
            "400", "--alpha", "0.99,0.975", "--workers", "1", "--home", str(tmp_path)]
    env = {"SWARMVAR_CONFIG": ""}
    got = runner.invoke(app, [*args, "--json"], env=env)
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    kept = doc["consensus_kept"]
    forecasts = [f for f in doc["forecasts"] if f["agent"] != "consensus"]
    whole = set()  # agents whose VaR and ES a level's consensus is
    for c in doc["consensus"]:
        at = [f for f in forecasts if f["alpha"] == c["alpha"]]
        assert any(_equal(c["var"], f["var"]) for f in at)  # the one-agent look, by figure
        whole |= {f["agent"] for f in at if _equal(c["var"], f["var"])
                  and _equal(c["es"], f["es"])}
    assert kept, doc["consensus"]
    # the stored method names the rule run (f steps only where they apply)
    assert all(c["method"].startswith(f"{policy}(f=1") for c in doc["consensus"])
    assert ("from 6 agents on" in doc["consensus"][0]["method"]) == (policy == "trimmed_mean")
    if policy in ("trimmed_mean", "median"):  # each figure its middle agent's (of 3)
        assert kept == {"trimmed_mean": "the trimmed mean keeps 1 of 3 agents for each "
                        "figure, the middle one (shown: the VaR's)",
                        "median": "the median of 3 agents is the middle one of each figure "
                        "(shown: the VaR's)"}[policy]
    else:  # a whole forecast taken: the line names its agent
        assert whole, "the scenario no longer gives one agent's VaR and ES"
        assert all(a in kept for a in whole), (kept, whole)
    # the same line is printed under the consensus table, before the weights' note
    shown = runner.invoke(app, args, env=env)
    assert shown.exit_code == 0, shown.output
    text = plain(shown.output)
    assert text.index("swarm consensus") < text.index(kept) < text.index(doc["note"]), text
