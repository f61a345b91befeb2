"""docs/api.md, generated from the app's OpenAPI schema (a test keeps the page in step).

Run ``python -m swarmvar.service.apidoc > docs/api.md`` after changing a route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def route_roles() -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the least role its auth dependency admits ("none" if public)."""
    from . import dashboard, routes_ledger, routes_risk
    from .strict import auth_of  # the role the strict route class admits the key for

    out = {}
    for r in [*routes_risk.router.routes, *routes_ledger.router.routes,
              *dashboard.router.routes]:
        if not isinstance(r, APIRoute):
            continue
        guard = auth_of(r.dependant)
        role = guard[0].value if guard is not None else "none"
        for m in r.methods or ():
            out[(m, r.path)] = role
    return out


def type_words(schema: dict[str, Any], *, ref: Callable[[str], str],
               enum: Callable[[Any], str], plain: Callable[[str], str], bar: str) -> str:
    """A schema's type in words (``array of X``, ``A or B``), the page's markup given by
    ``ref`` (a named schema), ``enum`` (one allowed value), ``plain`` (a JSON type) and
    ``bar`` (between allowed values); shared by this page and the ``/docs`` page."""
    def words(s: dict[str, Any]) -> str:
        if "$ref" in s:
            return ref(str(s["$ref"]).rsplit("/", 1)[-1])
        for union in ("anyOf", "oneOf"):
            if union in s:
                return " or ".join(words(x) for x in s[union])
        if s.get("type") == "array":
            return "array of " + words(s.get("items", {}))
        if "enum" in s:
            return bar.join(enum(v) for v in s["enum"])
        return plain(str(s.get("type", "any")))
    return words(schema)


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    return type_words(schema, ref=lambda name: f"`{name}`", enum=lambda v: f"`{v}`",
                      plain=str, bar=" \\| ")


#: The schema keywords a field's constraints are read from, in the order they are shown.
CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern",
               "minItems", "maxItems", "default")


def constraints(s: dict[str, Any]) -> str:
    """A field's constraints as plain text (``minItems 50, maxItems 10000``)."""
    return ", ".join(f"{k} {json.dumps(s[k])}" for k in CONSTRAINTS if k in s)



def render(app: FastAPI) -> str:
    """The API reference page as Markdown."""
    schema = app.openapi()
    defs = schema.get("components", {}).get("schemas", {})
    roles = route_roles()
    lines = [f"# HTTP API reference (v{schema['info']['version']})", "",
             "Generated from the OpenAPI schema by `python -m swarmvar.service.apidoc` "
             "(a test fails when this page and the code differ). The live schema is served "
             "at `/openapi.json`, this reference as a web page (rendered by the server, no "
             "external assets) at `/docs`.", "",
             schema["info"].get("description", ""), "",
             "Errors are JSON: `{\"error\": {\"type\", \"status\", \"message\", "
             "\"request_id\"}}` - 401 without a valid key, 403 when the key's role is too low "
             "(routes above reader), 404 unknown portfolio/variant, 409 conflicts with what is "
             "recorded (a return dated not after the portfolio's last, another value for a "
             "recorded date, an existing name), 413 body over `--max-body` bytes or an ingest "
             "batch over `--max-batch` returns, 415 a body whose Content-Type is not JSON "
             "(routes taking a body), 422 invalid input (dates out of order inside one request "
             "included, naming the first pair), 429 rate limit, 500 a damaged or missing store "
             "(LedgerCorrupted, LedgerMissing, CorruptStore, VariantStoreMissing), 503 the "
             "server cannot check API keys now, a read that met a lock on the ledger or the "
             "variant store or no file descriptor left (LedgerUnavailable, VariantStoreLocked, "
             "VariantStoreUnavailable), a read or a write that met the ledger's or the variant "
             "store's disk full, read-only or an I/O error, nothing written and the store not "
             "damaged (LedgerUnwritable, VariantStoreUnwritable, the cause and the store "
             "named), the ledger's or the variant store's PostgreSQL server out of reach "
             "(LedgerUnreachable, VariantStoreUnreachable), any other PostgreSQL error that "
             "is not damage (LedgerFailed, VariantStoreFailed), an event stream past "
             "`--max-streams`, or a write that waited its limit "
             "for the server's batch or fit in progress, nothing stored (429 and 503 with "
             "`Retry-After`). Each operation below lists the statuses it can answer.", "",
             "Order of answers: a body over `--max-body` (by its Content-Length) is refused "
             "413 before anything is read; then, on a route needing a key, the key is checked "
             "(401/403/429/503) before the query and the body, so a client without a valid key "
             "is told 401 whatever it sent; then the query and the body (415/422); then the "
             "route's own checks (404, 409, 413 batch cap).", "",
             "Requests are strict: a JSON object naming a field twice, a number that is not "
             "finite (`NaN`, `Infinity`, `1e999`), a body that is not UTF-8 or nested too "
             "deeply, and a query parameter the route does not take (or given twice) are each "
             "a 422 naming it.", "",
             "Known limit: a request head (request line and headers) that uvicorn's HTTP parser "
             "(h11) refuses - over 16 KiB while still arriving, e.g. a 150 KB header - gets "
             "uvicorn's own plain-text `400 Invalid HTTP request received.` and the connection "
             "closed, not a JSON error: it is refused before the application sees the request "
             "(no request id, no access-log line).", "",
             "| method | path | least role | summary |", "| --- | --- | --- | --- |"]
    ops = [(path, m.upper(), op) for path, item in schema["paths"].items()
           for m, op in item.items()]
    for path, method, op in ops:
        lines.append(f"| {method} | `{path}` | {roles.get((method, path), 'none')} | "
                     f"{op.get('summary', '')} |")
    for path, method, op in ops:
        lines += ["", f"## {method} `{path}`", "",
                  f"Role: **{roles.get((method, path), 'none')}**. "
                  + " ".join(op.get("description", op.get("summary", "")).split()), ""]
        params = op.get("parameters", [])
        if params:
            lines += ["| parameter | in | type | required | constraints |",
                      "| --- | --- | --- | --- | --- |"]
            for p in params:
                s = p.get("schema", {})
                lines.append(f"| `{p['name']}` | {p['in']} | {_type(s, defs)} | "
                             f"{'yes' if p.get('required') else 'no'} | {constraints(s)} |")
            lines.append("")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            lines += [f"Request body: {_type(body['schema'], defs)}.", ""]
        codes = ", ".join(f"{c} {r.get('description', '')}".strip()
                          for c, r in sorted(op.get("responses", {}).items()))
        lines += [f"Responses: {codes}.", ""]
    lines += ["", "## Schemas", ""]
    for name, s in sorted(defs.items()):
        lines += [f"### `{name}`", ""]
        if s.get("description"):
            lines += [" ".join(s["description"].split()), ""]
        props = s.get("properties", {})
        if props:
            lines += ["| field | type | required | notes |", "| --- | --- | --- | --- |"]
            req = set(s.get("required", []))
            for f, fs in props.items():
                note = " ".join(fs.get("description", "").split())
                extra = constraints(fs)
                lines.append(f"| `{f}` | {_type(fs, defs)} | {'yes' if f in req else 'no'} | "
                             f"{'; '.join(x for x in (note, extra) if x)} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    from .app import create_app

    print(render(create_app()), end="")


if __name__ == "__main__":
    main()
