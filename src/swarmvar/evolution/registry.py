"""The agent registry: what each running agent can do and what it prefers.

An agent's *capabilities* map a name (``"jax"``, ``"state_format"``) to the
version it has; a variant's *requirements* map names to the minimum version
it needs. *Preferences* weigh agent classes (``{"NormalInverseGamma": 2,
"GarchT": 1}``) and are normalized to sum to 1 when the profile is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..canonical import NotCanonical, canonical_json
from ..errors import UnknownAgent
from .db import Database
from .errors import InvalidCapabilities
from .variants import Variant
from .versions import Version


@dataclass(frozen=True)
class AgentProfile:
    """One registered agent.

    Attributes
    ----------
    capabilities : Mapping[str, Version]
        What the agent can run, by name, at which version.
    preferences : Mapping[str, float]
        Weights over agent class names, each in [0, 1], summing to 1 (or empty).
    """

    agent_id: str
    capabilities: Mapping[str, Version]
    version: Version
    platform: str = ""
    preferences: Mapping[str, float] = field(default_factory=dict)
    custom: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def capability_parts(self) -> dict[str, tuple[int, ...]]:
        """Capabilities as plain tuples (what selection compares, fast)."""
        return {k: v.parts for k, v in self.capabilities.items()}

    @cached_property
    def key(self) -> bytes:
        """The agent id as UTF-8 (what canary hashing consumes)."""
        return self.agent_id.encode()

    def to_json(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "version": str(self.version),
                "platform": self.platform, "preferences": dict(self.preferences),
                "capabilities": {k: str(v) for k, v in self.capabilities.items()},
                "custom": dict(self.custom)}


def agent_profile(
    agent_id: str,
    capabilities: Mapping[str, object],
    *,
    version: object = "1.0",
    platform: str = "",
    preferences: Mapping[str, float] | None = None,
    custom: Mapping[str, Any] | None = None,
) -> AgentProfile:
    """A validated agent profile (versions parsed, preferences normalized).

    Raises
    ------
    InvalidCapabilities
        If the id is empty, a capability name or version is malformed, a
        preference weight is negative or not finite, or custom data is not JSON.
    """
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise InvalidCapabilities(f"agent id {agent_id!r} must be non-empty text")
    if not isinstance(capabilities, Mapping):
        raise InvalidCapabilities(
            f"capabilities of {agent_id} must map names to versions, not {capabilities!r}")
    caps = {}
    for name, ver in capabilities.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidCapabilities(f"capabilities of {agent_id}: capability name "
                                      f"{name!r} must be non-empty text")
        caps[name] = Version.parse(ver, what=f"capability {name!r} of {agent_id}")
    prefs = dict(preferences or {})
    for name, w in prefs.items():
        if (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w)
                or w < 0):
            raise InvalidCapabilities(
                f"preference {name!r} of {agent_id} is {w!r}; weights must be finite and >= 0")
    total = float(sum(prefs.values()))
    if prefs and total <= 0:
        raise InvalidCapabilities(f"preferences of {agent_id} are all zero; give one weight > 0")
    prefs = {k: float(w) / total for k, w in prefs.items()}
    extra = dict(custom or {})
    try:
        canonical_json(extra)
    except NotCanonical as exc:
        raise InvalidCapabilities(f"custom data of {agent_id} is not plain JSON: {exc}") from exc
    return AgentProfile(agent_id=agent_id, capabilities=caps,
                        version=Version.parse(version, what=f"version of {agent_id}"),
                        platform=str(platform), preferences=prefs, custom=extra)


def missing_requirements(variant: Variant, agent: AgentProfile) -> dict[str, str]:
    """Requirements of ``variant`` that ``agent`` does not meet: name -> why."""
    missing = {}
    for name, needed in variant.requirements.items():
        have = agent.capabilities.get(name)
        if have is None:
            missing[name] = f"needs {name} >= {needed}, agent has none"
        elif have < needed:
            missing[name] = f"needs {name} >= {needed}, agent has {have}"
    return missing


def is_compatible(variant: Variant, agent: AgentProfile) -> bool:
    """True if the agent meets every requirement of the variant."""
    caps = agent.capabilities
    for name, needed in variant.requirements.items():
        have = caps.get(name)
        if have is None or have < needed:
            return False
    return True


class AgentRegistry:
    """Registered agents in the ``agents`` table (upsert by agent id)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, profile: AgentProfile) -> None:
        """Add or replace an agent's profile."""
        body = canonical_json(profile.to_json()).decode()
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO agents VALUES (?, ?) ON CONFLICT(agent_id) DO UPDATE "
                         "SET body=excluded.body", (profile.agent_id, body))

    def get(self, agent_id: str) -> AgentProfile:
        """The agent's profile (``UnknownAgent`` if not registered)."""
        row = self.db.read_one("SELECT body FROM agents WHERE agent_id=?", (agent_id,))
        if row is None:
            raise UnknownAgent(f"agent {agent_id!r} is not registered")
        return _profile(json.loads(str(row[0])))

    def list(self) -> list[AgentProfile]:
        """All registered agents, by id."""
        rows = self.db.read("SELECT body FROM agents ORDER BY agent_id")
        return [_profile(json.loads(str(r[0]))) for r in rows]


def _profile(d: Mapping[str, Any]) -> AgentProfile:
    return AgentProfile(
        agent_id=d["agent_id"], version=Version.parse(d["version"]), platform=d["platform"],
        capabilities={k: Version.parse(v) for k, v in d["capabilities"].items()},
        preferences=d["preferences"], custom=d["custom"])
