"""Shared fixtures for the consensus tests: deterministic keys and estimates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.consensus import KeyRing, private_key_from_seed, sign_estimate
from swarmvar.types import Estimate

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def agent_key(i: int) -> Ed25519PrivateKey:
    return private_key_from_seed(bytes([i + 1]) * 32)


def estimate(
    agent: str,
    var: float,
    *,
    seq: int = 1,
    as_of: datetime = NOW,
    spread: float = 0.1,
    **kw: object,
) -> Estimate:
    fields: dict[str, object] = dict(
        agent_id=agent,
        portfolio="spx",
        alpha=0.99,
        horizon=1,
        var=var,
        es=var * 1.25,
        var_interval=(var * (1 - spread), var * (1 + spread)),
        es_interval=(var * 1.25 * (1 - spread), var * 1.25 * (1 + spread)),
        as_of=as_of,
        seq=seq,
    )
    fields.update(kw)
    return Estimate(**fields)  # type: ignore[arg-type]


@pytest.fixture
def keys() -> dict[str, Ed25519PrivateKey]:
    return {f"a{i}": agent_key(i) for i in range(7)}


@pytest.fixture
def ring(keys: dict[str, Ed25519PrivateKey]) -> KeyRing:
    return KeyRing({a: k.public_key() for a, k in keys.items()})


def signed(keys: dict[str, Ed25519PrivateKey], agent: str, var: float, **kw: object) -> Estimate:
    return sign_estimate(estimate(agent, var, **kw), keys[agent])


@pytest.fixture
def make():
    """Build an unsigned estimate: ``make(agent, var, seq=..., ...)``."""
    return estimate


@pytest.fixture
def sign(keys):
    """Build and sign an estimate with the agent's key: ``sign(agent, var, ...)``."""

    def _sign(agent: str, var: float, **kw: object) -> Estimate:
        return sign_estimate(estimate(agent, var, **kw), keys[agent])

    return _sign
