"""``/docs``: the API reference rendered on the server from the app's own OpenAPI schema, with
no external assets (FastAPI's Swagger UI loaded its script from a CDN: blank offline)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.apidoc import route_roles

from .conftest import Keys, Server, TestClient, start_server
from .test_dashboard_browser import ARGS, CHROMIUM


class _Assets(HTMLParser):
    """Every URL the page would load or link to (src, href, url(...) in styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset") and v]


def test_docs_is_rendered_from_the_schema_without_external_assets(tmp_path: Path) -> None:
    app = create_app(ServiceConfig(home=tmp_path))
    with TestClient(app) as c:
        r = c.get("/docs")
        schema = c.get("/openapi.json").json()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    parsed = _Assets()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert all(not re.match(r"(?i)(https?:)?//", u) for u in parsed.urls), parsed.urls
    assert not re.search(r"(?i)https?://", page)  # no absolute URL at all, in CSS neither
    assert "swagger" not in page.lower()
    roles = route_roles()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            anchor = f'id="{op["operationId"]}"'
            assert anchor in page and op["summary"] in page
            section = page[page.index(anchor):].split("</section>", 1)[0]
            assert f">{method.upper()}<" in section and f"<code>{path}</code>" in section
            assert f"<b>{roles.get((method.upper(), path), 'none')}</b>" in section
            for p in op.get("parameters", []):
                assert f"<code>{p['name']}</code>" in section
            if "security" in op:
                assert "X-API-Key" in section
    for name in schema["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    create = page[page.index('id="create_portfolio_v1_portfolios_post"'):]
    assert 'href="#schema-PortfolioIn"' in create.split("</section>", 1)[0]
    assert 'href="#schema-PortfolioOut"' in create.split("</section>", 1)[0]


def test_docs_in_chromium_requests_nothing_but_the_page(
        tmp_path: Path, session_keys: tuple[Path, Keys], server_factory: list[Server]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh)")
    from playwright.sync_api import sync_playwright

    srv = start_server(tmp_path, session_keys[0])
    server_factory.append(srv)
    assert httpx.get(srv.url + "/openapi.json", timeout=30).status_code == 200
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{srv.url}/docs", wait_until="load")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "/v1/portfolios/{name}/var" in text and "PortfolioIn" in text
    assert requests[0] == f"{srv.url}/docs"  # then at most the browser's own favicon probe
    assert set(requests) <= {f"{srv.url}/docs", f"{srv.url}/favicon.ico"}, requests
