"""The live dashboard: one HTML page and its assets, shipped inside the package.

No CDN and no build step: the page, its script and stylesheet are files in
``swarmvar/service/static`` read with :mod:`importlib.resources`, so the
dashboard works offline. It reads the API with the key the user gives it
and follows ``/v1/portfolios/{name}/events`` (server-sent events). The page
names the posterior mass of the credible bands it draws: the server fills it in
(:func:`interval_mass`), as the API's answers do not carry it; and the interval of the
event streams' ``ping`` events (:data:`.routes_risk.PING_SECONDS`), by which the page
tells a silent stream from a quiet portfolio.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from ..swarm.consensus import SWARM_POLICY
from . import routes_risk
from .desk_book import policy_for

router = APIRouter(tags=["dashboard"])
_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def asset(name: str) -> bytes:
    """A file of the dashboard, from the installed package."""
    return resources.files("swarmvar.service").joinpath("static", name).read_bytes()


def interval_mass() -> float | None:
    """The posterior mass of the consensus credible intervals the service serves.

    Returns
    -------
    float or None
        The mass (0.90 for 90% intervals), or None when the service's portfolios do not all
        share one (the page then says "credible band" with no number).
    """
    # a portfolio's policy is the swarm's, or an equal mean below its robust rule's minimum
    # swarm size (:func:`.desk_book.policy_for`): one agent gets the latter
    masses = {policy_for(1).interval_mass, SWARM_POLICY.interval_mass}
    return masses.pop() if len(masses) == 1 else None


def page() -> bytes:
    """The dashboard's HTML with the credible intervals' mass and the event streams' ping
    interval (in ms, as the page's script reads it) filled in."""
    mass = interval_mass()
    ping_ms = round(1000 * routes_risk.PING_SECONDS)  # read now: a test may shorten it
    return asset("dashboard.html").replace(
        b"{{interval_mass}}", b"" if mass is None else repr(float(mass)).encode()).replace(
        b"{{ping_ms}}", str(ping_ms).encode())


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    """The live dashboard page (it asks for an API key; nothing is served to it without one).

    Its status line says "live" only while the page's event stream is open and delivering
    (open for 1 s, or a beat came, and something - a beat or the server's 10 s `ping` event
    - within the last 30 s); else what the page is in: "not live: reconnecting since
    HH:MM:SS (last beat N received HH:MM:SS)" after a drop, "not live: the event stream went
    silent (nothing for 30 s); ..." (the page reopens it), the stream refused and why (a 503
    past `--max-streams` or a 429 is tried again after Retry-After, a 401 or 404 waits for
    the user), or "not connected" with the server unreachable or its error (a 5xx such as a
    503 from storage is tried again; no portfolio, a 4xx or an error of the script itself
    waits for the user). A details read that fails says so after the state and is tried
    again (one try again pending at a time)."""
    return HTMLResponse(page(), headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/assets/{name}", include_in_schema=False)
def dashboard_asset(name: str) -> Response:
    if name not in _TYPES:
        raise HTTPException(404, f"no dashboard asset {name[:64]!r}; the dashboard's are "
                                 f"{', '.join(sorted(_TYPES))}")
    return Response(asset(name), media_type=_TYPES[name],
                    headers={"Cache-Control": "no-cache"})
