"""The foragers in a portfolio's beat: refits due now, and finished ones swapped in.

Methods of :class:`~.beat.PortfolioSwarm`, written as functions of
``self: PortfolioSwarm`` and bound in its class body. ``beat``
(:mod:`._portfolio_beat`) calls ``_swap`` for each finished refit its tick
brings (caught up on the returns absorbed since the refit's data cut) and
``_refits`` for the refits due (the backtest's rhythm, the roles' and the
arbiter's requests, agents that failed this beat): done at once
(``refit_lag`` 0, a dead agent, a sandboxed agent), or handed out as
:class:`~.roles.RefitJob` s that the runtime runs on its forager pool
(:func:`~.roles.run_refit`) and brings back as swaps.

Reads ``config``, ``returns``, ``t``, ``absorbed`` and ``host``. Writes
``agents``, ``pending`` and ``violations`` (``_note``); appends role
records to the list it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SwarmVarError
from .roles import RefitJob, RefitResult, RoleRecord, fit_seed

if TYPE_CHECKING:
    from .beat import PortfolioSwarm


def _refits(self: PortfolioSwarm, due: list[tuple[str, str]], records: list[RoleRecord]
            ) -> tuple[list[RefitJob], float]:
    """Refit now (``refit_lag`` 0) or hand out jobs; a dead agent is refitted from scratch."""
    import time

    cfg = self.config
    seen: set[str] = set()
    jobs: list[RefitJob] = []
    seconds = 0.0
    window = self.returns[-cfg.window:]
    for name, why in due:
        if name in seen or name in self.pending:
            continue
        seen.add(name)
        row = cfg.row(name)
        agent = self.agents.get(name)
        # a sandboxed agent refits in its own sandbox, at once (a forager outside
        # would run its code unwalled)
        if cfg.roles.refit_lag == 0 or agent is None or self.host.sandboxed(name):
            begin = time.perf_counter()
            try:
                if agent is None:
                    agent = self.host.new(name)
                    agent.fit(window, seed=fit_seed(cfg.seed, row, self.t))
                else:
                    agent.refit(window, seed=fit_seed(cfg.seed, row, self.t))
                self.agents[name] = agent
            except SwarmVarError as exc:
                self._note(name, exc)
                self.agents[name] = None
                records.append(RoleRecord("forager", "refit-failed", (name,),
                                          {"reason": why, "error": str(exc)}))
                continue
            seconds += time.perf_counter() - begin
            if why != "schedule":
                records.append(RoleRecord("forager", "refit-done", (name,), {"reason": why}))
            continue
        self.pending[name] = self.absorbed
        jobs.append(RefitJob(cfg.portfolio, name, row, self.t, self.absorbed,
                             self.absorbed + cfg.roles.refit_lag, agent.state(),
                             window.copy(), cfg.seed, why))
        records.append(RoleRecord("forager", "refit-started", (name,),
                                  {"reason": why, "launched": self.absorbed,
                                   "swap_at": self.absorbed + cfg.roles.refit_lag}))
    return jobs, seconds


def _swap(self: PortfolioSwarm, result: RefitResult) -> RoleRecord:
    """Put a finished refit in place, caught up on the returns absorbed since its cut."""
    name = result.agent
    self.pending.pop(name, None)
    if result.state is None:
        return RoleRecord("forager", "refit-failed", (name,),
                          {"reason": result.reason, "error": result.error or ""})
    behind = self.absorbed - result.launched
    if behind < 0 or behind >= self.returns.size:
        return RoleRecord("forager", "refit-dropped", (name,),
                          {"reason": result.reason, "behind": behind})
    agent = self.host.restored(name, result.state)
    if behind:
        for x in self.returns[-behind:].tolist():
            agent.update(x)
    self.agents[name] = agent
    return RoleRecord("forager", "refit-swapped", (name,),
                      {"reason": result.reason, "launched": result.launched,
                       "swapped": self.absorbed, "seconds": round(result.seconds, 6)})
