"""Runtime (layer 3): the living swarm — sources, the beat, roles, executors, checkpoints.

* :class:`Swarm` runs many portfolios' swarms beat by beat (``step`` / ``run``),
  records every beat in the ledger, checkpoints the agents into the evolution
  state store and resumes exactly after a crash;
* sources: :class:`Replay`, :class:`FollowedFile`, :class:`JsonLines`;
* executors: :class:`LocalExecutor` (this process or worker processes) and
  ``swarmvar.swarm.ray_executor.RayExecutor`` (Ray actors);
* roles: foragers, builders, guards and scouts (:class:`RoleConfig`);
* the one-shot pieces ``swarmvar var`` uses: :func:`run_agents`.

See docs/runtime.md.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .beat import (
        BeatInput,
        BeatOutcome,
        OnlineTrackRecord,
        PortfolioConfig,
        PortfolioSwarm,
        check_refit_rhythm,
    )
    from .executors import Executor, LocalExecutor, Shard
    from .local import AgentRun, run_agents
    from .roles import RefitJob, RefitResult, RoleConfig, RoleRecord, run_refit
    from .runtime import BeatObserver, Restoring, RunSummary, Swarm
    from .sources import BadLine, FollowedFile, JsonLines, Replay
    from .ticks import ALL, PortfolioSpec

#: name -> submodule: imported on first use, so that a sandbox worker running
#: :func:`.sandboxed.seeded_live_agent` does not load the whole runtime
_LAZY = {
    "BeatInput": "beat", "BeatOutcome": "beat", "OnlineTrackRecord": "beat",
    "PortfolioConfig": "beat", "PortfolioSwarm": "beat", "check_refit_rhythm": "beat",
    "Executor": "executors", "LocalExecutor": "executors", "Shard": "executors",
    "AgentRun": "local", "run_agents": "local",
    "RefitJob": "roles", "RefitResult": "roles", "RoleConfig": "roles", "RoleRecord": "roles",
    "run_refit": "roles",
    "BeatObserver": "runtime", "Restoring": "runtime", "RunSummary": "runtime",
    "Swarm": "runtime",
    "BadLine": "sources", "FollowedFile": "sources", "JsonLines": "sources", "Replay": "sources",
    "ALL": "ticks", "PortfolioSpec": "ticks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "ALL",
    "AgentRun",
    "BadLine",
    "BeatInput",
    "BeatObserver",
    "BeatOutcome",
    "Executor",
    "FollowedFile",
    "JsonLines",
    "LocalExecutor",
    "OnlineTrackRecord",
    "PortfolioConfig",
    "PortfolioSpec",
    "PortfolioSwarm",
    "RefitJob",
    "RefitResult",
    "Replay",
    "Restoring",
    "RoleConfig",
    "RoleRecord",
    "RunSummary",
    "Shard",
    "Swarm",
    "check_refit_rhythm",
    "run_agents",
    "run_refit",
]
