"""Mesh: one-hop latency, send pacing, agreement among 7 nodes, signed messages accepted per second.

Every figure sits beside a reference measured in the same run:

* one-hop latency of a signed, checked mesh message (seal, send, receive,
  verify, replay check) as half a ping-pong over loopback TCP, beside a bare
  pyzmq DEALER/ROUTER ping-pong with the same payload (the design documents
  claim 0.5 ms propagation);
* a burst through :class:`~swarmvar.mesh.transport.Transport` with the design's
  adaptive delay beside plain backpressure (messages/s, enqueue-to-delivery
  latency);
* 7 mesh nodes (threads of this process) agreeing to eps = 1e-9: rounds and
  wall milliseconds, beside the consensus engine's in-process rounds;
* checked VALUE messages one node accepts per second, beside bare Ed25519
  verifications per second.

Run: ``python benchmarks/bench_mesh.py [--quick]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time

import numpy as np
import zmq
from _table import print_table
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.consensus.agreement import rounds_needed, run_agreement
from swarmvar.mesh import (
    AdminClient,
    Inbox,
    MeshNode,
    MessageKind,
    NodeConfig,
    NodeKeyRing,
    SendPolicy,
    free_ports,
    seal,
)
from swarmvar.mesh.transport import Transport


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _ping_pong(n: int) -> tuple[list[float], list[float]]:
    """Round trips (s): bare pyzmq, then signed and checked both ways."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    for s in (router, dealer):
        s.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    ka, kb = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = NodeKeyRing({"a": ka.public_key(), "b": kb.public_key()})
    inbox_a, inbox_b = Inbox(), Inbox()
    body = {"run": "bench", "round": 1, "value": 0.0123456789}
    sample = seal(ka, "a", "b", 1, 1, MessageKind.VALUE, body)
    bare, signed = [], []
    try:
        for i in range(n + 20):
            t = time.perf_counter()
            dealer.send_multipart(sample)
            rid, *frames = router.recv_multipart()
            router.send_multipart([rid, *frames])
            dealer.recv_multipart()
            if i >= 20:
                bare.append(time.perf_counter() - t)
        for i in range(n + 20):
            t = time.perf_counter()
            dealer.send_multipart(seal(ka, "a", "b", 1, i + 1, MessageKind.VALUE, body))
            rid, *frames = router.recv_multipart()
            inbox_b.push(ring.open(frames, "b"), 0.0)
            router.send_multipart([rid, *seal(kb, "b", "a", 1, i + 1, MessageKind.VALUE, body)])
            inbox_a.push(ring.open(dealer.recv_multipart(), "a"), 0.0)
            if i >= 20:
                signed.append(time.perf_counter() - t)
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()
    return bare, signed


def _burst(policy: SendPolicy, n: int) -> tuple[float, float, float]:
    """Messages/s, median and p99 enqueue-to-delivery latency (s) of an ``n``-message burst."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sink = ctx.socket(zmq.ROUTER)
    sink.setsockopt(zmq.LINGER, 0)
    port = sink.bind_to_random_port("tcp://127.0.0.1")
    (own,) = free_ports(1)
    transport = Transport(ctx, f"tcp://127.0.0.1:{own}", {"sink": f"tcp://127.0.0.1:{port}"},
                          policy=policy)
    key = Ed25519PrivateKey.generate()
    frames = [seal(key, "a", "sink", 1, i + 1, MessageKind.VALUE,
                   {"run": "b", "round": i, "value": 0.0}) for i in range(n)]  # signed beforehand
    try:
        time.sleep(0.2)  # connect
        queued_at = []
        start = time.perf_counter()
        for fr in frames:
            queued_at.append(time.perf_counter())
            transport.enqueue("sink", fr, time.monotonic())
        got: list[float] = []
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            transport.pump(time.monotonic())
            while sink.poll(0):
                header = sink.recv_multipart()[1]
                i = int(header.split(b'"round":')[1].split(b",")[0])
                got.append(time.perf_counter() - queued_at[i])
        elapsed = time.perf_counter() - start
    finally:
        transport.close()
        sink.close(0)
        ctx.term()
    return len(got) / elapsed, statistics.median(got), float(np.percentile(got, 99))


def _agreement(n_nodes: int, eps: float) -> tuple[int, float, float]:
    """Rounds, wall seconds of a mesh run among ``n_nodes`` threads, and the engine's seconds."""
    names = [f"n{i}" for i in range(n_nodes)]
    keys = {n: Ed25519PrivateKey.generate() for n in names}
    admin = Ed25519PrivateKey.generate()
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()}, {"root": admin.public_key()})
    addresses = {n: f"tcp://127.0.0.1:{p}" for n, p in zip(names, free_ports(n_nodes),
                                                          strict=True)}
    nodes = [MeshNode(NodeConfig(n, addresses[n], {p: a for p, a in addresses.items() if p != n},
                                 ring), keys[n], epoch=time.time_ns()) for n in names]
    threads = [threading.Thread(target=x.run, args=(120.0,), daemon=True) for x in nodes]
    for t in threads:
        t.start()
    client = AdminClient("root", admin, ring, addresses)
    f = (n_nodes - 1) // 3
    rng = np.random.default_rng(0)
    values = rng.uniform(0.01, 0.05, n_nodes)
    rounds = rounds_needed(float(np.ptp(values)), eps, n_nodes, f)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                len(x.members.alive()) == n_nodes - 1 for x in nodes):
            time.sleep(0.05)
        start = time.perf_counter()
        for n, v in zip(names, values, strict=True):
            client.request(n, "agree", run="bench", value=float(v), f=f, rounds=rounds,
                           round_timeout=1.0)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all("bench" in x.finished for x in nodes):
            time.sleep(0.001)
        elapsed = time.perf_counter() - start
        final = [x.finished["bench"].values[-1] for x in nodes]
        assert max(final) - min(final) <= eps, "the bench run did not reach eps"
    finally:
        for x in nodes:
            x.stop = True
        for t in threads:
            t.join(timeout=10)
        client.close()
    t = time.perf_counter()
    ref = run_agreement(values, 0, eps=eps, relative=False) if f == 0 else \
        run_agreement(values[: n_nodes - f], f, eps=eps, relative=False)
    engine = time.perf_counter() - t
    assert ref.converged
    return rounds, elapsed, engine


def _accept_rate(n: int) -> tuple[float, float]:
    """Checked VALUE messages per second one node accepts; bare Ed25519 verifies per second."""
    names = ["sink", "s1", "s2", "s3"]
    keys = {x: Ed25519PrivateKey.generate() for x in names}
    ring = NodeKeyRing({x: k.public_key() for x, k in keys.items()})
    addresses = {x: f"tcp://127.0.0.1:{p}" for x, p in zip(names, free_ports(len(names)),
                                                          strict=True)}
    node = MeshNode(NodeConfig("sink", addresses["sink"],
                               {p: a for p, a in addresses.items() if p != "sink"}, ring),
                    keys["sink"], epoch=1)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    senders = {}
    for x in names[1:]:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.connect(addresses["sink"])
        senders[x] = s
    per = n // 3
    frames = {x: [seal(keys[x], x, "sink", 1, i + 1, MessageKind.VALUE,
                       {"run": "flood", "round": i, "value": 0.01 * i})
                  for i in range(per)] for x in names[1:]}
    try:
        time.sleep(0.3)
        for x, s in senders.items():
            for fr in frames[x]:
                s.send_multipart(fr)
        deadline = time.monotonic() + 60
        start = time.perf_counter()
        while node.accepted["value"] < 3 * per and time.monotonic() < deadline:
            if node.transport.router.poll(10):
                node.step(time.monotonic())
        rate = node.accepted["value"] / (time.perf_counter() - start)
    finally:
        for s in senders.values():
            s.close(0)
        ctx.term()
        node.close()
    pub, sig = keys["s1"].public_key(), frames["s1"][0]
    t = time.perf_counter()
    for _ in range(per):
        pub.verify(sig[1], sig[0])
    return rate, per / (time.perf_counter() - t)


def main(quick: bool = False) -> None:
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    n_ping = 200 if quick else 5000
    bare, signed = _ping_pong(n_ping)
    half = [x / 2 for x in signed]
    bare_half = [x / 2 for x in bare]
    rows = [
        ("one hop, signed+checked (median)", _ms(statistics.median(half)), "0.5 ms (design)",
         f"bare pyzmq {_ms(statistics.median(bare_half))}",
         str(statistics.median(half) <= 0.0005)),
        ("one hop, signed+checked (p99)", _ms(float(np.percentile(half, 99))), "-",
         f"bare pyzmq {_ms(float(np.percentile(bare_half, 99)))}", "-"),
    ]
    n_burst = 300 if quick else 5000
    bp = _burst(SendPolicy.BACKPRESSURE, n_burst)
    ad = _burst(SendPolicy.ADAPTIVE_DELAY, n_burst)
    rows += [
        (f"burst of {n_burst}: adaptive delay", f"{ad[0]:,.0f} msg/s", "-",
         f"backpressure {bp[0]:,.0f} msg/s", str(bp[0] >= ad[0])),
        ("burst latency median: adaptive delay", _ms(ad[1]), "-", f"backpressure {_ms(bp[1])}",
         str(bp[1] <= ad[1])),
        ("burst latency p99: adaptive delay", _ms(ad[2]), "-", f"backpressure {_ms(bp[2])}", "-"),
    ]
    eps = 1e-3 if quick else 1e-9
    rounds, wall, engine = _agreement(7, eps)
    rows.append((f"7 nodes agree to eps={eps:g} (f=2)", f"{rounds} rounds, {wall * 1e3:.0f} ms",
                 "-", f"engine in-process {engine * 1e3:.1f} ms", "-"))
    rate, verify = _accept_rate(600 if quick else 30_000)
    rows.append(("signed values accepted by one node", f"{rate:,.0f} /s", "-",
                 f"bare Ed25519 verify {verify:,.0f} /s", "-"))
    print(f"bench_mesh (quick={quick}, load average {load})")
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
