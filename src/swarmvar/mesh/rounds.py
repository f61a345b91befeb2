"""Approximate agreement rounds over the mesh: one node's side of one run.

The statistics are :func:`swarmvar.consensus.agreement.agreement_round`;
this module only decides when a round's values are in. Round ``r`` ends when
every participant not known to be absent (dead, left, or silent in an
previous round of this run: *muted*) has sent its round-``r`` value, or when
``round_timeout`` seconds have passed since the round began. A participant
missing when a round ends is muted for the next round: not waited for, but
its value counts if it arrives before the round ends (and then it is waited
for again) — so a silent node costs one timeout per run, a lost message one
timeout. Missing values are NaN, which the round
replaces by the receiver's own value — so with ``n >= 3f + 1`` and at most
``f`` Byzantine participants each honest value stays in the honest range
(at most ``f`` values outside it, trimmed). A second, different value from
one sender for one round (equivocation to the same receiver) is refused; the
first one counts.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from ..consensus.agreement import agreement_round, convergence_factor
from ..errors import InvalidParameter
from .wire import Refusal, refuse


@dataclass(frozen=True)
class RoundsOutcome:
    """A finished run as one node saw it: its value before each round and after the last."""

    run: str
    values: tuple[float, ...]
    factor: float
    muted: tuple[str, ...]  # participants missing at the end of some round


class AgreementRun:
    """One node's state in one agreement run.

    Parameters
    ----------
    run : str
        Run id (all nodes use the same).
    participants : sequence of str
        Every node of the run, this one included (``n`` of them).
    me : str
        This node.
    f : int
        Byzantine nodes tolerated (``n >= 3f + 1``).
    rounds : int
        Rounds to run (see :func:`swarmvar.consensus.agreement.rounds_needed`).
    value : float
        This node's starting value.
    round_timeout : float
        Seconds a round waits for missing values.
    now : float
        Start time (seconds, the node's monotonic clock).
    """

    def __init__(self, run: str, participants: Sequence[str], me: str, f: int, rounds: int,
                 value: float, round_timeout: float, now: float) -> None:
        if me not in participants or len(set(participants)) != len(participants):
            raise InvalidParameter("participants must be distinct and include this node")
        if not math.isfinite(value):
            raise InvalidParameter(f"an agreement value must be finite, got {value}")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 10_000:
            raise InvalidParameter(f"rounds must be an int in [1, 10000], got {rounds!r}")
        self.factor = convergence_factor(len(participants), f)  # checks n >= 3f + 1
        self.run, self.me, self.f, self.rounds = run, me, f, rounds
        self.participants = tuple(sorted(participants))
        self.round_timeout = round_timeout
        self.round = 0
        self.values = [float(value)]
        self.started = now
        self.muted: set[str] = set()
        self.ever_muted: set[str] = set()
        self._received: dict[int, dict[str, float]] = {0: {me: float(value)}}

    @property
    def done(self) -> bool:
        return self.round >= self.rounds

    @property
    def value(self) -> float:
        return self.values[-1]

    def receive(self, sender: str, round_: int, value: float) -> None:
        """A peer's value for a round; RefusedMessage if malformed or equivocating."""
        if sender not in self.participants or sender == self.me:
            raise refuse(Refusal.MALFORMED, f"{sender} is not a participant of run {self.run}")
        if not isinstance(value, float) or not math.isfinite(value):
            raise refuse(Refusal.MALFORMED, f"agreement value must be a finite number, got "
                         f"{value!r:.40}")
        if round_ < self.round or round_ >= self.rounds:
            return  # late or beyond the run: ignored
        got = self._received.setdefault(round_, {})
        if sender in got:
            if got[sender] != value:
                raise refuse(Refusal.EQUIVOCATION, f"{sender} sent two values for round "
                             f"{round_} of {self.run}")
            return
        got[sender] = value

    def ready(self, now: float, absent: Collection[str] = ()) -> bool:
        """Whether the current round can end now."""
        if self.done:
            return False
        got = self._received.get(self.round, {})
        waiting = [p for p in self.participants
                   if p not in got and p not in self.muted and p not in absent]
        return not waiting or now - self.started >= self.round_timeout

    def advance(self, now: float) -> float:
        """End the current round: this node's new value (the start of the next round)."""
        got = self._received.pop(self.round, {})
        self.muted = {p for p in self.participants if p not in got}
        self.ever_muted |= self.muted
        received = np.array([got.get(p, math.nan) for p in self.participants])
        new = agreement_round(received, self.f, default=self.value)
        self.values.append(new)
        self.round += 1
        self.started = now
        self._received.setdefault(self.round, {})[self.me] = new
        return new

    def outcome(self) -> RoundsOutcome:
        return RoundsOutcome(self.run, tuple(self.values), self.factor,
                             tuple(sorted(self.ever_muted)))
