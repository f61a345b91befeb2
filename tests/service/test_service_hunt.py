"""A hostile client against a real ``swarmvar serve``: what escaped earlier hardening.

Each case was found by probing a live server; each failed before the fix (a body naming a
field twice was stored with the last value; a non-JSON Content-Type got "Input should be a
valid dictionary"; deep nesting, overlong integers and non-UTF-8 bodies got "There was an
error parsing the body"; unknown and repeated query parameters were ignored; the event
stream ignored ``Last-Event-ID``; a negative entry index was echoed shifted; a 10 000
character variant id was echoed whole). Every refusal leaves the ledger as it was and
verifiable, and the server logs no traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, Server, TestClient, day, history, make_keys, start_server

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory,
         session_keys: tuple[Path, Keys]) -> Iterator[tuple[httpx.Client, Keys, Server]]:
    path, keys = session_keys
    srv = start_server(tmp_path_factory.mktemp("hunt"), path)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            r = c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                       headers={"X-API-Key": keys.writer})
            assert r.status_code == 201, r.text
            for i in range(2):
                r = c.post("/v1/portfolios/book/returns", json={"date": day(i), "return": 0.01},
                           headers={"X-API-Key": keys.writer})
                assert r.status_code == 201, r.text
            yield c, keys, srv
    finally:
        srv.stop(kill=True)
    log = srv.log.read_text()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]


def _ledger(c: httpx.Client, k: Keys) -> tuple[int, str]:
    v = c.post("/v1/ledger/verify", headers={"X-API-Key": k.reader}).json()
    assert v["ok"], v
    return v["size"], v["root"]


def _refused(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["status"] == status and "Traceback" not in r.text
    for w in words:
        assert w in err["message"], err
    return err


def test_a_field_given_twice_is_refused_not_last_wins(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    h = {"X-API-Key": k.writer, **JSON}
    d50, d51 = json.dumps(day(50)), json.dumps(day(51))
    bodies = ['{"date": ' + d50 + ', "return": 0.001, "date": ' + d51 + '}',
              '{"returns": [{"date": ' + d50 + ', "return": 0.001, "return": 0.5}]}',
              '{"returns": [], "returns": [{"date": ' + d50 + ', "return": 0.001}]}']
    for body in bodies:
        err = _refused(c.post("/v1/portfolios/book/returns", content=body, headers=h), 422,
                       "given 2 times")
        assert err["type"] == "InvalidRequest"
    body = json.dumps({"name": "twice", "history": history(60)})[:-1] + ', "name": "other"}'
    _refused(c.post("/v1/portfolios", content=body, headers=h), 422, "'name'")
    assert _ledger(c, k) == before
    names = [p["name"] for p in c.get("/v1/portfolios", headers=h).json()]
    assert "twice" not in names and "other" not in names


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "", "text/json"])
def test_a_body_that_is_not_json_by_content_type_is_415(
        live: tuple[httpx.Client, Keys, Server], content_type: str) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    h = {"X-API-Key": k.writer}
    if content_type:
        h["Content-Type"] = content_type
    body = json.dumps({"date": day(60), "return": 0.001}).encode()
    for path in ("/v1/portfolios/book/returns", "/v1/portfolios"):
        err = _refused(c.post(path, content=body, headers=h), 415, "Content-Type",
                       "application/json")
        assert err["type"] == "UnsupportedMediaType"
    assert _ledger(c, k) == before
    # JSON with a charset or a +json subtype is JSON
    ok = c.post("/v1/portfolios/book/returns", content=json.dumps(
        {"date": day(1), "return": 0.01}), headers={**h, "Content-Type":
                                                    "application/merge-patch+json; charset=utf-8"})
    assert ok.status_code == 200 and ok.json()["duplicates"] == 1, ok.text


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 100_000 + b"]" * 100_000, ("nested too deeply",)),
    (b'{"date": "2024-03-01", "return": 1' + b"0" * 5000 + b"}", ("number",)),
    ('{"date": "2024-03-01", "return": 0.001}'.encode("utf-16"), ("not UTF-8",)),
    (b'{"date": "2024-03-01", "return": 0.001', ("not valid JSON", "line 1")),
], ids=["deep", "long-int", "utf-16", "truncated"])
def test_an_unreadable_body_names_why(live: tuple[httpx.Client, Keys, Server], body: bytes,
                                      words: tuple[str, ...]) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    for path in ("/v1/portfolios/book/returns", "/v1/portfolios"):
        err = _refused(c.post(path, content=body, headers={"X-API-Key": k.writer, **JSON}),
                       422, *words)
        assert err["message"].startswith("invalid request: body: ")
    assert _ledger(c, k) == before


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "Infinity", "1e999"])
def test_a_number_that_is_not_finite_names_its_field(
        live: tuple[httpx.Client, Keys, Server], number: str) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    h = {"X-API-Key": k.writer, **JSON}
    one = '{"date": "2024-03-01", "return": ' + number + '}'
    err = _refused(c.post("/v1/portfolios/book/returns", content=one, headers=h), 422)
    assert err["message"] == "invalid request: return: Input should be a finite number", err
    batch = '{"returns": [{"date": "2024-03-01", "return": 0.0}, ' + one + ']}'
    err = _refused(c.post("/v1/portfolios/book/returns", content=batch, headers=h), 422)
    assert err["message"] == ("invalid request: returns.1.return: Input should be a finite "
                              "number"), err
    err = _refused(c.post("/v1/portfolios", content=_first_return(number), headers=h), 422,
                   "history.0.return", "finite")
    assert _ledger(c, k) == before


def _first_return(number: str) -> str:
    """A new portfolio's body whose first return is the JSON text ``number``."""
    rows = history(60)
    rows[0]["return"] = "@first@"
    return json.dumps({"name": "inf", "history": rows}).replace('"@first@"', number, 1)


@pytest.mark.parametrize(("url", "words"), [
    ("/v1/portfolios/book/history?limt=5", ("'limt'", "format, limit, since")),
    ("/v1/portfolios/book/history?limit=1&limit=500", ("'limit'", "2 times")),
    ("/v1/ledger/entries?start=1&start=2", ("'start'", "2 times")),
    ("/v1/portfolios/book?window=5", ("'window'", "takes: none")),
    ("/v1/portfolios/book/var?since=0", ("'since'",)),
    ("/v1/ledger/proofs/inclusion?index=0&sise=1", ("'sise'",)),
])
def test_unknown_or_repeated_query_parameters_are_refused(
        live: tuple[httpx.Client, Keys, Server], url: str, words: tuple[str, ...]) -> None:
    c, k, _ = live
    err = _refused(c.get(url, headers={"X-API-Key": k.reader}), 422, *words)
    assert err["message"].startswith("invalid request: query: ")


def test_an_unknown_query_parameter_on_a_post_changes_nothing(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    _refused(c.post("/v1/portfolios/book/returns?dry_run=1", json={"date": day(70),
                                                                    "return": 0.0},
                    headers={"X-API-Key": k.writer}), 422, "'dry_run'")
    assert _ledger(c, k) == before


def _first_event_id(c: httpx.Client, k: Keys, headers: dict[str, str]) -> str | None:
    with c.stream("GET", "/v1/portfolios/book/events?since=0",
                  headers={"X-API-Key": k.reader, **headers}, timeout=10) as r:
        assert r.status_code == 200
        for line in r.iter_lines():  # a beat within 0.2 s, or a ping after 10 s
            if line.startswith("id:"):
                return line.split(":", 1)[1].strip()
            if line.startswith(":") or line.startswith("event: ping"):
                return None  # a keep-alive comment or a named ping: no beat came
    return None


def test_event_stream_resumes_after_last_event_id(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    assert _first_event_id(c, k, {}) == "1"
    assert _first_event_id(c, k, {"Last-Event-ID": "1"}) == "2"  # a reconnect: no replay
    assert _first_event_id(c, k, {"Last-Event-ID": ""}) == "1"  # empty: none seen yet
    for bad in ("abc", "-1", "1e3", "9" * 40):
        r = c.get("/v1/portfolios/book/events", headers={"X-API-Key": k.reader,
                                                         "Last-Event-ID": bad})
        _refused(r, 422, "Last-Event-ID", "beat id")


def test_ledger_index_and_variant_id_are_named_as_given(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    size = _ledger(c, k)[0]
    h = {"X-API-Key": k.admin}
    err = _refused(c.get(f"/v1/ledger/entries/{-size - 7}", headers=h), 422)
    assert f"entry {-size - 7} " in err["message"] and f"-1..-{size}" in err["message"]
    assert c.get(f"/v1/ledger/entries/{-size}", headers=h).json()["index"] == 0
    before = _ledger(c, k)
    r = c.post("/v1/variants/" + "v" * 10_000 + "/promote", headers=h)
    err = _refused(r, 422, "variant_id")
    assert len(r.text) < 1000
    assert _ledger(c, k) == before


def test_an_unfittable_history_or_empty_agent_list_names_the_field(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    before = _ledger(c, k)
    h = {"X-API-Key": k.writer}
    flat = [{"date": x["date"], "return": 0.0} for x in history(60)]
    err = _refused(c.post("/v1/portfolios", json={"name": "flat", "history": flat}, headers=h),
                   422, "history", "constant")
    assert err["type"] == "InvalidReturns"
    _refused(c.post("/v1/portfolios", json={"name": "none", "history": history(60),
                                            "agents": []}, headers=h), 422, "agents")
    assert _ledger(c, k) == before
    names = [p["name"] for p in c.get("/v1/portfolios", headers=h).json()]
    assert "flat" not in names and "none" not in names


@pytest.mark.parametrize("text", ["", "{", "[]", '{"keys": 5}', '{"keys": [{"id": 1}]}'])
def test_a_corrupted_key_file_is_503_not_the_clients_fault(
        tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.json"
    k = make_keys(path)
    good = path.read_bytes()
    log = logging.getLogger("swarmvar.service")
    own = not log.propagate  # configure_logging (another test, same process) stops it
    if own:
        log.addHandler(caplog.handler)
    try:
        with TestClient(create_app(ServiceConfig(home=tmp_path, keys=path))) as c:
            assert c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).status_code == 200
            path.write_text(text)
            caplog.clear()
            r = c.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
            err = _refused_5xx(r, 503)
            assert err["type"] == "KeysUnavailable" and str(path) not in r.text  # no path
            assert r.headers["Retry-After"] == "5"
            # the operator is told which file and why, in the log
            warned = [x for x in caplog.records if x.getMessage() == "key file unreadable"]
            assert len(warned) == 1 and warned[0].levelno == logging.WARNING, caplog.records
            fields = warned[0].__dict__["fields"]
            assert str(path) in fields["error"] and "unreadable (" in fields["error"]
            assert fields["request_id"]
            path.write_bytes(good)
            assert c.get("/v1/ledger/head",
                         headers={"X-API-Key": k.reader}).status_code == 200
    finally:
        if own:
            log.removeHandler(caplog.handler)


def _refused_5xx(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["status"] == status and "Traceback" not in r.text and "retry" in err["message"]
    return err


def test_ambiguous_or_misplaced_keys_are_refused_saying_so(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    for pair in ([("X-API-Key", "sv_00000000_bogus"), ("X-API-Key", k.admin)],
                 [("X-API-Key", k.admin), ("X-API-Key", "sv_00000000_bogus")],
                 [("Authorization", f"Bearer {k.admin}"), ("Authorization", "Bearer x")]):
        _refused(c.get("/v1/portfolios", headers=pair), 401, "2 times")
    err = _refused(c.get(f"/v1/portfolios?key={k.reader}"), 401, "event streams only")
    assert k.reader not in err["message"]


def test_compressed_bodies_and_unknown_agents_are_named(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    import gzip

    c, k, _ = live
    before = _ledger(c, k)
    h = {"X-API-Key": k.writer, **JSON}
    body = gzip.compress(json.dumps({"date": day(80), "return": 0.0}).encode())
    _refused(c.post("/v1/portfolios/book/returns", content=body,
                    headers={**h, "Content-Encoding": "gzip"}), 415, "Content-Encoding")
    err = _refused(c.post("/v1/portfolios", json={"name": "odd", "history": history(60),
                                                  "agents": ["NoSuchAgent"]}, headers=h),
                   422, "agents", "NoSuchAgent")
    assert err["type"] == "InvalidParameter"
    assert _ledger(c, k) == before


def test_made_up_methods_do_not_grow_the_metrics(live: tuple[httpx.Client, Keys, Server]) -> None:
    c, _, _ = live
    for i in range(3):
        r = c.request(f"HUNT{i}", "/v1/portfolios")
        _refused(r, 405)
    text = c.get("/metrics").text
    assert "HUNT" not in text
    assert 'method="OTHER",route="/v1/portfolios",status="405"} 3.0' in text


def test_an_ingest_error_names_the_field_of_the_body_sent(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, k, _ = live
    h = {"X-API-Key": k.writer}
    batch = {"returns": [{"date": day(90), "return": 0.0}, {"date": day(91), "return": "x"}]}
    err = _refused(c.post("/v1/portfolios/book/returns", json=batch, headers=h), 422)
    assert err["message"] == "invalid request: returns.1.return: Input should be a valid number"
    err = _refused(c.post("/v1/portfolios/book/returns", json={"date": day(90), "return": "x"},
                          headers=h), 422)
    assert err["message"] == "invalid request: return: Input should be a valid number"
    err = _refused(c.post("/v1/portfolios/book/returns", json={"date": day(90)}, headers=h), 422)
    assert err["message"] == "invalid request: return: Field required"


def test_an_unknown_dashboard_asset_is_a_plain_404(
        live: tuple[httpx.Client, Keys, Server]) -> None:
    c, _, _ = live
    assert c.get("/dashboard/assets/dashboard.js").status_code == 200
    for name in ("nope.css", "a" * 3000, "%2e%2e%2fapp.py", "..%2f__init__.py"):
        r = c.get(f"/dashboard/assets/{name}")
        err = _refused(r, 404)
        assert err["type"] == "NotFound" and len(r.text) < 400
