"""The GARCH fit started at the posterior mode: mode search, start proposal, fallback."""

import math

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.models import _garch_lik as lik
from swarmvar.models import _garch_smc as smc
from swarmvar.models.diagnostics import summarize


@pytest.fixture(scope="module")
def sp500():
    return load("sp500").to_numpy()


def _exact_log_posterior(r, u):
    """The same density from variance_path (scipy.signal) and t_constants."""
    th = lik.from_unconstrained(u[None, :])
    mu = float(th.mu[0])
    h = lik.variance_path(r, mu, float(th.omega[0]), float(th.alpha[0]), float(th.beta[0]),
                          float(th.gamma[0]))[:-1]
    const, half_nu1, inv_nm2 = (float(c[0]) for c in lik.t_constants(th.nu))
    e = r - mu
    ll = r.size * const - 0.5 * np.log(h).sum() - half_nu1 * np.log1p(e * e * inv_nm2 / h).sum()
    return float(lik.log_prior_u(u[None, :])[0] + ll)


@pytest.mark.parametrize("asymmetric", [True, False])
def test_one_vector_log_posterior_is_the_model_density(sp500, asymmetric):
    r = sp500[1000:2000]
    u = lik.to_unconstrained(lik.sample_prior(20, np.random.default_rng(1), asymmetric), asymmetric)
    moments = lik.backcast_moments(r)
    ll32, _ = lik.loglik(r, lik.from_unconstrained(u))
    for k in range(u.shape[0]):
        exact = _exact_log_posterior(r, u[k])
        assert lik.log_posterior_one(r, u[k], moments) == pytest.approx(exact, rel=1e-12, abs=1e-9)
        if np.isfinite(ll32[k]):  # the float32 likelihood of the SMC, to its rounding
            assert ll32[k] + lik.log_prior_u(u[k : k + 1])[0] == pytest.approx(exact, abs=0.05)


@pytest.mark.parametrize("asymmetric", [True, False])
def test_posterior_mode_is_a_local_maximum_with_a_positive_definite_covariance(sp500, asymmetric):
    r = sp500[-3500:-2500]
    mode, cov = lik.posterior_mode(r, asymmetric)
    moments = lik.backcast_moments(r)
    best = lik.log_posterior_one(r, mode, moments)
    sd = np.sqrt(np.diag(cov))
    for i in range(mode.size):  # a tenth of a posterior sd either way lowers the density
        for sign in (-1.0, 1.0):
            step = np.zeros(mode.size)
            step[i] = sign * 0.1 * sd[i]
            assert lik.log_posterior_one(r, mode + step, moments) < best + 1e-6
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # the mode is where arch's MLE is, up to the prior and the coordinates (within 2 sds)
    th = lik.from_unconstrained(mode[None, :])
    assert float(th.persistence[0]) == pytest.approx(0.98, abs=0.02)
    assert 4.0 < float(th.nu[0]) < 15.0


def test_start_proposal_is_a_normalized_defensive_mixture(sp500):
    r = sp500[-3500:-2500]
    q = smc.StartProposal.at_mode(r, True)
    assert q is not None
    u = q.sample(40000, np.random.default_rng(2))
    lp = lik.log_prior_u(u)
    lq = q.logpdf(u, lp)
    # against scipy's multivariate t and the prior, mixed
    ref_t = stats.multivariate_t(loc=q.mean, shape=q.chol @ q.chol.T, df=smc.START_DF)
    k = np.arange(0, 40000, 997)
    ref = np.logaddexp(math.log1p(-smc.PRIOR_SHARE) + ref_t.logpdf(u[k]),
                       math.log(smc.PRIOR_SHARE) + lp[k])
    np.testing.assert_allclose(lq[k], ref, rtol=1e-10)
    # E_q[prior / q] = 1 for two normalized densities (the ratio is bounded by 1 / PRIOR_SHARE)
    ratio = np.exp(lp - lq)
    assert ratio.max() <= 1.0 / smc.PRIOR_SHARE + 1e-9
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std() / math.sqrt(ratio.size)


@pytest.mark.parametrize(("asymmetric", "days"), [(True, 1000), (False, 1000), (True, 150)])
def test_fit_from_the_mode_targets_the_posterior_of_the_fit_from_the_prior(
    sp500, asymmetric, days
):
    r = sp500[-2500 - days : -2500]
    fits = {start: smc.tempered_fit(r, 4, 1000, np.random.default_rng(3), asymmetric=asymmetric,
                                    from_mode=start == "mode")
            for start in ("mode", "prior")}
    assert fits["mode"].from_mode and not fits["prior"].from_mode
    assert fits["mode"].stages < fits["prior"].stages
    summary = {}
    for start, res in fits.items():
        draws = lik.from_unconstrained(res.cloud.u).as_dict(asymmetric)
        rhat, ess_b, ess_t = summarize({k: v.reshape(4, 1000) for k, v in draws.items()})
        assert max(rhat.values()) <= 1.01, (start, rhat)
        assert min(ess_b.values()) >= 400 and min(ess_t.values()) >= 400, (start, ess_b, ess_t)
        summary[start] = {k: (v.mean(), v.std(), np.quantile(v, [0.05, 0.95]))
                          for k, v in draws.items()}
    for k, (mean, sd, q) in summary["prior"].items():
        m_mode, sd_mode, q_mode = summary["mode"][k]
        assert abs(m_mode - mean) <= 0.25 * sd, k  # 4,000 draws each: well inside 1/4 sd
        assert sd_mode == pytest.approx(sd, rel=0.15), k
        np.testing.assert_allclose(q_mode, q, atol=0.5 * sd)
    # the cached state of every particle is that of a fresh likelihood pass
    res = fits["mode"]
    again = smc.evaluate(r, res.cloud.u)
    np.testing.assert_array_equal(again.ll, res.cloud.ll)
    np.testing.assert_array_equal(again.h, res.cloud.h)
    np.testing.assert_array_equal(again.lp, res.cloud.lp)


def test_a_failed_mode_search_starts_from_the_prior(sp500, monkeypatch):
    r = sp500[:600]
    from_prior = smc.tempered_fit(r, 2, 300, np.random.default_rng(4), from_mode=False)
    monkeypatch.setattr(lik, "posterior_mode", lambda r, asymmetric=False: None)
    fallback = smc.tempered_fit(r, 2, 300, np.random.default_rng(4))
    assert not fallback.from_mode and fallback.stages == from_prior.stages
    np.testing.assert_array_equal(fallback.cloud.u, from_prior.cloud.u)
    np.testing.assert_array_equal(fallback.cloud.ll, from_prior.cloud.ll)


def test_mode_search_failures_return_none(monkeypatch):
    r = np.random.default_rng(0).normal(0, 0.01, 300)
    assert lik.posterior_mode(r) is not None
    monkeypatch.setattr(lik, "log_posterior_one", lambda r, u, moments: -math.inf)
    assert lik.posterior_mode(r) is None  # nowhere finite
    monkeypatch.setattr(lik, "log_posterior_one", lambda r, u, moments: float(u @ u))
    assert lik.posterior_mode(r) is None  # a minimum, not a maximum: no positive covariance


def test_the_fit_and_the_online_cloud_share_one_compiled_likelihood(sp500, monkeypatch):
    """A backtest compiles one shape: every likelihood pass is over ``particles`` vectors."""
    from swarmvar.models.garch_t import GarchT

    sizes = set()
    real = lik.loglik

    def spy(r, th):
        sizes.add(th.mu.size)
        return real(r, th)

    monkeypatch.setattr(lik, "loglik", spy)
    agent = GarchT(particles=500).fit(sp500[:1000], seed=1)
    for x in sp500[1000:1100]:
        agent.update(x)
    agent.refit(sp500[100:1100], seed=2)
    assert sizes == {500}


# --- the persistent compilation cache (each case in fresh processes: JAX reads the
# --- cache setting once per process)

_CACHE_PROBE = """
import jax
import numpy as np
hits = []
jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name))
from swarmvar.models import _garch_lik as lik, _garch_smc as smc
r = np.random.default_rng(0).normal(0, 0.01, 600)
u = lik.to_unconstrained(lik.sample_prior(128, np.random.default_rng(1), True), True)
ll = smc.evaluate(r, u).ll
print(sum(name == "/jax/compilation_cache/cache_hits" for name in hits), ll.tobytes().hex())
"""


def _probe(cwd, setting, runs=1, jax_dir=None, extra=None):
    """Run the probe in ``runs`` processes at once: [(cache hits, likelihood bytes)].

    ``jax_dir``: a cache directory configured through JAX's own variable (as the CLI does).
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["JAX_PLATFORMS"] = "cpu"
    if setting is not None:
        env[lik.CACHE_ENV] = str(setting)
    if jax_dir is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(jax_dir)
    env.update(extra or {})
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", _CACHE_PROBE], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(runs)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr  # warnings are errors: no half-read cache entry
        hits, values = stdout.split()
        out.append((int(hits), values))
    return out


def test_compiled_likelihood_is_cached_across_processes_safely(tmp_path):
    folder = tmp_path / "cache"
    cold = _probe(tmp_path, folder, runs=3)  # three processes compile-or-load at once
    assert len(list(folder.glob("*-cache"))) == 1
    assert sum(h for h, _ in cold) == 2  # the lock: one compiled and wrote, two loaded
    (warm,) = _probe(tmp_path, folder)
    assert warm[0] == 1
    assert len({v for _, v in [*cold, warm]}) == 1  # the same numbers, loaded or compiled
    assert not (tmp_path / ".swarmvar").exists()


def test_compilation_cache_defaults_to_the_home_and_can_be_turned_off(tmp_path):
    (off,) = _probe(tmp_path, "off")
    assert off[0] == 0 and not (tmp_path / ".swarmvar").exists()
    _probe(tmp_path, None)
    assert len(list((tmp_path / ".swarmvar" / "cache" / "jax").glob("*-cache"))) == 1


def test_off_wins_over_a_configured_directory_which_is_made_when_missing(tmp_path):
    configured = tmp_path / "home" / "cache" / "jax"  # does not exist yet
    # JAX caches by itself what compiles slower than its threshold (1 s; a loaded machine
    # crosses it): a zero threshold makes that load condition certain, and off still wins
    slow = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    (off,) = _probe(tmp_path, "off", jax_dir=configured, extra=slow)
    # JAX may make its configured directory, but the likelihood is not cached in it
    assert off[0] == 0 and not list(configured.glob("*-cache"))
    (cold,) = _probe(tmp_path, None, jax_dir=configured)
    assert len(list(configured.glob("*-cache"))) == 1  # made, and written on the first run
    (warm,) = _probe(tmp_path, None, jax_dir=configured)
    assert warm[0] == 1 and warm[1] == cold[1]
