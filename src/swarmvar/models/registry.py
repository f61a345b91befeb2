"""Agent classes by name, imported on first use (the MCMC agents pull in JAX)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence

from ..errors import InvalidParameter, UnknownAgent
from .base import Agent
from .joint_base import JointAgent  # joint agents of books

#: Every agent swarmvar ships: class name -> module.
AGENT_MODULES: dict[str, str] = {
    "NormalInverseGamma": "swarmvar.models.nig",
    "BayesianBootstrap": "swarmvar.models.bootstrap",
    "StudentT": "swarmvar.models.student_t",
    "GarchT": "swarmvar.models.garch_t",
    "GarchEVT": "swarmvar.models.garch_evt",
    "BetaSkewTEgarch": "swarmvar.models.score_driven",
    "HarArch": "swarmvar.models.har_arch",
    "MarkovSwitching": "swarmvar.models.markov_switching",
    "MarkovSwitchingGarch": "swarmvar.models.markov_switching",
}

#: Short names accepted on the command line.
ALIASES: dict[str, str] = {
    "nig": "NormalInverseGamma",
    "bootstrap": "BayesianBootstrap",
    "bb": "BayesianBootstrap",
    "student-t": "StudentT",
    "t": "StudentT",
    "garch-t": "GarchT",
    "garch": "GarchT",
    "garch-evt": "GarchEVT",
    "evt": "GarchEVT",
    "beta-skew-t-egarch": "BetaSkewTEgarch",
    "beta-t-egarch": "BetaSkewTEgarch",
    "egarch": "BetaSkewTEgarch",
    "score-driven": "BetaSkewTEgarch",
    "har-arch": "HarArch",
    "har": "HarArch",
    "lhar": "HarArch",
    "markov-switching": "MarkovSwitching",
    "ms": "MarkovSwitching",
    "msv": "MarkovSwitching",
    "ms-garch": "MarkovSwitchingGarch",
    "msgarch": "MarkovSwitchingGarch",
}

#: The default swarm, cheapest first; ``--agents`` picks any agent registered above.
DEFAULT_AGENTS: tuple[str, ...] = (
    "NormalInverseGamma", "BayesianBootstrap", "StudentT", "GarchT", "GarchEVT",
    "BetaSkewTEgarch")


def canonical_name(name: str) -> str:
    """The class name for a class name or alias (case-insensitive)."""
    for full in AGENT_MODULES:
        if full.lower() == name.lower():
            return full
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    known = ", ".join(list(AGENT_MODULES) + sorted(ALIASES))
    raise UnknownAgent(f"no agent called {name!r}; known agents: {known}")


def agent_class(name: str) -> type[Agent]:
    """The agent class for a name or alias."""
    full = canonical_name(name)
    module = importlib.import_module(AGENT_MODULES[full])
    cls: type[Agent] = getattr(module, full)
    return cls


def neediest(needs: Iterable[tuple[str, int]]) -> tuple[int, str]:
    """The largest need of ``(name, returns needed)`` pairs and its name (the first wins a
    tie); the core of :func:`most_needed` for callers holding agents, not names.

    Raises
    ------
    InvalidParameter
        ``needs`` is empty.
    """
    best: tuple[int, str] | None = None
    for name, need in needs:
        if best is None or int(need) > best[0]:
            best = (int(need), name)
    if best is None:
        raise InvalidParameter("agents: give at least one agent name")
    return best


def most_needed(agents: Sequence[str]) -> tuple[int, str]:
    """The agent of ``agents`` that needs the most history to fit, and how much.

    Parameters
    ----------
    agents : sequence of str
        Class names or aliases (case-insensitive), as :func:`agent_class` takes them.

    Returns
    -------
    (int, str)
        The largest ``min_observations`` among the agents (returns each fit needs) and
        the canonical class name of the first agent named with it (the first wins a tie).

    Raises
    ------
    UnknownAgent
        A name is not a registered agent.
    InvalidParameter
        ``agents`` is empty.
    """
    return neediest((canonical_name(a), agent_class(a).min_observations) for a in agents)


def parameter_names() -> dict[str, tuple[str, ...]]:
    """Constructor parameters of every agent (what a variant may change)."""
    return {name: agent_class(name).parameter_names() for name in AGENT_MODULES}


# --- joint (multi-asset) agents of books --------------------------------------

#: Joint agents of a book's assets: class name -> module (not in the univariate swarm).
BOOK_AGENT_MODULES: dict[str, str] = {
    "NormalInverseWishart": "swarmvar.models.joint_niw",
    "FilteredHistorical": "swarmvar.models.joint_fhs",
    "CopulaGarchEVT": "swarmvar.models.joint_copula",
    "RiskMetrics": "swarmvar.models.book_baselines",
}

#: Short names of the joint agents accepted on the command line.
BOOK_ALIASES: dict[str, str] = {
    "niw": "NormalInverseWishart",
    "fhs": "FilteredHistorical",
    "copula": "CopulaGarchEVT",
    "riskmetrics": "RiskMetrics",
    "ewma": "RiskMetrics",
}

#: The default joint swarm (RiskMetrics is the baseline row, not a member).
DEFAULT_BOOK_AGENTS: tuple[str, ...] = ("NormalInverseWishart", "FilteredHistorical",
                                        "CopulaGarchEVT")


def book_agent_class(name: str) -> type[JointAgent]:
    """The joint agent class for a class name or alias (case-insensitive)."""
    key = next((full for full in BOOK_AGENT_MODULES if full.lower() == name.lower()),
               BOOK_ALIASES.get(name.lower()))
    if key is None:
        known = ", ".join(list(BOOK_AGENT_MODULES) + sorted(BOOK_ALIASES))
        raise UnknownAgent(f"no joint (book) agent called {name!r}; known: {known}")
    module = importlib.import_module(BOOK_AGENT_MODULES[key])
    joint: type[JointAgent] = getattr(module, key)
    return joint
