"""The genomic PID: genome weights of the four cores, recalibrated beat by beat.

Mechanics kept from the design documents: ``output = Kp e + Ki ∫e + Kd de``
with the integral clamped to [-1, 1] (anti-windup) and reset to 0 when
``|e| < 1e-4`` (ε-reset); ``ΔO = -output`` limited to [-0.05, 0.05] per
beat; O clamped to [0.1, 0.9]; E set by a rule and clamped to [0.05, 0.30];
then R + B + E + O renormalized to 1.

Departures (docs/arbiter.md): the error is the *measured* beat time
against the pulse budget, relative to the budget (the design's
``T_Λ - T_threshold`` is the same every beat, so its loop has no feedback
and O drifts to its clamp); and E's rule is :func:`e_weight` (the design's
:func:`seed_e_weight` pins E at its floor whenever O > 0.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import InvalidParameter
from ..models.base import check_real, check_whole

O_MIN, O_MAX = 0.1, 0.9
E_MIN, E_MAX = 0.05, 0.30
INTEGRAL_LIMIT = 1.0
EPSILON = 1e-4
MAX_DELTA_O = 0.05
#: Bounds of what the controller accepts: a genome weight, a gain, an error (relative
#: to the budget: a beat of MAX_SECONDS over the smallest pulse is 1e15), seconds.
MAX_WEIGHT = 1e6
MAX_GAIN = 1e6
MAX_ERROR = 1e18
MAX_SECONDS = 1e9
#: The least R + B may hold together (so O and E can never take the whole genome).
RB_MIN = 0.05


@dataclass(frozen=True)
class Genome:
    """Weights of the Regen, Balance, Entropy and Optimize cores (sum 1)."""

    r: float = 0.25
    b: float = 0.25
    e: float = 0.15
    o: float = 0.35

    def __post_init__(self) -> None:
        for v in (self.r, self.b, self.e, self.o):
            if (isinstance(v, bool) or not isinstance(v, (int, float))
                    or not 0 < v <= MAX_WEIGHT):
                raise InvalidParameter(f"genome weights must be finite numbers in (0, "
                                       f"{MAX_WEIGHT:g}], got {(self.r, self.b, self.e, self.o)}")

    def normalized(self) -> Genome:
        total = self.r + self.b + self.e + self.o
        return Genome(self.r / total, self.b / total, self.e / total, self.o / total)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.b, self.e, self.o)

    @property
    def optional_work(self) -> float:
        """O's place in [O_MIN, O_MAX] as a fraction in [0, 1]: how much optional work
        (posterior draws, eagerness of refits) a beat should do."""
        return min(1.0, max(0.0, (self.o - O_MIN) / (O_MAX - O_MIN)))


@dataclass(frozen=True)
class PidGains:
    """Proportional, integral and derivative gains (the design's Balance core values)."""

    kp: float = 0.6
    ki: float = 0.1
    kd: float = 0.05

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd"):
            check_real(f"the PID gain {name}", getattr(self, name), 0.0, MAX_GAIN)


@dataclass(frozen=True)
class PidState:
    """The controller's memory: the clamped integral and the last error."""

    integral: float = 0.0
    last_error: float | None = None

    def __post_init__(self) -> None:
        check_real("the PID state's integral", self.integral, -INTEGRAL_LIMIT, INTEGRAL_LIMIT)
        if self.last_error is not None:
            check_real("the PID state's last_error", self.last_error)


@dataclass(frozen=True)
class PidStep:
    """One recalibration, as recorded: error, terms, ΔO and the weights before and after."""

    error: float
    integral: float
    derivative: float
    output: float
    delta_o: float
    before: Genome
    after: Genome
    reset: bool

    def to_json(self) -> dict[str, object]:
        return {"error": self.error, "integral": self.integral, "derivative": self.derivative,
                "output": self.output, "delta_o": self.delta_o, "reset": self.reset,
                "before": list(self.before.as_tuple()), "after": list(self.after.as_tuple())}


def seed_error(t_lambda: float, t_threshold: float = 0.02) -> float:
    """The design's error ``ΔT = T_Λ - T_threshold`` (seconds)."""
    return (check_real("t_lambda (seconds)", t_lambda, 0.0, MAX_SECONDS)
            - check_real("t_threshold (seconds)", t_threshold, 0.0, MAX_SECONDS))


def measured_error(beat_seconds: float, budget: float) -> float:
    """The closed loop's error: ``(measured - budget) / budget`` (dimensionless)."""
    beat_seconds = check_real("beat_seconds", beat_seconds, 0.0, MAX_SECONDS)
    budget = check_real("the pulse budget (seconds)", budget, 0.0, MAX_SECONDS, low_open=True)
    return (beat_seconds - budget) / budget


def pid_output(state: PidState, error: float, gains: PidGains, dt: float = 1.0
               ) -> tuple[PidState, float, float, bool]:
    """One PID evaluation: (new state, output, derivative, whether the ε-reset fired)."""
    error = check_real("the PID error", error, -MAX_ERROR, MAX_ERROR)
    dt = check_real("dt", dt, 0.0, MAX_SECONDS, low_open=True)
    reset = abs(error) < EPSILON
    integral = 0.0 if reset else min(INTEGRAL_LIMIT, max(-INTEGRAL_LIMIT,
                                                         state.integral + error * dt))
    derivative = 0.0 if state.last_error is None else (error - state.last_error) / dt
    output = gains.kp * error + gains.ki * integral + gains.kd * derivative
    return PidState(integral, error), output, derivative, reset


def seed_e_weight(threat: float, o: float, t: float) -> float:
    """The design's E rule: ``0.15 threat e^(-t/50) (1 - O/0.3)`` above threat 0.5, else 0.10,
    clamped to [0.05, 0.30]. Negative (so at the floor) whenever O > 0.3."""
    raw = 0.15 * threat * math.exp(-t / 50.0) * (1.0 - o / 0.3) if threat > 0.5 else 0.10
    return min(E_MAX, max(E_MIN, raw))


def e_weight(threat: float) -> float:
    """E rises with the threat: 0.10 up to threat 0.5, then linearly to 0.30 at threat 1."""
    raw = 0.10 + 0.40 * (threat - 0.5) if threat > 0.5 else 0.10
    return min(E_MAX, max(E_MIN, raw))


def recalibrate(genome: Genome, state: PidState, error: float, threat: float,
                gains: PidGains = PidGains(), *, seed_beat: int | None = None
                ) -> tuple[Genome, PidState, PidStep]:
    """Adjust O by the PID, set E by its rule, and keep the weights on the simplex.

    O and E are clamped *as normalized weights* and R and B share the rest
    in their current proportion (at least ``RB_MIN`` together), so every
    weight stays in its bounds beat after beat. ``seed_beat`` (the beat
    count) switches to the design's mechanics instead: its E rule
    (:func:`seed_e_weight`) and clamp-then-renormalize, under which O can
    creep past 0.9 as R and B shrink (tested).
    """
    for what, value, kind in (("genome", genome, Genome), ("state", state, PidState),
                              ("gains", gains, PidGains)):
        if not isinstance(value, kind):
            raise InvalidParameter(f"{what} must be a {kind.__name__}, not "
                                   f"{type(value).__name__}")
    threat = check_real("threat", threat, 0.0, 1.0)
    if seed_beat is not None:
        seed_beat = check_whole("seed_beat (the beat count)", seed_beat, 0, 2**62)
    new_state, output, derivative, reset = pid_output(state, error, gains)
    delta_o = min(MAX_DELTA_O, max(-MAX_DELTA_O, -output))
    o = min(O_MAX, max(O_MIN, genome.o + delta_o))
    if seed_beat is not None:
        e = seed_e_weight(threat, o, seed_beat)
        after = replace(genome, o=o, e=e).normalized()
    else:
        e = min(max(E_MIN, 1.0 - o - RB_MIN), max(E_MIN, e_weight(threat)))
        rest = 1.0 - o - e
        share = genome.r / (genome.r + genome.b)
        after = Genome(rest * share, rest * (1.0 - share), e, o)
    return after, new_state, PidStep(error, new_state.integral, derivative, output, delta_o,
                                     genome, after, reset)
