"""The particle weights' ESS read as a share of the cloud they weigh (``Diagnostics.particles``),
not of the fit's ``runs x particles`` draws nor against MCMC's absolute 400: a healthy small
cloud is no ConvergenceWarning, a degenerate one still warns and fails the arbiter's rule, and
diagnostics made before the field existed read back with the old share."""

from __future__ import annotations

import dataclasses
import math
import pickle
import warnings
from typing import Any

import numpy as np
import pytest

from swarmvar.arbiter.signals import SignalConfig, fit_failed
from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning
from swarmvar.models import (
    BetaSkewTEgarch,
    GarchEVT,
    GarchT,
    HarArch,
    MarkovSwitching,
    MarkovSwitchingGarch,
    StudentT,
)
from swarmvar.models.base import ESS_MIN, RHAT_MAX, Agent
from swarmvar.types import Diagnostics


@pytest.fixture(scope="module")
def sp500() -> np.ndarray:
    return load("sp500").to_numpy()


def _fit(agent: Agent, x: np.ndarray, seed: int) -> tuple[Agent, list[str]]:
    """``agent`` fitted on ``x``, and the messages of the ConvergenceWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.fit(x, seed=seed)
    return agent, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_the_share_is_of_the_cloud_when_its_size_is_known() -> None:
    d = Diagnostics(method="smc", ess=380.0, draws=2000, particles=500)
    assert d.ess_fraction == pytest.approx(0.76)
    assert dataclasses.replace(d, particles=None).ess_fraction == pytest.approx(0.19)
    assert dataclasses.replace(d, particles=0).ess_fraction == pytest.approx(0.19)
    assert dataclasses.replace(d, particles=None, draws=None).ess_fraction is None
    assert dataclasses.replace(d, ess=None).ess_fraction is None
    # the one-line summary (what ledger records and JSON keep) does not change
    assert d.summary() == dataclasses.replace(d, particles=None).summary()


@pytest.mark.parametrize("cls", [GarchT, BetaSkewTEgarch])
def test_a_healthy_300_particle_fit_does_not_warn_about_its_weights(
        cls: type[Agent], sp500: np.ndarray) -> None:
    """particles=300 (4 runs): right after the fit the weights are equal, ESS 300 of the
    cloud; the old rule held it to 400 and always warned "ESS 300 < 400" (~0.3 s each)."""
    agent, said = _fit(cls(particles=300), sp500[1000:2000], seed=0)
    d = agent.diagnostics
    assert d.particles == 300 and d.draws == 1200
    assert d.ess == pytest.approx(300.0) and d.ess_fraction == pytest.approx(1.0)
    assert d.min_ess is not None and d.min_ess < ESS_MIN  # what the old rule read
    chains = [*d.ess_bulk.values(), *d.ess_tail.values()]
    assert min(chains) >= ESS_MIN  # the fit over its runs is sound
    assert not [m for m in said if "ESS" in m], said
    if d.max_rhat is not None and d.max_rhat <= RHAT_MAX:
        assert not said, said


def test_a_degenerate_cloud_still_warns_and_fails(sp500: np.ndarray) -> None:
    agent, _ = _fit(GarchT(), sp500[1000:2000], seed=0)  # 500 particles, 4 runs
    fitted = agent.diagnostics
    assert fitted.particles == 500 and fitted.draws == 2000
    degenerate = dataclasses.replace(fitted, ess=10.0)  # 10 of 500: 2 % of the cloud
    with pytest.warns(ConvergenceWarning, match=r"weights' ESS 10 is 2\.0% of the cloud"):
        agent._warn_if_unconverged(degenerate)
    assert fit_failed(degenerate, SignalConfig())
    # the cut is 5 % of the cloud (25 of 500), not of the 2,000 draws (100)
    thin = dataclasses.replace(fitted, ess=30.0)
    assert not fit_failed(thin, SignalConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        agent._warn_if_unconverged(thin)
    # without a cloud size (diagnostics from before the field) the share is of the draws
    old = dataclasses.replace(thin, particles=None)
    assert fit_failed(old, SignalConfig())
    with pytest.warns(ConvergenceWarning, match=r"ESS 30 is 1\.5% of the draws"):
        agent._warn_if_unconverged(old)
    # neither cloud nor draws: the weights' ESS is held to the absolute 400
    with pytest.warns(ConvergenceWarning, match="weights' ESS 380 < 400"):
        agent._warn_if_unconverged(Diagnostics(method="smc", ess=380.0))


_SMALL: list[tuple[Any, dict[str, Any], int]] = [
    (GarchT, {}, 600), (GarchEVT, {}, 600), (BetaSkewTEgarch, {}, 600), (HarArch, {}, 400),
    (MarkovSwitching, {}, 400), (MarkovSwitchingGarch, {}, 400),
    (StudentT, {"particles": 150}, 400)]


@pytest.mark.parametrize("cls, extra, n", _SMALL, ids=[c[0].__name__ for c in _SMALL])
def test_every_particle_agent_reports_its_cloud(cls: Any, extra: dict[str, Any], n: int,
                                                sp500: np.ndarray) -> None:
    """Each agent's diagnostics name the cloud its weights are over, after a fit, an update
    and a state round trip (small clouds, < 1 s each but the first JAX compile)."""
    params = {"particles": 100, "runs": 2, **extra}
    agent, _ = _fit(cls(**params), sp500[2000:2000 + n], seed=1)
    cloud = len(next(iter(agent.posterior_draws().values())))
    for _ in range(2):
        d = agent.diagnostics
        assert d.particles == cloud == params["particles"]
        assert d.ess is not None and d.ess_fraction == pytest.approx(d.ess / cloud)
        assert d.draws is not None and d.draws >= cloud
        agent.update(float(sp500[2000 + n]))
    back = type(agent).from_state(agent.state())
    assert back.diagnostics == agent.diagnostics


def _as_before(d: Diagnostics) -> Diagnostics:
    """``d`` without ``particles`` in its instance state, as pickled before the field."""
    object.__delattr__(d, "particles")
    assert "particles" not in vars(d)
    return d


def test_diagnostics_pickled_before_the_field_read_back() -> None:
    state = {"method": "smc", "rhat": {"mu": 1.002}, "ess_bulk": {"mu": 1700.0},
             "ess_tail": {"mu": 1600.0}, "ess": 380.0, "acceptance": 0.4, "draws": 2000,
             "seconds": 1.5}
    blob = pickle.dumps(_as_before(Diagnostics(**state)))
    assert b"particles" not in blob
    back = pickle.loads(blob)
    assert type(back) is Diagnostics and back.particles is None
    assert back == Diagnostics(**state)
    assert back.ess_fraction == pytest.approx(0.19)  # of the draws, as before
    assert not fit_failed(back, SignalConfig())
    assert fit_failed(dataclasses.replace(back, ess=90.0), SignalConfig())
    # and one made now round-trips with its cloud
    now = dataclasses.replace(back, particles=500)
    assert pickle.loads(pickle.dumps(now)) == now


def test_one_share_everywhere() -> None:
    """The fit warning's, the arbiter's, the guards' and the agents' refit-route cut are one
    constant (types.WEIGHTS_MIN_SHARE), not four equal literals."""
    from swarmvar.models._online_agent import REFIT_MIN_ESS
    from swarmvar.swarm.roles import RoleConfig
    from swarmvar.types import WEIGHTS_MIN_SHARE

    assert REFIT_MIN_ESS == RoleConfig().guard_min_ess == SignalConfig().min_ess_fraction \
        == WEIGHTS_MIN_SHARE == 0.05


_AGENTS_CUTS = SignalConfig(max_rhat=RHAT_MAX, min_ess=ESS_MIN)


@pytest.mark.parametrize("d", [
    Diagnostics(method="exact"),
    Diagnostics(method="smc", rhat={"mu": 1.002}, ess_bulk={"mu": 1700.0}, ess=30.0,
                draws=2000, particles=500),
    Diagnostics(method="smc", rhat={"mu": 1.002}, ess_bulk={"mu": 1700.0}, ess=20.0,
                draws=2000, particles=500),
    Diagnostics(method="smc", ess=30.0, draws=2000),
    Diagnostics(method="smc", ess=380.0),
    Diagnostics(method="nuts", rhat={"mu": 1.02}, ess_bulk={"mu": 900.0}),
    Diagnostics(method="nuts", rhat={"mu": 1.0}, ess_tail={"mu": 399.0}),
    Diagnostics(method="nuts", rhat={"mu": math.nan, "nu": 1.5}),
    Diagnostics(method="nuts", rhat={"nu": 1.5, "mu": math.nan}),
    Diagnostics(method="nuts", rhat={"mu": 1.0}, ess_bulk={"mu": math.nan, "nu": 900.0}),
    Diagnostics(method="smc", ess=math.nan, draws=2000, particles=500),
])
def test_the_warning_and_the_arbiter_read_one_rule(d: Diagnostics) -> None:
    """At the agents' cut-offs the fit warning fires exactly when the arbiter's rule fails
    the fit, each doubt said in the warning."""
    agent = GarchT()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent._warn_if_unconverged(d)
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert bool(said) == fit_failed(d, _AGENTS_CUTS)
    for doubt in d.doubts(RHAT_MAX, ESS_MIN):
        assert doubt in said[0]


def test_a_collapsed_cloud_warns() -> None:
    """Every run of a fit collapsed onto one value of ``mu``: its split R-hat is NaN (0/0,
    computed quietly), its ESS figures the whole cloud; NaN > 1.01 is False, so the old
    rule said nothing. Now the warning names it, and the arbiter's rule fails it."""
    from swarmvar.models.diagnostics import smc_diagnostics, summarize

    runs, particles = 4, 300
    chains = {"mu": np.full((runs, particles), 2e-4),
              "nu": np.random.default_rng(1).normal(8.0, 1.0, size=(runs, particles))}
    rhat, bulk, tail = summarize(chains)
    d = smc_diagnostics({"rhat": rhat, "ess_bulk": bulk, "ess_tail": tail},
                        ess=float(particles), acceptance=0.0, draws=runs * particles,
                        seconds=0.1, particles=particles)
    assert math.isnan(d.rhat["mu"]) and math.isnan(d.max_rhat or 0.0)
    with pytest.warns(ConvergenceWarning, match=r"split R-hat NaN \(not a number\) > 1\.01 "
                                                 "for mu"):
        GarchT()._warn_if_unconverged(d)
    assert fit_failed(d, SignalConfig())


def test_the_online_agents_share_one_diagnostics() -> None:
    """OnlineAgent._diagnostics names the cloud itself: HarArch and the ParticleAgent family
    no longer patch it in, and GarchT brings only its weights' ESS rule."""
    from swarmvar.models import _garch_smc
    from swarmvar.models._online_agent import OnlineAgent
    from swarmvar.models._particle_agent import ParticleAgent

    for cls in (GarchT, HarArch, ParticleAgent, MarkovSwitching, MarkovSwitchingGarch,
                BetaSkewTEgarch):
        assert cls._diagnostics is OnlineAgent._diagnostics, cls
    agent, _ = _fit(GarchT(particles=100, runs=2), load("sp500").to_numpy()[:400], seed=2)
    agent.update(-0.03)  # unequal weights: the two ESS rules could part in the last bit
    assert agent.diagnostics.ess == _garch_smc.ess(agent._logw)


def test_a_cloud_smaller_than_particles_is_reported_at_its_size(sp500: np.ndarray) -> None:
    """The cloud's actual size (its log weights'), not the ``particles`` asked for: a
    StudentT state whose cloud NUTS thinned below ``particles`` (``ceil(draws /
    particles)``: 4,000 draws for 3,000 particles keep 2,000) takes its share of those."""
    agent, _ = _fit(StudentT(particles=150, runs=2), sp500[2000:2400], seed=1)
    scalars, arrays = agent._get_state()
    kept = {k: (v[:120] if k != "history" else v) for k, v in arrays.items()}
    small = StudentT(particles=150, runs=2)
    small._set_state(scalars, kept)
    small._fitted = True
    d = small.diagnostics
    assert small.particles == 150 and d.particles == small._logw.size == 120
    assert d.ess is not None and d.ess_fraction == pytest.approx(d.ess / 120)


def test_an_online_agents_diagnostics_count_its_log_weights(sp500: np.ndarray) -> None:
    """``Diagnostics.particles`` is the cloud the log weights weigh, not the ``particles``
    setting: a GarchT cloud cut to 120 of its 150 particles (installed by ``_set_cloud``,
    so parameters, variances and weights stay one cloud) reports 120, after an update too,
    and its ESS share is of the 120."""
    agent, _ = _fit(GarchT(particles=150, runs=2, ess_threshold=0.01),
                    sp500[2000:2400], seed=3)
    keep = np.arange(120)
    agent._set_cloud(agent._cloud.take(keep), np.array(agent._logw[keep]))
    assert agent.particles == 150 and agent._theta.mu.size == 120
    for _ in range(2):
        d = agent.diagnostics
        assert d.particles == agent._logw.size == 120
        assert d.ess is not None and d.ess <= 120.0
        assert d.ess_fraction == pytest.approx(d.ess / 120.0)
        agent.update(float(sp500[2400]))  # ess_threshold 0.01: no resample-move
    assert agent._logw.size == 120
