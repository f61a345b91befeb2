"""Bad input on every route: a 4xx with a clear JSON error, never a 500, nothing stored."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Keys, TestClient, app_with_book, day, history
from .test_auth import ROLES, _concrete


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory,
        session_keys: tuple[Path, Keys]) -> Iterator[tuple[TestClient, Keys]]:
    path, keys = session_keys
    with app_with_book(tmp_path_factory.mktemp("bad"), path, keys.writer) as c:
        r = c.post("/v1/portfolios/book/returns", json={"date": day(10), "return": 0.01},
                   headers={"X-API-Key": keys.writer})
        assert r.status_code == 201
        yield c, keys


def _state(c: TestClient, k: Keys) -> tuple[int, Any]:
    h = {"X-API-Key": k.reader}
    return (c.get("/v1/ledger/head", headers=h).json()["size"],
            c.get("/v1/portfolios", headers=h).json())


def _refused(r: Any, *codes: int) -> None:
    assert 400 <= r.status_code < 500, r.text
    if codes:
        assert r.status_code in codes, r.text
    err = r.json()["error"]
    assert err["type"] and err["message"] and err["status"] == r.status_code


finite = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)
junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
bad_value = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -1.5, 1.5, -3.0, 11.0]),
                      st.text(max_size=5), st.none(), st.booleans(), st.lists(finite, max_size=2))
bad_date = st.one_of(st.sampled_from(["2024-02-30", "2024-1-1", "01/02/2024", "", "2024-13-01",
                                      "yesterday", "2024-01-01T00:00:00"]),
                     st.integers(), st.none(), st.floats(allow_nan=False))


def _item(d: Any, v: Any) -> dict[str, Any]:
    return {"date": d, "return": v}


bodies = st.one_of(
    junk,
    st.builds(_item, st.just(day(20)), bad_value),
    st.builds(_item, bad_date, finite),
    st.builds(lambda d, v: {"returns": [_item(d, v)]}, bad_date, finite),
    st.builds(lambda v: {"returns": [_item(day(30), 0.0), _item(day(31), v)]}, bad_value),
    st.builds(lambda v: {"date": day(20), "return": v, "extra": 1}, finite),
    st.just({"returns": []}),
    st.just({"returns": [_item(day(40), 0.0), _item(day(39), 0.0)]}),  # out of order in batch
    st.just(_item(day(5), 0.0)),  # before the last recorded date
    st.just(_item(day(10), 0.02)),  # recorded date, other value
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_bad_returns_are_refused_and_store_nothing(api: tuple[TestClient, Keys], body: Any) -> None:
    c, k = api
    before = _state(c, k)
    text = json.dumps(body, allow_nan=True)
    r = c.post("/v1/portfolios/book/returns", content=text,
               headers={"X-API-Key": k.writer, "Content-Type": "application/json"})
    _refused(r)
    assert _state(c, k) == before


raw = st.one_of(st.sampled_from(['{"date": "2024-02-01", "return": NaN}',
                                 '{"date": "2024-02-01", "return": Infinity}',
                                 '{"date": "2024-02-01", "return": 1e999}',
                                 '{"date": "2024-02-01", "return": 0.01', "", "null", "[]",
                                 '{"date": "2024-02-01", "return": "0.01"}', "\x00\xff",
                                 '{"returns": [{"date": "2024-02-01", "return": -Infinity}]}']),
                st.binary(max_size=40))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=raw)
def test_malformed_json_is_refused(api: tuple[TestClient, Keys], content: Any) -> None:
    c, k = api
    before = _state(c, k)
    for path in ("/v1/portfolios/book/returns", "/v1/portfolios"):
        r = c.post(path, content=content,
                   headers={"X-API-Key": k.writer, "Content-Type": "application/json"})
        _refused(r, 400, 409, 422)
    assert _state(c, k) == before


portfolios = st.one_of(
    junk,
    st.builds(lambda n: {"name": n, "history": history(60)},
              st.sampled_from(["", "-x", "a b", "x" * 65, "é", "book", "../etc", "a/b"])),
    st.builds(lambda n: {"name": "fresh", "history": history(n)}, st.integers(0, 49)),
    st.builds(lambda v: {"name": "fresh", "history": [*history(59), _item(day(900), v)]},
              bad_value),
    st.just({"name": "fresh", "history": history(60)[::-1]}),
    st.just({"name": "fresh", "history": history(60), "agents": ["NoSuchAgent"]}),
    st.just({"name": "fresh", "history": history(60), "agents": "nig"}),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=portfolios)
def test_bad_portfolios_are_refused(api: tuple[TestClient, Keys], body: Any) -> None:
    c, k = api
    before = _state(c, k)
    r = c.post("/v1/portfolios", content=json.dumps(body, allow_nan=True),
               headers={"X-API-Key": k.writer, "Content-Type": "application/json"})
    _refused(r)
    assert _state(c, k) == before


@pytest.mark.parametrize(("method", "path"), sorted(ROLES))
def test_every_route_refuses_bad_parameters(api: tuple[TestClient, Keys], method: str,
                                           path: str) -> None:
    c, k = api
    before = _state(c, k)
    h = {"X-API-Key": k.admin, "Content-Type": "application/json"}
    urls = [_concrete(path)]  # unknown portfolio / variant / out-of-range index
    if "{index}" in path:
        urls += [path.replace("{index}", x) for x in ("abc", "1.5", "99999", "-99999")]
    if "?" in _concrete(path) or path.endswith(("entries", "decisions", "history", "backtest")):
        base = path.replace("{name}", "book")
        urls += [f"{base}?{q}" for q in ("limit=-1", "limit=abc", "index=-1", "index=x",
                                        "first=0", "first=99999", "second=0", "size=0",
                                        "index=5&size=99999", "window=1", "format=xml",
                                        "start=-5", "since=-1")]
    for url in urls:
        if method == "GET" and url == _concrete(path) and "ghost" not in url \
                and "no-such" not in url and "{index}" not in path:
            continue  # nothing wrong with it
        r = c.request(method, url, headers=h, content=b"{not json")
        if r.status_code < 400:
            continue  # the parameter does not apply to this route
        _refused(r)
    assert _state(c, k) == before


def test_ten_megabyte_bodies_are_refused(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    before = _state(c, k)
    big = json.dumps({"returns": [_item(day(100 + i), 0.001) for i in range(250_000)]})
    assert len(big) > 10_000_000
    for path in ("/v1/portfolios/book/returns", "/v1/portfolios", "/v1/ledger/verify"):
        r = c.post(path, content=big, headers={"X-API-Key": k.writer,
                                               "Content-Type": "application/json"})
        _refused(r, 413)
        assert r.json()["error"]["type"] == "PayloadTooLarge"
    assert _state(c, k) == before


def test_unknown_portfolio_on_every_portfolio_route(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    for (method, path) in ROLES:
        if "{name}" not in path:
            continue
        body = {"date": day(50), "return": 0.0} if method == "POST" else None
        r = c.request(method, path.replace("{name}", "ghost"), json=body,
                      headers={"X-API-Key": k.admin})
        _refused(r, 404)
        assert "ghost" in r.json()["error"]["message"]
