"""The ``/docs`` page: the API reference rendered on the server from the app's OpenAPI schema.

FastAPI's default ``/docs`` loads Swagger UI's script and stylesheet from a
CDN, so it is blank offline, and the service downloads nothing at run time.
This page is plain HTML with an inline stylesheet and no script: every
route's method, path, least role, summary and description, its parameters
(with constraints), request and response schema names and the accepted
credentials, then every schema's fields. The machine-readable schema stays
at ``/openapi.json``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .apidoc import constraints, type_words

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1d2327}
code{font:13px ui-monospace,monospace;background:#f2f4f5;padding:0 .2em;border-radius:3px}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #d0d5d8;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f5}
.m{font-weight:700;display:inline-block;min-width:4.5em}
.GET{color:#0a6b3a}.POST{color:#8a4b00}.PUT,.PATCH{color:#5a3a8a}.DELETE{color:#a11}
section.op{border-top:1px solid #d0d5d8;padding-top:.5rem}
"""

def _ref(name: str) -> str:
    return f'<a href="#schema-{escape(name)}"><code>{escape(name)}</code></a>'


def _type(schema: dict[str, Any]) -> str:
    """A schema's type as HTML; a ``$ref`` links to the schema's section."""
    return type_words(schema, ref=_ref, enum=lambda v: f"<code>{escape(json.dumps(v))}</code>",
                      plain=escape, bar=" | ")


def _constraints(schema: dict[str, Any]) -> str:
    return escape(constraints(schema))


def _text(text: str) -> str:
    """Docstring prose as HTML: paragraphs kept, ``code`` and `code` as <code>."""
    paras = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    out = []
    for p in paras:
        p = escape(p)
        for tick in ("``", "`"):
            parts = p.split(tick)
            if len(parts) % 2 == 1:  # balanced
                p = "".join(f"<code>{x}</code>" if i % 2 else x for i, x in enumerate(parts))
        out.append(f"<p>{p}</p>")
    return "".join(out)


def _security(op: dict[str, Any], schemes: dict[str, Any]) -> str:
    ways = []
    for requirement in op.get("security", []):
        for name in requirement:
            s = schemes.get(name, {})
            if s.get("type") == "apiKey":
                ways.append(f"<code>{escape(str(s.get('name')))}</code> "
                            f"{escape(str(s.get('in')))}")
            elif s.get("type") == "http":
                ways.append(f"<code>Authorization: {escape(str(s.get('scheme')).title())}"
                            "</code> header")
            else:
                ways.append(escape(name))
    return ", ".join(ways) if ways else "none (public)"


def _operation(path: str, method: str, op: dict[str, Any], role: str,
               schemes: dict[str, Any]) -> list[str]:
    anchor = escape(op.get("operationId", f"{method}-{path}"))
    out = [f'<section class="op" id="{anchor}">',
           f'<h3><span class="m {method}">{method}</span> <code>{escape(path)}</code> — '
           f'{escape(op.get("summary", ""))}</h3>',
           f"<p>Least role: <b>{escape(role)}</b>. Credentials: "
           f"{_security(op, schemes)}.</p>",
           _text(op.get("description", ""))]
    params = op.get("parameters", [])
    if params:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>"
                   "<th>constraints</th><th>notes</th></tr>")
        for p in params:
            s = p.get("schema", {})
            out.append(f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}"
                       f"</td><td>{_type(s)}</td><td>{'yes' if p.get('required') else 'no'}"
                       f"</td><td>{_constraints(s)}</td>"
                       f"<td>{escape(p.get('description', ''))}</td></tr>")
        out.append("</table>")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out.append(f"<p>Request body ({escape(media)}): {_type(content.get('schema', {}))}"
                   "</p>")
    out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
    for code, r in op.get("responses", {}).items():
        bodies = [f"{escape(media)}: {_type(c.get('schema', {}))}"
                  for media, c in r.get("content", {}).items()]
        out.append(f"<tr><td>{escape(str(code))}</td><td>{escape(r.get('description', ''))}"
                   f"</td><td>{'<br>'.join(bodies)}</td></tr>")
    out += ["</table>", "</section>"]
    return out


def _schema(name: str, s: dict[str, Any]) -> list[str]:
    out = [f'<section id="schema-{escape(name)}"><h3><code>{escape(name)}</code></h3>',
           _text(s.get("description", ""))]
    props = s.get("properties", {})
    if props:
        req = set(s.get("required", []))
        out.append("<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th>"
                   "<th>constraints</th></tr>")
        for f, fs in props.items():
            out.append(f"<tr><td><code>{escape(f)}</code></td><td>{_type(fs)}</td>"
                       f"<td>{'yes' if f in req else 'no'}</td>"
                       f"<td>{_text(fs.get('description', ''))}</td>"
                       f"<td>{_constraints(fs)}</td></tr>")
        out.append("</table>")
    out.append("</section>")
    return out


def render_html(schema: dict[str, Any], roles: dict[tuple[str, str], str]) -> str:
    """The reference page of an OpenAPI ``schema`` as one self-contained HTML document.

    Parameters
    ----------
    schema : dict
        The app's OpenAPI schema (``app.openapi()``).
    roles : dict of (METHOD, path) to str
        The least role each route admits (see :func:`.apidoc.route_roles`).
    """
    info = schema.get("info", {})
    title = f"{info.get('title', 'API')} v{info.get('version', '')} — HTTP API"
    schemes = schema.get("components", {}).get("securitySchemes", {})
    defs = schema.get("components", {}).get("schemas", {})
    ops = [(path, m.upper(), op) for path, item in schema.get("paths", {}).items()
           for m, op in item.items()]
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title>",
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<style>{_CSS}</style></head><body>", f"<h1>{escape(title)}</h1>",
             _text(info.get("description", "")),
             '<p>The machine-readable schema: <a href="/openapi.json"><code>/openapi.json'
             "</code></a>.</p>", "<h2>Credentials</h2><ul>"]
    for name, s in schemes.items():
        lines.append(f"<li><code>{escape(name)}</code>: {_text(s.get('description', ''))}"
                     "</li>")
    lines += ["</ul>", "<h2>Routes</h2>",
              "<table><tr><th>method</th><th>path</th><th>least role</th><th>summary</th></tr>"]
    for path, method, op in ops:
        anchor = escape(op.get("operationId", f"{method}-{path}"))
        lines.append(f'<tr><td class="m {method}">{method}</td><td><a href="#{anchor}"><code>'
                     f"{escape(path)}</code></a></td>"
                     f"<td>{escape(roles.get((method, path), 'none'))}</td>"
                     f"<td>{escape(op.get('summary', ''))}</td></tr>")
    lines.append("</table>")
    for path, method, op in ops:
        lines += _operation(path, method, op, roles.get((method, path), "none"), schemes)
    lines.append("<h2>Schemas</h2>")
    for name, s in sorted(defs.items()):
        lines += _schema(name, s)
    lines.append("</body></html>")
    return "\n".join(x for x in lines if x) + "\n"


__all__ = ["render_html"]
