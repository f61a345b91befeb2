"""ASGI middleware: request ids, JSON-lines access logs, HTTP metrics, request size limit.

A streaming response (``text/event-stream``: ``/events``) is counted in
``swarmvar_http_requests_total`` and logged with its open time, but kept out of the
latency histogram, whose quantiles would otherwise read a stream's minutes as latency.

One pure ASGI class (no per-request task switching, unlike BaseHTTPMiddleware),
outside the routing, so it sees every request including refused ones.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException

from .metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGGER = "swarmvar.service"
#: The parent of every swarmvar logger: where their lines are written, as JSON lines.
PARENT = "swarmvar"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
#: Methods kept as a metrics label; any other (a client may send any token) is "OTHER", so
#: a hostile client cannot grow the label set, and the metrics, without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def json_handler() -> logging.Handler:
    """The one handler swarmvar's logs go out through: JSON lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    return handler


def log_config(level: str, others: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` configuration that routes the parent logger
    :data:`PARENT` - so every swarmvar module's (``swarmvar.service``, ``swarmvar.ledger``,
    ``swarmvar.evolution``, ``swarmvar.swarm``, ...) - as JSON lines to stderr at
    ``level``, not passed on to the root logger; ``others`` (uvicorn's loggers) are
    configured beside it, ``"json"`` naming the same handler. ``swarmvar serve`` gives it to
    uvicorn; :func:`configure_logging` applies its :data:`PARENT` part in a process
    nothing configured."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"json": {"()": json_handler}},
        "loggers": {PARENT: {"handlers": ["json"], "level": level.upper(), "propagate": False},
                    **(others or {})},
    }


def configure_logging(level: str | None = None) -> None:
    """Route the :data:`PARENT` logger as :func:`log_config` says, in this process
    (idempotent: a JSON-lines handler already there, from ``swarmvar serve``'s
    configuration, is kept, and so is its level unless ``level`` is given; else
    ``info``). Other loggers' handlers are left alone."""
    wanted = log_config(level or "info")["loggers"][PARENT]
    log = logging.getLogger(PARENT)
    if not any(isinstance(h.formatter, JsonLines) for h in log.handlers):
        log.addHandler(json_handler())
    if level is not None or log.level == logging.NOTSET:
        log.setLevel(wanted["level"])
    log.propagate = wanted["propagate"]


class RequestContext:
    """Request id (``X-Request-ID``, given or made), size limit, access log, HTTP metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.log = logging.getLogger(LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        streaming = False  # an event stream: open for as long as its client listens
        start = time.perf_counter()
        self.metrics.in_flight.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = any(k.lower() == b"content-type" and v.lower().startswith(
                    b"text/event-stream") for k, v in message.get("headers") or ())
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(scope, send_with_id)
                return
            await self.app(scope, self._counting(receive), send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(method, template, str(status)).inc()
            if not streaming:  # a stream's open time is no latency: it would swamp p99
                self.metrics.latency.labels(method, template).observe(elapsed)
            self.log.info("request", extra={"fields": {
                "request_id": rid, "method": scope["method"][:16],
                "path": scope["path"][:2048], "route": template,
                "status": status, "duration_ms": round(1000 * elapsed, 3),
                "key_id": scope["state"].get("key_id"),
                "client": (scope.get("client") or ("", 0))[0]}})

    def _counting(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"request body over {limit} bytes; send less "
                                             "(split a batch) or raise --max-body")
            return message

        return wrapped

    async def _too_large(self, scope: Scope, send: Send) -> None:
        body = json.dumps({"error": {
            "type": "PayloadTooLarge", "status": 413,
            "message": f"request body over {self.max_body} bytes (Content-Length); send less "
                       "(split a batch) or raise --max-body",
            "request_id": scope["state"]["request_id"]}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
