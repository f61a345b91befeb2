"""Runtime (layer 3): agents on an executor. Today: the local, in-process executor."""

from .local import AgentRun, run_agents

__all__ = ["AgentRun", "run_agents"]
