"""The live dashboard: one HTML page and its assets, shipped inside the package.

No CDN and no build step: the page, its script and stylesheet are files in
``swarmvar/service/static`` read with :mod:`importlib.resources`, so the
dashboard works offline. It reads the API with the key the user gives it
and follows ``/v1/portfolios/{name}/events`` (server-sent events).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

router = APIRouter(tags=["dashboard"])
_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def asset(name: str) -> bytes:
    """A file of the dashboard, from the installed package."""
    return resources.files("swarmvar.service").joinpath("static", name).read_bytes()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    """The live dashboard page (it asks for an API key; nothing is served to it without one)."""
    return HTMLResponse(asset("dashboard.html"), headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/assets/{name}", include_in_schema=False)
def dashboard_asset(name: str) -> Response:
    if name not in _TYPES:
        raise HTTPException(404, f"no dashboard asset {name[:64]!r}; the dashboard's are "
                                 f"{', '.join(sorted(_TYPES))}")
    return Response(asset(name), media_type=_TYPES[name],
                    headers={"Cache-Control": "no-cache"})
