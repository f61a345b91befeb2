"""A checkpoint's fingerprint names the policy as the roster meets it (review of the f = 2 step).

Homes checkpointed before ``DEFAULT_POLICY`` gained ``f_steps`` hold the policy
without them; with five agents the step is never reached and the numbers are the
same, so such a home must still resume. With six agents the step is reached and the
fingerprint must differ.
"""

from __future__ import annotations

import dataclasses

from swarmvar.swarm.beat import PortfolioConfig
from swarmvar.swarm.consensus import SWARM_POLICY

FIVE = ("NormalInverseGamma", "BayesianBootstrap", "StudentT", "GarchT", "GarchEVT")


def test_an_unreached_f_step_leaves_the_fingerprint_as_before_it_existed() -> None:
    assert SWARM_POLICY.f_steps  # the step this test is about
    before = dataclasses.replace(SWARM_POLICY, f_steps=())
    now = PortfolioConfig("p", FIVE).fingerprint()
    old = PortfolioConfig("p", FIVE, policy=before).fingerprint()
    assert now == old


def test_a_reached_f_step_changes_the_fingerprint() -> None:
    six = (*FIVE, "BetaSkewTEgarch")
    before = dataclasses.replace(SWARM_POLICY, f_steps=())
    assert (PortfolioConfig("p", six).fingerprint()
            != PortfolioConfig("p", six, policy=before).fingerprint())


def test_the_fingerprint_keeps_the_spelling_checkpoints_hold_under_every_rule() -> None:
    """``Policy.method`` says f steps for the trimmed mean only (since 2026-12-07); the
    fingerprint keeps the spelling homes were checkpointed with, so a home run under Krum
    or the median with six agents resumes (its numbers never depended on the steps)."""
    from swarmvar.consensus import Aggregator

    six = (*FIVE, "BetaSkewTEgarch")
    (n, fn), = SWARM_POLICY.f_steps
    weighting = SWARM_POLICY.weighting.value
    for rule in (Aggregator.KRUM, Aggregator.MEDIAN, Aggregator.TRIMMED_MEAN):
        policy = dataclasses.replace(SWARM_POLICY, aggregator=rule)
        saved = f"{rule.value}(f={policy.f} (f={fn} from {n} agents on), {weighting})"
        assert PortfolioConfig("p", six, policy=policy).fingerprint()["policy"] == saved
        assert PortfolioConfig("p", FIVE, policy=policy).fingerprint()["policy"] == (
            f"{rule.value}(f={policy.f}, {weighting})")
    # the trimmed mean's spelling is Policy.method's own
    assert PortfolioConfig("p", six).fingerprint()["policy"] == SWARM_POLICY.method
