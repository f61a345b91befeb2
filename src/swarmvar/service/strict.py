"""A strict request edge: the route class of the API's routers.

FastAPI alone lets through, or answers vaguely, several hostile requests:

- a body whose ``Content-Type`` is not JSON is read as raw bytes and refused
  with "Input should be a valid dictionary" (nothing says the header is wrong);
- a JSON object naming a field twice keeps the last value, silently;
- a body nested too deeply, with an integer over Python's digit limit or not
  UTF-8 gets "There was an error parsing the body";
- an unknown query parameter (a typo: ``?limt=5``) or one given twice is
  ignored, the default or the last value used.

:class:`StrictRoute` refuses each with a 4xx naming what was wrong: 415 for the
content type, 422 for the rest (``{"error": ...}`` like every other error).

Authentication comes first: on a route whose dependencies include an API-key
requirement (:func:`swarmvar.service.auth.require`), the key is checked before
the query and the body are read, so a client without a valid key gets 401 (a
key below the route's role 403) whatever its query or body; with a valid key a
bad body keeps its 415/422. (A ``Content-Length`` over ``--max-body`` is
refused 413 earlier still, by the middleware: such a body is never read.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .auth import authenticate
from .keys import Role

#: Query names every route accepts: ``key`` is the event streams' API key (elsewhere a key
#: in the URL is refused by authentication, with its own message).
_ALWAYS = frozenset({"key"})


def _invalid(where: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": (where,), "msg": message,
                                    "input": None}])


def _is_json(content_type: str) -> bool:
    m = Message()
    m["content-type"] = content_type
    sub = m.get_content_subtype()
    return m.get_content_maintype() == "application" and (sub == "json"
                                                         or sub.endswith("+json"))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # the hot path (every object of every body, before auth): one dict, one length check
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen = Counter(k for k, _ in pairs)
    twice = sorted(k for k, n in seen.items() if n > 1)
    raise _invalid("body", f"field {twice[0]!r} is given {seen[twice[0]]} times in one "
                           "object; send each field once")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; a :class:`RequestValidationError` naming what is wrong.

    Refused: not UTF-8, not JSON (with the position), a field twice in one object,
    nesting too deep, integers longer than Python converts. ``NaN``/``Infinity`` (and
    ``1e999``) are read as floats and refused by the body's schema, naming the field
    (every number there is ``Finite``).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid("body", f"the body is not UTF-8 (byte {exc.start}); send UTF-8 "
                               "encoded JSON") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _invalid("body", f"not valid JSON at line {exc.lineno} column {exc.colno}: "
                               f"{exc.msg}") from None
    except RecursionError:
        raise _invalid("body", "JSON nested too deeply; the API's bodies are at most "
                               "three levels deep") from None
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        raise _invalid("body", f"a number in the body cannot be read: {exc}") from None


class _StrictRequest(Request):
    """A request whose :meth:`json` is :func:`parse_json` of its body, parsed once: FastAPI
    reads a route's JSON body through ``request.json()``."""

    _parsed: tuple[Any] | None = None

    async def json(self) -> Any:
        if self._parsed is None:
            self._parsed = (parse_json(await self.body()),)
        return self._parsed[0]


class StrictRoute(APIRoute):
    """An :class:`APIRoute` refusing non-JSON, ambiguous or unreadable bodies and unknown
    or repeated query parameters, before FastAPI reads them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = _query_names(self.dependant) | _ALWAYS
        takes_body = self.body_field is not None
        guard = auth_of(self.dependant)

        async def strict(request: Request) -> Response:
            if guard is not None:  # the key first: 401/403 before any 415/422
                await run_in_threadpool(authenticate, request, *guard)
            _check_query(request, known)
            if takes_body:
                request = _StrictRequest(request.scope, request.receive)
                await _check_body(request)
            return await handler(request)

        return strict


def auth_of(dependant: Dependant) -> tuple[Role, bool] | None:
    """The role and query-key allowance of the route's API-key dependency, if it has one."""
    for sub in dependant.dependencies:
        role = getattr(sub.call, "role", None)
        if isinstance(role, Role):
            return role, bool(getattr(sub.call, "allow_query", False))
        found = auth_of(sub)
        if found is not None:
            return found
    return None


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def _check_query(request: Request, known: frozenset[str]) -> None:
    names = [k for k, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - known)
    if unknown:
        allowed = ", ".join(sorted(known - _ALWAYS)) or "none"
        raise _invalid("query", f"unknown query parameter {unknown[0][:64]!r} (this route "
                                f"takes: {allowed})")
    counts = Counter(names)
    twice = sorted(k for k, n in counts.items() if n > 1)
    if twice:
        raise _invalid("query", f"query parameter {twice[0]!r} is given {counts[twice[0]]} "
                                "times; give it once")


async def _check_body(request: Request) -> None:
    body = await request.body()
    if not body:
        return  # FastAPI says which fields are missing
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise HTTPException(415, f"Content-Encoding {encoding[:32]!r} is not accepted; send "
                                 "the JSON body uncompressed")
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        got = f"'{content_type[:64]}'" if content_type else "none"
        raise HTTPException(415, f"Content-Type must be application/json (got {got}); send "
                                 "the body as JSON with that header")
    await request.json()  # parsed here, so a refusal names why; FastAPI reuses the value
