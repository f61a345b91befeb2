"""Drift drill: inject a drifting agent into a replayed history and see what the arbiter does.

:class:`Drift` names one agent, the day its drift starts, and how it drifts:
its VaR, ES and their credible intervals scaled by ``scale`` from that day
on (below 1: it under-reports risk; above 1: over-reports), or ``frozen``
at that day's values (a stuck agent). :func:`drifted` returns the history
with the drift applied and the swarm's consensus row recomputed from the
drifted forecasts (the swarm policy's :func:`~swarmvar.consensus.consensus_levels`;
days before the start are unchanged), so the consensus's breaches the
arbiter reads are the ones the drifting swarm would have had. The agent's
log scores are left as the backtest computed them (the history holds the
density at the realized return, not the predictive distribution to rescale):
the drill exercises the tail signals (breaches, coverage drift, position
against the others' intervals), and is conservative for the score-lag one.

:func:`drill` replays a history (drifted or clean) through an arbiter and
counts, from the start day: beats to the first ALERT or QUARANTINE naming
the agent, beats to its quarantine, and quarantines of other agents (on
clean data: every quarantine is a false one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidParameter
from ..models.base import check_whole
from ..types import Action, Decision
from .arbiter import Arbiter
from .history import BeatHistory, consensus_cols

#: The largest drift factor (a VaR a million times too large is already absurd).
MAX_SCALE = 1e6


@dataclass(frozen=True)
class Drift:
    """One agent drifting from day ``start`` (a day index of the history, >= 1).

    Exactly one of ``scale`` (a positive finite factor on VaR, ES and their
    intervals) or ``frozen=True`` (stuck at day ``start``'s forecast).
    """

    agent: str
    start: int
    scale: float | None = None
    frozen: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.agent, str) or not self.agent:
            raise InvalidParameter(f"drift agent must be an agent's name, not {self.agent!r}")
        if not isinstance(self.frozen, bool):
            raise InvalidParameter(f"drift frozen must be True or False, not {self.frozen!r}")
        # a numpy integer is taken as the int it equals (frozen: set while being built)
        object.__setattr__(self, "start", check_whole("drift start", self.start, 1))
        if self.frozen == (self.scale is not None):
            raise InvalidParameter("a drift is either scale=<factor> or frozen=True (one of them)")
        if self.scale is not None and (
                isinstance(self.scale, bool) or not isinstance(self.scale, (int, float))
                or not math.isfinite(self.scale) or not 0 < self.scale <= MAX_SCALE):
            raise InvalidParameter(f"drift scale must be a positive finite number (at most "
                                   f"{MAX_SCALE:g}), not {self.scale!r}")

    @property
    def label(self) -> str:
        return "frozen" if self.frozen else f"scale {self.scale:g}"


def drifted(history: BeatHistory, drift: Drift) -> BeatHistory:
    """``history`` with ``drift`` applied (see the module docstring).

    Raises
    ------
    InvalidParameter
        The agent is not in the history, or the start is not before its last day.
    """
    if not isinstance(history, BeatHistory):
        raise InvalidParameter(f"history must be a BeatHistory, not {type(history).__name__}")
    if not isinstance(drift, Drift):
        raise InvalidParameter(f"drift must be a Drift, not {type(drift).__name__}")
    if drift.agent not in history.agents:
        raise InvalidParameter(f"no agent {drift.agent!r} to drift; the history has "
                               f"{', '.join(history.agents)}")
    if drift.start >= history.days:
        raise InvalidParameter(f"drift start {drift.start} is past the history's last day "
                               f"{history.days - 1}")
    j, s = history.agents.index(drift.agent), drift.start
    cols = history.cols.copy()
    if drift.frozen:
        cols[:, :, s:, j] = cols[:, :, s:s + 1, j]
    else:
        assert drift.scale is not None
        cols[:, :, s:, j] *= drift.scale
    consensus = history.consensus.copy()
    consensus[:, :, s:] = consensus_cols(history.returns, history.alphas, cols)[:, :, s:]
    return BeatHistory(history.name, history.dates, history.returns, history.alphas,
                       history.agents, cols, consensus, history.logscore)


@dataclass(frozen=True)
class DrillResult:
    """What the arbiter did about a drift (or on clean data: ``drift`` None).

    Beats are counted from the drift's start day (``None``: never). ``wrong``
    counts the other agents named by QUARANTINE decisions (a decision naming two
    counts twice; on clean data every agent quarantined);
    ``held_days`` the beats the drifting agent spent excluded (on clean data: the
    agent-days of every agent excluded).
    """

    name: str
    drift: Drift | None
    first_alert: int | None
    first_quarantine: int | None
    wrong: int
    held_days: int
    quarantines: int
    reason: str


def first_beats(decisions: Sequence[Decision], drift: Drift
                ) -> tuple[int | None, int | None, str]:
    """Beats from the drift's start to the first ALERT (or QUARANTINE) naming its agent and to
    its QUARANTINE (None: never), and that quarantine's reason."""
    alert = quarantine = None
    reason = ""
    for d in decisions:
        if drift.agent not in d.agents or d.seq < drift.start:
            continue
        if alert is None and d.action in (Action.ALERT, Action.QUARANTINE):
            alert = d.seq - drift.start
        if d.action is Action.QUARANTINE:
            quarantine, reason = d.seq - drift.start, d.reason
            break
    return alert, quarantine, reason


def drill(history: BeatHistory, arbiter: Arbiter, drift: Drift | None = None, *,
          drifted_history: BeatHistory | None = None) -> DrillResult:
    """Replay ``history`` (with ``drift`` applied, if any) through ``arbiter``.

    ``drifted_history``: ``drifted(history, drift)`` already built (e.g. once for several
    arbiters: it does not depend on the arbiter), replayed instead of building it again.
    """
    from .replay import check_replay, replay

    check_replay(history, arbiter)  # history is read below even when not the one replayed
    if drift is not None and not isinstance(drift, Drift):
        raise InvalidParameter(f"drift must be a Drift or None, not {type(drift).__name__}")
    if drifted_history is not None and drift is None:
        raise InvalidParameter("a drifted_history needs the drift it was built with")
    h = (history if drift is None
         else drifted_history if drifted_history is not None else drifted(history, drift))
    decisions: list[Decision] = []
    outcome = replay(h, arbiter, on_decision=decisions.append)
    start = 0 if drift is None else drift.start
    target = None if drift is None else drift.agent
    quarantined = [d for d in decisions if d.action is Action.QUARANTINE]
    quarantines = len(quarantined)
    wrong = sum(a != target for d in quarantined for a in d.agents)
    first_alert, first_q, reason = (None, None, "") if drift is None else \
        first_beats(decisions, drift)
    held = int(outcome.excluded.sum() if target is None
               else outcome.excluded[start:, history.agents.index(target)].sum())
    return DrillResult(history.name, drift, first_alert, first_q, wrong, held, quarantines,
                       reason)
