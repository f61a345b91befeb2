"""The beat of one portfolio's swarm: update, refit if due, forecast, sign, combine.

:class:`PortfolioSwarm` holds one portfolio's agents and everything the beat
carries between ticks (the online track record, the roles' state, the last
forecasts). Its life mirrors the backtest driver's day for day:

* :meth:`PortfolioSwarm.start` fits every agent on the last ``window``
  returns of the history (seed ``(seed, row, t, 0)``, ``t`` the count of
  history returns, as :func:`~swarmvar.validation.backtest` seeds day ``t``)
  and forecasts the first day (seed ``(seed, row, t, 1)``);
* each :meth:`PortfolioSwarm.beat` absorbs one realized return in every
  agent (``update``: its log predictive score), scores the previous
  forecasts (breaches, the track record, the builders), refits on the
  backtest's rhythm (every ``refit_every`` returns, on the trailing window)
  or when a role or the arbiter asks, forecasts the next day, signs each
  agent's measures with its key and combines them with
  :func:`~swarmvar.consensus.combine` under the swarm's policy — the track
  record updated online, one row per beat.

So with the same seeds, window and refit rhythm the forecasts are the
backtest's, bit for bit (``refit_lag=0``). It runs wherever the executor
puts it (this process, a worker process, a Ray actor) and its whole state
is bytes (:meth:`PortfolioSwarm.state`).

Where the parts are: this module holds :class:`PortfolioSwarm` (what it
carries between ticks, made in ``__init__``; the sandboxes it closes) and
the timing check ``is_time``; the swarm's methods are grouped by concept,
each written as a function of ``self: PortfolioSwarm`` and bound in the
class body: :mod:`._portfolio_beat` (``start`` and ``beat``: the steps in
order), :mod:`._portfolio_scoring` (a return scores the forecasts it
completes), :mod:`._portfolio_refits` (the foragers' refits and swaps),
:mod:`._portfolio_vote` (signing and combining, level by level) and
:mod:`._portfolio_state` (the state as bytes, and back). :mod:`._beat_types`
holds :class:`PortfolioConfig`, :class:`BeatInput`, :class:`BeatOutcome`;
:mod:`._track` the :class:`OnlineTrackRecord`. Each module says which of
the swarm's state it reads and writes. Every name is importable from here,
as before.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import TypeGuard

import numpy as np

from ..consensus import KeyRing
from ..consensus.signing import OwnSignatures
from ..errors import InvalidParameter, SandboxViolation, SwarmVarError
from ..models import Agent
from ..types import Consensus, Forecast
from . import (
    _portfolio_beat,
    _portfolio_refits,
    _portfolio_scoring,
    _portfolio_state,
    _portfolio_vote,
)
from ._beat_types import CONSENSUS as CONSENSUS
from ._beat_types import BeatInput as BeatInput
from ._beat_types import BeatOutcome as BeatOutcome
from ._beat_types import FloatArray as FloatArray
from ._beat_types import PortfolioConfig as PortfolioConfig
from ._beat_types import check_refit_rhythm as check_refit_rhythm
from ._portfolio_state import _consensus_dict as _consensus_dict
from ._portfolio_state import _consensus_from as _consensus_from
from ._portfolio_state import _forecast_from as _forecast_from
from ._portfolio_state import json_roundtrip as json_roundtrip
from ._track import OnlineTrackRecord as OnlineTrackRecord
from ._track import _median_fill as _median_fill
from .consensus import agent_keys
from .roles import Builders, Guards, Scouts, TrailingRows
from .sandboxing import AgentHost

__all__ = ["CONSENSUS", "BeatInput", "BeatOutcome", "FloatArray", "OnlineTrackRecord",
           "PortfolioConfig", "PortfolioSwarm", "check_refit_rhythm", "finite", "is_time",
           "json_roundtrip"]


class PortfolioSwarm:
    """One portfolio's agents and the beat over them (see the module docstring)."""

    def __init__(self, config: PortfolioConfig) -> None:
        if len(config.agents) < 1:
            raise InvalidParameter("a portfolio swarm needs at least one agent")
        self.config = config
        self.agents: dict[str, Agent | None] = {}
        #: makes the agents: in process, or in their sandboxes (:mod:`.sandboxing`)
        self.host = AgentHost(config.sandbox, config.params, config.home,
                              book=config.book)
        #: this beat's sandbox violations: agent -> what it tried (held out of the consensus)
        self.violations: dict[str, SandboxViolation] = {}
        #: agent -> the message of its last start/update/forecast/refit error (one entry per
        #: agent of the roster at most; kept for callers that say why an agent is silent,
        #: never part of :meth:`state` nor of any number)
        self.errors: dict[str, str] = {}
        self.keys = agent_keys(Path(config.home), config.agents)
        self.ring = KeyRing({a: k.public_key() for a, k in self.keys.items()})
        #: the signatures this swarm made: its own estimates are not verified again on the
        #: beat (verify at trust boundaries: see OwnSignatures); anything else always is;
        #: two beats' worth are remembered (each beat's are combined as soon as made)
        self.own = OwnSignatures(limit=max(16, 2 * len(config.agents) * len(config.alphas)))
        self.track = OnlineTrackRecord(config.agents, config.alphas, config.policy.window,
                                       policy=config.policy)
        self.builders = Builders((*config.agents, CONSENSUS), config.alphas,
                                 config.roles.builder_window)
        self.guards = Guards(config.agents, config.roles)
        self.scouts: Scouts | None = None
        self.forecasts: dict[str, Forecast] = {}
        self.consensus: list[Consensus] = []
        #: forecasts (and consensus) of the last beats whose horizon has not passed yet
        self.outstanding: list[tuple[dict[str, Forecast], list[Consensus]]] = []
        self.returns = np.zeros(0)  # trailing returns, enough for a window and a swap's catch-up
        self._returns_ring = TrailingRows(self.returns, self._keep())
        self.t = 0  # absolute index of the next return (history length + returns absorbed)
        self.absorbed = 0
        self.seq = 0
        self.last_as_of: datetime | None = None
        self.pending: dict[str, int] = {}  # agent -> absorbed count its running refit launched at
        self.cpu_seconds: dict[str, float] = {}  # the last beat's (see beat())

    def _keep(self) -> int:
        return 2 * self.config.window + self.config.roles.refit_lag + 1

    def _note(self, name: str, exc: SwarmVarError) -> None:
        """Remember an agent's error: its message (the last one, in ``errors``) and a
        sandbox violation (the beat records it and holds the agent out)."""
        self.errors[name] = str(exc)
        if isinstance(exc, SandboxViolation):
            self.violations.setdefault(name, exc)

    def close(self) -> None:
        """Kill the agents' sandboxes (nothing to do for agents in this process)."""
        self.host.close()

    # --- start and the beat (._portfolio_beat) -------------------------------------

    start = _portfolio_beat.start
    beat = _portfolio_beat.beat
    _diagnostics = _portfolio_beat._diagnostics
    _forecast_all = _portfolio_beat._forecast_all

    # --- scoring (._portfolio_scoring) ---------------------------------------------

    _absorb_tick = _portfolio_scoring._absorb_tick
    _score = _portfolio_scoring._score
    _scored = _portfolio_scoring._scored

    # --- foragers (._portfolio_refits) ---------------------------------------------

    _refits = _portfolio_refits._refits
    _swap = _portfolio_refits._swap

    # --- consensus (._portfolio_vote) ----------------------------------------------

    _combine = _portfolio_vote._combine
    _weighing = _portfolio_vote._weighing
    _vote = _portfolio_vote._vote
    _rebalanced = _portfolio_vote._rebalanced

    # --- state (._portfolio_state) -------------------------------------------------

    state = _portfolio_state.state
    restore = classmethod(_portfolio_state.restore)


def finite(x: float) -> bool:
    return math.isfinite(x)


def is_time(value: object) -> TypeGuard[float]:
    """Whether a reported timing is a time: a finite number of seconds >= 0 (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)
