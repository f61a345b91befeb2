"""HTTP face of swarmvar (layer 4): the API under ``/v1``, the live dashboard, ``/metrics``.

Handlers parse, call the runtime through :class:`~swarmvar.service.desk.Desk`
(one swarm per portfolio, beats driven by ingestion) and serialize; auth is a
FastAPI dependency (API keys hashed with scrypt, roles reader/writer/admin).
``swarmvar serve`` runs it under uvicorn; see docs/operations.md and docs/api.md.

Names load on first use, so that ``swarmvar serve``'s supervising process and
``swarmvar keys`` do not import the models and the consensus engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "create_app": ".app", "app_from_env": ".app", "ServiceConfig": ".config",
    "DatedReturn": ".desk", "Desk": ".desk", "ApiKey": ".keys", "KeyFile": ".keys",
    "Role": ".keys",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
