"""Pulse and genomic PID: the design's vectors, anti-windup, ε-reset, bounds, closed loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import Cadence, Genome, PidState, Pulse, recalibrate, seed_error, t_lambda
from swarmvar.arbiter.pid import (
    E_MAX,
    E_MIN,
    O_MAX,
    O_MIN,
    PidGains,
    measured_error,
    pid_output,
    seed_e_weight,
)
from swarmvar.errors import InvalidParameter, SwarmVarError


def test_pulse_reproduces_the_design_vector() -> None:
    assert t_lambda(4, 5, math.e**4, 0.001) == pytest.approx(0.004211, abs=5e-7)
    assert t_lambda(4, 5, math.e**4, 0.001) == pytest.approx(0.004 / 0.95, rel=1e-12)
    assert Pulse().budget == pytest.approx(0.004211, abs=5e-7)


def test_design_error_and_initial_weights() -> None:
    assert seed_error(Pulse().budget, 0.02) == pytest.approx(-0.015789, abs=5e-7)
    assert Pulse().seed_delta_t == pytest.approx(-0.015789, abs=5e-7)
    g = Genome()
    assert g.as_tuple() == (0.25, 0.25, 0.15, 0.35)
    assert sum(g.as_tuple()) == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "p"), [(1, 1), (0.5, 2), (0.1, 0.1)])
def test_pulse_needs_kp_above_one(k: float, p: float) -> None:
    with pytest.raises(InvalidParameter, match="k \\* P > 1"):
        t_lambda(k, p)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0, "4", True])
def test_pulse_refuses_bad_numbers(bad: object) -> None:
    with pytest.raises(SwarmVarError):
        t_lambda(bad, 5)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True,
                                                                 allow_infinity=True))
def test_pulse_is_finite_or_refused(k: float, p: float) -> None:
    try:
        value = t_lambda(k, p)
    except InvalidParameter:
        assert not (math.isfinite(k) and math.isfinite(p) and k > 0 and p > 0 and k * p > 1)
    else:
        assert k * p > 1 and math.isfinite(value) and value >= 1e-6


def test_pulse_floor() -> None:
    assert t_lambda(4, 5, math.e, 1e-12) == 1e-6
    assert t_lambda(4, 5, 1.0, 0.001) == 1e-6  # ln 1 = 0


def test_anti_windup_clamps_the_integral() -> None:
    s = PidState()
    for _ in range(50):
        s, out, _, _ = pid_output(s, 5.0, PidGains())
    assert s.integral == 1.0
    for _ in range(50):
        s, out, _, _ = pid_output(s, -5.0, PidGains())
    assert s.integral == -1.0


def test_epsilon_reset() -> None:
    s = PidState(integral=0.7, last_error=0.3)
    s, out, deriv, reset = pid_output(s, 5e-5, PidGains())
    assert reset and s.integral == 0.0
    assert out == pytest.approx(0.6 * 5e-5 + 0.05 * (5e-5 - 0.3))
    s, _, _, reset = pid_output(s, 2e-4, PidGains())
    assert not reset and s.integral == pytest.approx(2e-4)


def test_delta_o_limited_per_beat() -> None:
    g, _, step = recalibrate(Genome(), PidState(), 10.0, 0.0)
    assert step.delta_o == -0.05 and step.output > 0.05
    g, _, step = recalibrate(Genome(), PidState(), -10.0, 0.0)
    assert step.delta_o == 0.05
    assert g.o == pytest.approx(0.40)  # O moves by exactly ΔO: R and B give way


def test_design_pid_step_vector() -> None:
    """The design's first step: ΔT = -0.015789 -> output = Kp ΔT + Ki ΔT, ΔO = -output."""
    dt = Pulse().seed_delta_t
    _, _, step = recalibrate(Genome(), PidState(), dt, 0.6457, seed_beat=0)
    assert step.output == pytest.approx(0.6 * dt + 0.1 * dt)
    assert step.delta_o == pytest.approx(0.011053, abs=1e-6)


def test_design_e_rule_pins_e_at_its_floor() -> None:
    for o in (0.31, 0.5, 0.9):
        assert seed_e_weight(0.9, o, 0.0) == E_MIN
    assert seed_e_weight(0.4, 0.5, 0.0) == 0.10


def test_design_open_loop_drifts_to_the_clamp() -> None:
    """The design's error is the same every beat, so O drifts to its clamp and E sits
    at its floor whatever the load (the flaw the measured error removes)."""
    dt = Pulse().seed_delta_t
    seed, s1 = Genome(), PidState()
    for beat in range(500):
        seed, s1, _ = recalibrate(seed, s1, dt, 0.7, seed_beat=beat)
    assert seed.o == pytest.approx(O_MAX, abs=1e-9)
    assert seed.e == pytest.approx(E_MIN, abs=1e-9)
    assert s1.integral == -1.0  # wound up to the clamp and held there


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(0, 1)), min_size=1, max_size=120))
def test_weights_sum_to_one_and_stay_in_bounds(seq: list[tuple[float, float]]) -> None:
    g, s = Genome(), PidState()
    for error, threat in seq:
        g, s, _ = recalibrate(g, s, error, threat)
        assert sum(g.as_tuple()) == pytest.approx(1.0, abs=1e-12)
        assert O_MIN - 1e-12 <= g.o <= O_MAX + 1e-12
        assert E_MIN - 1e-12 <= g.e <= E_MAX + 1e-12
        assert g.r > 0 and g.b > 0
        assert -1.0 <= s.integral <= 1.0


def test_closed_loop_returns_to_budget_after_a_load_step() -> None:
    """Simulated beat time = budget * (load + 0.6 * optional work); the load steps
    from 0.5 to 0.8 of the budget at beat 150. The beat time returns to the
    budget without windup (the clamped integral does not push it past the
    budget, and is reset once settled) or oscillation (the error never changes
    sign by more than 1%)."""
    budget = Pulse().budget
    g, s = Genome(), PidState()
    errors, integrals = [], []
    for k in range(300):
        load = 0.5 if k < 150 else 0.8
        seconds = budget * (load + 0.6 * g.optional_work)
        e = measured_error(seconds, budget)
        g, s, _ = recalibrate(g, s, e, 0.3)
        errors.append(e)
        integrals.append(s.integral)
    assert abs(errors[149]) < 1e-3  # settled before the step
    assert errors[150] == pytest.approx(0.3, abs=0.02)  # the step: 30% over budget
    after = errors[150:]
    settle = next(i for i, e in enumerate(after) if abs(e) < 0.01)
    assert settle <= 15
    assert all(abs(e) < 0.01 for e in after[settle:])  # stays there
    assert min(after) > -0.01  # no overshoot below the budget
    assert max(abs(i) for i in integrals) == 1.0  # the clamp held the integral ...
    assert integrals[-1] == 0.0  # ... and the ε-reset cleared it once settled
    assert 0.3 < g.optional_work < 0.4  # the new equilibrium (0.2 / 0.6 of the budget)


def test_measured_error_refuses_nan() -> None:
    with pytest.raises(InvalidParameter):
        measured_error(math.nan, 0.1)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_cadence_waits_for_the_next_pulse_and_counts_late_beats() -> None:
    t = FakeTime()
    pulse = Pulse(t1=0.1, u=math.e)  # budget 0.1 / 0.95 s
    c = Cadence(pulse, t.clock, t.sleep)
    b = pulse.budget
    c.begin()
    t.now += 0.5 * b
    elapsed, late = c.end()
    assert elapsed == pytest.approx(0.5 * b) and not late
    assert t.now == pytest.approx(100.0 + b)  # on the next boundary
    c.begin()
    t.now += 1.5 * b  # overruns: the next boundary is skipped
    elapsed, late = c.end()
    assert late and c.late == 1 and c.beats == 2
    assert t.now == pytest.approx(100.0 + 3 * b)
