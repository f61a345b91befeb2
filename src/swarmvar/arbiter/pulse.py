"""The T_Λ pulse: each beat's time budget and cadence.

The design documents' pulse is ``T_Λ(k, P, U) = T1 ln U / (1 - 1/(kP))``
for ``k`` parallel flows over ``P`` nodes, defined for ``kP > 1`` and
floored at 1e-6 s. With their values (k = 4, P = 5, T1 = 1 ms, U = e^4) it
is 0.004211 s. Here it is the budget a beat's compute should fit in and the
cadence beats start at (:class:`Cadence` waits until the next pulse rather
than sleeping a fixed time); a beat that overruns it is late.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InvalidParameter

#: The pulse's floor, seconds (numerical stability, as in the design documents).
MIN_PULSE = 1e-6


def _finite(name: str, value: float, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise InvalidParameter(f"{name} must be a finite number > 0, not {value!r}")
    return v


def t_lambda(k: float, p: float, u: float = math.e**4, t1: float = 0.001) -> float:
    """The pulse ``T1 ln U / (1 - 1/(kP))`` in seconds, floored at 1e-6.

    Parameters
    ----------
    k : float
        Parallel flows (the design's ``--k-flows``), > 0.
    p : float
        Nodes (``--p-nodes``), > 0; ``k * p`` must exceed 1.
    u : float
        Work units; ``ln U`` scales the base time (U = e^4 gives 4).
    t1 : float
        Base time of one unit, seconds.

    Raises
    ------
    InvalidParameter
        If ``k * p <= 1`` (the denominator is not positive: no speed-up
        defines the pulse) or an argument is not a finite positive number.
    """
    k, p = _finite("k (flows)", k), _finite("p (nodes)", p)
    u, t1 = _finite("u (work units)", u), _finite("t1 (base seconds)", t1)
    if k * p <= 1.0:
        raise InvalidParameter(
            f"the pulse needs k * P > 1 (k flows over P nodes), got k={k:g}, P={p:g}: "
            "raise --k-flows or --p-nodes")
    return max(t1 * math.log(u) / (1.0 - 1.0 / (k * p)), MIN_PULSE)


@dataclass(frozen=True)
class Pulse:
    """The pulse's parameters; :attr:`budget` is T_Λ in seconds.

    ``t_threshold`` is the design's threshold the pulse is held against:
    :attr:`seed_delta_t` is their ``ΔT = T_Λ - T_threshold`` (negative when
    the budget is inside the threshold), recorded with every pulse.
    """

    k: float = 4.0
    p: float = 5.0
    u: float = math.e**4
    t1: float = 0.001
    t_threshold: float = 0.02
    budget: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", t_lambda(self.k, self.p, self.u, self.t1))
        _finite("t_threshold", self.t_threshold)

    @property
    def seed_delta_t(self) -> float:
        """The design's PID error ``T_Λ - T_threshold`` (constant for fixed parameters)."""
        return self.budget - self.t_threshold

    def to_json(self) -> dict[str, float]:
        return {"k": self.k, "p": self.p, "u": self.u, "t1": self.t1,
                "t_threshold": self.t_threshold, "t_lambda": self.budget,
                "seed_delta_t": self.seed_delta_t}


class Cadence:
    """Live pacing: beats start on pulse boundaries; overruns are counted as late.

    ``clock`` and ``sleep`` are injected (``time.monotonic``/``time.sleep``
    at the edge; a fake pair in tests).
    """

    def __init__(self, pulse: Pulse, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.pulse = pulse
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._started = 0.0
        self.late = 0
        self.beats = 0

    def begin(self) -> float:
        """Mark a beat's start (now); returns the start time."""
        self._started = self._clock()
        if self._next is None:
            self._next = self._started
        return self._started

    def end(self) -> tuple[float, bool]:
        """The beat's measured seconds and whether it overran the budget; then wait
        until the next pulse boundary (skipping boundaries already passed)."""
        now = self._clock()
        elapsed = now - self._started
        late = elapsed > self.pulse.budget
        self.beats += 1
        self.late += int(late)
        assert self._next is not None
        budget = self.pulse.budget
        self._next += budget * max(1, math.ceil((now - self._next) / budget))
        wait = self._next - now
        if wait > 0:
            self._sleep(wait)
        return elapsed, late
