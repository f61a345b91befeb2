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
    pulse = t1 * math.log(u) / (1.0 - 1.0 / (k * p))
    if not math.isfinite(pulse):
        raise InvalidParameter(f"the pulse t1 * ln(u) / (1 - 1/(k P)) overflows with t1={t1:g}, "
                               f"u={u:g}: give the base time in seconds (e.g. 0.001)")
    return max(pulse, MIN_PULSE)


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
    """Live pacing: beats start on pulse boundaries; a beat that overruns its budget is late.

    The schedule is anchored at the first :meth:`begin`: boundary ``n`` is
    ``anchor + n * budget`` (computed from ``n``, never accumulated, so a long
    run does not drift). A beat is :meth:`begin` -> work -> :meth:`mark` (its
    measured seconds and whether they overran the budget: what the PID and
    the ledger get) -> :meth:`end` (wait until the next boundary still ahead,
    skipping boundaries an overrun has passed). ``clock`` and ``sleep`` are
    injected (``time.monotonic``/``time.sleep`` at the edge; a fake pair in
    tests).

    Attributes
    ----------
    beats, late : int
        Beats measured and those that overran the budget.
    skipped : int
        Boundaries passed without a beat starting on them (the cost of overruns).
    """

    def __init__(self, pulse: Pulse | float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = (pulse.budget if isinstance(pulse, Pulse)
                       else _finite("the pulse budget (s)", pulse))
        if self.budget < MIN_PULSE:  # as T_Λ's floor; a tinier one overflows the schedule
            raise InvalidParameter(f"the pulse budget must be >= {MIN_PULSE:g} s, not "
                                   f"{self.budget!r}")
        self._clock = clock
        self._sleep = sleep
        self._anchor: float | None = None
        self._index = 0
        self._started = 0.0
        self._marked: tuple[float, bool] | None = None
        self.beats = 0
        self.late = 0
        self.skipped = 0

    def begin(self) -> float:
        """Mark a beat's start (now); the first call anchors the schedule. Returns now."""
        self._started = self._clock()
        if self._anchor is None:
            self._anchor = self._started
        self._marked = None
        return self._started

    def mark(self) -> tuple[float, bool]:
        """The beat's seconds since :meth:`begin` and whether they exceed the budget;
        measured and counted once per beat (later calls return the same)."""
        if self._marked is None:
            elapsed = max(0.0, self._clock() - self._started)
            late = elapsed > self.budget
            self.beats += 1
            self.late += int(late)
            self._marked = (elapsed, late)
        return self._marked

    def next_boundary(self) -> float:
        """When the next beat may start (seconds of ``clock``)."""
        if self._anchor is None:
            return self._clock()
        return self._anchor + (self._index + 1) * self.budget

    def end(self) -> tuple[float, bool]:
        """:meth:`mark` (if the beat did not), then wait until the next pulse boundary
        still ahead; returns the beat's (seconds, late)."""
        measured = self.mark()
        if self._anchor is None:
            return measured
        now = self._clock()
        ahead = max(self._index + 1, math.ceil((now - self._anchor) / self.budget))
        self.skipped += ahead - self._index - 1
        self._index = ahead
        wait = self._anchor + ahead * self.budget - now
        if wait > 0:
            self._sleep(wait)
        return measured
