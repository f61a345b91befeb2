"""The API contract through the ASGI client: portfolios, ingestion, risk, ledger, variants."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmvar.ledger import HashAlgorithm, InclusionProof, SignedHead
from swarmvar.ledger.proofs import ConsistencyProof
from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, TestClient, day, history


@pytest.fixture
def api(tmp_path: Path, session_keys: tuple[Path, Keys]) -> Iterator[tuple[TestClient, Keys]]:
    path, keys = session_keys
    with TestClient(create_app(ServiceConfig(home=tmp_path, keys=path))) as client:
        yield client, keys


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _create(c: TestClient, k: Keys, name: str = "book", n: int = 60) -> dict[str, object]:
    r = c.post("/v1/portfolios", json={"name": name, "history": history(n)}, headers=_h(k.writer))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_portfolio_lifecycle_and_risk(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    created = _create(c, k)
    assert created["beats"] == 0 and created["created_by"] == k.writer_id
    assert [p["name"] for p in c.get("/v1/portfolios", headers=_h(k.reader)).json()] == ["book"]
    before = c.get("/v1/portfolios/book/var", headers=_h(k.reader)).json()
    assert before["seq"] == 0 and [lv["alpha"] for lv in before["levels"]] == [0.99, 0.975]
    for lv in before["levels"]:
        assert lv["var_interval"][0] <= lv["var"] <= lv["var_interval"][1] or lv["var"] > 0
        assert lv["es"] >= lv["var"] > 0 and lv["available"] == lv["total"] == 2
    r = c.post("/v1/portfolios/book/returns", json={"date": day(0), "return": -0.08},
               headers=_h(k.writer))
    assert r.status_code == 201 and r.json()["stored"] == 1, r.text
    after = c.get("/v1/portfolios/book/var", headers=_h(k.reader)).json()
    assert after["seq"] == 1 and after["levels"][0]["var"] != before["levels"][0]["var"]
    agents = c.get("/v1/portfolios/book/agents", headers=_h(k.reader)).json()
    assert {a["agent"] for a in agents} == {"NormalInverseGamma", "BayesianBootstrap"}
    # an 8% loss breaches every 99% VaR forecast before it
    assert all(a["breaches"] == [True, True] for a in agents)
    assert all(isinstance(a["log_score"], float) for a in agents)
    hist = c.get("/v1/portfolios/book/history", headers=_h(k.reader)).json()
    assert [p["seq"] for p in hist] == [0, 1] and hist[1]["breaches"] == [True, True]
    assert hist[1]["realized"] == -0.08 and hist[0]["realized"] is None
    text = c.get("/v1/portfolios/book/history?format=csv", headers=_h(k.reader))
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 4 and float(rows[2]["var"]) == hist[1]["var"][0]
    # the arbiter observed the beat; its decision is served and in the ledger
    decided = c.get("/v1/portfolios/book/decisions", headers=_h(k.reader)).json()
    assert [d["seq"] for d in decided] == [1]
    assert decided[0]["action"] in {"quarantine", "alert", "apply_balance", "apply_optimize",
                                    "noop"}
    entries = c.get("/v1/ledger/entries?limit=1000", headers=_h(k.reader)).json()
    assert [(e["data"]["seq"], e["data"]["action"]) for e in entries if e["kind"] == "decision"
            ] == [(1, decided[0]["action"])]
    stats = c.get("/v1/portfolios/book/backtest", headers=_h(k.reader)).json()
    assert stats["levels"][0]["days"] == 1 and stats["levels"][0]["breaches"] == 1


def test_ingestion_is_idempotent_and_says_so(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    _create(c, k)
    batch = {"returns": [{"date": day(i), "return": 0.001 * i} for i in range(5)]}
    first = c.post("/v1/portfolios/book/returns", json=batch, headers=_h(k.writer))
    assert first.status_code == 201 and first.json()["stored"] == 5
    size = c.get("/v1/ledger/head", headers=_h(k.reader)).json()["size"]
    again = c.post("/v1/portfolios/book/returns", json=batch, headers=_h(k.writer))
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["stored"] == 0 and body["duplicates"] == 5 and "nothing changed" in body["message"]
    assert [r["seq"] for r in body["results"]] == [1, 2, 3, 4, 5]
    one = c.post("/v1/portfolios/book/returns", json={"date": day(2), "return": 0.002},
                 headers=_h(k.writer))
    assert one.status_code == 200 and one.json()["results"][0]["duplicate"]
    assert c.get("/v1/ledger/head", headers=_h(k.reader)).json()["size"] == size
    # a recorded date with another value, and a date before the last: refused, nothing stored
    for bad in ({"date": day(2), "return": 0.5}, {"date": day(-1), "return": 0.0}):
        r = c.post("/v1/portfolios/book/returns", json=bad, headers=_h(k.writer))
        assert r.status_code == 409 and r.json()["error"]["type"] == "ConflictingInput"
    mixed = {"returns": [{"date": day(4), "return": 0.004}, {"date": day(5), "return": 0.01}]}
    r = c.post("/v1/portfolios/book/returns", json=mixed, headers=_h(k.writer))
    assert r.status_code == 201 and r.json()["stored"] == 1 and r.json()["duplicates"] == 1
    assert c.get("/v1/portfolios/book", headers=_h(k.reader)).json()["beats"] == 6


def test_writes_are_attributed_and_the_ledger_proves_them(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    _create(c, k)
    r = c.post("/v1/portfolios/book/returns", json={"date": day(0), "return": 0.01},
               headers={**_h(k.writer), "X-Request-ID": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    entries = c.get("/v1/ledger/entries?limit=1000", headers=_h(k.reader)).json()
    ticks = [e for e in entries if e["kind"] == "action" and e["data"]["type"] == "tick"]
    assert len(ticks) == 1
    assert ticks[0]["data"]["details"]["key_id"] == k.writer_id
    assert ticks[0]["data"]["details"]["request_id"] == "req-42"
    created = [e for e in entries if e["kind"] == "action"
               and e["data"]["type"] == "portfolio.create"]
    assert created[0]["data"]["details"]["key_id"] == k.writer_id
    head = SignedHead.from_dict(c.get("/v1/ledger/head", headers=_h(k.reader)).json())
    head.verify_signature()
    idx = ticks[0]["index"]
    proof = InclusionProof.from_dict(c.get(f"/v1/ledger/proofs/inclusion?index={idx}",
                                           headers=_h(k.reader)).json())
    assert proof.entry_hash.hex() == ticks[0]["hash"]
    proof.verify(head.root)
    cons = c.get(f"/v1/ledger/proofs/consistency?first=2&second={head.size}",
                 headers=_h(k.reader)).json()
    ConsistencyProof(cons["size1"], cons["size2"], tuple(bytes.fromhex(x) for x in cons["path"]),
                     bytes.fromhex(cons["root1"]), bytes.fromhex(cons["root2"]),
                     HashAlgorithm(cons["hash_algorithm"])).verify(root2=head.root)
    v = c.post("/v1/ledger/verify", headers=_h(k.reader)).json()
    assert v["ok"] and v["size"] == head.size and v["root"] == head.root.hex()
    one = c.get(f"/v1/ledger/entries/{idx}", headers=_h(k.reader)).json()
    assert one == ticks[0]
    assert c.get("/v1/ledger/entries/99999", headers=_h(k.reader)).status_code == 422


def test_state_survives_a_restart(tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    path, k = session_keys
    cfg = ServiceConfig(home=tmp_path, keys=path)
    with TestClient(create_app(cfg)) as c:
        _create(c, k)
        c.post("/v1/portfolios/book/returns",
               json={"returns": [{"date": day(i), "return": -0.01 * (i % 3)} for i in range(8)]},
               headers=_h(k.writer))
        var1 = c.get("/v1/portfolios/book/var", headers=_h(k.reader)).json()
        hist1 = c.get("/v1/portfolios/book/history", headers=_h(k.reader)).json()
    with TestClient(create_app(cfg)) as c:
        assert c.get("/v1/portfolios/book/var", headers=_h(k.reader)).json() == var1
        assert c.get("/v1/portfolios/book/history", headers=_h(k.reader)).json() == hist1
        r = c.post("/v1/portfolios/book/returns", json={"date": day(3), "return": -0.0},
                   headers=_h(k.writer))
        assert r.status_code == 200 and r.json()["duplicates"] == 1
        r = c.post("/v1/portfolios/book/returns", json={"date": day(8), "return": 0.0},
                   headers=_h(k.writer))
        assert r.status_code == 201 and r.json()["results"][0]["seq"] == 9


def test_variants_list_promote_rollback(api: tuple[TestClient, Keys], tmp_path: Path) -> None:
    from swarmvar.evolution import new_variant, open_home
    from swarmvar.models import registry

    c, k = api
    constructors = {"NormalInverseGamma": registry.agent_class("nig").parameter_names()}
    param = constructors["NormalInverseGamma"][0]
    h = open_home(tmp_path)
    try:
        v = h.variants.add(new_variant("NormalInverseGamma", {param: 2.0}, constructors,
                                       now=time.time(), description="wider prior"))
    finally:
        h.close()
    listed = c.get("/v1/variants", headers=_h(k.reader)).json()
    assert [x["id"] for x in listed] == [v.id] and listed[0]["status"] == "draft"
    assert c.post(f"/v1/variants/{v.id}/promote", headers=_h(k.writer)).status_code == 403
    p = c.post(f"/v1/variants/{v.id}/promote", headers=_h(k.admin))
    assert p.status_code == 200 and p.json()["status"] == "active", p.text
    rb = c.post(f"/v1/variants/{v.id}/rollback", headers=_h(k.admin))
    assert rb.status_code == 200 and rb.json()["status"] != "active", rb.text
    assert c.post("/v1/variants/nope/promote", headers=_h(k.admin)).status_code == 404
    notes = [e["data"] for e in c.get("/v1/ledger/entries?limit=100", headers=_h(k.reader)).json()
             if e["kind"] == "action"]
    assert [(n["type"], n["details"]["key_id"]) for n in notes] == [
        ("variant.promote", notes[0]["details"]["key_id"]), ("variant.rollback",
                                                             notes[0]["details"]["key_id"])]
    assert notes[0]["details"]["variant"] == v.id


def test_metrics_and_health(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    assert c.get("/healthz").json() == {"status": "ok", "detail": ""}
    assert c.get("/readyz").status_code == 200
    _create(c, k)
    c.post("/v1/portfolios/book/returns", json={"date": day(0), "return": -0.09},
           headers=_h(k.writer))
    text = c.get("/metrics").text
    for needle in ('swarmvar_beats_total{portfolio="book"} 1.0',
                   'swarmvar_breaches_total{level="0.99",portfolio="book"} 1.0',
                   'swarmvar_var{level="0.99",portfolio="book"}',
                   'swarmvar_agents_available{portfolio="book"} 2.0',
                   'swarmvar_returns_ingested_total{outcome="new"} 1.0',
                   "swarmvar_beat_duration_seconds_bucket",
                   'swarmvar_http_requests_total{method="POST",route='
                   '"/v1/portfolios/{name}/returns",status="201"} 1.0',
                   "swarmvar_ledger_entries "):
        assert needle in text, needle


def test_openapi_at_docs(api: tuple[TestClient, Keys]) -> None:
    c, _ = api
    assert c.get("/docs").status_code == 200
    schema = c.get("/openapi.json").json()
    assert all(p.startswith(("/v1/", "/healthz", "/readyz", "/metrics", "/dashboard"))
               for p in schema["paths"])
    assert json.dumps(schema)  # serializable
