"""``/metrics`` as a risk team reads it: one beat-duration sample per beat, the credible
intervals, no 1970 verification time, and no event stream in the latency quantiles."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from swarmvar.service.metrics import Metrics
from swarmvar.service.middleware import RequestContext

from .conftest import Keys, TestClient, app_with_book, day


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of ``name{labels}`` in a scrape (labels in any order), None if absent."""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return None


def _ingest(c: TestClient, keys: Keys, days: list[int]) -> None:
    body: Any = ({"date": day(days[0]), "return": -0.01} if len(days) == 1 else
                 {"returns": [{"date": day(i), "return": 0.002 * (i % 3 - 1)} for i in days]})
    r = c.post("/v1/portfolios/book/returns", json=body, headers={"X-API-Key": keys.writer})
    assert r.status_code == 201, r.text


def test_beat_duration_has_one_sample_per_beat(tmp_path: Path,
                                               session_keys: tuple[Path, Keys]) -> None:
    path, keys = session_keys
    with app_with_book(tmp_path, path, keys.writer) as c:
        _ingest(c, keys, [0])
        _ingest(c, keys, [1])
        _ingest(c, keys, list(range(2, 7)))  # a batch of 5: five beats, one request
        text = c.get("/metrics").text
    assert _sample(text, "swarmvar_beats_total", portfolio="book") == 7
    assert _sample(text, "swarmvar_beat_duration_seconds_count") == 7
    assert _sample(text, "swarmvar_ingest_duration_seconds_count") == 3
    assert _sample(text, "swarmvar_beat_duration_seconds_sum") > 0  # type: ignore[operator]


def test_credible_intervals_are_exported(tmp_path: Path,
                                         session_keys: tuple[Path, Keys]) -> None:
    path, keys = session_keys
    with app_with_book(tmp_path, path, keys.writer) as c:
        _ingest(c, keys, [0])
        text = c.get("/metrics").text
        risk = c.get("/v1/portfolios/book/var", headers={"X-API-Key": keys.reader}).json()
    assert risk["levels"]
    for lv in risk["levels"]:
        level = f"{lv['alpha']:g}"
        for metric, point, interval in (("var", lv["var"], lv["var_interval"]),
                                        ("es", lv["es"], lv["es_interval"])):
            low = _sample(text, f"swarmvar_{metric}_interval", portfolio="book", level=level,
                          bound="lower")
            high = _sample(text, f"swarmvar_{metric}_interval", portfolio="book", level=level,
                           bound="upper")
            assert (low, high) == (interval[0], interval[1]), (metric, level)
            assert _sample(text, f"swarmvar_{metric}", portfolio="book", level=level) == point
            assert low is not None and high is not None and low <= point <= high


def test_verification_time_absent_until_a_verification(tmp_path: Path,
                                                       session_keys: tuple[Path, Keys]) -> None:
    path, keys = session_keys
    name = "swarmvar_ledger_last_verification_timestamp_seconds"
    with app_with_book(tmp_path, path, keys.writer) as c:
        assert name not in c.get("/metrics").text  # no 0.0 reading as 1970
        r = c.post("/v1/ledger/verify", headers={"X-API-Key": keys.reader})
        assert r.status_code == 200 and r.json()["ok"], r.text
        after = _sample(c.get("/metrics").text, name)
    assert after is not None and after > 1.7e9


def _served(media_type: bytes) -> str:
    """A scrape after one request to a bare app answering with ``media_type``."""
    metrics = Metrics()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", media_type)]})
        await send({"type": "http.response.body", "body": b"data: x\n\n"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "state": {}}
    asyncio.run(RequestContext(app, metrics=metrics, max_body=100)(scope, receive, send))
    return metrics.exposition().decode()


def test_event_streams_stay_out_of_the_latency_histogram() -> None:
    count = "swarmvar_http_request_duration_seconds_count"
    stream = _served(b"text/event-stream; charset=utf-8")
    assert _sample(stream, count, method="GET", route="<unmatched>") is None
    assert _sample(stream, "swarmvar_http_requests_total", method="GET", route="<unmatched>",
                   status="200") == 1
    plain = _served(b"application/json")
    assert _sample(plain, count, method="GET", route="<unmatched>") == 1
