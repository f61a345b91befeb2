"""ES backtests' p-values against outside references.

* McNeil & Frey's bootstrap p-value of the one-sided t statistic: for
  normal exceedance residuals the statistic's null law is Student-t with
  ``k - 1`` degrees of freedom (scipy), which the bootstrap-t approximates
  to ``O(1/k)``.
* Acerbi & Szekely's Monte Carlo p-value: an independent Monte Carlo in the
  test (scipy's t draws, ``Z2`` written out from the paper) gives the same
  p-value within Monte Carlo error; and the p-value is uniform under the null
  (scipy's Kolmogorov-Smirnov test), on Student-t data with known VaR/ES.
* The VaR/ES of a Student-t loss used by these tests: closed form against
  scipy's quadrature.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from _refs_t import t_var_es  # tests/_refs_t.py (on the path: conftest)
from swarmvar.validation import acerbi_szekely_z2, mcneil_frey, student_t_sampler


@pytest.mark.parametrize("df", [3.0, 6.0])
def test_t_es_closed_form_is_the_tail_integral(df: float) -> None:
    v, e = t_var_es(np.array([1.0]), df, 0.975)
    tail = integrate.quad(lambda x: x * stats.t.pdf(x, df), v[0], np.inf, epsabs=1e-13)[0]
    assert e[0] == pytest.approx(tail / 0.025, rel=1e-8)


# (seed, shift) pairs picked by the t statistic they give (k = 300): from the far left to
# beyond the bootstrap's resolution; the label is checked, so it stays true
@pytest.mark.parametrize(("seed", "shift", "t_label"), [
    (0, -0.05, -1.46), (3, -0.05, -0.01), (0, 0.08, 0.75), (0, 0.12, 1.43), (3, 0.08, 2.21),
    (0, 0.2, 2.79), (4, 0.2, 5.19)])
def test_mcneil_frey_bootstrap_pvalue_is_near_the_t_reference(seed: int, shift: float,
                                                              t_label: float) -> None:
    rng = np.random.default_rng(seed)
    k, n_boot = 300, 10_000
    es = np.full(k, 2.0)
    resid = rng.standard_normal(k) + shift
    losses = es + resid  # every day a hit (VaR below every loss), residual scale 1
    res = mcneil_frey(losses, np.full(k, -10.0), es, scale=np.ones(k), n_boot=n_boot,
                      seed=seed)
    t = resid.mean() / (resid.std(ddof=1) / np.sqrt(k))
    assert res.statistic == pytest.approx(t, rel=1e-12)
    assert t == pytest.approx(t_label, abs=0.01)
    reference = float(stats.t.sf(t, k - 1))
    if reference < 1 / n_boot:
        # below the bootstrap's resolution: at most one resample as extreme as observed
        assert res.pvalue <= 2 / (n_boot + 1), (res.pvalue, reference)
        return
    # on the z scale, so that small p-values are compared as closely as middle ones:
    # 4 Monte Carlo sd of n_boot resamples plus 0.1 for the bootstrap-t's O(1/k)
    z_ref = float(stats.norm.isf(reference))
    mc_sd = np.sqrt(reference * (1 - reference) / n_boot) / stats.norm.pdf(z_ref)
    assert abs(stats.norm.isf(res.pvalue) - z_ref) <= 0.1 + 4 * mc_sd, (res.pvalue, reference)


def z2_written_out(losses: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float) -> np.ndarray:
    """Acerbi & Szekely (2014), test 2: ``sum_t L_t I_t / (T (1 - alpha) ES_t) - 1``."""
    t_days = var.size
    hit = losses > var
    return np.asarray(np.sum(np.where(hit, losses / es, 0.0), axis=-1) / (t_days * (1 - alpha))
                      - 1.0)


@pytest.mark.parametrize("inflate", [1.0, 1.25])
def test_z2_pvalue_agrees_with_an_independent_monte_carlo(inflate: float) -> None:
    rng = np.random.default_rng(7)
    n, alpha, df = 250, 0.975, 5.0
    scale = 0.01 * np.exp(0.25 * rng.standard_normal(n))
    var, es = t_var_es(scale, df, alpha)
    losses = inflate * scale * stats.t.rvs(df, size=n, random_state=rng)
    m = 4000
    res = acerbi_szekely_z2(losses, var, es, alpha, sampler=student_t_sampler(0.0, scale, df),
                            n_sim=m, seed=11)
    observed = float(z2_written_out(losses, var, es, alpha))
    assert res.statistic == pytest.approx(observed, rel=1e-12, abs=1e-12)
    sims = scale * stats.t.rvs(df, size=(m, n), random_state=np.random.default_rng(99))
    ref = (1 + np.sum(z2_written_out(sims, var, es, alpha) >= observed)) / (m + 1)
    # two independent Monte Carlo estimates of one p: difference sd sqrt(2 p (1 - p) / m)
    sd = np.sqrt(2 * max(ref * (1 - ref), 1 / m) / m)
    assert abs(res.pvalue - ref) < 4.5 * sd, (res.pvalue, ref)


def test_z2_pvalue_is_uniform_under_the_null() -> None:
    # known truth: losses drawn from the very predictive the VaR/ES come from
    rng = np.random.default_rng(8)
    n, alpha, df = 250, 0.975, 4.0
    scale = 0.01 * np.exp(0.3 * rng.standard_normal(n))
    var, es = t_var_es(scale, df, alpha)
    sampler = student_t_sampler(0.0, scale, df, above=var)
    p = [acerbi_szekely_z2(scale * rng.standard_t(df, n), var, es, alpha, sampler=sampler,
                           n_sim=199, seed=rng).pvalue for _ in range(200)]
    # p = (1 + count) / 200 takes the values k / 200: uniform on them under the null
    assert stats.kstest(np.asarray(p) - 0.5 / 200, "uniform").pvalue > 0.001
