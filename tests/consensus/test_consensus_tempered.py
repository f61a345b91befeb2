"""Tempered exponential weights: batch path, online accumulator and live combine agree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    DEFAULT_POLICY,
    LevelForecasts,
    Loss,
    Policy,
    TemperedWeights,
    TrackRecord,
    Weighting,
    agent_weights,
    consensus_levels,
    effective_agents,
    fz0_loss,
    joint_losses,
    pinball_loss,
    tempered_path,
    tempered_weights,
)
from swarmvar.errors import InvalidParameter, InvalidState, SwarmVarError

ALPHAS = (0.99, 0.975)


def paths(days: int = 300, n: int = 5, seed: int = 0):
    """Returns and n agents' (L, T, n) forecasts: agent k's scale is off by a known factor."""
    rng = np.random.default_rng(seed)
    sd = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, days)))
    r = sd * rng.standard_t(5, days) / np.sqrt(5 / 3)
    off = np.linspace(0.6, 1.6, n)
    var = np.stack([sd[:, None] * z * off[None, :] for z in (2.6, 2.2)])
    return r, var, var * 1.2


def test_weights_match_the_closed_form():
    mean = np.array([-3.2, -3.5, -3.45, -3.0])
    w = tempered_weights(mean, 30.0)
    expected = np.exp(-30 * mean) / np.exp(-30 * mean).sum()
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    np.testing.assert_allclose(tempered_weights(mean, 0.0), 0.25)  # eta 0: equal
    assert effective_agents(w) == pytest.approx(1 / np.sum(expected**2))
    # the pinball score is the log mean loss: invariant to the units of returns
    pin = np.array([0.002, 0.001, 0.004])
    np.testing.assert_allclose(tempered_weights(pin, 5.0, loss=Loss.PINBALL),
                               tempered_weights(pin * 100, 5.0, loss=Loss.PINBALL), rtol=1e-12)


def test_joint_losses_sum_the_levels():
    r, var, es = paths(50)
    got = joint_losses(r, var, es, ALPHAS)
    ref = fz0_loss(r, var[0], es[0], 0.99) + fz0_loss(r, var[1], es[1], 0.975)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    pin = joint_losses(r, var, None, ALPHAS, Loss.PINBALL)
    np.testing.assert_allclose(pin, pinball_loss(r, var[0], 0.99) + pinball_loss(r, var[1], 0.975))


@pytest.mark.parametrize(("window", "lag"), [(None, 1), (40, 1), (40, 5), (1, 3), (500, 2)])
def test_path_row_t_is_the_weights_of_its_own_window(window, lag):
    r, var, es = paths(120)
    x = joint_losses(r, var, es, ALPHAS)
    got = tempered_path(x, 20.0, window, lag=lag)
    for t in range(120):
        end = t - lag + 1
        if end < 1:
            np.testing.assert_allclose(got[t], 0.2)
            continue
        start = 0 if window is None else max(0, end - window)
        np.testing.assert_allclose(got[t], tempered_weights(x[start:end].mean(axis=0), 20.0),
                                   rtol=1e-10, atol=1e-300)


def test_online_accumulator_equals_the_batch_path_and_survives_a_restart():
    r, var, es = paths(260)
    x = joint_losses(r, var, es, ALPHAS)
    batch = tempered_path(x, 30.0, 50)
    acc = TemperedWeights([f"a{i}" for i in range(5)], ALPHAS, eta=30.0, window=50)
    for t in range(260):
        np.testing.assert_allclose(acc.weights(), batch[t], rtol=1e-9, atol=1e-300)
        if t == 137:
            acc = TemperedWeights.from_state(acc.to_state())
        acc.update(float(r[t]), var[:, t, :], es[:, t, :])
    assert acc.count == 260
    assert 1.0 <= acc.effective_agents() <= 5.0


def test_weights_favour_the_calibrated_agent():
    r, var, es = paths(600, n=5, seed=3)
    w = tempered_path(joint_losses(r, var, es, ALPHAS), 30.0, 250)[-1]
    assert np.argmax(w) in (1, 2)  # off by 0.85 or 1.1: the nearest to calibrated
    assert w[0] + w[4] < 1e-3  # off by 0.6 and 1.6


def test_consensus_levels_tempered_equals_trimmed_mean_with_path_weights():
    r, var, es = paths(200)
    levels = {a: LevelForecasts(var[k], es[k]) for k, a in enumerate(ALPHAS)}
    policy = Policy(f=1, weighting=Weighting.TEMPERED, window=60, eta=30.0)
    out = consensus_levels(r, levels, policy)
    w = tempered_path(joint_losses(r, var, es, ALPHAS), 30.0, 60)
    # every agent's forecasts are ordered the same way each day: trimmed = columns 1..3
    t = 150
    keep = w[t, 1:4] / w[t, 1:4].sum()
    assert out[0.99].var[t] == pytest.approx(float(var[0, t, 1:4] @ keep), rel=1e-12)


def test_horizon_lag_uses_only_realized_losses():
    """Day t's weights with horizon h cannot see returns of days > t - h."""
    r, var, es = paths(150)
    levels = {a: LevelForecasts(var[k], es[k]) for k, a in enumerate(ALPHAS)}
    for weighting in (Weighting.TEMPERED, Weighting.TRACK_RECORD):
        policy = Policy(f=1, weighting=weighting, window=50)
        base = consensus_levels(r, levels, policy, horizon=5)
        bent = r.copy()
        bent[96:] *= 4.0  # days 96.. change: day 100's weights (days <= 95) must not
        moved = consensus_levels(bent, levels, policy, horizon=5)
        np.testing.assert_array_equal(base[0.99].weights[:101], moved[0.99].weights[:101])
        assert not np.array_equal(base[0.99].weights[101:], moved[0.99].weights[101:])
    with pytest.raises(InvalidParameter):
        consensus_levels(r, levels, DEFAULT_POLICY, horizon=0)


def test_live_agent_weights_equal_the_path_on_the_same_record():
    r, var, es = paths(300)
    records = [TrackRecord(tuple(f"a{i}" for i in range(5)), r, a, var[k], es[k])
               for k, a in enumerate(ALPHAS)]
    live = agent_weights([f"a{i}" for i in range(5)], DEFAULT_POLICY, records)
    # the path's weights for the day after the record's last return
    x = joint_losses(r, var, es, ALPHAS)
    path = tempered_path(np.vstack([x, x[-1:]]), DEFAULT_POLICY.eta or 0.0,
                         DEFAULT_POLICY.window)
    np.testing.assert_allclose(live, path[-1], rtol=1e-10)
    with pytest.raises(InvalidParameter):
        agent_weights(["a0"], DEFAULT_POLICY, [TrackRecord(("a0",), r, 0.99, var[0, :, :1])])


@pytest.mark.parametrize("bad", [dict(eta=-1.0), dict(eta=float("nan")), dict(eta="3"),
                                 dict(window=0), dict(window=2.5), dict(window=10**6)])
def test_bad_parameters_raise(bad):
    with pytest.raises(InvalidParameter):
        TemperedWeights(["a", "b"], ALPHAS, **bad)


def test_bad_updates_and_states_raise():
    acc = TemperedWeights(["a", "b"], ALPHAS, window=5)
    with pytest.raises(InvalidParameter):
        acc.update(0.01, np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(InvalidParameter):
        acc.update(float("nan"), np.full((2, 2), 0.02), np.full((2, 2), 0.03))
    with pytest.raises(InvalidParameter):
        acc.update(0.01, np.full((2, 2), 0.03), np.full((2, 2), -0.03))  # ES < 0
    assert acc.count == 0
    for dup in (["a", "a"], [], [1, 2]):
        with pytest.raises(InvalidParameter):
            TemperedWeights(dup, ALPHAS)  # type: ignore[arg-type]
    acc.update(-0.03, np.full((2, 2), 0.02), np.full((2, 2), 0.03))
    b = acc.to_state()
    for bad in (b[:-3], b"x" + b[1:], b"", b[:10]):
        with pytest.raises(InvalidState):
            TemperedWeights.from_state(bad)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 10**6))
def test_fuzzed_states_never_restore_altered(junk, pos):
    acc = TemperedWeights(["a", "b", "c"], ALPHAS, window=4)
    acc.update(0.01, np.full((2, 3), 0.02), np.full((2, 3), 0.03))
    b = bytearray(acc.to_state())
    b[pos % len(b)] ^= 1 + pos % 200
    for cand in (bytes(b), junk):
        with pytest.raises(SwarmVarError):
            TemperedWeights.from_state(cand)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=6), st.floats(0, 1e4))
def test_weights_are_a_distribution_for_any_finite_scores(means, eta):
    w = tempered_weights(np.array(means), eta)
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0)
    assert 1.0 - 1e-9 <= effective_agents(w) <= len(means) + 1e-9


def _as_format_1(state: bytes, n: int) -> bytes:
    """A format-2 state rewritten as format 1 (the ring only), as saved before 2026-12-06."""
    import hashlib

    payload = state[:-32]
    body = b"SVTW1" + payload[5:-8 * n]
    return body + hashlib.sha256(body).digest()


def _with_sums(state: bytes, sums: np.ndarray) -> bytes:
    """A format-2 state with other running sums and a valid checksum (a forged state)."""
    import hashlib

    body = state[:-32][: -8 * sums.size] + sums.astype("<f8").tobytes()
    return body + hashlib.sha256(body).digest()


def _fed(days: int = 173, window: int = 40) -> tuple[TemperedWeights, tuple]:
    r, var, es = paths(days + 30)
    acc = TemperedWeights([f"a{i}" for i in range(5)], ALPHAS, eta=30.0, window=window)
    for t in range(days):
        acc.update(float(r[t]), var[:, t, :], es[:, t, :])
    return acc, (r, var, es)


def test_state_carries_the_running_sums_bit_for_bit():
    acc, (r, var, es) = _fed()
    # mid-lap: the running sums differ from the ring's exact sums in the last bits
    assert not np.array_equal(acc._sum, acc._ring.sum(axis=0))
    again = TemperedWeights.from_state(acc.to_state())
    assert again.to_state() == acc.to_state()
    assert np.array_equal(again.weights(), acc.weights())
    for t in range(173, 203):
        acc.update(float(r[t]), var[:, t, :], es[:, t, :])
        again.update(float(r[t]), var[:, t, :], es[:, t, :])
        assert np.array_equal(again.weights(), acc.weights())


def test_format_1_states_still_read():
    acc, _ = _fed()
    old = _as_format_1(acc.to_state(), 5)
    resummed = TemperedWeights.from_state(old)  # the ring re-summed: equal to rounding
    np.testing.assert_allclose(resummed.weights(), acc.weights(), rtol=1e-12)
    assert resummed.count == acc.count
    # with the sums the swarm kept beside it: bit for bit
    exact = TemperedWeights.from_state(old, sums=acc.mean_losses() * min(acc.count, 40))
    np.testing.assert_allclose(exact.weights(), acc.weights(), rtol=1e-12)
    kept = TemperedWeights.from_state(old, sums=acc._sum)
    assert np.array_equal(kept.weights(), acc.weights())
    for bad in (np.zeros(4), np.full(5, np.nan), acc._sum + 1.0):
        with pytest.raises(InvalidState):
            TemperedWeights.from_state(old, sums=bad)


def test_running_sums_that_disagree_with_the_ring_are_refused():
    acc, _ = _fed()
    state = acc.to_state()
    assert TemperedWeights.from_state(_with_sums(state, acc._sum.copy())).count == acc.count
    for sums in (acc._sum * 1.001, acc._sum + np.array([0, 0, 1e-3, 0, 0]),
                 np.full(5, np.inf)):
        with pytest.raises(InvalidState):
            TemperedWeights.from_state(_with_sums(state, sums))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=7))
def test_fuzzed_old_sums_never_restore_wrong_weights(sums):
    acc, _ = _fed(days=60, window=20)
    old = _as_format_1(acc.to_state(), 5)
    try:
        out = TemperedWeights.from_state(old, sums=np.array(sums, dtype=np.float64))
    except SwarmVarError:
        return
    np.testing.assert_allclose(out.weights(), acc.weights(), rtol=1e-6)


def test_a_ring_whose_sum_overflows_is_refused():
    """Review: ring rows of 1e308 overflowed the check's sums to inf, so any running sums
    passed (and the overflow warned); such a ring is refused."""
    import hashlib

    acc, _ = _fed(days=60, window=20)
    state = acc.to_state()
    n = 5
    payload = state[:-32]
    ring_bytes = len(payload) - 8 * n - 8 * acc._ring.size
    huge = np.full(acc._ring.size, 1e308).astype("<f8").tobytes()
    body = payload[:ring_bytes] + huge + np.array([-5.0, 2.0, 0.0, 0.0, 0.0]).astype(
        "<f8").tobytes()
    with pytest.raises(InvalidState, match="overflow"):
        TemperedWeights.from_state(body + hashlib.sha256(body).digest())
