"""Authentication and authorization as FastAPI dependencies, with per-key rate limits."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from ..errors import Forbidden, InvalidParameter, KeysUnavailable, RateLimited, Unauthenticated
from .keys import ApiKey, KeyFile, Role

_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key from `swarmvar keys create`.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
_query = APIKeyQuery(name="key", auto_error=False,
                     description="The API key (event streams only: browsers cannot set "
                                 "headers on EventSource).")


class RateLimit:
    """Token buckets per key id: ``rate`` tokens a second up to ``burst`` (thread-safe).

    Per process: with N workers or replicas a key may reach N times its rate.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: ApiKey) -> None:
        if key.rate <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key.id, (float(key.burst), now))
            tokens = min(float(key.burst), tokens + (now - last) * key.rate)
            if tokens < 1.0:
                self._buckets[key.id] = (tokens, now)
                wait = (1.0 - tokens) / key.rate
                raise RateLimited(f"API key {key.id} is limited to {key.rate:g} requests/s "
                                  f"(burst {key.burst}); retry in {wait:.2f} s")
            self._buckets[key.id] = (tokens - 1.0, now)


def _presented(request: Request, header: str | None, bearer: HTTPAuthorizationCredentials | None,
               query: str | None, allow_query: bool) -> str:
    for name in ("x-api-key", "authorization"):
        given = len(request.headers.getlist(name))
        if given > 1:  # which one counts would depend on the server: refuse the ambiguity
            raise Unauthenticated(f"{name} header given {given} times; send one API key")
    if header:
        return header
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    if allow_query and query:
        return query
    if not allow_query and "key" in request.query_params:
        raise Unauthenticated("an API key in the URL (?key=) is taken by event streams only; "
                              "send it in the X-API-Key header (or as Authorization: Bearer "
                              "<key>)")
    raise Unauthenticated("no API key: send it in the X-API-Key header "
                          "(or as Authorization: Bearer <key>)")


def _admit(request: Request, presented: str, role: Role) -> ApiKey:
    keys: KeyFile = request.app.state.keys
    try:
        key = keys.check(presented)
    except InvalidParameter as exc:  # the server's key file, not the request: say so
        logging.getLogger("swarmvar.service").warning("key file unreadable", extra={
            "fields": {"error": str(exc), "request_id": request.state.request_id}})
        raise KeysUnavailable("the server cannot check API keys now (its key file is "
                              "unreadable; the operator is told in the server's log); retry "
                              "later") from None
    request.state.key_id = key.id
    _check_role(key, role)
    request.app.state.limits.take(key)
    return key


def _check_role(key: ApiKey, role: Role) -> None:
    """:class:`Forbidden` unless ``key`` has ``role`` or above."""
    if not key.role.allows(role):
        raise Forbidden(f"API key {key.id} has role {key.role.value}; this route needs "
                        f"{role.value} or above")


def presented_key(request: Request, allow_query: bool) -> str:
    """The API key the request presents (``X-API-Key``, ``Authorization: Bearer``, or
    ``?key=`` on event streams), read as the security schemes documented in OpenAPI read it;
    :class:`Unauthenticated` without one."""
    header = request.headers.get("x-api-key") or None
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = (HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
              if scheme.lower() == "bearer" and token else None)
    query = request.query_params.get("key") if allow_query else None
    return _presented(request, header, bearer, query, allow_query)


def authenticate(request: Request, role: Role, allow_query: bool = False) -> ApiKey:
    """The request's key, admitted for ``role`` (401, 403, 429 or 503 otherwise), once per
    request: the strict route class (:mod:`swarmvar.service.strict`) calls it before it reads
    the query or the body, so an unauthenticated client is told 401 whatever it sent; the
    route's dependency then finds the admitted key (one rate-limit token, one hash check)
    and checks its role again (a route with several key dependencies needs each one's)."""
    admitted = getattr(request.state, "api_key", None)
    if isinstance(admitted, ApiKey):
        _check_role(admitted, role)
        return admitted
    key = _admit(request, presented_key(request, allow_query), role)
    request.state.api_key = key
    return key


def require(role: Role, *, allow_query: bool = False) -> Callable[..., ApiKey]:
    """A dependency admitting keys of ``role`` or above; 401 without a valid key, 403 below it.

    Its parameters declare the security schemes (OpenAPI); the key is read by
    :func:`authenticate`, which the strict route class has usually run already.
    """
    if allow_query:
        def with_query(request: Request, header: Annotated[str | None, Depends(_header)],
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                       query: Annotated[str | None, Depends(_query)]) -> ApiKey:
            return authenticate(request, role, True)
        with_query.role = role  # type: ignore[attr-defined]  # read by the API docs
        with_query.allow_query = True  # type: ignore[attr-defined]  # read by StrictRoute
        return with_query

    def dependency(request: Request, header: Annotated[str | None, Depends(_header)],
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                   ) -> ApiKey:
        return authenticate(request, role, False)

    dependency.role = role  # type: ignore[attr-defined]  # read by the API docs
    dependency.allow_query = False  # type: ignore[attr-defined]  # read by StrictRoute
    return dependency


reader = require(Role.READER)
writer = require(Role.WRITER)
admin = require(Role.ADMIN)
stream_reader = require(Role.READER, allow_query=True)

#: Route parameter types: ``key: Reader`` admits readers and above, and so on.
Reader = Annotated[ApiKey, Depends(reader)]
Writer = Annotated[ApiKey, Depends(writer)]
Admin = Annotated[ApiKey, Depends(admin)]
StreamReader = Annotated[ApiKey, Depends(stream_reader)]
