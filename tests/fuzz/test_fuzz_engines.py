"""Property-based fuzzing of the engines' public entry points not fuzzed elsewhere:
validation statistics, emergence metrics and regimes, the arbiter's public API,
``swarmvar.var`` and ``swarmvar.book_var``.

The single assertion everywhere: a :class:`~swarmvar.errors.SwarmVarError`
whose message names the argument at fault, or a valid result (finite where it
must be; NaN only where the function documents an undefined test). Warnings
are errors in tests, so a numpy overflow or a division by zero fails here too.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.errors import SwarmVarError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

# --- strategies --------------------------------------------------------------

odd_values = st.sampled_from([
    None, True, False, "0.99", b"x", 1j, {"a": 1}, [], (), object(), np.float64("nan"),
    np.inf, -np.inf, 0, -1, 0.0, 1.0, 1e308, -1e308, 5e-324, 2**70, np.bool_(True),
    np.int64(3), np.float32(0.99), np.array([1.0, 2.0]), np.array(np.nan),
])
anything = st.one_of(
    odd_values, st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**25, 10**25), st.text(max_size=4), st.booleans(),
)
any_level = st.one_of(anything, st.floats(0.0, 1.0), st.sampled_from([0.99, 0.975, 0.5, 1.0]))
any_count = st.one_of(anything, st.integers(-3, 40))


def float_arrays(n: int | None = None) -> st.SearchStrategy[Any]:
    """Lists/arrays of floats: tame, huge, tiny, NaN/inf, wrong shapes and types."""
    size = {"min_size": n, "max_size": n} if n is not None else {"max_size": 40}
    return st.one_of(
        st.lists(st.floats(-0.1, 0.1), **size),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), **size),
        st.lists(st.floats(-1e308, 1e308), **size),
        st.lists(st.sampled_from([0.0, 1e-300, 5e-324, 0.02, -0.02, 1e300]), **size),
        st.lists(st.one_of(st.floats(-1, 1), st.text(max_size=2), st.none()), **size),
        st.just(np.zeros((4, 3))), st.just(np.array(["a", "b"])), st.just([[1.0, 2.0], [3.0]]),
        st.just(np.array([], dtype=float)), odd_values,
    )


def _word(name: str, message: str) -> bool:
    """``name`` appears in ``message`` as a whole word (so "n" is not found in "finite")."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message, re.I) is not None


def refused_or(fn: Callable[..., Any], *args: Any, names: Sequence[str] = (),
               **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or ``None`` if it raised a SwarmVarError naming one of ``names``.

    Anything else (a raw ValueError, TypeError, a numpy warning turned error)
    propagates and fails the test.
    """
    try:
        return fn(*args, **kwargs)
    except SwarmVarError as exc:
        msg = str(exc)
        assert msg, f"{type(exc).__name__} without a message"
        if names:
            assert any(_word(n, msg) for n in names), (
                f"{type(exc).__name__}({msg!r}) names none of {names}")
        return None


def is_finite(*values: float) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


def check_test_result(res: Any, *, may_be_undefined: bool = False) -> None:
    if res is None:
        return
    if may_be_undefined and math.isnan(res.pvalue):
        assert math.isnan(res.statistic) or math.isfinite(res.statistic)
        return
    assert is_finite(res.statistic, res.pvalue), res
    assert 0.0 <= res.pvalue <= 1.0, res


# --- validation: coverage tests ---------------------------------------------------

hits_like = st.one_of(
    st.lists(st.booleans(), max_size=300), st.lists(st.sampled_from([0, 1]), max_size=40),
    st.lists(st.sampled_from([0, 1, 2, -1, 0.5]), max_size=10), float_arrays(),
)


@FUZZ
@given(hits_like, any_level, any_count)
def test_coverage_tests_of_anything(hits: Any, alpha: Any, days: Any) -> None:
    from swarmvar.validation import (
        christoffersen,
        conditional_coverage,
        kupiec,
        traffic_light,
        transition_counts,
    )
    from swarmvar.validation.coverage import rolling_zones

    names = ("hits", "alpha", "days", "independence")
    check_test_result(refused_or(kupiec, hits, alpha, names=names))
    check_test_result(refused_or(christoffersen, hits, names=names), may_be_undefined=True)
    check_test_result(refused_or(conditional_coverage, hits, alpha, names=names),
                      may_be_undefined=True)
    counts = refused_or(transition_counts, hits, names=names)
    assert counts is None or all(isinstance(c, int) and c >= 0 for c in counts)
    light = refused_or(traffic_light, hits, alpha, days=days, names=names)
    assert light is None or (0 <= light.exceptions <= light.days and
                             0.0 <= light.cumulative <= 1.0)
    zones = refused_or(rolling_zones, hits, alpha, days=days, names=names)
    assert zones is None or set(np.unique(zones)) <= {0, 1, 2}


# --- validation: scores and Diebold-Mariano --------------------------------------

@FUZZ
@given(float_arrays(), float_arrays(), float_arrays(), any_level, st.data())
def test_scores_of_anything(losses: Any, var: Any, es: Any, alpha: Any,
                            data: st.DataObject) -> None:
    from swarmvar.validation import fz0_loss, pinball_loss

    names = ("losses", "forecasts", "alpha", "ES", "var")
    for out in (refused_or(pinball_loss, losses, var, alpha, names=names),
                refused_or(fz0_loss, losses, var, es, alpha, names=names)):
        assert out is None or (out.ndim == 1 and np.all(np.isfinite(out)))
    # same length, finite, sometimes extreme
    n = data.draw(st.integers(1, 30))
    tame = data.draw(float_arrays(n)), data.draw(float_arrays(n)), data.draw(float_arrays(n))
    for out in (refused_or(pinball_loss, tame[0], tame[1], 0.99, names=names),
                refused_or(fz0_loss, *tame, 0.975, names=names)):
        assert out is None or (out.ndim == 1 and np.all(np.isfinite(out)))


@FUZZ
@given(float_arrays(), float_arrays(), st.one_of(st.none(), any_count), st.data())
def test_diebold_mariano_of_anything(a: Any, b: Any, lags: Any, data: st.DataObject) -> None:
    from swarmvar.validation import diebold_mariano, long_run_variance, newey_west_lags

    names = ("loss_a", "loss_b", "lags", "Diebold-Mariano", "loss differential")
    check_test_result(refused_or(diebold_mariano, a, b, lags=lags, names=names))
    n = data.draw(st.integers(1, 30))
    check_test_result(refused_or(diebold_mariano, data.draw(float_arrays(n)),
                                 data.draw(float_arrays(n)), lags=lags, names=names))
    lrv = refused_or(long_run_variance, a, lags, names=("x", "series", "lags"))
    assert lrv is None or (math.isfinite(lrv) and lrv >= 0)
    q = refused_or(newey_west_lags, lags, names=("n",))
    assert q is None or (isinstance(q, int) and q >= 0)


# --- validation: ES tests ---------------------------------------------------------

@FUZZ
@given(st.integers(1, 12), st.data())
def test_es_tests_of_anything(n: int, data: st.DataObject) -> None:
    from swarmvar.validation import (
        acerbi_szekely_z2,
        matched_student_t,
        mcneil_frey,
        student_t_sampler,
    )

    losses = data.draw(st.one_of(float_arrays(n), float_arrays()), label="losses")
    var = data.draw(st.one_of(float_arrays(n), st.lists(st.floats(0.01, 0.05), min_size=n,
                                                           max_size=n)), label="var")
    es = data.draw(st.one_of(float_arrays(n), st.lists(st.floats(0.05, 0.1), min_size=n,
                                                          max_size=n)), label="es")
    alpha = data.draw(any_level, label="alpha")
    seed = data.draw(st.one_of(st.integers(0, 10), anything), label="seed")
    sims = data.draw(st.one_of(st.integers(1, 30), any_count), label="n_sim")
    chunk = data.draw(st.one_of(st.integers(1, 30), any_count), label="chunk")
    names = ("losses", "forecasts", "alpha", "ES", "VaR", "n_sim", "chunk", "seed", "scale", "loc",
             "n_boot", "sampler", "df")
    matched = refused_or(matched_student_t, var, es, alpha, names=names)
    if matched is not None:
        assert all(np.all(np.isfinite(m)) and np.all(m > 0) for m in matched)
    sampler = refused_or(student_t_sampler, data.draw(anything | st.floats(-1, 1), label="loc"),
                         data.draw(st.one_of(st.floats(0.001, 1), anything), label="scale"),
                         data.draw(st.one_of(st.floats(2.1, 50), anything), label="df"),
                         names=names)
    if sampler is None:
        sampler = student_t_sampler(0.0, 0.01, 5.0)
    check_test_result(refused_or(acerbi_szekely_z2, losses, var, es, alpha, sampler=sampler,
                                 n_sim=sims, seed=seed, chunk=chunk, names=names))
    scale = data.draw(st.one_of(st.none(), float_arrays(n)), label="scale")
    check_test_result(refused_or(mcneil_frey, losses, var, es, scale=scale, n_boot=sims,
                                 seed=seed, names=names), may_be_undefined=True)


def test_z2_sampler_of_the_wrong_kind_is_refused() -> None:
    from swarmvar.validation import acerbi_szekely_z2

    x = np.full(5, 0.02)
    for sampler in (None, 3, "t", lambda rng, m: "x", lambda rng, m: np.zeros(3),
                    lambda rng, m: np.full((m, 5), np.nan), lambda rng, m: 1 / 0):
        with pytest.raises(SwarmVarError, match="sampler"):
            acerbi_szekely_z2(x, x, 2 * x, 0.99, sampler=sampler, n_sim=3)


# --- validation: diagnostics, SBC, interval coverage ---------------------------------

@FUZZ
@given(st.one_of(float_arrays(), st.lists(st.lists(st.floats(allow_nan=True), min_size=6,
                                                    max_size=6), max_size=4)))
def test_mcmc_diagnostics_of_anything(draws: Any) -> None:
    from swarmvar.validation import ess_bulk, ess_tail, rhat

    for fn in (rhat, ess_bulk, ess_tail):
        out = refused_or(fn, draws, names=("draws",))
        assert out is None or (isinstance(out, float) and not math.isnan(out))


class _NIG:
    """A fresh small conjugate agent (fits in milliseconds)."""

    def __call__(self) -> Any:
        from swarmvar.models import agent_class

        return agent_class("nig")()


@FEW
@given(any_count, any_count, any_count, any_count, anything)
def test_sbc_arguments_of_anything(n_sims: Any, n_obs: Any, n_draws: Any, bins: Any,
                                   seed: Any) -> None:
    from swarmvar.validation import sbc

    args = {"n_sims": n_sims, "n_obs": n_obs, "n_draws": n_draws, "bins": bins}
    # keep accepted runs tiny: only values that cannot start long work reach sbc
    for k, v in args.items():
        if isinstance(v, int) and not isinstance(v, bool) and v > 3:
            args[k] = {"n_sims": 2, "n_obs": 30, "n_draws": 9, "bins": 5}[k]
    res = refused_or(sbc, _NIG(), seed=seed, **args,
                     names=("n_sims", "n_obs", "n_draws", "bins", "seed", "posterior draws"))
    assert res is None or all(0.0 <= p <= 1.0 for p in res.pvalues.values())


@FEW
@given(st.one_of(anything, st.floats(0.5, 1.0)), any_count, any_count, anything, anything,
       anything)
def test_interval_coverage_of_anything(alpha: Any, n_obs: Any, n_rep: Any, true_var: Any,
                                       true_es: Any, seed: Any) -> None:
    from swarmvar.validation import interval_coverage

    if isinstance(n_rep, int) and n_rep > 2:
        n_rep = 2
    if isinstance(n_obs, int) and n_obs > 40:
        n_obs = 40

    def draw(rng: np.random.Generator, n: int) -> Any:
        return 0.01 * rng.standard_normal(n)

    res = refused_or(interval_coverage, _NIG(), draw, true_var, true_es=true_es, alpha=alpha,
                     n_obs=n_obs, n_rep=n_rep, seed=seed,
                     names=("alpha", "n_rep", "n_obs", "true_var", "true_es", "seed",
                            "returns", "history"))
    assert res is None or 0.0 <= res.fraction <= 1.0


# --- emergence -----------------------------------------------------------------------

@FUZZ
@given(float_arrays(), st.one_of(anything, st.floats(0.5, 1.5)), any_count, any_count,
       st.data())
def test_change_points_of_anything(z: Any, hazard: Any, max_run: Any, window: Any,
                                   data: st.DataObject) -> None:
    from swarmvar.emergence import OnlineChangePoint, run_length_posterior, standardize

    names = ("z", "hazard", "threshold", "max_run", "window", "returns", "scale", "mu0",
             "kappa0", "alpha0", "beta0")
    if isinstance(max_run, int) and max_run > 50:
        max_run = 50
    post = refused_or(run_length_posterior, z, hazard, 0.5, max_run,
                      **({"window": window} if data.draw(st.booleans()) else {}), names=names)
    if post is not None:
        assert np.all(np.isfinite(post.probs)) and np.all((post.prob_change >= 0)
                                                          & (post.prob_change <= 1))
    s = refused_or(standardize, z, data.draw(st.one_of(st.none(), anything)), names=names)
    assert s is None or np.all(np.isfinite(s))
    prior = {k: data.draw(anything, label=k) for k in data.draw(
        st.lists(st.sampled_from(["mu0", "kappa0", "alpha0", "beta0"]), unique=True))}
    det = refused_or(OnlineChangePoint, **prior, names=names)
    if det is not None:
        step = refused_or(det.update, data.draw(anything | st.floats(-5, 5)), names=names)
        assert step is None or 0.0 <= step.prob_change <= 1.0


@FUZZ
@given(st.one_of(st.binary(max_size=80), anything))
def test_change_point_state_of_anything(blob: Any) -> None:
    from swarmvar.emergence import OnlineChangePoint

    refused_or(OnlineChangePoint.from_state, blob, names=("state",))


@FUZZ
@given(st.integers(1, 8), st.integers(1, 4), st.data())
def test_emergence_metrics_of_anything(t: int, n: int, data: st.DataObject) -> None:
    from swarmvar.emergence import error_correlation, level_gain, mcs_pvalues

    def matrix(rows: int, cols: int) -> Any:
        return data.draw(st.one_of(
            st.lists(st.lists(st.floats(0.01, 0.05), min_size=cols, max_size=cols),
                     min_size=rows, max_size=rows).map(np.asarray),
            st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=cols,
                              max_size=cols), min_size=rows, max_size=rows).map(np.asarray),
            float_arrays()))

    losses = data.draw(st.one_of(float_arrays(t), float_arrays()), label="losses")
    var, es = matrix(t, n), matrix(t, n)
    agents = data.draw(st.one_of(st.lists(st.text(min_size=1, max_size=3), min_size=n,
                                          max_size=n), anything), label="agents")
    cvar, ces = data.draw(float_arrays(t)), data.draw(float_arrays(t))
    alpha = data.draw(any_level)
    names = ("losses", "var", "es", "agents", "alpha", "consensus_var", "consensus_es",
             "forecasts", "ES", "Diebold-Mariano", "loss differential", "true_var")
    g = refused_or(level_gain, losses, var, es, agents, cvar, ces, alpha, names=names)
    if g is not None:
        assert is_finite(g.best_loss, g.consensus_loss, g.gain, g.dm_pvalue)
    c = refused_or(error_correlation, var, losses, alpha,
                   data.draw(st.one_of(st.none(), float_arrays(t))), names=names)
    assert c is None or (c.ndim == 2 and c.shape[0] == c.shape[1])
    rows = data.draw(st.one_of(
        st.dictionaries(st.text(max_size=3), st.one_of(float_arrays(t), float_arrays()),
                        max_size=3), anything), label="mcs losses")
    p = refused_or(mcs_pvalues, rows, size=data.draw(any_level), reps=data.draw(
        st.one_of(st.integers(1, 20), any_count)), block_size=data.draw(
        st.one_of(st.none(), any_count)), seed=data.draw(st.one_of(st.integers(0, 5), anything)),
        names=("losses", "size", "reps", "block_size", "seed", "rows", "Model Confidence Set"))
    assert p is None or all(0.0 <= v <= 1.0 for v in p.values())


@FUZZ
@given(anything, any_count, anything, st.one_of(anything, st.floats(0.5, 1.0)), st.data())
def test_simulations_of_anything(design: Any, days: Any, seed: Any, alpha: Any,
                                 data: st.DataObject) -> None:
    from swarmvar.emergence import (
        Design,
        normal_mixture_var_es,
        regime_filter,
        simulate,
        volatility_breaks,
    )

    names = ("design", "days", "seed", "alphas", "alpha", "probs", "returns", "sd", "stay",
             "initial", "factor", "reps", "df", "before", "horizon")
    if isinstance(days, int) and days > 40:
        days = 40
    d = data.draw(st.one_of(st.sampled_from(list(Design)), st.just(design)))
    sim = refused_or(simulate, d, days, seed, data.draw(st.one_of(st.just((0.99,)), anything)),
                     names=names)
    assert sim is None or np.all(np.isfinite(sim.returns))
    probs = data.draw(st.one_of(float_arrays(), st.just(np.full((3, 2), 0.5))))
    out = refused_or(normal_mixture_var_es, probs, data.draw(st.one_of(
        st.just((0.01, 0.02)), float_arrays())), alpha, names=names)
    assert out is None or all(np.all(np.isfinite(o)) for o in out)
    filt = refused_or(regime_filter, data.draw(float_arrays()), names=names)
    assert filt is None or np.all(np.isfinite(filt))
    study = refused_or(volatility_breaks, data.draw(st.one_of(st.floats(0.5, 3), anything)),
                       df=data.draw(st.one_of(st.none(), anything)),
                       reps=data.draw(st.one_of(st.just(1), any_count.filter(
                           lambda v: not (isinstance(v, int) and v > 1)))),
                       before=data.draw(st.one_of(st.just(30), any_count.filter(
                           lambda v: not (isinstance(v, int) and v > 30)))),
                       horizon=10, names=names)
    assert study is None or study.missed <= study.reps


def test_summarize_refuses_what_is_not_a_backtest() -> None:
    from swarmvar.emergence import plot_weights, summarize

    for bad in (None, 3, "result", {"series": {}}):
        with pytest.raises(SwarmVarError, match="BacktestResult"):
            summarize(bad)  # type: ignore[arg-type]
        with pytest.raises(SwarmVarError, match="EmergenceSummary"):
            plot_weights(bad)  # type: ignore[arg-type]


# --- arbiter -------------------------------------------------------------------------

@FUZZ
@given(anything, anything, anything, anything)
def test_pulse_and_cadence_of_anything(k: Any, p: Any, u: Any, t1: Any) -> None:
    from swarmvar.arbiter import Cadence, Pulse, t_lambda

    names = ("k", "p (nodes)", "u", "t1", "t_threshold", "budget", "pulse")
    t = refused_or(t_lambda, k, p, u, t1, names=names)
    assert t is None or (math.isfinite(t) and t > 0)
    pulse = refused_or(Pulse, k, p, u, t1, names=names)
    assert pulse is None or math.isfinite(pulse.budget)
    c = refused_or(Cadence, k, clock=lambda: 0.0, sleep=lambda s: None, names=names)
    assert c is None or (math.isfinite(c.budget) and c.budget > 0)


@FUZZ
@given(anything, anything, anything, anything, anything, st.data())
def test_pid_of_anything(error: Any, threat: Any, kp: Any, ki: Any, kd: Any,
                         data: st.DataObject) -> None:
    from swarmvar.arbiter import Genome, PidGains, PidState, recalibrate, seed_error
    from swarmvar.arbiter.pid import measured_error

    names = ("error", "last_error", "threat", "gain", "kp", "ki", "kd", "genome", "integral",
             "beat_seconds", "budget", "t_lambda", "t_threshold", "seed_beat")
    gains = refused_or(PidGains, kp, ki, kd, names=names)
    genome = refused_or(Genome, *[data.draw(st.one_of(anything, st.floats(0.01, 1)))
                                  for _ in range(4)], names=names)
    state = refused_or(PidState, data.draw(anything), data.draw(st.one_of(st.none(), anything)),
                       names=names)
    out = refused_or(recalibrate, genome or Genome(), state or PidState(), error, threat,
                     gains or PidGains(), seed_beat=data.draw(st.one_of(st.none(), any_count)),
                     names=names)
    if out is not None:
        after, new_state, rec = out
        assert all(math.isfinite(w) and w > 0 for w in after.as_tuple())
        assert math.isclose(sum(after.as_tuple()), 1.0, rel_tol=1e-9)
        assert math.isfinite(new_state.integral) and math.isfinite(rec.output)
    e = refused_or(seed_error, error, threat, names=names)
    assert e is None or math.isfinite(e)
    m = refused_or(measured_error, error, threat, names=names)
    assert m is None or math.isfinite(m)


@FUZZ
@given(st.sampled_from([f.name for f in dataclasses.fields(__import__(
    "swarmvar.arbiter", fromlist=["Thresholds"]).Thresholds)]), anything,
    st.sampled_from([f.name for f in dataclasses.fields(__import__(
        "swarmvar.arbiter", fromlist=["SignalConfig"]).SignalConfig)]), anything)
def test_arbiter_settings_of_anything(t_field: str, t_value: Any, s_field: str,
                                      s_value: Any) -> None:
    from swarmvar.arbiter import ArbiterConfig, SignalConfig, Thresholds

    t = refused_or(Thresholds, **{t_field: t_value}, names=(t_field, "threshold"))
    s = refused_or(SignalConfig, **{s_field: s_value}, names=(s_field,))
    if t is not None and s is not None:
        ArbiterConfig(thresholds=t, signals=s)


@pytest.fixture(scope="module")
def small_history() -> Any:
    from swarmvar.arbiter.history import simulated_history

    return simulated_history(40, 1)


@FUZZ
@given(st.data())
def test_read_beat_of_anything(small_history: Any, data: st.DataObject) -> None:
    from swarmvar.arbiter import SignalConfig, SignalMemory, read_beat

    report = small_history.beat(data.draw(st.integers(1, 39)), "p")
    field = data.draw(st.sampled_from(["realized", "regime_probability", "breaches",
                                       "log_scores", "late", "seq", "forecasts", "portfolio",
                                       "as_of", "consensus", "diagnostics", "rejected"]))
    # look-alikes a quick read could take: a timestamp duck, -inf that is not a float
    lookalike = st.sampled_from([types.SimpleNamespace(timestamp=lambda: "x"),
                                 np.float32(-np.inf), np.array([-np.inf])])
    value = data.draw(st.one_of(anything, lookalike, st.dictionaries(
        st.sampled_from(["A", "B", "consensus", "Z"]), st.one_of(
            anything, lookalike, st.lists(st.booleans(), max_size=3).map(tuple)),
        max_size=3)))
    bad = dataclasses.replace(report, **{field: value})
    spans = {k: data.draw(st.one_of(st.floats(1.5, 500), anything), label=k) for k in data.draw(
        st.lists(st.sampled_from(["coverage_span", "score_span"]), unique=True))}
    config = refused_or(SignalConfig, **spans, names=tuple(spans)) or SignalConfig()
    out = refused_or(read_beat, SignalMemory(), bad, config,
                     names=(field, "realized", "regime", "breaches", "log score", "forecast",
                            "span", "late", "seq", "BeatReport", "consensus"))
    if out is not None:
        from swarmvar.arbiter.signals import _check_report

        _check_report(bad)  # read_beat checks fields only when reading fails: none slips by
        _, signals = out
        assert all(math.isfinite(f) for f in signals.features)


@FUZZ
@given(anything, anything, st.one_of(st.none(), anything), anything)
def test_drift_of_anything(agent: Any, start: Any, scale: Any, frozen: Any) -> None:
    from swarmvar.arbiter import Drift, drifted

    d = refused_or(Drift, agent, start, scale, frozen,
                   names=("agent", "start", "scale", "frozen", "drift"))
    if d is not None:
        from swarmvar.arbiter.history import simulated_history

        refused_or(drifted, simulated_history(20, 0), d, names=("agent", "start", "drift"))


def test_replay_and_drill_refuse_what_is_not_a_history_or_arbiter(small_history: Any) -> None:
    from swarmvar.arbiter import Arbiter, drill
    from swarmvar.arbiter.replay import replay

    arb = Arbiter(record_decisions=False)
    for bad in (None, "history", 3, {"days": 2}):
        with pytest.raises(SwarmVarError, match="history"):
            replay(bad, arb)  # type: ignore[arg-type]
        with pytest.raises(SwarmVarError, match="history"):
            drill(bad, arb)  # type: ignore[arg-type]
        with pytest.raises(SwarmVarError, match="arbiter"):
            replay(small_history, bad)  # type: ignore[arg-type]
    for load in (math.nan, -1.0, 1e7, "x", None, True):
        with pytest.raises(SwarmVarError, match="load"):
            replay(small_history, arb, load=load)  # type: ignore[arg-type]
    for optional in (math.inf, -0.5, 1e7, "x"):
        with pytest.raises(SwarmVarError, match="optional"):
            replay(small_history, arb, optional=optional)  # type: ignore[arg-type]


# --- swarmvar.var and swarmvar.book_var ------------------------------------------------

@pytest.fixture(scope="module")
def returns() -> Any:
    from swarmvar.data import load

    return load("sp500").iloc[-300:]


#: Words that name an argument in a refusal (besides its own name).
_SYNONYMS = {"alphas": ("confidence level",), "agents": ("agent",), "trade": ("asset",),
             "keys": ("key",)}


def _names(arg: str, message: str) -> bool:
    return any(_word(w, message) for w in (arg, *_SYNONYMS.get(arg, ())))


_VAR_BAD: dict[str, tuple[Any, ...]] = {
    "agents": ("nig", [], [3], [None], ["nig", "nig"], ["no-such-agent"], [1.5], {"nig": 1}),
    "alphas": (0.3, (), (1.0,), ("0.99",), (math.nan,), None, [True], np.array(np.nan),
               np.array([[0.99]])),
    "horizon": (0, -1, 1.5, True, "1", None, 10**9),
    "seed": (-1, 1.5, True, "0", None),
    "consensus": (1, "yes", None),
    "track_days": (-1, 1.5, True, "500"),
    "workers": (0, -1, True, 2.5, 10**6),
    "seq": (-1, 1.5, True, "0", None),
    "portfolio": (3, b"x", ["p"], ""),
    "policy": ("robust", 3, {"f": 1}),
    "keys": ("key", 3, {"nig": "not a key"}, {}),
    "progress": ("print", 3),
    "track_cache": (3, [".cache"]),
}


@pytest.mark.parametrize("arg", sorted(_VAR_BAD))
def test_var_refuses_each_bad_argument(returns: Any, arg: str) -> None:
    import swarmvar

    base = {"agents": ["nig", "bootstrap", "student-t"], "alphas": (0.99,), "track_days": 0}
    for bad in _VAR_BAD[arg]:
        with pytest.raises(SwarmVarError) as info:
            swarmvar.var(returns, **{**base, arg: bad})
        assert _names(arg, str(info.value)), (arg, bad, str(info.value))


@FEW
@given(float_arrays())
def test_var_of_any_returns(x: Any) -> None:
    import swarmvar

    res = refused_or(swarmvar.var, x, ["nig"], alphas=(0.99,), consensus=False,
                     names=("returns", "swarmvar.var"))
    assert res is None or all(math.isfinite(f.at(0.99).var) for f in res.forecasts.values())


_BOOK_BAD: dict[str, tuple[Any, ...]] = {
    "kind": ("prices", 3, None, ""),
    "agents": ([], ["no-such-agent"], "niw", [3]),
    "alphas": (0.3, (), (math.nan,)),
    "horizon": (0, 1.5, True, 251),
    "window": (29, 1.5, True, None),
    "seed": (-1, 1.5, True, "0", None),
    "trade": ({}, {"ZZZ": 1.0}, {"A": math.nan}, "A:1", [("A", 1.0)]),
    "consensus": (1, "yes", None),
    "baseline": (1, "no", None),
    "home": (3, ["x"]),
    "track_days": (-1, 1.5, True, "5", None),
}


@pytest.fixture(scope="module")
def book_frame() -> Any:
    import pandas as pd

    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2020-01-01", periods=160)
    return pd.DataFrame(0.01 * rng.standard_normal((160, 3)), index=idx, columns=["A", "B", "C"])


@pytest.mark.parametrize("arg", sorted(_BOOK_BAD))
def test_book_var_refuses_each_bad_argument(book_frame: Any, arg: str) -> None:
    import swarmvar
    from swarmvar.types import Book

    book = Book(("A", "B"), (1e6, -5e5))
    base = {"kind": "return", "agents": ["niw"], "window": 60}
    for bad in _BOOK_BAD[arg]:
        with pytest.raises(SwarmVarError) as info:
            swarmvar.book_var(book_frame, book, **{**base, arg: bad})
        assert _names(arg, str(info.value)), (arg, bad, str(info.value))


_BACKTEST_BAD: dict[str, tuple[Any, ...]] = {
    "last": (0, -1, 1.5, True, "10", None),
    "window": (99, 1.5, True, "200", None),
    "refit_every": (0, -1, 1.5, True, "5", None),
    "workers": (0, -1, True, 1.5, 10**6),
    "seed": (-1, 1.5, True, "0"),
    "consensus": (1, "yes", None),
    "baselines": (1, "no", None),
    "progress": (1, "yes", None),
    "kind": ("prices", 3, None),
}


@pytest.mark.parametrize("arg", sorted(_BACKTEST_BAD))
def test_book_backtest_refuses_each_bad_argument(book_frame: Any, arg: str) -> None:
    from swarmvar.book_api import book_backtest
    from swarmvar.types import Book

    book = Book(("A", "B"), (1e6, -5e5))
    base = {"kind": "return", "agents": ["niw"], "window": 100, "last": 10}
    for bad in _BACKTEST_BAD[arg]:
        with pytest.raises(SwarmVarError) as info:
            book_backtest(book_frame, book, **{**base, arg: bad})
        assert _names(arg, str(info.value)), (arg, bad, str(info.value))


# --- emergence.summarize on a real (synthetic) backtest ---------------------------------

@pytest.fixture(scope="module")
def small_backtest() -> Any:
    """Three agents scaling a known normal VaR/ES by 0.7, 1.0, 1.4, and their mean as the
    consensus row (120 days): enough for every statistic summarize computes."""
    import pandas as pd
    from scipy import stats

    from swarmvar.validation import BacktestResult, LevelSeries

    rng = np.random.default_rng(3)
    days, alphas = 120, (0.99,)
    r = 0.01 * rng.standard_normal(days)
    series: dict[str, dict[float, Any]] = {}
    for name, k in (("a", 0.7), ("b", 1.0), ("c", 1.4), ("consensus", 1.03)):
        v = np.full(days, k * 0.01 * stats.norm.ppf(0.99))
        e = np.full(days, k * 0.01 * stats.norm.pdf(stats.norm.ppf(0.99)) / 0.01)
        series[name] = {0.99: LevelSeries(0.99, v, e, 0.9 * v, 1.1 * v, 0.9 * e, 1.1 * e,
                                          -r > v)}
    return BacktestResult(dates=pd.bdate_range("2021-01-01", periods=days), returns=r,
                          alphas=alphas, horizon=1, window=250, refit_every=20, baseline=None,
                          series=series, logscore={}, evaluation={}, timings={},
                          agents=("a", "b", "c"))


@FEW
@given(st.data())
def test_summarize_arguments_of_anything(small_backtest: Any, data: st.DataObject) -> None:
    from swarmvar.emergence import summarize

    arg = data.draw(st.sampled_from(["consensus", "agents", "policy", "mcs_size", "mcs_reps",
                                     "seed"]))
    value = data.draw(st.one_of(anything, st.lists(st.sampled_from(["a", "b", "zz", 3]),
                                                   max_size=3)), label=arg)
    if arg == "mcs_reps" and isinstance(value, int) and value > 50:
        value = 50
    out = refused_or(summarize, small_backtest, **{"mcs_reps": 20, arg: value},
                     names=(arg, "row", "size", "reps", "Policy"))
    if out is not None:
        assert np.all(np.isfinite(out.effective_agents)) and math.isfinite(out.turnover)
        for g in out.gains:
            assert is_finite(g.best_loss, g.consensus_loss, g.dm_pvalue)


# --- arbiter: checkpoints with any content, observe with any beat time -------------------

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(st.data())
def test_arbiter_checkpoint_of_any_content(small_history: Any, data: st.DataObject) -> None:
    """A checkpoint whose checksum is right but whose content is anything: refused as an
    InvalidState, or restored into an arbiter that then still observes beats."""
    import hashlib
    import json

    from swarmvar.arbiter import Arbiter
    from swarmvar.arbiter.checkpoint import _MAGIC

    arb = Arbiter(record_decisions=False)
    for i in range(1, 4):
        arb.observe(small_history.beat(i, "p"))
    doc = json.loads(arb.checkpoint_state("p")[len(_MAGIC):-32].decode())
    path = data.draw(st.sampled_from(_paths(doc)[1:]), label="path")
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(_JSON, label="value")
    body = _MAGIC + json.dumps(doc).encode()
    fresh = Arbiter(record_decisions=False)
    if refused_or(fresh.restore_state, "p", body + hashlib.sha256(body).digest(),
                  names=("arbiter's",)) is None and "p" not in fresh._portfolios:
        return
    decisions = refused_or(fresh.observe, small_history.beat(4, "p"),
                           names=("beat", "level", "breaches", "memory", "state"))
    assert decisions is None or len(decisions) == 1


@FUZZ
@given(anything)
def test_arbiter_observe_with_any_beat_time(small_history: Any, seconds: Any) -> None:
    from swarmvar.arbiter import Arbiter

    arb = Arbiter(record_decisions=False)
    out = refused_or(arb.observe, small_history.beat(1, "p"), seconds,
                     names=("beat_seconds", "seconds"))
    assert out is None or len(out) == 1


# --- evolution: the lifecycle's settings and profiles ------------------------------------

_EVOLUTION_SETTINGS = ("BreakerConfig", "CanaryConfig", "RollbackConfig", "StateConfig",
                       "EvolutionConfig", "HealthPolicy")


@FUZZ
@given(st.sampled_from(_EVOLUTION_SETTINGS), st.data())
def test_evolution_settings_of_anything(cls_name: str, data: st.DataObject) -> None:
    import swarmvar.evolution as evo

    cls = getattr(evo, cls_name)
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls) if f.init]))
    value = data.draw(anything, label=field)
    refused_or(cls, **{field: value}, names=(field,))


@FUZZ
@given(anything, st.one_of(anything, st.dictionaries(
    st.one_of(st.text(max_size=3), st.integers(), st.none(), st.floats()), anything,
    max_size=2)),
       anything, st.one_of(st.none(), st.dictionaries(st.text(max_size=3), anything,
                                                      max_size=2)))
def test_agent_profile_and_canary_bucket_of_anything(agent_id: Any, caps: Any, version: Any,
                                                     prefs: Any) -> None:
    from swarmvar.evolution import agent_profile, canary_bucket

    refused_or(agent_profile, agent_id, caps, version=version, preferences=prefs,
               names=("agent id", "capabilities", "version", "preferences"))
    b = refused_or(canary_bucket, agent_id, version, names=("variant_id", "key"))
    assert b is None or 0.0 <= b < 1.0


# --- arbiter: histories on disk and in memory, options, operators ------------------------

@FUZZ
@given(st.data())
def test_beat_history_file_of_any_damage(small_history: Any, data: st.DataObject) -> None:
    """A damaged history file is an InvalidState (cached_history then rebuilds it)."""
    import tempfile
    from pathlib import Path

    from swarmvar.arbiter import BeatHistory

    with tempfile.TemporaryDirectory() as tmp:
        path = small_history.save(Path(tmp) / "h.npz")
        raw = bytearray(path.read_bytes())
        how = data.draw(st.sampled_from(["cut", "flip", "array"]))
        if how == "cut":
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
            path.write_bytes(bytes(raw))
        elif how == "flip":
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
            path.write_bytes(bytes(raw))
        else:  # a well-formed archive with one array replaced by anything
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            key = data.draw(st.sampled_from(sorted(arrays)))
            arrays[key] = data.draw(st.sampled_from([
                np.zeros(0), np.zeros((2, 2)), np.array([np.nan]), np.array(["x"]),
                np.frombuffer(b'{"name": 3}', dtype=np.uint8), arrays[key][:1],
                np.array([1.5, -2.0])]))
            np.savez(path, **arrays)
        h = refused_or(BeatHistory.load, path, names=("beat history",))
        if h is not None:
            assert h.returns.shape[0] == h.days and np.all(np.isfinite(h.returns))
            assert len(list(h.beats())) == h.days - 1 or h.days == 1


@FUZZ
@given(any_count, anything, st.one_of(anything, st.lists(anything, max_size=3)),
       st.one_of(st.none(), any_count), st.one_of(st.just((0.99,)), anything))
def test_simulated_history_of_anything(days: Any, seed: Any, scales: Any, mend_at: Any,
                                       alphas: Any) -> None:
    from swarmvar.arbiter.history import simulated_history

    if isinstance(days, int) and days > 30:
        days = 30
    h = refused_or(simulated_history, days, seed, scales, mend_at, alphas,
                   names=("days", "seed", "scales", "mend_at", "confidence level"))
    assert h is None or (np.all(np.isfinite(h.cols)) and np.all(np.isfinite(h.consensus)))


@FUZZ
@given(st.sampled_from(["k_flows", "p_nodes", "t_threshold", "t1", "u", "thresholds",
                        "gains"]), anything)
def test_arbiter_options_of_anything(option: str, value: Any) -> None:
    from swarmvar.arbiter import Arbiter

    refused_or(Arbiter.from_options, **{option: value},
               names=(option.split("_")[0], "t_threshold", "t1", "thresholds", "gains",
                      "(flows)", "(nodes)", "work units"))


@FUZZ
@given(anything, anything)
def test_arbiter_operators_on_unknown_names(small_history: Any, portfolio: Any,
                                            agent: Any) -> None:
    from swarmvar.arbiter import Arbiter

    arb = Arbiter(record_decisions=False)
    arb.observe(small_history.beat(1, "p"))
    for op in (arb.release, arb.quarantine_now):
        refused_or(op, portfolio, agent, names=("portfolio", "agent"))
    for q in (arb.last_signals, arb.state):
        refused_or(q, portfolio, names=("portfolio",))


@FUZZ
@given(st.tuples(*[st.floats(1e-3, 1.0)] * 4), st.integers(1, 39),
       st.lists(st.sampled_from(["realized", "late", "regime_probability"]), max_size=3),
       st.floats(-0.5, 0.5), st.floats(0.0, 1.0))
def test_decision_vector_is_finite_on_any_beat(small_history: Any, weights: Any, day: int,
                                               changes: list[str], realized: float,
                                               regime: float) -> None:
    """The decision vector is built only by aggregate_recommendations (it checks nothing
    itself): on any valid beat and genome its four scores and four emphases are finite."""
    from swarmvar.arbiter import SignalMemory, read_beat
    from swarmvar.arbiter.cores import aggregate_recommendations, run_cores
    from swarmvar.arbiter.pid import Genome
    from swarmvar.arbiter.threat import SEED_MODEL

    report = small_history.beat(day, "p")
    new = {"realized": realized, "late": True, "regime_probability": regime}
    report = dataclasses.replace(report, **{c: new[c] for c in changes})
    _, signals = read_beat(SignalMemory(), report)
    genome = Genome(*weights).normalized()
    v = aggregate_recommendations(run_cores(signals, genome, SEED_MODEL), genome)
    values = (v.threat, v.stability, v.repair, v.gain, *v.emphasis)
    assert len(v.emphasis) == 4 and all(
        isinstance(x, float) and math.isfinite(x) for x in values), v
    assert v.dominant in "RBEO"


# --- validation: the GARCH baseline and a backtest result's accessors ---------------------

@pytest.fixture(scope="module")
def fitted_baseline() -> Any:
    from swarmvar.data import load
    from swarmvar.validation import GarchTBaseline

    return GarchTBaseline().fit(load("sp500").to_numpy()[-300:])


@FUZZ
@given(st.one_of(float_arrays(), anything), st.one_of(anything, st.floats(-0.1, 0.1)),
       st.one_of(any_count, st.integers(1, 20)), st.one_of(st.just((0.99,)), anything))
def test_garch_baseline_of_anything(fitted_baseline: Any, returns: Any, r: Any, horizon: Any,
                                    alphas: Any) -> None:
    import copy

    from swarmvar.validation import GarchTBaseline

    names = ("returns", "window", "return", "update", "horizon", "alphas",
             "asymmetric")
    refused_or(GarchTBaseline, r, names=names)
    refused_or(GarchTBaseline().fit, returns, names=names)
    b = copy.deepcopy(fitted_baseline)
    refused_or(b.update, r, names=names)
    t = refused_or(b.predictive_t, horizon, names=names)
    assert t is None or all(math.isfinite(x) for x in t)
    fc = refused_or(b.forecast, alphas, horizon, names=names)
    assert fc is None or all(math.isfinite(m.var) and m.es >= m.var for m in fc.levels)


@FUZZ
@given(anything, any_level, st.one_of(anything, st.sampled_from(["kupiec", "z2"])),
       st.one_of(any_level, any_count))
def test_backtest_result_accessors_of_anything(small_backtest: Any, row: Any, alpha: Any,
                                               test: Any, level: Any) -> None:
    names = ("row", "alpha", "test", "level", "days")
    refused_or(small_backtest.passed, row, alpha, test, level, names=names)
    refused_or(small_backtest.test_table, level, names=names)
    refused_or(small_backtest.traffic_light_shares, level, names=names)


@pytest.fixture(scope="module")
def book_result(book_frame: Any) -> Any:
    import swarmvar
    from swarmvar.types import Book

    return swarmvar.book_var(book_frame, Book(("A", "B"), (1e6, -5e5)), kind="return",
                             agents=["niw"], window=60, trade={"C": 1e5})


@FUZZ
@given(st.one_of(anything, st.sampled_from(["niw", "consensus", "RiskMetrics", "x"])),
       any_level, any_count)
def test_book_result_accessors_of_anything(book_result: Any, row: Any, alpha: Any,
                                           top: Any) -> None:
    names = ("row", "alpha", "top", "attribution", "consensus")
    m = refused_or(book_result.measure, row, alpha, names=names)
    assert m is None or math.isfinite(m.var)
    refused_or(book_result.contributions, row, alpha, names=names)
    text = refused_or(book_result.summary, top, names=names)
    assert text is None or isinstance(text, str)


@FUZZ
@given(anything, anything, st.one_of(anything, st.floats(0.01, 10)), st.data())
def test_canary_steps_of_anything(now: Any, passed: Any, latency_scale: Any,
                                  data: st.DataObject) -> None:
    """start_canary / record_check / candidate with any clock, verdict and scale: refused
    (the stored variant unchanged) or a valid step."""
    from swarmvar.evolution import (
        BreakerConfig,
        BreakerSnapshot,
        CanaryConfig,
        MemoryVariantStore,
        VariantStatus,
        candidate,
        new_variant,
        record_check,
        routed_to_canary,
        start_canary,
    )

    store = MemoryVariantStore()
    v = store.add(new_variant("NormalInverseGamma", {"mu0": 0.001},
                              {"NormalInverseGamma": ("mu0",)}, now=1000.0))
    names = ("now", "passed", "latency_scale_s", "key", "time")
    started = refused_or(start_canary, store, v, CanaryConfig(), now, names=names)
    if started is None:
        assert store.get(v.id) == v
        started = start_canary(store, v, CanaryConfig(), 2000.0)
    before = store.get(v.id)
    out = refused_or(record_check, store, started, passed, CanaryConfig(),
                     data.draw(st.one_of(anything, st.floats(2000.0, 1e6)), label="now2"),
                     names=names)
    if out is None:
        assert store.get(v.id) == before
    else:
        assert out[0].status in (VariantStatus.CANARY, VariantStatus.ACTIVE,
                                 VariantStatus.ROLLED_BACK)
    c = refused_or(candidate, started, {}, BreakerSnapshot(), BreakerConfig(), latency_scale,
                   names=names)
    assert c is None or 0.0 <= c.base <= 1.0
    r = refused_or(routed_to_canary, started, data.draw(anything, label="key"), names=names)
    assert r is None or isinstance(r, bool)


@FEW
@given(st.sampled_from(sorted(_VAR_BAD)), st.data())
def test_var_of_any_argument(returns: Any, arg: str, data: st.DataObject) -> None:
    """One argument of anything (the others sane): refused by name, or a valid result."""
    import swarmvar

    value = data.draw(st.one_of(anything, st.sampled_from(_VAR_BAD[arg])), label=arg)
    if arg == "track_days" and isinstance(value, int) and value > 10:
        value = 10  # a real track record: keep it short (one worker)
    base = {"agents": ["nig", "bootstrap", "student-t"], "alphas": (0.99,), "track_days": 0}
    res = refused_or(swarmvar.var, returns, **{**base, arg: value},
                     names=(arg, *_SYNONYMS.get(arg, ())))
    if res is not None:
        assert all(math.isfinite(f.at(a).var) for f in res.forecasts.values()
                   for a in res.alphas)
        assert res.consensus is None or all(math.isfinite(m.var) for m in res.consensus.levels)


@FEW
@given(st.sampled_from(sorted(_BOOK_BAD)), st.data())
def test_book_var_of_any_argument(book_frame: Any, arg: str, data: st.DataObject) -> None:
    import swarmvar
    from swarmvar.types import Book

    value = data.draw(st.one_of(anything, st.sampled_from(_BOOK_BAD[arg])), label=arg)
    if arg in ("window", "track_days") and isinstance(value, int) and value > 60:
        value = 60
    if arg == "home":
        value = None if isinstance(value, (str, bytes)) else value  # no files written here
    base = {"kind": "return", "agents": ["niw"], "window": 60}
    res = refused_or(swarmvar.book_var, book_frame, Book(("A", "B"), (1e6, -5e5)),
                     **{**base, arg: value}, names=(arg, *_SYNONYMS.get(arg, ()), "book"))
    if res is not None:
        assert all(math.isfinite(res.measure(r, a).var) for r in res.rows() for a in res.alphas)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.none(), anything, st.floats(0.5, 1.0)),
       st.one_of(st.none(), anything, st.lists(st.sampled_from(["a", "b", "zz", 3]),
                                               max_size=3)),
       anything, anything)
def test_reports_and_plots_of_anything(small_backtest: Any, level: Any, models: Any,
                                       path: Any, ax: Any) -> None:
    import tempfile
    from pathlib import Path

    from swarmvar.emergence import plot_weights, summarize

    fig = refused_or(small_backtest.plot, level, models=models,
                     names=("level", "models", "row"))
    assert fig is None or len(fig.axes) >= 1
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / str(path)[:20] if isinstance(path, str) else path
        refused_or(small_backtest.to_html, target, names=("path", "cannot write"))
    summary = summarize(small_backtest, mcs_reps=20)
    refused_or(plot_weights, summary, ax, names=("ax",))


def test_calibration_refuses_a_factory_that_builds_no_agent() -> None:
    from swarmvar.validation import interval_coverage, sbc

    def draw(rng: np.random.Generator, n: int) -> Any:
        return 0.01 * rng.standard_normal(n)

    for factory in (lambda: None, lambda: "nig", dict):
        with pytest.raises(SwarmVarError, match="make_agent"):
            interval_coverage(factory, draw, 0.02, n_obs=30, n_rep=1)
        with pytest.raises(SwarmVarError, match="make_agent"):
            sbc(factory, n_sims=1, n_obs=30, n_draws=9, bins=5)
    with pytest.raises(SwarmVarError, match="simulate"):
        interval_coverage(_NIG(), lambda rng, n: ["x"] * n, 0.02, n_obs=30, n_rep=1)


@FUZZ
@given(st.one_of(anything, st.just("../../etc/x"), st.text(min_size=64, max_size=64)),
       st.one_of(anything, st.binary(max_size=200)))
def test_track_cache_of_any_key_and_file(key: Any, content: Any) -> None:
    """Only a track_key() names a file; any file content under it reads as None (rebuild)."""
    import tempfile
    from pathlib import Path

    from swarmvar.validation.track_cache import cache_path, load_track

    with tempfile.TemporaryDirectory() as tmp:
        path = refused_or(cache_path, tmp, key, names=("key",))
        if path is not None:
            assert path.parent == Path(tmp)
        good = "ab" * 32
        if isinstance(content, bytes):
            cache_path(tmp, good).write_bytes(content)
        assert refused_or(load_track, tmp, good, ("a", "b"), (0.99,)) is None


@FUZZ
@given(st.one_of(anything, st.just("seed")), anything, anything, st.data())
def test_arbiter_restore_and_threat_versions_of_anything(small_history: Any, model: Any,
                                                         description: Any, now: Any,
                                                         data: st.DataObject) -> None:
    from swarmvar.arbiter import SEED_MODEL, Arbiter, ThreatVersions

    versions = ThreatVersions()
    m = SEED_MODEL if isinstance(model, str) and model == "seed" else model
    published = refused_or(versions.publish, m, description, now,
                           names=("model", "description", "now"))
    if published is not None:
        assert versions.active() is not None
    refused_or(versions.roll_back, now, names=("now",))
    arb = Arbiter(record_decisions=False)
    arb.observe(small_history.beat(1, "p"))
    blob = arb.checkpoint_state("p")
    portfolio = data.draw(st.one_of(anything, st.just("q")), label="portfolio")
    agents = data.draw(st.one_of(anything, st.lists(anything, max_size=2)), label="agents")
    refused_or(Arbiter(record_decisions=False).restore_state, portfolio, blob, agents,
               names=("portfolio", "agent"))


@FUZZ
@given(any_count, any_count, anything,
       st.one_of(anything, st.lists(st.sampled_from(["a", "b", "zz", 3]), max_size=3)))
def test_beat_history_indices_of_anything(small_history: Any, small_backtest: Any, i: Any,
                                          j: Any, portfolio: Any, agents: Any) -> None:
    from swarmvar.arbiter import BeatHistory

    names = ("start", "stop", "day range", "agent", "day", "beat i", "portfolio", "result",
             "row")
    h = refused_or(small_history.slice, i, j, names=names)
    assert h is None or h.days == j - i
    f = refused_or(small_history.forecast, i, j, names=names)
    assert f is None or all(math.isfinite(m.var) for m in f.levels)
    b = refused_or(small_history.beat, i, portfolio, names=names)
    assert b is None or b.seq == i
    refused_or(BeatHistory.from_result, "x", small_backtest, agents, names=names)
    refused_or(BeatHistory.from_result, "x", portfolio, ["a"], names=names)


def test_levels_as_numpy_arrays_are_read_as_numbers(returns: Any) -> None:
    """A 0-d or 1-d array of levels is the levels it holds (found by fuzzing: a 0-d array
    reached ``iter()`` as a TypeError)."""
    import swarmvar

    for alphas in (np.array(0.99), np.array([0.99])):
        res = swarmvar.var(returns, ["nig"], alphas=alphas, consensus=False)
        assert res.alphas == (0.99,)


# --- numpy and pandas forms of valid arguments -------------------------------------------
# Each entry point takes np.int64 counts and seeds, np.float32/np.float64 numbers, arrays
# and Series of levels or losses as the Python values they equal: same result, no refusal.

def _numpy_form(value: Any, form: str) -> Any:
    """``value`` as numpy/pandas would hand it over (``form`` picks how)."""
    import pandas as pd

    if isinstance(value, (str, bool)):  # names and flags stay as they are
        return value
    if isinstance(value, tuple):  # a set of levels or a series of losses
        return {"array": np.array(value), "series": pd.Series(value),
                "list": list(value)}[form] if form != "scalar" or len(value) != 1 else (
            np.float64(value[0]))
    if isinstance(value, int):
        return {"array": np.int64(value), "series": np.int32(value), "list": np.int64(value),
                "scalar": np.uint32(value)}[form]
    exact32 = float(np.float32(value)) == value
    return {"array": np.float64(value), "series": np.float32(value) if exact32
            else np.float64(value), "list": np.float64(value), "scalar": np.float64(value)}[form]


numpy_forms = st.sampled_from(["array", "series", "list", "scalar"])


def _at99(result: Any) -> dict[str, Any]:
    return {name: f.at(0.99) for name, f in result.forecasts.items()}


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(numpy_forms, st.integers(0, 2**31 - 1))
def test_var_takes_numpy_arguments(returns: Any, form: str, seed: int) -> None:
    import swarmvar

    kw = {"alphas": (0.99,), "horizon": 1, "seed": seed, "track_days": 0, "workers": 1,
          "seq": 0}
    plain = swarmvar.var(returns, ["nig"], consensus=False, **kw)
    other = swarmvar.var(returns, ["nig"], consensus=False,
                         **{k: _numpy_form(v, form) for k, v in kw.items()})
    assert _at99(other) == _at99(plain) and _at99(plain)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(numpy_forms, st.integers(0, 2**31 - 1))
def test_book_var_takes_numpy_arguments(book_frame: Any, form: str, seed: int) -> None:
    import swarmvar
    from swarmvar.types import Book

    book = Book(("A", "B"), (1e6, -5e5))
    kw = {"alphas": (0.99,), "horizon": 1, "window": 60, "seed": seed, "track_days": 0}
    plain = swarmvar.book_var(book_frame, book, kind="return", agents=["niw"], **kw)
    other = swarmvar.book_var(book_frame, book, kind="return", agents=["niw"],
                              **{k: _numpy_form(v, form) for k, v in kw.items()})
    assert _at99(other) == _at99(plain) and _at99(plain)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(numpy_forms, st.integers(0, 2**31 - 1))
def test_book_backtest_takes_numpy_arguments(book_frame: Any, form: str, seed: int) -> None:
    from swarmvar.book_api import book_backtest
    from swarmvar.types import Book

    book = Book(("A", "B"), (1e6, -5e5))
    kw = {"alphas": (0.99,), "last": 5, "window": 100, "refit_every": 5, "seed": seed,
          "workers": 1}
    flags = {"kind": "return", "agents": ["niw"], "consensus": False, "baselines": False}
    plain = book_backtest(book_frame, book, **flags, **kw)  # type: ignore[arg-type]
    other = book_backtest(book_frame, book, **flags,  # type: ignore[arg-type]
                          **{k: _numpy_form(v, form) for k, v in kw.items()})
    for row in plain.series:
        np.testing.assert_array_equal(other.series[row][0.99].var, plain.series[row][0.99].var)


@FEW
@given(numpy_forms, st.integers(0, 2**31 - 1), st.sampled_from([(0.99,), (0.99, 0.975)]))
def test_simulate_and_statistics_take_numpy_arguments(form: str, seed: int,
                                                      alphas: tuple[float, ...]) -> None:
    from swarmvar.emergence import Design, simulate
    from swarmvar.validation import fz0_loss, kupiec, mcneil_frey

    if form == "scalar":
        alphas = alphas[:1]
    plain = simulate(Design.GJR_T, 60, seed, alphas)
    other = simulate(Design.GJR_T, _numpy_form(60, form), _numpy_form(seed, form),
                     _numpy_form(alphas, form))
    np.testing.assert_array_equal(other.returns, plain.returns)
    assert set(other.var) == set(plain.var)
    loss, var, es = -plain.returns, plain.var[0.99], plain.es[0.99]
    np.testing.assert_array_equal(fz0_loss(_numpy_form(tuple(loss), form) if form != "scalar"
                                           else loss, var, es, np.float64(0.99)),
                                  fz0_loss(loss, var, es, 0.99))
    # repr: NaN (an undefined test) equals NaN
    assert repr(kupiec(list(loss > var), np.float32(0.75))) == repr(
        kupiec(list(loss > var), 0.75))
    assert repr(mcneil_frey(loss, var, es, n_boot=_numpy_form(50, form),
                            seed=_numpy_form(seed, form))) == repr(
        mcneil_frey(loss, var, es, n_boot=50, seed=seed))


@FUZZ
@given(numpy_forms, st.integers(1, 50), st.floats(0.01, 0.99), st.floats(1.0, 1e6))
def test_configs_take_numpy_arguments(form: str, count: int, fraction: float,
                                      seconds: float) -> None:
    from swarmvar.arbiter import Thresholds
    from swarmvar.arbiter.drill import Drift
    from swarmvar.evolution.config import (
        BreakerConfig,
        CanaryConfig,
        EvolutionConfig,
        RollbackConfig,
        StateConfig,
    )

    cases = [(BreakerConfig, {"failure_threshold": count, "reset_timeout_s": seconds,
                              "max_reset_attempts": count}),
             (CanaryConfig, {"initial_fraction": fraction, "ramp_steps": count,
                             "health_check_interval_s": seconds, "max_failed_checks": count}),
             (RollbackConfig, {"max_points": count, "retention_s": seconds}),
             (StateConfig, {"chunk_bytes": count, "compression_level": count % 10,
                            "cache_bytes": count}),
             (EvolutionConfig, {"max_variants": count, "metrics_interval_s": seconds}),
             (Thresholds, {"min_agents": count, "quarantine_anomalies": count,
                           "gain": fraction, "agent_p": fraction}),
             (Drift, {"agent": "A", "start": count, "frozen": True})]
    for cls, kw in cases:
        plain, other = cls(**kw), cls(**{k: _numpy_form(v, form) for k, v in kw.items()})
        assert other == plain
        for k in kw:  # kept as the Python number, not the numpy one
            assert type(getattr(other, k)) is type(getattr(plain, k)), (cls, k)
