"""The limits on a real ``swarmvar serve`` (one uvicorn for the module): the per-process
cap on event streams (503 + Retry-After past it; a closed stream frees its slot) and the
per-request batch cap (413, nothing stored), both set by their ``serve`` flags. And the
stream's ``ping`` events (named events a browser's EventSource sees, not comments), on the
real app served by uvicorn in this process with a shorter ping interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from _uvicorn_thread import uvicorn_thread  # tests/_uvicorn_thread.py (on the path)

from .conftest import Keys, Server, day, history, start_server

STREAMS = 2
BATCH = 3


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           session_keys: tuple[Path, Keys]) -> Iterator[tuple[Server, Keys]]:
    path, keys = session_keys
    server = start_server(tmp_path_factory.mktemp("streams"), path, "--max-streams",
                          str(STREAMS), "--max-batch", str(BATCH), "--no-arbiter")
    try:
        r = httpx.post(server.url + "/v1/portfolios", headers={"X-API-Key": keys.writer},
                       json={"name": "book", "history": history(60)}, timeout=60)
        assert r.status_code == 201, r.text
        yield server, keys
    finally:
        server.stop()


def test_the_stream_cap(served: tuple[Server, Keys]) -> None:
    server, keys = served
    url = f"{server.url}/v1/portfolios/book/events"
    h = {"X-API-Key": keys.reader}
    with httpx.Client(timeout=10) as client, ExitStack() as stack:
        opened = []
        for _ in range(STREAMS):
            r = stack.enter_context(client.stream("GET", url, headers=h))
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream")
            opened.append(r)
        refused = client.get(url, headers=h)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        err = refused.json()["error"]
        assert err["type"] == "TooManyStreams"
        assert f"{STREAMS} event streams" in err["message"] and "--max-streams" in err["message"]
        # an unknown portfolio is still a 404 (checked before a slot is taken)
        assert client.get(f"{server.url}/v1/portfolios/ghost/events",
                          headers=h).status_code == 404
        opened[0].close()  # frees its slot once the server sees the client gone
        deadline = time.monotonic() + 15
        admitted = None
        while time.monotonic() < deadline:
            r = stack.enter_context(client.stream("GET", url, headers=h))
            if r.status_code == 200:
                admitted = r
                break
            r.read()
            r.close()
            time.sleep(0.2)
        assert admitted is not None, "a closed stream's slot was never freed"
    # every stream closed above: the next ones are admitted again, up to the cap
    with httpx.Client(timeout=10) as client, ExitStack() as stack:
        deadline = time.monotonic() + 15
        codes: list[int] = []
        while time.monotonic() < deadline:
            codes = []
            for _ in range(STREAMS):
                r = stack.enter_context(client.stream("GET", url, headers=h))
                codes.append(r.status_code)
            if codes == [200] * STREAMS:
                break
            stack.close()
            time.sleep(0.2)
        assert codes == [200] * STREAMS


def test_the_batch_cap(served: tuple[Server, Keys]) -> None:
    server, keys = served
    h = {"X-API-Key": keys.writer}
    head = httpx.get(server.url + "/v1/ledger/head", headers=h, timeout=10).json()["size"]
    many = {"returns": [{"date": day(i), "return": 0.001} for i in range(BATCH + 1)]}
    r = httpx.post(server.url + "/v1/portfolios/book/returns", json=many, headers=h,
                   timeout=30)
    assert r.status_code == 413 and r.json()["error"]["type"] == "BatchTooLarge", r.text
    assert f"at most {BATCH}" in r.json()["error"]["message"]
    assert httpx.get(server.url + "/v1/ledger/head", headers=h,
                     timeout=10).json()["size"] == head
    r = httpx.post(server.url + "/v1/portfolios/book/returns", headers=h, timeout=30,
                   json={"returns": many["returns"][:BATCH]})
    assert r.status_code == 201 and r.json()["stored"] == BATCH, r.text
    schema = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert schema["components"]["schemas"]["ReturnBatch"]["properties"]["returns"][
        "maxItems"] == BATCH


def sse_events(lines: Iterator[str], n: int) -> list[dict[str, str]]:
    """The next ``n`` events of a server-sent event stream, as its fields (a comment is
    none: an EventSource does not see it)."""
    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if fields:
                events.append(fields)
                fields = {}
                if len(events) == n:
                    break
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def test_the_stream_sends_ping_events(tmp_path: Path, session_keys: tuple[Path, Keys],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.service import ServiceConfig, create_app, routes_risk

    monkeypatch.setattr(routes_risk, "PING_SECONDS", 0.3)
    path, keys = session_keys
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=path, arbiter=False))
    with uvicorn_thread(app, "the service", timeout_graceful_shutdown=5) as url:
        r = httpx.post(url + "/v1/portfolios", headers={"X-API-Key": keys.writer},
                       json={"name": "book", "history": history(60), "agents": ["nig"]},
                       timeout=60)  # one quick agent: the stream is what is tested
        assert r.status_code == 201, r.text
        events = f"{url}/v1/portfolios/book/events?since=1000000"  # no beat: pings only
        start = time.monotonic()
        with httpx.stream("GET", events, headers={"X-API-Key": keys.reader},
                          timeout=5) as stream:
            assert stream.status_code == 200
            got = sse_events(stream.iter_lines(), 3)
        took = time.monotonic() - start
    assert [e.get("event") for e in got] == ["ping"] * 3, got
    for e in got:  # the server's UTC time
        assert datetime.fromisoformat(e["data"]).utcoffset() is not None, e
    assert took < 3, took  # every 0.3 s here (10 s as served)
