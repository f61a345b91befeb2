"""docs/api.md, generated from the app's OpenAPI schema (a test keeps the page in step).

Run ``python -m swarmvar.service.apidoc > docs/api.md`` after changing a route.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def route_roles() -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the least role its auth dependency admits ("none" if public)."""
    from . import dashboard, routes_ledger, routes_risk

    out = {}
    for r in [*routes_risk.router.routes, *routes_ledger.router.routes,
              *dashboard.router.routes]:
        if not isinstance(r, APIRoute):
            continue
        roles = [getattr(d.call, "role", None) for d in r.dependant.dependencies]
        role = next((x.value for x in roles if x is not None), "none")
        for m in r.methods or ():
            out[(m, r.path)] = role
    return out


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        return "`" + str(schema["$ref"]).rsplit("/", 1)[-1] + "`"
    if "anyOf" in schema:
        return " or ".join(_type(s, defs) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return "array of " + _type(schema.get("items", {}), defs)
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return str(schema.get("type", "any"))


def _constraints(s: dict[str, Any]) -> str:
    keys = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern",
            "minItems", "maxItems", "default")
    return ", ".join(f"{k} {json.dumps(s[k])}" for k in keys if k in s)


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
             "\"request_id\"}}` - 401 without a valid key, 403 when the key's role is too low, "
             "404 unknown portfolio/variant, 409 conflicts with what is recorded, 413 body too "
             "large, 422 invalid input, 429 rate limit.", "",
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
                             f"{'yes' if p.get('required') else 'no'} | {_constraints(s)} |")
            lines.append("")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            lines += [f"Request body: {_type(body['schema'], defs)}.", ""]
        codes = ", ".join(f"{c} {r.get('description', '')}".strip()
                          for c, r in op.get("responses", {}).items())
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
                extra = _constraints(fs)
                lines.append(f"| `{f}` | {_type(fs, defs)} | {'yes' if f in req else 'no'} | "
                             f"{'; '.join(x for x in (note, extra) if x)} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    from .app import create_app

    print(render(create_app()), end="")


if __name__ == "__main__":
    main()
