"""The service's order of answers and its limits, in process: authentication before any
check of the query or the body, the per-request batch cap, dates out of order inside one
request (422) versus against what is stored (409), and each route's documented errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.apidoc import route_roles

from .conftest import Keys, TestClient, day, history

CAP = 5  # the app's --max-batch here: small, so a refused batch is cheap to build
_BAD_BODIES: list[tuple[bytes, str]] = [
    (b"not json", "text/plain"),                     # 415 with a key
    (b"{\"a\": 1, \"a\": 2}", "application/json"),   # 422: a field twice
    (b"{", "application/json"),                      # 422: not JSON
    (b"\xff\xfe", "application/json"),               # 422: not UTF-8
    (b"{\"returns\": []}", "application/json"),      # 422: the schema
]


def _examples(n: int) -> settings:
    # the module's app is shared: its state moves on between examples, by design
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _concrete(path: str) -> str:
    return (path.replace("{name}", "book").replace("{index}", "1")
            .replace("{variant_id}", "no-such-variant"))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory,
        session_keys: tuple[Path, Keys]) -> Iterator[tuple[TestClient, Keys]]:
    path, keys = session_keys
    home = tmp_path_factory.mktemp("limits")
    with TestClient(create_app(ServiceConfig(home=home, keys=path, max_batch=CAP))) as c:
        r = c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                   headers={"X-API-Key": keys.writer})
        assert r.status_code == 201, r.text
        yield c, keys


def _protected() -> list[tuple[str, str, str]]:
    return sorted((m, p, role) for (m, p), role in route_roles().items() if role != "none")


@pytest.mark.parametrize(("method", "path", "role"), _protected())
def test_authentication_comes_before_every_check(api: tuple[TestClient, Keys], method: str,
                                                 path: str, role: str) -> None:
    """No key (or a malformed one) and a bad body or query: 401, whatever was wrong with the
    rest; a key below the route's role: 403; the right key: the body's own 415/422."""
    c, k = api
    url = _concrete(path) + "?limt=5"  # a query parameter no route takes
    for body, ctype in _BAD_BODIES:
        for headers in ({}, {"X-API-Key": "sv_nope"}):
            r = c.request(method, url, content=body, headers={"Content-Type": ctype, **headers})
            assert r.status_code == 401, (method, path, body, r.text)
            assert r.json()["error"]["type"] == "Unauthenticated"
            assert r.headers["WWW-Authenticate"] == "ApiKey"
        if role != "reader":
            low = k.reader if role == "writer" else k.writer
            r = c.request(method, url, content=body, headers={"Content-Type": ctype,
                                                               "X-API-Key": low})
            assert r.status_code == 403, (method, path, r.text)
    good = {"X-API-Key": k.of(role)}
    r = c.request(method, url, headers=good)
    assert r.status_code == 422 and "limt" in r.json()["error"]["message"], r.text
    if method == "POST" and path.startswith("/v1/portfolios"):  # the routes taking a body
        r = c.request(method, _concrete(path), content=b"not json",
                      headers={"Content-Type": "text/plain", **good})
        assert r.status_code == 415, r.text
        r = c.request(method, _concrete(path), content=b"{\"a\": 1, \"a\": 2}",
                      headers={"Content-Type": "application/json", **good})
        assert r.status_code == 422 and "given 2 times" in r.text, r.text


@_examples(25)
@given(body=st.binary(max_size=64), ctype=st.sampled_from(
    ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]),
       query=st.sampled_from(["", "?limit=x", "?since=1&since=2", "?key=abc", "?zz=1"]))
def test_no_key_is_401_whatever_the_request(api: tuple[TestClient, Keys], body: bytes,
                                            ctype: str, query: str) -> None:
    c, _ = api
    r = c.post("/v1/portfolios/book/returns" + query, content=body,
               headers={"Content-Type": ctype} if ctype else {})
    assert r.status_code == 401, r.text


def _ledger_size(c: TestClient, k: Keys) -> int:
    return int(c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).json()["size"])


class _Days:
    """The next unused day index (module-wide: every accepted batch moves it on)."""

    next = 0


@_examples(12)
@given(n=st.integers(1, 3 * CAP))
def test_the_batch_cap(api: tuple[TestClient, Keys], n: int) -> None:
    """At most ``max_batch`` returns a request: one more is a 413 naming the cap and how to
    send more, and nothing of it is stored; at the cap or below, all are stored."""
    c, k = api
    start = _Days.next
    batch = {"returns": [{"date": day(start + i), "return": 0.001} for i in range(n)]}
    before = _ledger_size(c, k)
    r = c.post("/v1/portfolios/book/returns", json=batch, headers={"X-API-Key": k.writer})
    if n > CAP:
        assert r.status_code == 413, r.text
        err = r.json()["error"]
        assert err["type"] == "BatchTooLarge"
        assert f"at most {CAP}" in err["message"] and "several requests" in err["message"]
        assert str(n) in err["message"]
        assert _ledger_size(c, k) == before
    else:
        assert r.status_code == 201 and r.json()["stored"] == n, r.text
        _Days.next = start + n


@_examples(15)
@given(order=st.permutations(range(4)), repeat=st.booleans())
def test_dates_out_of_order_in_one_request_are_422(api: tuple[TestClient, Keys],
                                                   order: list[int], repeat: bool) -> None:
    """Dates inside one body that do not strictly increase: 422 naming the first pair out of
    order, nothing stored; the same dates in order are stored (201)."""
    c, k = api
    base = _Days.next + 10  # after anything stored
    days = [base + i for i in order] + ([base + order[-1]] if repeat else [])
    batch = {"returns": [{"date": day(d), "return": 0.001} for d in days]}
    bad = next((i for i in range(1, len(days)) if days[i] <= days[i - 1]), None)
    before = _ledger_size(c, k)
    r = c.post("/v1/portfolios/book/returns", json=batch, headers={"X-API-Key": k.writer})
    if bad is None:
        assert r.status_code == 201, r.text
        _Days.next = max(days) + 1
        return
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["type"] == "InvalidReturns"
    assert f"returns[{bad}] ({day(days[bad])})" in err["message"]
    assert f"returns[{bad - 1}] ({day(days[bad - 1])})" in err["message"]
    assert _ledger_size(c, k) == before


def test_a_date_not_after_the_stored_last_is_409(api: tuple[TestClient, Keys]) -> None:
    """In order within the request, but not after what the portfolio recorded: 409."""
    c, k = api
    h = {"X-API-Key": k.writer}
    last = _Days.next
    r = c.post("/v1/portfolios/book/returns", json={"date": day(last), "return": 0.0}, headers=h)
    assert r.status_code == 201, r.text
    _Days.next = last + 1
    before = _ledger_size(c, k)
    # day(-5): after the history, before every ingested return, never recorded
    r = c.post("/v1/portfolios/book/returns", headers=h, json={"returns": [
        {"date": day(-5), "return": 0.0}, {"date": day(last + 5), "return": 0.0}]})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["type"] == "ConflictingInput" and "send later dates only" in err["message"]
    assert _ledger_size(c, k) == before
    twisted = history(60)
    twisted[30], twisted[31] = twisted[31], twisted[30]
    r = c.post("/v1/portfolios", headers=h, json={"name": "twisted", "history": twisted})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "history[31]" in message and "history[30]" in message, message


def test_each_route_documents_the_errors_it_can_give(api: tuple[TestClient, Keys]) -> None:
    """A walk of /openapi.json against the routes' auth needs: a public route lists none of
    the key's errors (401/403/429/503), a protected one lists 401, 429 and 503, and 403 only
    above reader (every valid key is a reader); 415 only with a body; every error has the
    API's error body; and the ingest batch states this server's cap."""
    c, _ = api
    schema = c.get("/openapi.json").json()
    roles = route_roles()
    seen = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            role = roles[(method.upper(), path)]
            seen += 1
            key_errors = {"401", "403", "429"} & codes
            if role == "none":
                assert not key_errors, (method, path, codes)
                assert "503" not in codes or path == "/readyz", (method, path)
            else:
                assert {"401", "429", "503"} <= codes, (method, path, codes)
                assert ("403" in codes) == (role != "reader"), (method, path, codes)
            assert ("415" in codes) == ("requestBody" in op), (method, path)
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")) and path != "/readyz":
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorOut"), (method, path, code)
    assert seen >= 20
    batch = schema["components"]["schemas"]["ReturnBatch"]["properties"]["returns"]
    assert batch["maxItems"] == CAP and "--max-batch" in batch["description"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    # a public route answers a request carrying a bad key as if it carried none
    assert c.get("/healthz", headers={"X-API-Key": "sv_bad"}).status_code == 200
    assert c.get("/metrics", headers={"X-API-Key": "sv_bad"}).status_code == 200
