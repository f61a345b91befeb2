"""The auth matrix (every route x no key / bad key / each role), revocation, rate limits,
and ``swarmvar keys create|list|revoke``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.service import KeyFile, Role, ServiceConfig, create_app

from .conftest import Keys, TestClient, history, make_keys

#: (method, path template) -> least role. A new route must be added here.
ROLES = {
    ("GET", "/v1/portfolios"): "reader",
    ("POST", "/v1/portfolios"): "writer",
    ("GET", "/v1/portfolios/{name}"): "reader",
    ("POST", "/v1/portfolios/{name}/returns"): "writer",
    ("GET", "/v1/portfolios/{name}/var"): "reader",
    ("GET", "/v1/portfolios/{name}/agents"): "reader",
    ("GET", "/v1/portfolios/{name}/decisions"): "reader",
    ("GET", "/v1/portfolios/{name}/backtest"): "reader",
    ("GET", "/v1/portfolios/{name}/history"): "reader",
    ("GET", "/v1/portfolios/{name}/events"): "reader",
    ("GET", "/v1/ledger/entries"): "reader",
    ("GET", "/v1/ledger/entries/{index}"): "reader",
    ("GET", "/v1/ledger/head"): "reader",
    ("GET", "/v1/ledger/proofs/inclusion"): "reader",
    ("GET", "/v1/ledger/proofs/consistency"): "reader",
    ("POST", "/v1/ledger/verify"): "reader",
    ("GET", "/v1/variants"): "reader",
    ("POST", "/v1/variants/{variant_id}/promote"): "admin",
    ("POST", "/v1/variants/{variant_id}/rollback"): "admin",
}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/dashboard"}
RANK = ["reader", "writer", "admin"]


def _concrete(path: str) -> str:
    # "ghost" does not exist: an admitted request ends in 404/422, never in a write
    return (path.replace("{name}", "ghost").replace("{index}", "1")
            .replace("{variant_id}", "no-such-variant")
            + ("?index=1" if path.endswith("inclusion") else "")
            + ("?first=1" if path.endswith("consistency") else ""))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Keys, Path]]:
    home = tmp_path_factory.mktemp("auth")
    keys = home / "keys.json"
    k = make_keys(keys)
    with TestClient(create_app(ServiceConfig(home=home, keys=keys))) as c:
        yield c, k, keys


def test_every_route_is_in_the_matrix(api: tuple[TestClient, Keys, Path]) -> None:
    c, _, _ = api
    paths = c.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert {r for r in routes if r[1] not in PUBLIC} == set(ROLES)


@pytest.mark.parametrize(("method", "path"), sorted(ROLES))
def test_auth_matrix(api: tuple[TestClient, Keys, Path], method: str, path: str) -> None:
    c, k, _ = api
    url = _concrete(path)
    size = c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).json()["size"]
    for label, headers in [("none", {}), ("malformed", {"X-API-Key": "letmein"}),
                           ("unknown", {"X-API-Key": "sv_00000000_" + "A" * 43}),
                           ("wrong secret", {"X-API-Key": k.admin[:12] + "B" * 43}),
                           ("empty bearer", {"Authorization": "Bearer "})]:
        r = c.request(method, url, headers=headers, json={"junk": True})
        assert r.status_code == 401, (label, r.text)
        err = r.json()["error"]
        assert err["type"] == "Unauthenticated" and err["message"], label
    need = ROLES[(method, path)]
    for role in RANK:
        key = k.of(role)
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            r = c.request(method, url, headers=headers, json={"junk": True})
            if RANK.index(role) < RANK.index(need):
                assert r.status_code == 403, (role, r.text)
                assert r.json()["error"]["type"] == "Forbidden"
                assert need in r.json()["error"]["message"]
            else:
                assert r.status_code not in (401, 403), (role, r.text)
                assert r.status_code < 500, (role, r.text)
    assert c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).json()["size"] == size


def test_query_key_only_on_the_event_stream(api: tuple[TestClient, Keys, Path]) -> None:
    c, k, _ = api
    assert c.get(f"/v1/portfolios?key={k.reader}").status_code == 401
    assert c.get(f"/v1/portfolios/ghost/events?key={k.reader}").status_code == 404


def test_public_routes_need_no_key(api: tuple[TestClient, Keys, Path]) -> None:
    c, _, _ = api
    for path in sorted(PUBLIC):
        assert c.get(path).status_code == 200, path


def test_revoked_key_and_rate_limit(api: tuple[TestClient, Keys, Path]) -> None:
    c, k, keys = api
    kf = KeyFile(keys)
    limited, secret = kf.create(Role.READER, rate=0.5, burst=2)
    h = {"X-API-Key": secret}
    assert [c.get("/v1/portfolios", headers=h).status_code for _ in range(2)] == [200, 200]
    r = c.get("/v1/portfolios", headers=h)
    assert r.status_code == 429 and r.json()["error"]["type"] == "RateLimited"
    assert "Retry-After" in r.headers and limited.id in r.json()["error"]["message"]
    assert c.get("/v1/portfolios", headers={"X-API-Key": k.reader}).status_code == 200
    kf.revoke(limited.id)
    r = c.get("/v1/portfolios", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_keys_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    keys = str(tmp_path / "k.json")
    made = runner.invoke(app, ["keys", "create", "--role", "writer", "--name", "feed",
                               "--keys", keys])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    kf = KeyFile(keys)
    key = kf.check(secret)
    assert key.role is Role.WRITER and key.name == "feed"
    assert secret not in (tmp_path / "k.json").read_text()  # stored hashed
    assert oct((tmp_path / "k.json").stat().st_mode & 0o777) == "0o600"
    listed = runner.invoke(app, ["keys", "list", "--keys", keys])
    assert key.id in listed.stdout and "writer" in listed.stdout and "active" in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key.id, "--keys", keys]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["keys", "list", "--keys", keys]).stdout
    assert runner.invoke(app, ["keys", "create", "--role", "root", "--keys", keys]).exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", "nope", "--keys", keys]).exit_code == 2


def test_writes_need_a_writer_and_record_its_id(api: tuple[TestClient, Keys, Path]) -> None:
    c, k, _ = api
    body = {"name": "book", "history": history(60)}
    assert c.post("/v1/portfolios", json=body, headers={"X-API-Key": k.reader}).status_code == 403
    r = c.post("/v1/portfolios", json=body, headers={"X-API-Key": k.admin})
    assert r.status_code == 201, r.text
    admin_id = k.admin.split("_")[1]
    assert r.json()["created_by"] == admin_id


def test_serve_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    home = ["--home", str(tmp_path)]
    for args in (["--certfile", str(tmp_path / "c.pem")], ["--workers", "0"],
                 ["--alpha", "0.99,abc"], ["--alpha", "1.5"], ["--db", "mysql://x"],
                 ["--window", "5"], ["--port", "70000"]):
        r = runner.invoke(app, ["serve", *home, *args])
        assert r.exit_code == 2, (args, r.output)


def test_an_admitted_key_is_held_to_each_dependency_role(
        api: tuple[TestClient, Keys, Path]) -> None:
    # a route whose key dependencies need several roles: the key admitted for the first one
    # (by the strict route class) is checked again for each (no second token, no hash)
    from fastapi import FastAPI
    from starlette.requests import Request

    from swarmvar.errors import Forbidden
    from swarmvar.service.auth import authenticate

    _, k, keys = api
    app = FastAPI()
    app.state.keys = KeyFile(keys)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [
        (b"x-api-key", k.reader.encode())], "query_string": b"", "app": app}
    request = Request(scope)
    request.state.request_id = "r"

    class Counting:
        taken = 0

        def take(self, key: object) -> None:
            self.taken += 1

    app.state.limits = Counting()
    key = authenticate(request, Role.READER)
    assert key.role is Role.READER and app.state.limits.taken == 1
    assert authenticate(request, Role.READER) is key and app.state.limits.taken == 1
    with pytest.raises(Forbidden, match="needs writer"):
        authenticate(request, Role.WRITER)


def test_a_key_with_burst_n_gets_n_answers(api: tuple[TestClient, Keys, Path]) -> None:
    # one rate-limit token per request, though the key is looked at twice (strict route
    # class, then the route's dependency); the refill (1 per 1000 s) is out of reach
    c, _, keys = api
    _, secret = KeyFile(keys).create(Role.WRITER, rate=0.001, burst=4)
    h = {"X-API-Key": secret}
    got = [c.get("/v1/portfolios", headers=h).status_code,
           c.post("/v1/portfolios/ghost/returns", headers=h,
                  json={"date": "2024-01-02", "return": 0.01}).status_code,
           c.get("/v1/portfolios/ghost/var", headers=h).status_code,
           c.get("/v1/ledger/head", headers=h).status_code,
           c.get("/v1/portfolios", headers=h).status_code]
    assert got == [200, 404, 404, 200, 429]
