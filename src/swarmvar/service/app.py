"""The FastAPI application: wiring of desk, keys, metrics, middleware and routes.

``create_app(config)`` builds one app; ``app_from_env()`` is the factory
uvicorn workers call (the configuration travels in ``SWARMVAR_SERVICE_CONFIG``).
Both refuse a home whose beats were decided by another arbiter
(:func:`check_resume`), as a resume of ``swarmvar run`` is refused.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (
    BatchTooLarge,
    ConflictingInput,
    Forbidden,
    LedgerClosed,
    LedgerCorrupted,
    RateLimited,
    ResumeMismatch,
    SwarmVarError,
    Unauthenticated,
)
from ..evolution.errors import CorruptStore, VariantStoreClosed, VariantStoreMissing
from ..ledger import Ledger
from .auth import RateLimit
from .config import PULSE_FIELDS, ServiceConfig
from .desk import Desk
from .keys import KeyFile
from .metrics import Metrics
from .middleware import LOGGER, RequestContext, configure_logging
from .storage import storage_answer
from .streams import StreamSlots

_TITLE = "swarmvar"
_DESCRIPTION = (
    "Bayesian Value-at-Risk from a swarm of model agents: ingest returns, read the "
    "consensus VaR/ES with credible intervals, each agent's view and the arbiter's "
    "decisions, and audit everything in a tamper-evident ledger. Authenticate with an "
    "API key in the `X-API-Key` header (roles: reader < writer < admin)."
)


def _status(exc: SwarmVarError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, ConflictingInput):
        return 409
    if isinstance(exc, BatchTooLarge):
        return 413
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, (LedgerCorrupted, CorruptStore, VariantStoreMissing)):
        return 500  # damage, or a store gone: a retry would meet it again
    if isinstance(exc, (LedgerClosed, VariantStoreClosed)):
        return 500  # a store used after its close(): this server's mistake, no retry mends it
    if isinstance(exc, (ValueError, TypeError)):
        return 422
    return 503


#: Seconds a client is told to wait before retrying a 503 (a lock, the key file, a busy desk).
RETRY_AFTER = "5"
def error_response(request: Request, status: int, kind: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    rid = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse({"error": {"type": kind, "status": status, "message": message,
                                   "request_id": rid}}, status_code=status, headers=headers)


#: The members of the ingest body's union (one return, or a batch): pydantic names the one
#: the body's shape means in each error's location; the message leaves it out.
_UNION = ("ReturnIn", "ReturnBatch")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in list(exc.errors())[:10]:
        where = ".".join(str(x) for x in e.get("loc", ())
                         if x != "body" and x not in _UNION) or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _install_errors(app: FastAPI) -> None:
    log = logging.getLogger(LOGGER)

    @app.exception_handler(SwarmVarError)
    async def swarmvar_error(request: Request, exc: SwarmVarError) -> JSONResponse:
        status = _status(exc)
        headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
        if status in (429, 503):  # both say "retry later": say when
            headers = {"Retry-After": "1" if status == 429 else RETRY_AFTER}
        return error_response(request, status, type(exc).__name__, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 422, "InvalidRequest", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge",
                415: "UnsupportedMediaType", 400: "BadRequest"}.get(exc.status_code, "HTTPError")
        return error_response(request, exc.status_code, kind, str(exc.detail),
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"fields": {
            "request_id": request.scope.get("state", {}).get("request_id")}})
        return error_response(request, 500, "InternalError",
                              "internal error; the request id is in the server's log")

    @app.exception_handler(sqlite3.OperationalError)
    async def ledger_busy(request: Request, exc: Exception) -> JSONResponse:
        """A read (:func:`~swarmvar.service.storage.storage_answer`) that met a lock held
        past the timeout, or no file descriptor left: 503 with ``Retry-After``, the error
        named (it passes); its ledger file gone: 500 naming it. A write's, or any other
        SQLite error, stays a 500: whether a retry is safe is not known here."""
        answer = storage_answer(request, exc)
        if answer is None:
            return await unexpected(request, exc)
        status, kind, message = answer
        log.warning("ledger unavailable", extra={"fields": {
            "request_id": request.scope.get("state", {}).get("request_id"),
            "error": str(exc), "status": status}})
        return error_response(request, status, kind, message,
                              {"Retry-After": RETRY_AFTER} if status == 503 else None)


def open_ledger(config: ServiceConfig) -> Ledger:
    """The shared ledger: PostgreSQL when ``config.db`` is a URL, else ``<home>/ledger.sqlite``."""
    if config.db:
        from ..ledger.head import load_or_create_key

        # heads are signed with the home's key; replicas should mount the same key file
        config.home.mkdir(parents=True, exist_ok=True)
        return Ledger(config.db, signing_key=load_or_create_key(config.home / "ledger.key"))
    return Ledger.open(config.home)


def _make_variant_store(app: FastAPI, cfg: ServiceConfig) -> None:
    """Make the home's variant store at the start; routes then only open it.

    A store that cannot be opened now (damaged, locked, no descriptor left, a folder in its
    place) does not stop the server: it is logged, and only the variant routes answer its
    error. ``app.state.evolution_made`` is set when the file is there afterwards, so a
    store deleted since is an error (VariantStoreMissing), not a new empty one.
    """
    from ..evolution import open_home
    from ..evolution.db import DB_FILE, VariantStoreLocked
    from ..evolution.errors import UnsupportedStore, VariantStoreUnavailable

    try:
        open_home(cfg.home).close()
    except (CorruptStore, UnsupportedStore, VariantStoreLocked, VariantStoreMissing,
            VariantStoreUnavailable) as exc:
        logging.getLogger(LOGGER).warning("variant store not opened at the start", extra={
            "fields": {"error": str(exc), "type": type(exc).__name__}})
    app.state.evolution_made = os.path.lexists(cfg.home / DB_FILE)


def create_app(config: ServiceConfig | None = None, *, desk: Desk | None = None) -> FastAPI:
    """The service for ``config`` (default: ``./.swarmvar``, SQLite, default swarm).

    The process's logging is left as the caller set it: an embedder that wants the
    service's JSON log lines (the ``swarmvar`` loggers, the PostgreSQL stores' URL and
    psycopg's words among them) calls
    :func:`~swarmvar.service.middleware.configure_logging` once, as
    :func:`app_from_env` (each ``swarmvar serve`` worker) does.

    Raises
    ------
    ArbiterOptionsMismatch, ResumeMismatch
        Without ``desk``: the home's beats were decided by another arbiter
        (:func:`check_resume`); nothing was written.
    InvalidParameter
        The arbiter's options in ``config`` are not ones it takes (k * P <= 1, ...).
    """
    from . import dashboard, routes_ledger, routes_risk

    cfg = config or ServiceConfig()
    if desk is None:  # the desk is made at the start: a home it would refuse, refused now
        check_resume(cfg)
    metrics = Metrics()
    own_desk = desk is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not cfg.db:  # the variant store made at start: a home deleted later is an error
            _make_variant_store(app, cfg)  # (VariantStoreMissing), not a new empty store
        if app.state.desk is None:
            app.state.desk = _make_desk(cfg, metrics,
                                        getattr(app.state, "evolution_made", False))
        metrics.ledger_entries.set(app.state.desk.ledger_size)
        yield
        if app.state.desk is not None:
            if own_desk:  # its timer stopped, the decisions kept after a failed append
                try:  # tried once more (then lost from the ledger)
                    app.state.desk.shutdown()
                finally:  # closed even when that try raised
                    app.state.desk.ledger.close()
            else:  # the caller's desk goes on: only the decisions' append tried
                app.state.desk.flush_undecided()

    # no Swagger UI: FastAPI's loads its assets from a CDN; /docs is rendered here (apipage)
    app = FastAPI(title=_TITLE, description=_DESCRIPTION, version="1", lifespan=lifespan,
                  docs_url=None, openapi_url="/openapi.json", redoc_url=None)
    app.state.config = cfg
    app.state.metrics = metrics
    app.state.keys = KeyFile(cfg.key_file)
    app.state.limits = RateLimit()
    app.state.desk = desk
    app.state.streams = StreamSlots(cfg.max_streams)
    if desk is not None:
        _watch(desk, metrics)
    _install_errors(app)
    app.include_router(routes_risk.router)
    app.include_router(routes_ledger.router)
    app.include_router(dashboard.router)
    app.add_middleware(RequestContext, metrics=metrics, max_body=cfg.max_body)
    _state_history_rule(app, desk.agents if desk is not None else cfg.agents,
                        cfg.max_batch)
    _serve_reference(app)
    return app


def _serve_reference(app: FastAPI) -> None:
    """``/docs``: the API reference as HTML from the app's own schema, nothing downloaded."""
    from .apidoc import route_roles
    from .apipage import render_html

    page: list[str] = []  # rendered on first use: the schema is fixed once the app is built

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def reference() -> HTMLResponse:
        if not page:
            page.append(render_html(app.openapi(), route_roles()))
        return HTMLResponse(page[0], headers={"Cache-Control": "no-cache"})


def _state_history_rule(app: FastAPI, agents: tuple[str, ...], max_batch: int) -> None:
    """The OpenAPI schema states this server's numbers (the new-portfolio history rule, the
    ingest batch cap) and each route's error statuses, those it can give
    (:mod:`swarmvar.service.responses`)."""
    from .desk_book import MIN_HISTORY, min_history
    from .responses import document_errors
    from .schemas import BATCH_RULE, HISTORY_RULE

    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        need, needer = min_history(agents)
        defs = schema["components"]["schemas"]
        field = defs["PortfolioIn"]["properties"]["history"]
        field["minItems"] = MIN_HISTORY  # every request's floor; named agents may need fewer
        field["description"] = (f"{HISTORY_RULE} This server's swarm needs {need} "
                                f"({needer}); a request naming `agents` needs theirs")
        batch = defs["ReturnBatch"]["properties"]["returns"]
        batch["maxItems"] = max_batch
        batch["description"] = (f"{BATCH_RULE} At most {max_batch} a request on this server "
                                "(`swarmvar serve --max-batch`; more: 413, nothing stored)")
        document_errors(schema, list(app.routes))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _make_desk(cfg: ServiceConfig, metrics: Metrics, store_made: bool = False) -> Desk:
    """The service's desk; the observers' skipped beats counted from its start's replay of
    the ledger on (``swarmvar_observer_beats_skipped_total``), as live ones are.
    ``store_made``: the home's store was made at the start (its checkpoints only open it)."""
    desk = Desk(open_ledger(cfg), cfg.home, agents=cfg.agents, alphas=cfg.alphas,
                horizon=cfg.horizon, window=cfg.window, refit_every=cfg.refit_every,
                seed=cfg.seed, observers=_observers(cfg),
                checkpoint_every=cfg.checkpoint_every, on_skip=_skip_counter(metrics),
                store_made=store_made)
    _watch(desk, metrics, skips=False)
    return desk


def _skip_counter(metrics: Metrics) -> Callable[[str, str], None]:
    """Count an observer's skipped beat in ``swarmvar_observer_beats_skipped_total``."""
    def count(observer: str, reason: str) -> None:
        metrics.observer_skipped.labels(observer, reason).inc()

    return count


def _watch(desk: Desk, metrics: Metrics, *, skips: bool = True) -> None:
    """Feed ``metrics`` from ``desk``'s beats: each beat's report, and its measured seconds
    (one ``swarmvar_beat_duration_seconds`` sample per beat this process runs); with
    ``skips``, its observers' skipped beats (a desk built before the metrics replayed its
    ledger uncounted)."""
    def on_report(report: Any, decisions: Any) -> None:
        metrics.observe_beat(report, decisions)
        metrics.ledger_entries.set(desk.ledger_size)

    desk.watch(on_report)
    desk.observing.on_timed(metrics.observe_beat_seconds)
    if skips:
        desk.observing.on_skip(_skip_counter(metrics))


def _observers(cfg: ServiceConfig) -> tuple[Any, ...]:
    """The arbiter (its decisions are recorded by the desk, after each beat), with the
    pulse ``cfg`` carries (``k_flows``, ``p_nodes``, ``t1``, ``t_threshold``).

    Raises
    ------
    InvalidParameter
        The pulse is not one the arbiter takes (k * P <= 1, ...).
    """
    if not cfg.arbiter:
        return ()
    from ..arbiter import Arbiter

    return (Arbiter.from_options(k_flows=cfg.k_flows, p_nodes=cfg.p_nodes, t1=cfg.t1,
                                 t_threshold=cfg.t_threshold, record_decisions=False),)


def _service_words(message: str) -> str:
    """An ``ArbiterOptionsMismatch``'s message as the service's users set the options: the
    pulse's through :class:`ServiceConfig`'s fields in Python (the arbiter's own words name
    ``Arbiter.from_options``'s keywords); the options the service does not take (the
    pulse's ``u``, the thresholds: it runs the arbiter's defaults) named as the arbiter's,
    with how such a home is served."""
    from ..arbiter.checkpoint import PULSE_OPTIONS

    for name in PULSE_FIELDS:
        message = message.replace(f"{name}= in Python", f"ServiceConfig.{name} in Python")
    others = []
    for name, _, flag in PULSE_OPTIONS:  # those without a flag: no ServiceConfig field
        if flag is None and f"({name}= in Python)" in message:
            message = message.replace(f"({name}= in Python)",
                                      f"(Arbiter.from_options({name}=...) in Python)")
            others.append(name)
    if "the threshold " in message:
        others.append("thresholds")
    if others:
        message += (f" (the service runs the arbiter's default {' and '.join(others)}: a "
                    "home decided under others is served from Python by a Desk given that "
                    "arbiter)")
    return message


def check_resume(cfg: ServiceConfig) -> None:
    """Refuse to serve ``cfg.home`` under another arbiter than the one that decided its
    beats, as ``swarmvar run`` refuses such a resume, reading the home's state store and
    its ledger and writing nothing (so before the server listens): the arbiter's
    checkpoints there hold the options it decided with, and a desk restoring them under
    other options would replay every beat under the new ones, deciding the history again
    differently. Without the arbiter over a home whose checkpoints hold its state: refused
    too (its quarantined agents would count again while its alerts are dropped). With the
    arbiter over a home served without it: allowed (it decides from the next beat), as in
    ``run``. A checkpoint whose mark is not on this ledger (the ledger deleted, another
    ``db``) is not this ledger's history: it counts for neither refusal (the desk ignores
    it and replays every beat). A checkpoint that cannot be read is logged and left to the
    desk, the others are checked; a store that cannot be read now is logged and left to
    the desk's start.

    Raises
    ------
    ArbiterOptionsMismatch
        A checkpoint of the home was made under other options; each is named "saved X,
        now Y" (the pulse's with its ``serve`` flag and :class:`ServiceConfig` field), with
        how to go on (the options it ran with, or another home).
    ResumeMismatch
        ``cfg.arbiter`` is off and the home holds the arbiter's state of a portfolio.
    InvalidParameter
        The arbiter's options in ``cfg`` are not ones it takes (k * P <= 1, ...).
    """
    from ..errors import ArbiterOptionsMismatch
    from .desk_observers import check_saved, held_portfolios, ledger_reader

    observers = _observers(cfg)
    on_ledger, close = ledger_reader(cfg.home, cfg.db)
    try:
        if cfg.arbiter:
            try:
                check_saved(observers, cfg.home, on_ledger)
            except ArbiterOptionsMismatch as exc:
                raise ArbiterOptionsMismatch(_service_words(str(exc))) from None
            return
        from ..arbiter import Arbiter

        try:
            names = held_portfolios(cfg.home, Arbiter.state_key, on_ledger)
        except (SwarmVarError, OSError) as exc:
            logging.getLogger(LOGGER).warning("the home's checkpoints cannot be read", extra={
                "fields": {"error": str(exc), "type": type(exc).__name__}})
            return
    finally:
        close()
    if names:
        shown = ", ".join(repr(n) for n in names[:5]) + (
            f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ResumeMismatch(
            f"this home's portfolios were served with the arbiter on (its checkpoints hold "
            f"the arbiter's state of {shown}); without the arbiter (serve --no-arbiter, "
            "arbiter=False in Python) the agents it quarantined would count again and its "
            "alerts be dropped: serve it with the arbiter (and the options it ran with), or "
            "give another home")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: the configuration from ``SWARMVAR_SERVICE_CONFIG``."""
    configure_logging()
    return create_app(ServiceConfig.from_env())
