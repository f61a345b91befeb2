"""Who watches the swarm's beats, and who paces them: the observer and pacer protocols.

Step 3 of the beat (:mod:`.runtime`): after a portfolio's beat, each observer
(the arbiter) gets the report and returns decisions; before the next beat,
:func:`observer_instructions` reads their quarantine and weight factors, and
:func:`stateful_observers` names those whose state goes into checkpoints.
:func:`beat_seconds` is the beat's time the observers' PID is given when the
run is not paced. How an observer is attached (its calls looked up once) is
:class:`~.runtime.Attached`.

Pure functions and protocols: no swarm state, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..types import BeatReport, Decision
from .beat import is_time


@runtime_checkable
class BeatObserver(Protocol):
    """What watches the beats and decides (the arbiter implements this structurally)."""

    def observe(self, report: BeatReport) -> Sequence[Decision]:
        """Decisions about this beat's portfolio (recorded in the ledger by the swarm)."""
        ...

    def excluded(self, portfolio: str) -> frozenset[str]:
        """Agents to hold out of the portfolio's next consensus (quarantine)."""
        ...

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        """APPLY_BALANCE multipliers in [0, 1] per agent; {} for none."""
        ...


@runtime_checkable
class Pacer(Protocol):
    """Live pacing of :meth:`Swarm.run` (the arbiter's ``Cadence`` implements it)."""

    budget: float
    late: int

    def begin(self) -> float:
        """A beat starts now."""
        ...

    def mark(self) -> tuple[float, bool]:
        """The beat's seconds so far and whether they overran the budget (once per beat)."""
        ...

    def end(self) -> tuple[float, bool]:
        """The beat is over: wait until the next pulse boundary."""
        ...


def stateful_observers(observers: Sequence[Any]) -> list[tuple[int, str, Any]]:
    """The observers whose state goes into checkpoints (a string ``state_key`` and callable
    ``checkpoint_state`` and ``restore_state``): (position, key, observer)."""
    return [(i, str(getattr(obs, "state_key")), obs)  # noqa: B009
            for i, obs in enumerate(observers)
            if isinstance(getattr(obs, "state_key", None), str)
            and callable(getattr(obs, "checkpoint_state", None))
            and callable(getattr(obs, "restore_state", None))]


def observer_instructions(observers: Sequence[Any], name: str
                          ) -> tuple[frozenset[str], dict[str, float]]:
    """The observers' instructions for the next beat of portfolio ``name``: the agents they
    quarantine (the union), and each agent's weight factor (the product of theirs)."""
    excluded: set[str] = set()
    factors: dict[str, float] = {}
    for obs in observers:
        excluded |= set(obs.excluded(name))
        for agent, f in obs.weight_factors(name).items():
            factors[agent] = factors.get(agent, 1.0) * float(f)
    return frozenset(excluded), factors


def beat_seconds(timings: Mapping[str, object]) -> float:
    """A beat's measured compute time, seconds: the sum of its own timings (the agents'
    update + forecast, refits, signing + combine) that are times (:func:`is_time`; a host's
    value that is not is left out). What the arbiter's PID is given."""
    return float(sum(float(v) for v in timings.values() if is_time(v)))
