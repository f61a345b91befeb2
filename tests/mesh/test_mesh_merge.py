"""The statistics merge against a lying node, and ledgers merged after a partition heals.

* :func:`swarmvar.mesh.stats.robust_read` (property-based: whatever ``f``
  liars claim, the merged mean, spread and weight stay bounded by the
  honest replicas'; with no liar it is the exact read, bit for bit), then a
  real lying node over ZeroMQ whose signed, inflated statistics its peers
  bound.
* Four nodes on loopback, each link through the fault-injecting proxy;
  a partition, both sides observe, the heal: each side's ledger ends up
  holding the other side's signed entries as appended, checked imports,
  its own entries untouched, ``verify`` passing. (The namespace cluster
  test checks the same across real namespaces.)
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from _smash import smash_page  # tests/_smash.py (on the path: tests/conftest.py)
from swarmvar.consensus.partition import Contribution, NormalStats, StatsCRDT
from swarmvar.errors import RefusedMessage
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.mesh import (
    AdminClient,
    MeshNode,
    MessageKind,
    NodeConfig,
    NodeKeyRing,
    Timeouts,
    free_ports,
    seal,
)
from swarmvar.mesh.imports import IMPORT_RECORD, batch_for, check_batch, check_import_record
from swarmvar.mesh.ledgered import LedgeredStats
from swarmvar.mesh.stats import (
    COUNT_SLACK,
    DEFAULT_PRIOR,
    MEAN_SLACK,
    SD_SLACK,
    check_contribution,
    replica_var,
    robust_read,
    sign_contribution,
)

sys.path.insert(0, str(Path(__file__).parent))
from _mesh_harness import wait_until  # noqa: E402
from _mesh_proxy import LoopbackProxy  # noqa: E402

pytestmark = pytest.mark.timeout(200)
FAST = Timeouts(heartbeat=0.05, suspect_after=0.5, dead_after=1.5)


def _moments(s: NormalStats) -> tuple[float, float]:
    m = s.total / s.count
    return m, math.sqrt(max(s.total_sq / s.count - m * m, 0.0))


# --- the robust read ----------------------------------------------------------------


def _honest(seed: int, k: int) -> dict[str, NormalStats]:
    rng = np.random.default_rng(seed)
    return {f"h{i}": NormalStats.of(rng.normal(0.0005, 0.01, int(rng.integers(80, 120))))
            for i in range(k)}


def test_without_a_liar_the_robust_read_is_the_exact_read() -> None:
    for seed in range(20):
        crdt = StatsCRDT({r: Contribution(1, s) for r, s in _honest(seed, 7).items()})
        read = robust_read(crdt, 2)
        assert read.guaranteed and read.bounded == ()
        assert read.stats == crdt.read()  # bit for bit


liar = st.builds(
    lambda count, mean, sd: NormalStats(count, count * mean, count * (sd * sd + mean * mean)),
    st.integers(1, 10**9), st.floats(-1e3, 1e3), st.floats(0.0, 1e3))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), liars=st.lists(liar, min_size=0, max_size=2))
def test_liars_stay_inside_the_honest_bounds(seed: int, liars: list[NormalStats]) -> None:
    honest = _honest(seed, 5)
    f = 2
    crdt = StatsCRDT({**{r: Contribution(1, s) for r, s in honest.items()},
                      **{f"b{i}": Contribution(1, s) for i, s in enumerate(liars)}})
    read = robust_read(crdt, f)
    assert read.guaranteed  # (an honest replica far enough out may be bounded too, rarely)
    means = [_moments(s)[0] for s in honest.values()]
    sds = [_moments(s)[1] for s in honest.values()]
    counts = [s.count for s in honest.values()]
    slack = max(max(means) - min(means), MEAN_SLACK * max(sds) / math.sqrt(min(counts)))
    for r, s in read.contributions.items():  # every contribution as summed
        m, sd = _moments(s)
        assert min(means) - slack - 1e-12 <= m <= max(means) + slack + 1e-12
        assert sd <= SD_SLACK * max(sds) * (1 + 1e-9)
        assert s.count <= COUNT_SLACK * max(counts)
        if r not in read.bounded:
            assert s == crdt.contributions[r].stats  # summed verbatim
    # so the merged posterior's VaR stays near the honest one, whatever the liars claim
    honest_var = replica_var(sum_stats(honest.values()), 0.99, DEFAULT_PRIOR)
    merged_var = replica_var(read.stats, 0.99, DEFAULT_PRIOR)
    assert merged_var < 1.6 * honest_var + 2 * slack


def sum_stats(items: Any) -> NormalStats:
    items = list(items)
    return NormalStats(sum(s.count for s in items), math.fsum(s.total for s in items),
                       math.fsum(s.total_sq for s in items))


def test_a_read_with_too_few_replicas_says_it_is_not_guaranteed() -> None:
    crdt = StatsCRDT({r: Contribution(1, s) for r, s in _honest(1, 3).items()})
    read = robust_read(crdt, 2)  # 3 < 2f + 1
    assert not read.guaranteed and read.stats == crdt.read()
    with pytest.raises(ValueError, match="f must be"):
        robust_read(crdt, -1)


# --- a lying node over the mesh ----------------------------------------------------------


class InflatingNode(MeshNode):
    """Signs (with its own key, so it verifies) statistics of a million fake losses, at the
    version of its own ledger: its own signed ledger entries contradict it."""

    version_ahead = 0

    def _publish_own(self) -> None:
        super()._publish_own()
        own = self.crdt.contributions[self.me]
        fake = Contribution(own.version + self.version_ahead, NormalStats(10**6, -5e4, 1e7))
        self._signed[self.me] = sign_contribution(self.key, self.me, fake)


class AheadOfItsLedger(InflatingNode):
    """The same lie at a version its ledger never reaches: nothing refutes it; bounded."""

    version_ahead = 1000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    names = ["a", "b", "c", "d"]
    keys = {n: Ed25519PrivateKey.generate() for n in [*names, "admin"]}
    ring = NodeKeyRing({n: keys[n].public_key() for n in names},
                       {"admin": keys["admin"].public_key()})
    ports = free_ports(len(names) + len(names) * (len(names) - 1))
    real = {n: ports[i] for i, n in enumerate(names)}
    links = [(s, d) for s in names for d in names if s != d]
    proxy = LoopbackProxy({link: (ports[len(names) + i], real[link[1]])
                           for i, link in enumerate(links)})
    via = {link: f"tcp://127.0.0.1:{ports[len(names) + i]}" for i, link in enumerate(links)}
    state: dict[str, Any] = {"names": names, "keys": keys, "ring": ring, "proxy": proxy,
                             "nodes": {}, "threads": [], "tmp": tmp_path}

    def start(name: str, cls: type[MeshNode] = MeshNode) -> MeshNode:
        config = NodeConfig(name, f"tcp://127.0.0.1:{real[name]}",
                            {d: via[(name, d)] for d in names if d != name}, ring,
                            home=tmp_path / name, timeouts=FAST, gossip_every=0.1)
        node = cls(config, keys[name], epoch=time.time_ns())
        t = threading.Thread(target=node.run, args=(120.0,), daemon=True)
        t.start()
        state["nodes"][name] = node
        state["threads"].append(t)
        return node

    state["start"] = start
    admin = AdminClient("admin", keys["admin"], ring,
                        {n: f"tcp://127.0.0.1:{real[n]}" for n in names})
    state["admin"] = admin
    try:
        yield state
    finally:
        for node in state["nodes"].values():
            node.stop = True
        for t in state["threads"]:
            t.join(timeout=10)
        admin.close()
        proxy.close()


def _stop(cluster: dict[str, Any]) -> None:
    """Stop every node and wait for its thread (its ledger is then closed and complete)."""
    for node in cluster["nodes"].values():
        node.stop = True
    for t in cluster["threads"]:
        t.join(timeout=10)


def _status(cluster: dict[str, Any], node: str) -> dict[str, Any]:
    answer = cluster["admin"].request(node, "status", timeout=5)
    assert answer["ok"], answer
    return dict(answer["status"])


def _start_with_liar(cluster: dict[str, Any], liar: type[MeshNode]) -> dict[str, NormalStats]:
    for n in ["a", "b", "c"]:
        cluster["start"](n)
    cluster["start"]("d", liar)
    rng = np.random.default_rng(5)
    honest = {}
    for n in cluster["names"]:
        values = rng.normal(0.0, 0.01, 80).round(6).tolist()
        assert cluster["admin"].request(n, "observe", values=values)["ok"]
        if n != "d":
            honest[n] = NormalStats.of(values)
    return honest


def test_a_lie_its_own_ledger_contradicts_is_refuted(cluster: dict[str, Any]) -> None:
    honest = _start_with_liar(cluster, InflatingNode)
    # refuting d can come before a peer's honest contribution arrives: wait for both
    wait_until("every honest node to refute d's contribution and hold all four", lambda: all(
        _status(cluster, n)["refuted"] == {"d": 1}
        and len(_status(cluster, n)["stats"]["versions"]) == 4 for n in ["a", "b", "c"]), 30)
    st_ = _status(cluster, "a")
    assert st_["stats"]["count"] == 240 + 10**6  # the lie is held (as evidence), not served
    want = StatsCRDT({r: Contribution(1, s) for r, s in honest.items()}).read()
    assert st_["robust"]["bounded"] == [] and st_["served"]["count"] == want.count == 240
    assert st_["served"]["point"] == replica_var(want, 0.99, DEFAULT_PRIOR)  # bit for bit
    _stop(cluster)
    with Ledger(cluster["tmp"] / "a", create=False) as ledger:
        assert ledger.verify_chain().ok
        evidence = [e.data["details"] for e in ledger.entries()
                    if e.data.get("type") == "mesh.stats_refuted"]
    assert len(evidence) == 1 and evidence[0]["peer"] == "d"
    assert evidence[0]["claimed"][0] == 10**6 and evidence[0]["ledgered"][0] == 80
    # the signed lie itself is kept, verifiable by anyone with d's key
    assert check_contribution(cluster["ring"], evidence[0]["signed"])[1].stats.count == 10**6


def test_a_lie_ahead_of_its_ledger_is_bounded_by_its_peers(cluster: dict[str, Any]) -> None:
    honest = _start_with_liar(cluster, AheadOfItsLedger)
    wait_until("a to hold every contribution", lambda: len(
        _status(cluster, "a")["stats"]["versions"]) == 4, 30)
    st_ = _status(cluster, "a")
    assert st_["stats"]["count"] == 240 + 10**6  # the exact read takes the lie in
    assert st_["refuted"] == {}  # its ledger never reaches version 1001
    assert st_["robust"]["bounded"] == ["d"] and st_["robust"]["guaranteed"]
    honest_var = replica_var(sum_stats(honest.values()), 0.99, DEFAULT_PRIOR)
    naive = replica_var(NormalStats(st_["stats"]["count"], st_["stats"]["total"],
                                    st_["stats"]["total_sq"]), 0.99, DEFAULT_PRIOR)
    served = st_["served"]["point"]
    print(f"VaR 99%: honest {honest_var:.5f}, exact read with the liar {naive:.5f}, "
          f"robust {served:.5f}")
    assert naive > 10 * honest_var  # what an unguarded merge would serve
    # the worst the bounds let one liar do, built from the honest replicas alone: weight
    # COUNT_SLACK x theirs, spread SD_SLACK x theirs, mean at the honest range's edge + slack
    means = [_moments(s)[0] for s in honest.values()]
    sds = [_moments(s)[1] for s in honest.values()]
    slack = max(max(means) - min(means), MEAN_SLACK * max(sds) / math.sqrt(80))
    c, m, sd = int(COUNT_SLACK * 80), min(means) - slack, SD_SLACK * max(sds)
    worst = sum_stats([*honest.values(), NormalStats(c, c * m, c * (sd * sd + m * m))])
    envelope = replica_var(worst, 0.99, DEFAULT_PRIOR)
    assert honest_var * 0.9 < served <= envelope * (1 + 1e-9) < 1.5 * honest_var
    assert st_["robust"]["count"] <= 240 + COUNT_SLACK * 80


# --- ledgers merged after a partition -------------------------------------------------


def test_ledgers_merge_after_a_partition_heals(cluster: dict[str, Any]) -> None:
    names, proxy, admin = cluster["names"], cluster["proxy"], cluster["admin"]
    for n in names:
        cluster["start"](n)
    side_a, side_b = ["a", "b"], ["c", "d"]
    rng = np.random.default_rng(11)
    for n in names:
        assert admin.request(n, "observe", values=rng.normal(0, 0.01, 5).tolist())["ok"]
    wait_until("every node to import every peer's first entries", lambda: all(
        all(v["entries"] >= 1 for v in _status(cluster, n)["imports"].values())
        for n in names), 30)
    sizes_before = {n: _status(cluster, n)["ledger"]["size"] for n in names}
    for s in side_a:
        for d in side_b:
            proxy.block(s, d)
            proxy.block(d, s)
    try:
        for n in names:  # each side records while cut off
            assert admin.request(n, "observe", values=rng.normal(0, 0.01, 5).tolist())["ok"]
        # wait until each side has imported its own side's partition entry (a fixed sleep
        # raced the gossip on a loaded machine), then check nothing crossed the cut
        wait_until("a and c to import their own side's partition entries", lambda: (
            _status(cluster, "a")["imports"]["b"]["entries"] == 2
            and _status(cluster, "c")["imports"]["d"]["entries"] == 2), 30)
        a = _status(cluster, "a")
        assert a["imports"]["c"]["entries"] == 1 and a["imports"]["b"]["entries"] == 2
        assert _status(cluster, "c")["imports"]["a"]["entries"] == 1
    finally:
        proxy.unblock_all()
    wait_until("each side to import the other's partition entries", lambda: all(
        all(v["entries"] >= 2 for v in _status(cluster, n)["imports"].values())
        for n in names), 40)
    _stop(cluster)
    ring = cluster["ring"]
    for n in names:
        with Ledger(cluster["tmp"] / n, create=False) as ledger:
            assert ledger.verify_chain().ok
            # its own prefix is untouched: the head before extends to the head after
            ledger.consistency_proof(sizes_before[n]).verify(
                root1=ledger.compute_merkle_root(sizes_before[n]),
                root2=ledger.compute_merkle_root())
            imported: dict[str, list[dict[str, Any]]] = {}
            for entry in ledger.entries():
                if entry.data.get("type") != IMPORT_RECORD:
                    continue
                d = entry.data["details"]
                key = ring.nodes[d["peer"]].public_bytes(Encoding.Raw, PublicFormat.Raw)
                assert check_import_record(d, key) == len(d["entries"])
                imported.setdefault(d["peer"], []).extend(i["entry"] for i in d["entries"])
            for peer in names:
                if peer == n:
                    continue
                got = [e["data"]["details"] for e in imported[peer]
                       if e["data"]["type"] == "mesh.observe"]
                assert len(got) == 2 and all(g["node"] == peer for g in got)
                with Ledger(cluster["tmp"] / peer, create=False) as theirs:
                    own = [e for e in theirs.entries()
                           if e.data.get("type") == "mesh.observe"]
                    assert [e.hash.hex() for e in own] == [
                        e["hash"] for e in imported[peer] if e["data"]["type"] == "mesh.observe"]


# --- forged batches -------------------------------------------------------------------


def test_forged_or_tampered_batches_are_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with Ledger.in_memory(signing_key=key) as ledger:
        for i in range(5):
            ledger.record_action("mesh.observe", {"node": "p", "values": [0.01 * i]})
            ledger.record_action("mesh.member", {"node": "p", "peer": "q", "event": "alive"})
        body = batch_for(ledger, 0)
        batch = check_batch("p", body, raw, 0)
        assert len(batch.items) == 5 and batch.next == ledger.size
        assert check_import_record(batch.record(), raw) == 5

        def refused(b: dict[str, Any], k: bytes = raw, start: int = 0, peer: str = "p") -> None:
            with pytest.raises(RefusedMessage):
                check_batch(peer, b, k, start)

        tampered = batch_for(ledger, 0)
        tampered["entries"][2]["entry"]["data"]["details"]["values"] = [9.0]
        refused(tampered)  # its hash no longer matches
        refused(body, other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        refused(body, peer="q")  # not q's own entries
        refused(body, start=1)  # does not follow the cursor
        moved = batch_for(ledger, 0)
        moved["entries"][0]["proof"]["path"] = moved["entries"][1]["proof"]["path"]
        refused(moved)
        refused({"start": 0})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(path=st.lists(st.sampled_from(["head", "entries", 0, "entry", "proof", "data", "index",
                                      "path", "root", "size", "start", "next", "skipped",
                                      "details", "hash", "timestamp", "kind", "signature"]),
                     min_size=1, max_size=5),
       value=json_values)
def test_any_damaged_batch_is_refused_cleanly(path: list[Any], value: Any) -> None:
    key, good = _signed_batch()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body = copy.deepcopy(good)
    target: Any = body
    for step in path[:-1]:  # walk as far as the path goes, then overwrite one field
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            break
    try:
        target[path[-1]] = value
    except (IndexError, TypeError):
        return
    if body == good:
        return
    try:
        batch = check_batch("p", body, raw, 0)
    except RefusedMessage:
        return
    # what passed is still exactly the peer's signed entries
    assert [i["entry"]["hash"] for i in batch.items] == [
        i["entry"]["hash"] for i in good["entries"]][:len(batch.items)]
    assert all(isinstance(x, dict) and set(x) == {"index", "hash"} for x in batch.skipped)


@functools.cache
def _signed_batch() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    with Ledger.in_memory(signing_key=key) as ledger:
        for i in range(3):
            ledger.record_action("mesh.observe", {"node": "p", "values": [0.01 * i]})
        return key, batch_for(ledger, 0)


def test_a_flood_of_entry_requests_is_throttled(tmp_path: Path) -> None:
    keys = {n: Ed25519PrivateKey.generate() for n in "ab"}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    ports = free_ports(2)
    node = MeshNode(NodeConfig("a", f"tcp://127.0.0.1:{ports[0]}",
                               {"b": f"tcp://127.0.0.1:{ports[1]}"}, ring),
                    keys["a"], epoch=time.time_ns())
    try:
        node.observe([0.01, -0.02])
        for seq in range(1, 101):  # 100 requests within a few milliseconds
            frames = seal(keys["b"], "b", "a", 1, seq, MessageKind.ENTRIES_REQUEST,
                          {"start": 0})
            node.on_frames([b"b", *frames], 10.0 + seq * 1e-5)
        # b's join (catch-up: statistics, head), then one batch answered
        assert node.transport.queued == 3 and node.accepted["entries_request"] == 100
        assert node.refused["throttled"] == 99
        frames = seal(keys["b"], "b", "a", 1, 101, MessageKind.ENTRIES_REQUEST, {"start": -1})
        node.on_frames([b"b", *frames], 11.0)
        assert node.refused["malformed"] == 1
    finally:
        node.close()


def _node_with_home(tmp_path: Path) -> tuple[MeshNode, dict[str, Ed25519PrivateKey]]:
    keys = {n: Ed25519PrivateKey.generate() for n in "ab"}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    ports = free_ports(2)
    node = MeshNode(NodeConfig("a", f"tcp://127.0.0.1:{ports[0]}",
                               {"b": f"tcp://127.0.0.1:{ports[1]}"}, ring,
                               home=tmp_path / "a"),
                    keys["a"], epoch=time.time_ns())
    return node, keys


def test_a_damaged_ledger_sends_no_head_and_the_node_keeps_serving(tmp_path: Path) -> None:
    node, _ = _node_with_home(tmp_path)
    try:
        node.ledger.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100})
                                 for i in range(150)])
        smash_page(tmp_path / "a" / "ledger.sqlite")
        now = time.monotonic() + 3600.0
        node.step(now)  # every timer due: heartbeat, gossip of the head (raised out of step)
        assert node.refused["damaged ledger"] == 1 and not node.stop
        node.step(now + 3600.0)  # still serving: the next gossip is refused the same way
        assert node.refused["damaged ledger"] == 2 and not node.stop
    finally:
        node.close()


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(st.one_of(
    st.lists(st.floats(-1e6, 1e6, allow_subnormal=True), min_size=1, max_size=6),
    st.integers(0, 5)), max_size=4), max_size=4))
def test_ledgered_statistics_equal_normalstats_exactly(batches: list[list[Any]]) -> None:
    book = LedgeredStats(-0.1)
    values: list[float] = []
    index = 0
    for batch in batches:
        items = []
        for e in batch:
            index += 1
            if isinstance(e, int):  # an inject_data entry of e anomalies
                data = {"type": "mesh.inject_data", "details": {"anoms": e, "node": "p"}}
                values.extend([-0.1] * e)
            else:
                data = {"type": "mesh.observe", "details": {"values": e, "node": "p"}}
                values.extend(e)
            items.append({"entry": {"index": index, "data": data}})
            items.append({"entry": {"index": index, "data": {"type": "mesh.member"}}})
        book.add("p", items)
        version = book.covered("p")
        if version:  # exactly NormalStats.of, as the peer's own _publish_own computes it
            assert book.judge("p", Contribution(version, NormalStats.of(values))) is True
            assert book.judge("p", Contribution(version, NormalStats.of([*values, 1.0]))) is False
    assert book.judge("p", Contribution(book.covered("p") + 1, NormalStats.of([0.0]))) is None


def test_a_batch_repeating_or_reordering_entries_is_refused() -> None:
    """Items must come once each, in ledger order (skipped ones apart from them): a peer
    repeating a small gain and dropping a loss would otherwise have its lie "justified"
    by the statistics its own batch makes the importer recompute."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with Ledger.in_memory(signing_key=key) as ledger:
        for v in (0.01, -0.05, 0.02):
            ledger.record_action("mesh.observe", {"node": "p", "values": [v]})
        body = batch_for(ledger, 0)
    e = body["entries"]
    assert len(check_batch("p", body, raw, 0).items) == 3
    skip = {"index": e[1]["entry"]["index"], "hash": e[1]["entry"]["hash"]}
    for items, skipped in (([e[0], e[0], e[2]], []), ([e[2], e[0]], []),
                           ([e[0], e[1], e[2]], [skip]), ([e[0]], [skip, skip])):
        with pytest.raises(RefusedMessage, match="malformed"):
            check_batch("p", {**body, "entries": items, "skipped": skipped}, raw, 0)
    assert len(check_batch("p", {**body, "entries": [e[0], e[2]], "skipped": [skip]},
                           raw, 0).items) == 2


def test_a_ledger_forked_only_in_its_imports_is_caught(cluster: dict[str, Any]) -> None:
    """d gossips its real head but answers imports from another ledger signed with its key:
    the import's head is held to the gossiped ones, so the fork is reported, not imported."""
    for n in cluster["names"]:
        cluster["start"](n)
    wait_until("a to hold d's head", lambda: "d" in cluster["nodes"]["a"].heads.accepted, 30)
    a, d = cluster["nodes"]["a"], cluster["nodes"]["d"]
    forks: list[Ledger] = []

    def forked_answer(ledger: Ledger, peer: str, start: int, now: float) -> dict[str, Any]:
        # another ledger under d's key, as long as the head a holds (or shorter, if a moved
        # on meanwhile): a same-size head with another root, or a shrunk one
        size = a.heads.accepted["d"].size
        fork = Ledger.in_memory(signing_key=cluster["keys"]["d"])
        for i in range(size - 1):
            fork.record_action("mesh.observed", {"values": [0.5 + i]})
        forks.append(fork)
        return batch_for(fork, min(start, fork.size))

    d.peer_ledgers.answer = forked_answer
    # d's real ledger grows, so its gossiped head moves past what a imported: a asks again
    assert cluster["admin"].request("d", "observe", values=[0.001, -0.002])["ok"]
    wait_until("a to report d's fork", lambda: "d" in _status(cluster, "a")["forks"], 30)
    _stop(cluster)
    with Ledger(cluster["tmp"] / "a", create=False) as ledger:
        assert ledger.verify_chain().ok
        imported_roots = {e.data["details"]["head"]["root"] for e in ledger.entries()
                          if e.data.get("type") == IMPORT_RECORD
                          and e.data["details"].get("peer") == "d"}
        reports = [e.data["details"] for e in ledger.entries()
                   if e.data.get("type") == "mesh.fork_detected"]
    assert forks and not {f.signed_head().to_dict()["root"] for f in forks} & imported_roots
    assert [r["peer"] for r in reports] == ["d"]


def test_a_run_of_oversized_entries_keeps_each_answer_within_the_byte_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries too large to send are named in ``skipped``; the names count toward the batch
    too, so hundreds of them never push an answer past the message limit (which would stall
    importing from that peer), and the cursor still moves on."""
    from swarmvar.canonical import canonical_json
    from swarmvar.mesh import imports

    limit = 1_500
    monkeypatch.setattr(imports, "MAX_BATCH_BYTES", limit)
    led = Ledger.in_memory(signing_key=Ed25519PrivateKey.generate())
    for i in range(60):
        led.record_action("mesh.observe", {"node": "p", "values": [0.001] * 200, "i": i})
    start, seen = 1, []
    for _ in range(60):
        body = batch_for(led, start)
        assert len(canonical_json(body["skipped"])) <= limit
        assert body["next"] > start
        seen += [x["index"] for x in body["skipped"]]
        start = body["next"]
        if start >= led.size:
            break
    assert seen == list(range(1, led.size))  # every oversized entry named once, in order


def test_a_damaged_ledger_answers_no_catch_up_request_and_counts_it(tmp_path: Path) -> None:
    """A catch-up batch carries a signed head: over a damaged file none is sent, the
    request is counted as "damaged ledger" (not "internal"), and the node serves on."""
    node, keys = _node_with_home(tmp_path)
    try:
        node.ledger.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100})
                                 for i in range(150)])
        smash_page(tmp_path / "a" / "ledger.sqlite")
        frames = seal(keys["b"], "b", "a", 1, 1, MessageKind.ENTRIES_REQUEST, {"start": 0})
        node.on_frames([b"b", *frames], 10.0)
        # b's join pushes statistics and tries a head (refused); the request is refused too
        assert node.accepted["entries_request"] == 1
        assert node.refused["damaged ledger"] == 2 and node.refused["internal"] == 0
        assert node.transport.queued == 1 and not node.stop  # the statistics alone
    finally:
        node.close()


def test_a_locked_ledger_skips_the_head_without_stalling_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The damage check meeting a lock: it waits the mesh's CHECK_TIMEOUT (not the
    store's 60 s), the head is skipped and counted as "ledger unavailable" (no raw
    error out of step()), and the next gossip, lock gone, signs again. The lock is
    simulated at the check's connection (a live WAL connection in this process keeps
    any other from taking the file's exclusive lock); tests/ledger/
    test_ledger_damage_cap.py shows a real lock raising after the timeout."""
    import sqlite3

    from swarmvar.ledger import damage as damage_module
    from swarmvar.mesh.node import CHECK_TIMEOUT

    node, _ = _node_with_home(tmp_path)
    waited: list[float] = []

    def locked(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
        waited.append(timeout)
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorcode = 5  # SQLITE_BUSY
        raise exc

    try:
        node.ledger.add_entries([(EntryKind.ESTIMATE, {"i": i}) for i in range(20)])
        now = time.monotonic() + 3600.0
        with monkeypatch.context() as m:
            m.setattr(damage_module, "open_read_only", locked)
            node.step(now)  # every timer due: the head's check meets the lock
        assert waited == [CHECK_TIMEOUT] and CHECK_TIMEOUT <= 0.25
        assert node.refused["ledger unavailable"] == 1 and not node.stop
        assert node.refused["damaged ledger"] == 0 and node.refused["internal"] == 0
        queued = node.transport.queued
        node.step(now + 3600.0)  # not memoised: checked again, whole, a head is sent
        assert node.refused["ledger unavailable"] == 1 and node.transport.queued > queued
    finally:
        node.close()
