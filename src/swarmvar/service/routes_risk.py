"""Routes of portfolios and their risk: create, list, ingest, VaR/ES, agents, decisions,
rolling backtest, history (JSON or CSV), live events. Parse, call the desk, serialize."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sse_starlette import ServerSentEvent

from ..errors import BatchTooLarge, InvalidParameter, UnknownAgent
from .auth import Reader, StreamReader, Writer
from .desk import BeatPoint, Desk, PortfolioInfo
from .responses import error
from .schemas import (
    AgentOut,
    BacktestOut,
    DecisionOut,
    IngestBody,
    IngestedOut,
    IngestOut,
    LevelOut,
    LevelStatsOut,
    PointOut,
    PortfolioIn,
    PortfolioOut,
    ReturnBatch,
    ReturnIn,
    RiskOut,
)
from .streams import SlotStream
from .strict import StrictRoute

#: A route's own errors; the generic ones (401, 413, 422, ...) follow from the route
#: (:mod:`swarmvar.service.responses`).
_UNKNOWN: dict[int | str, dict[str, object]] = {404: error("Unknown portfolio")}

router = APIRouter(prefix="/v1", route_class=StrictRoute)
Name = Annotated[str, Path(min_length=1, max_length=64, description="Portfolio name")]


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _portfolio(p: PortfolioInfo) -> PortfolioOut:
    return PortfolioOut(name=p.name, agents=list(p.agents), alphas=list(p.alphas),
                        horizon=p.horizon, beats=p.beats, last_date=p.last_date.isoformat(),
                        created_by=p.created_by)


def _point(p: BeatPoint) -> PointOut:
    return PointOut(seq=p.seq, date=p.as_of.isoformat(), realized=p.realized,
                    alphas=list(p.alphas), var=list(p.var), es=list(p.es),
                    var_interval=list(p.var_interval), es_interval=list(p.es_interval),
                    breaches=list(p.breaches))


_BUSY: dict[int | str, dict[str, object]] = {503: error(
    "The server is computing another batch or fit and this write waited its limit (nothing "
    "stored): send it again after Retry-After seconds")}


@router.get("/portfolios", response_model=list[PortfolioOut], tags=["portfolios"])
def list_portfolios(request: Request, key: Reader) -> list[PortfolioOut]:
    """Every portfolio this service runs."""
    return [_portfolio(p) for p in _desk(request).portfolios()]


@router.post("/portfolios", response_model=PortfolioOut, status_code=201, tags=["portfolios"],
             responses={409: error("A portfolio of that name exists"), **_BUSY})
def create_portfolio(body: PortfolioIn, request: Request,
                     key: Writer) -> PortfolioOut:
    """Create a portfolio: its swarm is fitted on ``history``.

    ``history`` needs at least the largest ``min_observations`` of the portfolio's
    agents (``agents``, or the server's swarm), never fewer than 30; fewer is a 422 naming
    the agent that needs more. The schema's ``minItems`` is that floor; its description
    gives the server's swarm's number (a request naming ``agents`` needs theirs).
    """
    try:
        info = _desk(request).create(body.name, [h.dated() for h in body.history],
                                     key_id=key.id, request_id=request.state.request_id,
                                     agents=body.agents)
    except UnknownAgent as exc:  # a value in the body, not a missing resource: 422, not 404
        raise InvalidParameter(f"agents: {exc}") from exc
    return _portfolio(info)


@router.get("/portfolios/{name}", response_model=PortfolioOut, tags=["portfolios"],
            responses=_UNKNOWN)
def get_portfolio(name: Name, request: Request, key: Reader) -> PortfolioOut:
    """One portfolio: its agents, levels, beats and last date."""
    return _portfolio(_desk(request).info(name))


@router.post("/portfolios/{name}/returns", response_model=IngestOut, tags=["ingest"],
             responses={200: {"description": "Every return was already recorded: nothing "
                              "changed"}, 201: {"description": "Returns stored, beats run"},
                        **_UNKNOWN,
                        409: error("A recorded date with another value, or a new date not "
                                   "after the portfolio's last recorded one"),
                        413: error("More returns than the server's --max-batch (nothing "
                                   "stored): send them in several requests"), **_BUSY})
def ingest(name: Name, body: IngestBody, request: Request, response: Response,
           key: Writer) -> IngestOut:
    """Ingest one return (``{"date", "return"}``) or a batch (``{"returns": [...]}``).

    Idempotent by portfolio and date: a return already recorded with the same
    value changes nothing and is reported as a duplicate (200); new returns
    each drive one beat and are acknowledged only once in the ledger (201).

    A batch holds at most the server's ``--max-batch`` returns (default 1000; more: 413,
    nothing stored - send them oldest first in several requests), dates strictly
    increasing (else 422 naming the first pair out of order). It is stored all or
    nothing: its beats are computed, then appended in one ledger write; a client that
    disconnects meanwhile does not stop it (re-sending it later answers duplicates).
    """
    cap = request.app.state.config.max_batch
    if isinstance(body, ReturnBatch) and len(body.returns) > cap:  # before any beat runs
        raise BatchTooLarge(
            f"returns: {len(body.returns)} returns in one request; this server takes at most "
            f"{cap} a request (`swarmvar serve --max-batch`): send them oldest first in "
            f"several requests of at most {cap} (nothing of this one was stored)")
    items = [body.dated()] if isinstance(body, ReturnIn) else [r.dated() for r in body.returns]
    start = time.perf_counter()
    results = _desk(request).ingest(name, items, key_id=key.id,
                                    request_id=request.state.request_id)
    metrics = request.app.state.metrics
    dup = sum(r.duplicate for r in results)
    stored = len(results) - dup
    if stored:
        metrics.ingest_seconds.observe(time.perf_counter() - start)
        metrics.ingested.labels("new").inc(stored)
    if dup:
        metrics.ingested.labels("duplicate").inc(dup)
    response.status_code = 201 if stored else 200
    message = (f"stored {stored} return(s)" if stored else "already recorded: nothing changed") \
        + (f"; {dup} duplicate(s) left as they were" if stored and dup else "")
    return IngestOut(portfolio=name, stored=stored, duplicates=dup, message=message,
                     results=[IngestedOut(date=r.as_of.isoformat(), seq=r.seq,
                                          duplicate=r.duplicate) for r in results])


@router.get("/portfolios/{name}/var", response_model=RiskOut, tags=["risk"],
            responses=_UNKNOWN)
def current_var(name: Name, request: Request, key: Reader) -> RiskOut:
    """The current consensus VaR and ES per level, with credible intervals and weights.

    ``rejected`` names each agent whose estimate did not count and why; an agent with no
    forecast says since which beat and its own refusal (e.g. of a return it cannot take).
    With no consensus (``levels`` empty), ``detail`` says why.
    """
    view = _desk(request).risk(name)  # one sync: report, reasons and info of one beat
    r, info = view.report, view.info
    detail = "" if r.consensus else (
        f"no consensus at beat {r.seq}: {len(r.forecasts)} of the portfolio's "
        f"{len(info.agents)} agents forecast; see rejected for each agent's reason")
    return RiskOut(portfolio=name, seq=r.seq, as_of=r.as_of.date().isoformat(),
                   horizon=info.horizon, rejected=view.rejected, detail=detail,
                   levels=[LevelOut(alpha=c.alpha, var=c.var, es=c.es,
                                    var_interval=c.var_interval, es_interval=c.es_interval,
                                    method=c.method, weights=dict(c.weights),
                                    available=c.available, total=c.total, degraded=c.degraded)
                           for c in r.consensus])


@router.get("/portfolios/{name}/agents", response_model=list[AgentOut], tags=["risk"],
            responses=_UNKNOWN)
def agents(name: Name, request: Request, key: Reader) -> list[AgentOut]:
    """Each agent's own VaR/ES view at the last beat, its log score and breaches."""
    r = _desk(request).latest(name)
    return [AgentOut(agent=n, levels=[m.to_dict() for m in f.levels],
                     log_score=r.log_scores.get(n), breaches=list(r.breaches.get(n, ())))
            for n, f in r.forecasts.items()]


@router.get("/portfolios/{name}/decisions", response_model=list[DecisionOut], tags=["risk"],
            responses=_UNKNOWN)
def decisions(name: Name, request: Request, key: Reader,
              limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> list[DecisionOut]:
    """The arbiter's recent decisions about this portfolio's swarm, oldest first."""
    return [DecisionOut(seq=d.seq, action=d.action.value, agents=list(d.agents),
                        threat=d.threat, reason=d.reason, signals=dict(d.signals),
                        weights=dict(d.weights))
            for d in _desk(request).decisions(name, limit)]


@router.get("/portfolios/{name}/backtest", response_model=BacktestOut, tags=["risk"],
            responses=_UNKNOWN)
def rolling_backtest(name: Name, request: Request, key: Reader,
                     window: Annotated[int, Query(ge=2, le=5000)] = 250) -> BacktestOut:
    """Rolling coverage of the consensus VaR: breaches vs expected, Kupiec and
    Christoffersen p-values over the last ``window`` beats."""
    stats = _desk(request).backtest(name, window)
    return BacktestOut(portfolio=name, window=window,
                       levels=[LevelStatsOut(**s.__dict__) for s in stats])


@router.get("/portfolios/{name}/history", response_model=list[PointOut], tags=["risk"],
            responses={200: {"content": {"text/csv": {}}}, **_UNKNOWN})
def history(name: Name, request: Request, key: Reader,
            format: Literal["json", "csv"] = "json",
            limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
            since: Annotated[int, Query(ge=0)] = 0) -> list[PointOut] | Response:
    """Beat by beat: consensus VaR/ES with intervals per level, realized return, breaches."""
    points = [_point(p) for p in _desk(request).points(name, since, limit)]
    if format == "json":
        return points
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seq", "date", "realized", "alpha", "var", "es", "var_lo", "var_hi", "es_lo",
                "es_hi", "breach"])
    for p in points:
        for k, a in enumerate(p.alphas):
            w.writerow([p.seq, p.date, "" if p.realized is None else repr(p.realized), a,
                        repr(p.var[k]), repr(p.es[k]), repr(p.var_interval[k][0]),
                        repr(p.var_interval[k][1]), repr(p.es_interval[k][0]),
                        repr(p.es_interval[k][1]),
                        "" if k >= len(p.breaches) else int(p.breaches[k])])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


#: Seconds between the ``ping`` events of an event stream (a module constant: tests shorten it).
PING_SECONDS = 10.0


def _ping() -> ServerSentEvent:
    """An event stream's ``ping``: a named event (a client sees it, unlike a comment), its
    data the server's UTC time."""
    return ServerSentEvent(event="ping", data=datetime.now(UTC).isoformat(timespec="seconds"))


@router.get("/portfolios/{name}/events", tags=["risk"],
            responses={200: {"content": {"text/event-stream": {}}}, **_UNKNOWN,
                       503: error("The process serves its --max-streams event streams: "
                                  "reconnect after Retry-After seconds")})
async def events(name: Name, request: Request, key: StreamReader,
                 since: Annotated[int, Query(ge=0)] = 0,
                 last_event_id: Annotated[str | None, Header(
                     description="Sent by a reconnecting EventSource: the stream resumes "
                                 "after this beat")] = None) -> SlotStream:
    """Server-sent events: one ``beat`` event per beat after ``since`` (any process's:
    the stream follows the shared ledger), and a ``ping`` event every 10 s (its data the
    server's UTC time), beats or not: a client that hears nothing for a few pings can tell
    a dead connection from a quiet portfolio and reconnect. A reconnecting client's
    ``Last-Event-ID`` (a beat's id) resumes after that beat instead. A process serves at
    most ``--max-streams`` streams at once (default 64); one more is a 503 with
    ``Retry-After``; a closed stream frees its slot."""
    desk = _desk(request)
    if last_event_id:  # empty: no event seen yet (the spec's reset), as if absent
        if not (last_event_id.isascii() and last_event_id.isdigit()) or len(last_event_id) > 18:
            raise InvalidParameter(f"Last-Event-ID {last_event_id[:32]!r} is not a beat id "
                                   "(a non-negative integer); reconnect without it or with "
                                   "the id of the last event received")
        since = max(since, int(last_event_id))
    await run_in_threadpool(desk.info, name)  # 404 before the stream starts
    slot = request.app.state.streams.take()  # 503 when the process serves its cap

    async def stream() -> AsyncIterator[dict[str, str]]:
        last = since
        while not await request.is_disconnected():
            await run_in_threadpool(desk.sync)
            for p in await run_in_threadpool(desk.points, name, last + 1):
                last = max(last, p.seq)
                yield {"event": "beat", "id": str(p.seq),
                       "data": json.dumps(_point(p).model_dump())}
            await asyncio.sleep(0.2)

    try:
        return SlotStream(slot, stream(), ping=PING_SECONDS, ping_message_factory=_ping)
    except BaseException:
        slot.release()
        raise
