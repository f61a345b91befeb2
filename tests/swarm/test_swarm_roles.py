"""Roles off the beat path: foragers (a slow refit never blocks a beat), builders, guards,
scouts (change points checked against an independent Adams & MacKay implementation)."""

from __future__ import annotations

import math
import time
from datetime import UTC, timedelta

import numpy as np
import pytest

from swarmvar.emergence import OnlineChangePoint
from swarmvar.ledger import Ledger
from swarmvar.swarm import LocalExecutor, Replay, RoleConfig
from swarmvar.swarm.roles import Builders, Guards, Scouts
from swarmvar.types import Diagnostics, Tick
from swarmvar.validation import christoffersen, kupiec

from . import _slow_refit
from .conftest import TINY, TINY_POLICY, make_swarm


def test_a_slow_refit_never_blocks_a_beat_and_swaps_at_a_boundary(tmp_path, sp500,
                                                                 monkeypatch):
    # the refit is held (in its forager process) until the test opens a gate, HELD beats after
    # it started: the beats that ran meanwhile prove none waited for it (a latency bound on a
    # clock failed on a loaded machine; the latencies are printed, not asserted)
    gate = tmp_path / "refit-gate"
    monkeypatch.setenv(_slow_refit.GATE_ENV, str(gate))
    held = 15
    executor = LocalExecutor(refit=_slow_refit.slow_refit)
    roles = RoleConfig.quiet(refit_lag=2, refit_wait=False, scouts=False)
    swarm = make_swarm(tmp_path, agents=TINY, policy=TINY_POLICY, window=100, refit_every=10,
                       roles=roles, executor=executor, checkpoint_every=10**6)
    latencies, reports = [], []
    released = None
    pending_at_release: list[bool] = []  # each launched refit's future: still running?
    with swarm:
        swarm.start({"sp500": sp500.iloc[:100]})
        deadline = time.monotonic() + 120  # a loaded machine slows the forager down
        for i in range(400):
            tick = Tick("sp500", sp500.index[100 + i].to_pydatetime().replace(tzinfo=UTC),
                        value=float(sp500.iloc[100 + i]))
            begin = time.perf_counter()
            reports.append(swarm.step(tick))
            latencies.append(time.perf_counter() - begin)
            # a beat that waited for the held refit returns only when the forager gives up
            # (GATE_SECONDS): fail on that one beat, not after several such stalls
            if latencies[-1] > _slow_refit.GATE_SECONDS / 2:
                pytest.fail(f"beat {reports[-1].seq} took {latencies[-1]:.1f} s: it waited "
                            "for the held refit")
            if any("refit-failed" in e for e in reports[-1].events):
                pytest.fail(f"a refit failed at beat {reports[-1].seq}: "
                            f"{reports[-1].events}")
            first = [r.seq for r in reports if any("refit-started" in e for e in r.events)]
            if released is None and first and reports[-1].seq >= first[0] + held:
                pending_at_release = [not f.done() for _, f in swarm._pending.values()
                                      if f is not None]
                gate.touch()  # every beat so far ran while the refit was held
                released = reports[-1].seq
            swapped_yet = any("refit-swapped" in e for r in reports for e in r.events)
            if i >= 44 and (swapped_yet or time.monotonic() > deadline):
                break
            time.sleep(0.05)  # ticks arrive over time; the refit runs meanwhile
    started = [r.seq for r in reports if any("refit-started" in e for e in r.events)]
    swapped = [r.seq for r in reports if any("refit-swapped" in e for e in r.events)]
    print(f"beat latency: median {np.median(latencies):.4f} s, max {max(latencies):.4f} s "
          f"(refit held {held} beats)")
    # on the rhythm, and never a second refit of an agent while its first one runs
    assert started[0] == 10 and all(s % 10 == 0 for s in started)
    assert all(not (a < b < c) for a in started for b in started for c in swapped[:1]
               if a == started[0] and b != a)
    assert swapped, "the refit was never swapped in"
    # HELD beats ran beside the held refit (none waited for it), the swap came after it
    assert released is not None, "the refit's gate was never opened"
    assert pending_at_release and all(pending_at_release), \
        "the held refit was not running when its gate opened"
    assert swapped[0] > released  # at a boundary well after launch
    with Ledger.open(tmp_path) as ledger:
        flows = [e.data["result"] for e in ledger.entries() if e.kind == "flow"]
    builders = [f for f in flows if f["action"] == "validation"]
    assert [f["seq"] for f in builders][:4] == [10, 20, 30, 40]  # the builders' tests
    assert builders[3]["detail"]["consensus"]["0.99"]["days"] == 40
    swaps = [f for f in flows if f["action"] == "refit-swapped"]
    assert {f["seq"] for f in swaps} == set(swapped)
    assert all(f["detail"]["swapped"] == f["seq"] and f["detail"]["launched"] < f["seq"]
               for f in swaps)


def test_deferred_refits_give_the_same_numbers_wherever_they_run(tmp_path, sp500):
    """refit_lag=3 with waiting: deterministic; in this process and in two workers alike."""
    out = []
    for k, executor in enumerate((LocalExecutor(), LocalExecutor(workers=2))):
        reports = []
        swarm = make_swarm(tmp_path / str(k), ["a", "b"], agents=TINY, policy=TINY_POLICY,
                           window=100, refit_every=7, executor=executor,
                           roles=RoleConfig.quiet(refit_lag=3), checkpoint_every=10)
        with swarm:
            swarm.start({"a": sp500.iloc[:100], "b": sp500.iloc[300:400]})
            swarm.run(Replay(sp500.iloc[:130], portfolio="a", start=100),
                      on_beat=reports.append)
        out.append([(r.seq, [c.var for c in r.consensus], r.events) for r in reports])
    assert out[0] == out[1]
    assert any("refit-swapped" in e for _, _, ev in out[0] for e in ev)


def test_builders_equal_the_validation_engine_on_the_trailing_window():
    rng = np.random.default_rng(3)
    b = Builders(("x", "consensus"), (0.99, 0.975), window=60)
    losses = rng.standard_t(4, 150) * 0.01
    var = {0.99: np.array([0.02, 0.025]), 0.975: np.array([0.015, 0.018])}
    es = {a: v * 1.3 for a, v in var.items()}
    for x in losses:
        b.add(-x, var, es)
    now = b.current()
    for k, row in enumerate(("x", "consensus")):
        for a in (0.99, 0.975):
            hits = losses[-60:] > var[a][k]
            v = now[row][a]
            assert (v.days, v.hits) == (60, int(hits.sum()))
            assert v.kupiec == pytest.approx(kupiec(hits, a).pvalue, rel=1e-12)
            want = christoffersen(hits).pvalue
            assert (math.isnan(v.christoffersen) and math.isnan(want)) or \
                v.christoffersen == pytest.approx(want, rel=1e-12)


def test_guards_ask_for_a_refit_on_low_ess_high_rhat_and_score_drift():
    g = Guards(("a", "b", "c"), RoleConfig())
    ok = Diagnostics(method="smc", ess=900.0, draws=1000)
    found = g.check(1, {"a": 1.0, "b": 1.0, "c": 1.0},
                    {"a": Diagnostics(method="smc", ess=10.0, draws=1000),
                     "b": Diagnostics(method="nuts", rhat={"mu": 1.2}), "c": ok}, cooldown=5)
    assert {f.agents for f in found} == {("a",), ("b",)}
    assert all(f.action == "refit-requested" for f in found)
    assert not g.check(2, {"a": 1.0}, {"a": Diagnostics(method="smc", ess=10.0, draws=1000)},
                       cooldown=5)  # cooling down
    rng = np.random.default_rng(0)
    g2 = Guards(("a",), RoleConfig())
    flagged = []
    for t in range(300):
        score = rng.normal(3.0, 0.5) if t < 250 else rng.normal(1.0, 0.5)
        flagged += [t for f in g2.check(t, {"a": score}, {}, cooldown=100)]
    assert flagged and 250 <= flagged[0] <= 262


def _naive_bocpd(z: np.ndarray, hazard: float, window: int, mu0=0.0, kappa0=1.0, alpha0=2.0,
                 beta0=2.0) -> np.ndarray:
    """Adams & MacKay (2007) by the book: every run kept with its own data, no truncation."""
    runs: list[list[float]] = []
    mass: list[float] = []
    out = []
    for t, x in enumerate(z, start=1):
        def pred(data: list[float], x: float = float(x)) -> float:
            n = len(data)
            xbar = float(np.mean(data)) if n else 0.0
            kappa, alpha = kappa0 + n, alpha0 + n / 2
            mu = (kappa0 * mu0 + n * xbar) / kappa
            beta = beta0 + 0.5 * float(np.sum((np.asarray(data) - xbar) ** 2)) + \
                kappa0 * n * (xbar - mu0) ** 2 / (2 * kappa)
            scale = math.sqrt(beta * (kappa + 1) / (alpha * kappa))
            nu, u = 2 * alpha, (x - mu) / scale
            return math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)
                            - 0.5 * math.log(nu * math.pi) - math.log(scale)
                            - (nu + 1) / 2 * math.log1p(u * u / nu))
        if t == 1:
            runs, mass = [[x]], [1.0]
        else:
            grown = [(1 - hazard) * pred(d) * m for d, m in zip(runs, mass, strict=True)]
            fresh = hazard * pred([]) * sum(mass)
            runs = [[x]] + [d + [x] for d in runs]
            mass = [fresh, *grown]
            total = sum(mass)
            mass = [m / total for m in mass]
        # runs[k] has k + 1 returns; the last run began with the first return (no change)
        out.append(sum(m for k, m in enumerate(mass) if k + 1 <= window and k + 1 < t))
    return np.array(out)


def test_change_points_match_an_independent_implementation():
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.normal(0, 1, 80), rng.normal(0.5, 2.0, 70)])
    detector = OnlineChangePoint(hazard=1 / 50, threshold=0.5, max_run=1000, window=20)
    ours = np.array([detector.update(float(x)).prob_change for x in z])
    np.testing.assert_allclose(ours, _naive_bocpd(z, 1 / 50, 20), rtol=1e-7, atol=1e-10)


def _garch(n: int, rng: np.random.Generator, w=1e-6, a=0.08, b=0.9) -> np.ndarray:
    s2, out = w / (1 - a - b), np.empty(n)
    for t in range(n):
        out[t] = math.sqrt(s2) * rng.standard_t(6) * math.sqrt(4 / 6)
        s2 = w + a * out[t] ** 2 + b * s2
    return out


def test_scouts_find_a_volatility_doubling_and_rarely_cry_wolf():
    """Stated: a doubling of volatility flagged within 30 days (6 of 6 simulations,
    median <= 15); at most 3 false alarms per 1,000 i.i.d. days and 12 per 1,000 days of
    stationary GARCH(1,1)-t (persistence 0.98; its calm and wild spells are changes to a
    fixed-scale detector)."""
    delays, calm = [], 0
    for s in range(6):
        rng = np.random.default_rng(s)
        scouts = Scouts(float(np.std(rng.normal(0, 0.01, 250), ddof=1)), RoleConfig())
        x = np.concatenate([rng.normal(0, 0.01, 500), rng.normal(0, 0.02, 200)])
        flags = [scouts.observe(float(v))[1] is not None for v in x]
        calm += sum(flags[:500])
        after = [i for i, f in enumerate(flags[500:]) if f]
        assert after and after[0] <= 30, (s, after[:1])
        delays.append(after[0])
    assert np.median(delays) <= 15
    assert calm <= 3 * 3000 / 1000
    alarms = 0
    for s in range(2):
        x = _garch(1250, np.random.default_rng(100 + s))
        scouts = Scouts(float(np.std(x[:250], ddof=1)), RoleConfig())
        alarms += sum(scouts.observe(float(v))[1] is not None for v in x[250:])
    assert alarms <= 12 * 2000 / 1000


def test_a_regime_flag_asks_the_foragers_and_is_ledgered(tmp_path, sp500):
    """A volatility jump in the ticks: the scouts flag it, every agent is refitted."""
    roles = RoleConfig(guards=False)
    swarm = make_swarm(tmp_path, agents=TINY, policy=TINY_POLICY, window=100, roles=roles,
                       refit_every=1000, checkpoint_every=10**6)
    rng = np.random.default_rng(2)
    with swarm:
        swarm.start({"sp500": sp500.iloc[:100]})
        day = swarm.last_as_of["sp500"]
        reports = [swarm.step(Tick("sp500", day + timedelta(days=k + 1),
                                   value=float(rng.normal(0, 0.06))))
                   for k in range(25)]
    flagged = [r for r in reports if any("regime-flag" in e for e in r.events)]
    assert flagged and flagged[0].regime_probability > 0.5
    assert any("refit-done" in e for e in flagged[0].events)
    with Ledger.open(tmp_path) as ledger:
        flows = [e.data["result"]["action"] for e in ledger.entries() if e.kind == "flow"]
    assert "regime-flag" in flows and "refit-done" in flows


def test_builders_leave_a_forecast_of_a_gain_unscored_not_an_error() -> None:
    """A series that only rose forecasts negative VaR/ES: FZ0 is undefined, coverage is not."""
    import numpy as np

    from swarmvar.swarm.roles import Builders

    b = Builders(["a", "consensus"], [0.99], window=10)
    b.add(0.001, {0.99: np.array([-0.002, 0.01])}, {0.99: np.array([-0.001, 0.012])})
    b.add(-0.02, {0.99: np.array([0.01, np.nan])}, {0.99: np.array([0.012, np.nan])})
    now = b.current()
    assert now["a"][0.99].days == 2 and now["a"][0.99].hits == 2  # -0.001 > -0.002 too
    assert np.isfinite(now["a"][0.99].fz0)  # the mean over the scored day only
    assert now["consensus"][0.99].days == 1 and now["consensus"][0.99].hits == 0
