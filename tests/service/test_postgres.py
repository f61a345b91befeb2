"""Two service processes ingesting into one database keep one gap-free chain with no
duplicate beats: PostgreSQL (a real server: initdb + pg_ctl in a temporary directory)
and, the same race, two servers sharing one SQLite ledger."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmvar.ledger import Ledger
from swarmvar.ledger.head import load_or_create_key

from .conftest import Keys, Server, day, history, start_server


@pytest.fixture(scope="module")
def database(own_postgres_server: Any) -> str:
    """A new database on a server of this module's own (tests/conftest.py's)."""
    url: str = own_postgres_server.new_database()
    return url


@pytest.mark.slow  # runs fast in-process in test_desk.py; this is its real-server twin
def test_two_servers_on_sqlite_one_chain_no_duplicate_beats(
        tmp_path: Path, session_keys: tuple[Path, Keys], server_factory: list[Server]) -> None:
    servers = [start_server(tmp_path, session_keys[0]) for _ in range(2)]
    server_factory.extend(servers)
    entries = _race(servers, session_keys[1])
    with Ledger.open(tmp_path, create=False) as led:
        assert led.verify_chain().ok and led.size == len(entries)


def test_two_servers_one_chain_no_duplicate_beats(
        database: str, tmp_path: Path, session_keys: tuple[Path, Keys],
        server_factory: list[Server]) -> None:
    keys_path, k = session_keys
    servers = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        servers.append(start_server(home, keys_path, "--db", database))
        server_factory.append(servers[-1])
    entries = _race(servers, k)
    with Ledger(database, create=False,
                signing_key=load_or_create_key(tmp_path / "a" / "ledger.key")) as led:
        assert led.verify_chain().ok and led.size == len(entries)
    # the evolution stores are in the same database: a variant made there is listed by both
    import time

    from swarmvar.evolution import new_variant, open_home
    from swarmvar.models import registry

    constructors = {"NormalInverseGamma": registry.agent_class("nig").parameter_names()}
    h = open_home(database, state_root=tmp_path / "states")
    try:
        v = h.variants.add(new_variant("NormalInverseGamma",
                                       {constructors["NormalInverseGamma"][0]: 2.0},
                                       constructors, now=time.time()))
    finally:
        h.close()
    for s in servers:
        listed = httpx.get(s.url + "/v1/variants", headers={"X-API-Key": k.reader}, timeout=60)
        assert [x["id"] for x in listed.json()] == [v.id], listed.text


def _race(servers: list[Server], k: Keys) -> list[dict[str, object]]:
    """Both servers get every return at once; return the ledger's entries (via the API)."""
    a, b = servers
    w = {"X-API-Key": k.writer}
    r = httpx.post(a.url + "/v1/portfolios", json={"name": "shared", "history": history(80)},
                   headers=w, timeout=60)
    assert r.status_code == 201, r.text
    # b learns of it from the database
    assert httpx.get(b.url + "/v1/portfolios/shared", headers={"X-API-Key": k.reader},
                     timeout=60).status_code == 200
    n = 25
    values = [round(0.002 * ((i * 7) % 11 - 5), 6) for i in range(n)]
    codes: dict[str, Counter[int]] = {}

    def feed(srv: Server) -> None:
        got: Counter[int] = Counter()
        with httpx.Client(base_url=srv.url, headers=w, timeout=60) as c:
            for i in range(n):  # both servers get every return, racing each other
                got[c.post("/v1/portfolios/shared/returns",
                           json={"date": day(i), "return": values[i]}).status_code] += 1
        codes[srv.url] = got

    threads = [threading.Thread(target=feed, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    total = Counter[int]()
    for c in codes.values():
        total.update(c)
    assert set(total) <= {200, 201}, codes
    assert total[201] == n and total[200] == n  # each return stored once, repeated once
    entries: list[dict[str, object]] = []
    with httpx.Client(base_url=b.url, headers={"X-API-Key": k.reader}, timeout=60) as c:
        while True:
            page = c.get("/v1/ledger/entries", params={"start": len(entries),
                                                       "limit": 1000}).json()
            entries += page
            if len(page) < 1000:
                break
        assert c.post("/v1/ledger/verify").json()["ok"]
    ticks = [e["data"]["details"] for e in entries  # type: ignore[index]
             if e["kind"] == "action" and e["data"]["type"] == "tick"]  # type: ignore[index]
    assert [t["seq"] for t in ticks] == list(range(1, n + 1))  # one gap-free beat sequence
    assert [t["as_of"] for t in ticks] == [day(i) for i in range(n)]
    assert [t["return"] for t in ticks] == values
    beats = Counter((e["data"]["portfolio"], e["data"]["seq"])  # type: ignore[index]
                    for e in entries if e["kind"] == "consensus")
    assert set(beats.values()) == {2} and len(beats) == n + 1  # 2 levels per beat, no repeats
    assert [e["index"] for e in entries] == list(range(len(entries)))
    writers = Counter(t["request_id"] != "" for t in ticks)
    assert writers[True] == n
    # both servers replayed each other's beats to the same numbers
    views = [httpx.get(s.url + "/v1/portfolios/shared/var", headers={"X-API-Key": k.reader},
                       timeout=60).json() for s in servers]
    assert views[0]["seq"] == views[1]["seq"] == n
    assert views[0]["levels"] == views[1]["levels"]
    return entries
