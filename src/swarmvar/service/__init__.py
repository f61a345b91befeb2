"""HTTP face of swarmvar (layer 4): the API under ``/v1``, the live dashboard, ``/metrics``.

Handlers parse, call the runtime through :class:`~swarmvar.service.desk.Desk`
(one swarm per portfolio, beats driven by ingestion) and serialize; auth is a
FastAPI dependency (API keys hashed with scrypt, roles reader/writer/admin).
``swarmvar serve`` runs it under uvicorn; see docs/operations.md and docs/api.md.
"""

from .app import app_from_env, create_app
from .config import ServiceConfig
from .desk import DatedReturn, Desk
from .keys import ApiKey, KeyFile, Role

__all__ = ["ApiKey", "DatedReturn", "Desk", "KeyFile", "Role", "ServiceConfig", "app_from_env",
           "create_app"]
