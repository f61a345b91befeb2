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
