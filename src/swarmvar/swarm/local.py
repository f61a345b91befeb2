"""Fit a swarm of agents on one return series and collect their forecasts, locally.

This is the first step of the beat (see docs/architecture.md): returns in, one
:class:`AgentRun` per agent out. An agent that fails is reported with its
error instead of stopping the others, so one broken model never hides the
rest of the swarm's view.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..errors import ConvergenceWarning, SwarmVarError
from ..models import Agent, agent_class
from ..types import Diagnostics, Forecast

#: Called as ``progress(agent_name, event)`` with event "start" or "done".
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class AgentRun:
    """One agent's result: its forecast, diagnostics and fit time, or its error."""

    name: str
    forecast: Forecast | None
    diagnostics: Diagnostics | None
    fit_seconds: float
    agent: Agent | None = None
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.forecast is not None


def run_agents(
    returns: ArrayLike,
    agents: Sequence[str | Agent],
    *,
    alphas: Sequence[float] = (0.99,),
    horizon: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[AgentRun]:
    """Fit each agent on ``returns`` and forecast VaR/ES at ``alphas``.

    Agents are names (see :mod:`swarmvar.models.registry`) or instances.
    Each gets its own seed derived from ``seed`` (``numpy.random.SeedSequence``
    spawning), so adding an agent does not change the others' numbers.
    The returns are handed to the agents as they are: each agent's ``fit``
    judges them (a rate such as EUR/GBP ~0.85 given as returns is refused, the
    refusal in each agent's run), unless they were judged already
    (:func:`swarmvar.data.is_judged`: :func:`swarmvar.var`'s array, from
    :func:`swarmvar.data.as_array`) or are a Series carrying
    :func:`swarmvar.data.mark_from_prices`'s mark.
    """
    x = returns if isinstance(returns, pd.Series) else np.asarray(returns, dtype=float)
    instances = [agent_class(a)() if isinstance(a, str) else a for a in agents]
    seeds = np.random.SeedSequence(seed).spawn(len(instances))
    runs = []
    for agent, child in zip(instances, seeds, strict=True):
        if progress is not None:
            progress(agent.name, "start")
        agent_seed = int(child.generate_state(1)[0])
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                agent.fit(x, seed=agent_seed)
                elapsed = time.perf_counter() - start
                fc = agent.forecast(alphas, horizon, seed=agent_seed)
                run = AgentRun(agent.name, fc, agent.diagnostics, elapsed, agent)
            except SwarmVarError as exc:
                run = AgentRun(agent.name, None, None, time.perf_counter() - start, agent,
                               error=str(exc))
        for w in caught:  # pass on everything that is not a convergence note
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        notes = tuple(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning))
        if notes:
            run = AgentRun(run.name, run.forecast, run.diagnostics, run.fit_seconds, run.agent,
                           run.error, notes)
        if progress is not None:
            progress(agent.name, "done")
        runs.append(run)
    return runs
