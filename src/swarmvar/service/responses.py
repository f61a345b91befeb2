"""The error statuses each route documents: the ones it can answer, derived from the route.

A route states only its own errors (404 for an unknown portfolio, 409 for a
conflict with what is recorded, ...). The rest follow from what the route is,
the same way for every route, when the app builds its OpenAPI schema:

- any route: 413 (a body over ``--max-body``, refused by the middleware);
- a route with parameters or under :class:`~swarmvar.service.strict.StrictRoute`
  (unknown or repeated query parameters): 422;
- a route taking a JSON body: 415;
- a route requiring an API key: 401, 429 and 503 (the key file unreadable), and 403
  when its role is above reader (every valid key is at least a reader);
- a route of the variant store (tagged ``variants``: it opens the lifecycle database,
  whatever its role): 503 when that store cannot be used now (a lock held past the
  timeout, ``VariantStoreLocked``; no file descriptor left, ``VariantStoreUnavailable``;
  its disk full, read-only or an I/O error, ``VariantStoreUnwritable``) and 500 when it
  is damaged (``CorruptStore``) or gone (``VariantStoreMissing``);
- another route of the reader role (a read of the ledger:
  :func:`swarmvar.service.storage.is_read`, the app's answer to its SQLite errors): 503
  when the ledger cannot be read now (a lock held past the timeout, no file descriptor
  left, ``LedgerUnavailable``; its disk full, read-only or an I/O error,
  ``LedgerUnwritable``; its PostgreSQL server out of reach, ``LedgerUnreachable``; any
  other PostgreSQL error, a lock timeout say, ``LedgerFailed``), and 500 when the ledger
  file is gone;
- a route above the reader role (a write: it appends to the ledger, the variant store's
  promote and rollback too): 503 when the ledger cannot be written (its disk full,
  read-only or an I/O error, ``LedgerUnwritable``; its PostgreSQL server out of reach,
  ``LedgerUnreachable``; any other PostgreSQL error, ``LedgerFailed``: nothing written).

A PostgreSQL ledger's 503 messages say "the ledger database", never its URL nor psycopg's
words (a fixed category, or psycopg's class name, and the SQLSTATE): the store
(:mod:`swarmvar.ledger.postgres`) logs the URL, without its password, with psycopg's own
words (logger ``swarmvar.ledger``), and leaves them out of the error's message, which
the body carries.

So ``/healthz`` and ``/metrics`` list none of the key's errors, since they cannot give them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.routing import APIRoute

from .keys import Role
from .schemas import ErrorOut
from .strict import StrictRoute, auth_of

_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

#: The generic statuses' descriptions.
TEXT = {
    401: "No valid API key (checked before the query and the body)",
    403: "The key's role may not use this route",
    413: "Request body over the server's --max-body bytes",
    415: "The body is not JSON (Content-Type or Content-Encoding)",
    422: "Invalid request",
    429: "The key's rate limit is exceeded: retry after Retry-After seconds",
    503: "The server cannot check API keys now (its key file is unreadable): retry after "
         "Retry-After seconds",
}
#: A ledger read's 503 (:mod:`swarmvar.service.storage`).
STORAGE = ("The ledger cannot be read now (LedgerUnavailable: a lock held past the timeout, "
           "or no file descriptor left; LedgerUnwritable: its disk full, read-only or an I/O "
           "error, the ledger not damaged; LedgerUnreachable: its PostgreSQL server out of "
           "reach, the ledger not damaged, a new connection tried by the next request; "
           "LedgerFailed: another PostgreSQL error (a lock or statement timeout, a refused "
           "privilege), the ledger said neither damaged nor intact; the error is named, "
           "never the database's URL): retry after Retry-After seconds")
#: A write's 503 when its ledger append meets a disk error (:mod:`swarmvar.service.storage`).
LEDGER_WRITE = ("The ledger cannot be written (LedgerUnwritable: its disk full, read-only or "
                "an I/O error, the cause and the file named; LedgerUnreachable: its PostgreSQL "
                "server out of reach; LedgerFailed: another PostgreSQL error, a lock timeout "
                "say; the database's URL not named): the write was rolled "
                "back and the ledger is not damaged - unless the message says the returns "
                "were stored (an ingest whose beats went in and whose decisions' append "
                "failed: they wait in this server process) or that an append whose COMMIT "
                "answer was lost may have landed; retry after Retry-After seconds")
#: A ledger read's 500 when the SQLite ledger file cannot be opened for good (not retried).
MISSING = ("The ledger file or its home is gone or closed to the server (LedgerMissing, the "
           "file named): a retry would meet it again")
#: The tag of the routes that open the variant (lifecycle) store.
VARIANTS_TAG = "variants"
#: A variant route's 503 (:mod:`swarmvar.evolution.db`'s errors, answered by the app).
VARIANT_STORAGE = ("The variant store cannot be used now (VariantStoreLocked: locked by "
                   "another connection past the busy timeout; VariantStoreUnavailable: no "
                   "file descriptor left; VariantStoreUnwritable: its disk full, read-only "
                   "or an I/O error, the store not damaged; the store named): nothing was "
                   "changed; retry after Retry-After seconds")
#: A variant route's 500: a retry would meet it again.
VARIANT_BROKEN = ("The variant store is damaged or not a lifecycle database (CorruptStore), "
                  "or its file or home is gone or closed to the server (VariantStoreMissing; "
                  "the store named): a retry would meet it again")


def error(description: str) -> dict[str, Any]:
    """A route's own documented error (the ``responses`` entry of one status)."""
    return {"model": ErrorOut, "description": description}


def generic_statuses(route: APIRoute) -> dict[int, str]:
    """The statuses ``route`` can answer by what it is (not its own errors), described."""
    out = {413: TEXT[413]}
    d = route.dependant
    if isinstance(route, StrictRoute) or d.query_params or d.path_params or d.header_params:
        out[422] = TEXT[422]
    if route.body_field is not None:
        out[415] = TEXT[415]
    guard = auth_of(d)
    if guard is not None:
        out.update({401: TEXT[401], 429: TEXT[429], 503: TEXT[503]})
        if guard[0] is not Role.READER:
            out[403] = TEXT[403]
    if VARIANTS_TAG in (route.tags or ()):
        out[503] = f"{VARIANT_STORAGE}; or: {out[503]}" if 503 in out else VARIANT_STORAGE
        out[500] = VARIANT_BROKEN
    elif guard is not None and guard[0] is Role.READER:
        out[503] = f"{STORAGE}; or: {TEXT[503]}"
        out[500] = MISSING
    if guard is not None and guard[0] is not Role.READER:
        out[503] = f"{LEDGER_WRITE}; or: {out[503]}"
    return out


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The :class:`APIRoute` objects of ``routes``, those of included routers too (the
    app includes its routers without a prefix, so their paths are the schema's)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def document_errors(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    """Set every operation's error responses in ``schema`` to those its route can give:
    its own (kept as declared; a description of the same status joined to the generic
    one) and the generic ones, FastAPI's own 422 body replaced by the API's error body."""
    paths = schema.get("paths", {})
    for route in api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            op = paths.get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            for status, text in generic_statuses(route).items():
                own = route.responses.get(status) or route.responses.get(str(status))
                if own is not None:
                    own_text = str(own.get("description", ""))
                    if own_text and own_text != text and text not in own_text:
                        responses[str(status)]["description"] = f"{own_text}; or: {text}"
                    continue
                responses[str(status)] = {"description": text, "content": _REF}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorOut" not in components:
        body = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorOut"] = body
    text = repr(paths)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f"/{unused}'" not in text:
            del components[unused]
