"""Simulation-based calibration and interval coverage, for every Bayesian agent available."""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from swarmvar.errors import InvalidParameter
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.validation import interval_coverage, sbc
from swarmvar.validation.sbc import rank_of, uniformity


def test_rank_and_uniformity_helpers() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([1.0, 2.0, 3.0, 4.0])
    assert rank_of(0.0, draws, rng) == 0
    assert rank_of(2.5, draws, rng) == 2
    assert rank_of(9.0, draws, rng) == 4
    assert {rank_of(2.0, draws, rng) for _ in range(200)} == {1, 2}  # tie broken at random
    counts, p = uniformity(np.arange(100).repeat(3), 99, 10)
    assert counts.tolist() == [30] * 10 and p == pytest.approx(1.0)
    counts, p = uniformity(np.r_[np.zeros(150, dtype=np.int64), np.arange(100)], 99, 10)
    assert counts[0] == 160 and p < 1e-10
    want = stats.chisquare(counts).pvalue
    assert p == pytest.approx(want)


def test_sbc_passes_for_a_calibrated_conjugate_agent(known_mean_normal: Any) -> None:
    res = sbc(lambda: known_mean_normal(), n_sims=300, n_obs=100, seed=1)
    assert set(res.ranks) == {"sigma2"}
    assert res.ranks["sigma2"].min() >= 0 and res.ranks["sigma2"].max() <= 99
    assert res.histograms["sigma2"].sum() == 300
    assert res.passed(0.01), res.pvalues


def test_sbc_catches_an_overconfident_posterior(known_mean_normal: Any) -> None:
    class Overconfident(known_mean_normal):  # type: ignore[misc, valid-type]
        def posterior_draws(self) -> dict[str, np.ndarray]:
            a, b = self.posterior
            a, b = 6 * a, 6 * b  # same centre, far too narrow
            return {"sigma2": b / np.random.default_rng(self._seed).gamma(a, 1.0, size=1000)}

    res = sbc(lambda: Overconfident(), n_sims=300, n_obs=100, seed=1)
    assert not res.passed(0.01)
    hist = res.histograms["sigma2"]
    assert hist[0] + hist[-1] > 3 * hist[4:6].sum()  # the U shape of a too-narrow posterior


def test_sbc_for_normal_inverse_gamma_without_forgetting() -> None:
    res = sbc(lambda: NormalInverseGamma(forgetting=1.0), n_sims=400, n_obs=120, seed=2)
    assert set(res.pvalues) == {"mu", "sigma2"}
    assert res.passed(0.01), res.pvalues


def test_sbc_for_normal_inverse_gamma_with_forgetting_is_miscalibrated() -> None:
    # forgetting discards information, so the posterior is too wide for iid data: a hump
    res = sbc(lambda: NormalInverseGamma(forgetting=0.9), n_sims=400, n_obs=120, seed=2)
    assert not res.passed(0.01)


def test_sbc_rejects_bad_settings(known_mean_normal: Any) -> None:
    with pytest.raises(InvalidParameter):
        sbc(lambda: known_mean_normal(), n_draws=100, bins=10)
    with pytest.raises(InvalidParameter):
        sbc(lambda: known_mean_normal(), n_sims=0)
    with pytest.raises(InvalidParameter):
        sbc(lambda: known_mean_normal(), n_draws=1999, bins=10, n_sims=2)  # too few draws


def test_sbc_refuses_an_agent_without_a_scalar_parametric_prior() -> None:
    # the Bayesian bootstrap's "prior" is a Dirichlet over the weights of observed returns
    with pytest.raises(InvalidParameter, match="scalar parameters"):
        sbc(lambda: BayesianBootstrap(window=50), n_sims=2)


def _lazy_agent(name: str) -> Any:
    try:
        module = importlib.import_module(f"swarmvar.models.{name[0]}")
        return getattr(module, name[1])
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{name[1]} is not importable yet ({exc})")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "kwargs"),
    [
        (("student_t", "StudentT"), {}),
        (("garch_t", "GarchT"), {}),
        (("garch_evt", "GarchEVT"), {}),
    ],
    ids=["StudentT", "GarchT", "GarchEVT"],
)
def test_sbc_for_the_sampling_agents(where: tuple[str, str], kwargs: dict[str, Any]) -> None:
    cls = _lazy_agent(where)
    res = sbc(lambda: cls(**kwargs), n_sims=100, n_obs=500, n_draws=99, bins=10, seed=3)
    assert res.passed(0.01), res.pvalues


def test_90_percent_intervals_cover_the_true_var() -> None:
    mu, sigma, alpha = 0.0003, 0.012, 0.99
    true_var = -(mu + sigma * stats.norm.ppf(1 - alpha))
    true_es = -mu + sigma * stats.norm.pdf(stats.norm.ppf(alpha)) / (1 - alpha)

    def simulate(rng: np.random.Generator, n: int) -> np.ndarray:
        return mu + sigma * rng.standard_normal(n)

    res = interval_coverage(
        lambda: NormalInverseGamma(forgetting=1.0), simulate, true_var, true_es=true_es,
        alpha=alpha, n_obs=500, n_rep=400, seed=4,
    )
    assert res.interval_mass == pytest.approx(0.90)
    assert 0.85 <= res.fraction <= 0.95, res.fraction
    assert res.es_fraction is not None and 0.85 <= res.es_fraction <= 0.95
    low, high = res.ci
    assert low < res.fraction < high


def test_interval_coverage_detects_a_misspecified_model() -> None:
    # heavy-tailed truth, normal model: the 99% VaR interval sits too low
    nu, scale = 3.0, 0.01
    true_var = scale * stats.t.ppf(0.99, nu)

    def simulate(rng: np.random.Generator, n: int) -> np.ndarray:
        return scale * rng.standard_t(nu, n)

    res = interval_coverage(lambda: NormalInverseGamma(forgetting=1.0), simulate, true_var,
                            alpha=0.99, n_obs=1000, n_rep=100, seed=5)
    assert res.fraction < 0.5
    assert math.isfinite(res.ci[0])


@pytest.mark.slow
def test_student_t_agent_intervals_cover_the_true_var() -> None:
    cls = _lazy_agent(("student_t", "StudentT"))
    mu, scale, nu, alpha = 0.0004, 0.009, 5.0, 0.99
    true_var = -(mu + scale * stats.t.ppf(1 - alpha, nu))

    def simulate(rng: np.random.Generator, n: int) -> np.ndarray:
        return mu + scale * rng.standard_t(nu, n)

    res = interval_coverage(lambda: cls(), simulate, true_var, alpha=alpha, n_obs=500,
                            n_rep=300, seed=6)
    assert 0.85 <= res.fraction <= 0.95, (res.fraction, res.ci)
