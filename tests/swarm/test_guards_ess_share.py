"""The variance guards read the particle weights' ESS as a share of the cloud
(``Diagnostics.ess_fraction``), the share the arbiter's fit-health rule and the agents' own
warning read: one cut, 5 % of the particles, whatever the fit's ``runs x particles`` draws."""

from __future__ import annotations

import pytest

from swarmvar.arbiter.signals import SignalConfig, fit_failed
from swarmvar.swarm.roles import Guards, RoleConfig
from swarmvar.types import Diagnostics


def _flags(diag: Diagnostics, config: RoleConfig | None = None) -> dict[str, float] | None:
    """The guard's finding for one agent with ``diag`` (None: nothing flagged)."""
    found = Guards(("a",), config or RoleConfig()).check(1, {"a": 1.0}, {"a": diag}, cooldown=5)
    assert len(found) <= 1
    return dict(found[0].detail) if found else None


@pytest.mark.parametrize("particles, runs", [(300, 4), (500, 4), (1000, 2), (2000, 4)])
def test_guards_flag_at_the_same_share_of_every_cloud(particles: int, runs: int) -> None:
    cut = RoleConfig().guard_min_ess * particles
    below = Diagnostics(method="smc", ess=cut - 1.0, draws=runs * particles, particles=particles)
    found = _flags(below)
    assert found is not None
    assert found["ess_fraction"] == pytest.approx((cut - 1.0) / particles)
    at = Diagnostics(method="smc", ess=cut, draws=runs * particles, particles=particles)
    assert _flags(at) is None
    # just under runs x the cut the cloud passes; read as a share of the draws (the cloud
    # size unknown, as before) the same ESS is flagged
    half = Diagnostics(method="smc", ess=runs * cut - 1.0, draws=runs * particles,
                       particles=particles)
    assert _flags(half) is None
    assert _flags(Diagnostics(method="smc", ess=runs * cut - 1.0, draws=runs * particles))


def test_without_a_cloud_size_the_guards_read_the_draws_as_before() -> None:
    assert _flags(Diagnostics(method="smc", ess=99.0, draws=2000)) == {
        "ess_fraction": pytest.approx(99.0 / 2000)}
    assert _flags(Diagnostics(method="smc", ess=100.0, draws=2000)) is None
    # no ESS, or nothing to take a share of: nothing to judge
    assert _flags(Diagnostics(method="smc", ess=1.0)) is None
    assert _flags(Diagnostics(method="nuts", draws=4000, particles=2000)) is None
    # the guards' own cut is theirs
    strict = RoleConfig(guard_min_ess=0.5)
    assert _flags(Diagnostics(method="smc", ess=240.0, draws=2000, particles=500), strict)


def test_guards_and_the_arbiter_judge_the_weights_alike() -> None:
    """At the shared 5 % cut the guards flag exactly the clouds the arbiter calls failed."""
    assert RoleConfig().guard_min_ess == SignalConfig().min_ess_fraction
    for particles in (300, 500):
        for ess in range(1, particles + 1, 3):
            d = Diagnostics(method="smc", ess=float(ess), draws=4 * particles,
                            particles=particles)
            assert (_flags(d) is not None) == fit_failed(d, SignalConfig()), (particles, ess)


def test_the_guards_cut_is_the_shared_constant() -> None:
    """RoleConfig.guard_min_ess's default is types.WEIGHTS_MIN_SHARE, as are the arbiter's
    min_ess_fraction and the agents' REFIT_MIN_ESS: changing one changes all."""
    from swarmvar.models._online_agent import REFIT_MIN_ESS
    from swarmvar.types import WEIGHTS_MIN_SHARE

    assert RoleConfig().guard_min_ess == WEIGHTS_MIN_SHARE == REFIT_MIN_ESS
    assert SignalConfig().min_ess_fraction == WEIGHTS_MIN_SHARE
    cut = WEIGHTS_MIN_SHARE * 500
    assert _flags(Diagnostics(method="smc", ess=cut - 1.0, draws=2000, particles=500))
    assert _flags(Diagnostics(method="smc", ess=cut, draws=2000, particles=500)) is None


def test_a_collapsed_cloud_is_flagged_by_finite_keys() -> None:
    """A collapsed cloud's R-hat is not a number (0/0): the guards ask for a refit as the
    arbiter fails it, and say so with finite values (the ledger takes no NaN)."""
    nan = float("nan")
    collapsed = Diagnostics(method="smc", rhat={"mu": nan, "omega": 1.5}, ess=500.0,
                            draws=2000, particles=500)
    assert _flags(collapsed) == {"rhat_not_a_number": 1.0}
    assert fit_failed(collapsed, SignalConfig())
    nan_share = Diagnostics(method="smc", ess=nan, draws=2000, particles=500)
    assert _flags(nan_share) == {"ess_fraction_not_a_number": 1.0}
    huge = Diagnostics(method="smc", rhat={"mu": 1.2}, ess=500.0, draws=2000, particles=500)
    assert _flags(huge) == {"rhat": pytest.approx(1.2)}
