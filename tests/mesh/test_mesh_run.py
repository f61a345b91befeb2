"""``swarmvar run --mesh``: three swarm processes on loopback agree and ledger it.

Each process runs the real swarm (three agents, its own seed) and its mesh
node (its ledger in ``HOME/mesh``); every ``--mesh-agree-every`` beats the
nodes run an agreement on their swarms' consensus VaR. Afterwards each node's
ledger holds the agreed value (the same on every node, inside the range of
the swarms' values at that beat) and its peers' beats, imported and checked.
Bounded: every process has ``--beats`` and a rate, and the test a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.mesh import Cluster, NodeKeyRing, free_ports, write_cluster, write_key
from swarmvar.mesh.imports import check_import_record
from swarmvar.mesh.launch import resolve_peers

pytestmark = pytest.mark.timeout(240)
NAMES = ["r0", "r1", "r2"]
BEATS, EVERY = 20, 10
FAST = ["--agents", "nig,bootstrap,student-t", "--window", "150", "--quiet", "--beats", str(BEATS),
        "--rate", "5", "--mesh-agree-every", str(EVERY)]


def _setup(tmp: Path) -> tuple[dict[str, Path], dict[str, int], dict[str, Ed25519PrivateKey]]:
    keys = {n: Ed25519PrivateKey.generate() for n in NAMES}
    ports = dict(zip(NAMES, free_ports(len(NAMES)), strict=True))
    homes = {n: tmp / n for n in NAMES}
    for n in NAMES:
        (homes[n] / "mesh").mkdir(parents=True)
        write_key(homes[n] / "mesh" / "node.key", keys[n])
        write_cluster(homes[n] / "mesh" / "cluster.json",
                      {m: f"tcp://127.0.0.1:{ports[m]}" for m in NAMES}, keys, {})
    return homes, ports, keys


def _entries(home: Path, kind: str) -> list[dict[str, Any]]:
    with Ledger(home, create=False) as ledger:
        assert ledger.verify_chain().ok
        return [e.data["details"] for e in ledger.entries() if e.data.get("type") == kind]


def test_three_run_mesh_processes_agree_and_ledger_it(tmp_path: Path) -> None:
    homes, ports, keys = _setup(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = {}
    try:
        for i, n in enumerate(NAMES):
            peers = [a for m in NAMES if m != n for a in ("--peer", f"tcp://127.0.0.1:{ports[m]}")]
            procs[n] = subprocess.Popen(
                [sys.executable, "-c", "from swarmvar.cli import main; main()", "run", "--home",
                 str(homes[n]), "--mesh", "--mesh-port", str(ports[n]), *peers, "--seed", str(i),
                 *FAST], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outs = {n: p.communicate(timeout=200) for n, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=20)
    for n, p in procs.items():
        assert p.returncode == 0, outs[n][1][-3000:]
        assert f"{BEATS} beats" in outs[n][0] and f"mesh node {n}: 2 agreement runs" in outs[n][0]
    agreed: dict[str, dict[str, float]] = {}
    own_var: dict[str, dict[int, float]] = {}
    for n in NAMES:
        mesh_home = homes[n] / "mesh"
        agreed[n] = {d["run"]: d["value"] for d in _entries(mesh_home, "mesh.agreement")}
        own_var[n] = {d["beat"]["seq"]: d["beat"]["var"]
                      for d in _entries(mesh_home, "mesh.observe")}
        assert sorted(own_var[n]) == list(range(1, BEATS + 1))  # every beat of its swarm
        imported: dict[str, int] = {}
        for d in _entries(mesh_home, "mesh.imported"):
            key = keys[d["peer"]].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            imported[d["peer"]] = imported.get(d["peer"], 0) + check_import_record(d, key)
        assert set(imported) == set(NAMES) - {n}  # its peers' beats, checked
        assert all(v >= EVERY for v in imported.values()), imported
    for seq in (EVERY, BEATS):
        run = f"beat-sp500-{seq}"
        values = [agreed[n][run] for n in NAMES]
        start = [own_var[n][seq] for n in NAMES]
        assert max(values) - min(values) <= 1e-9  # agreed (f = 0 among 3: one exact round)
        assert min(start) - 1e-12 <= values[0] <= max(start) + 1e-12
        print(f"{run}: swarms {start} -> agreed {values[0]}")


def test_mesh_options_are_checked(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    res = runner.invoke(app, ["run", "--home", str(tmp_path / "a"), "--peer",
                              "tcp://127.0.0.1:1", *FAST])
    assert res.exit_code == 2 and "--mesh" in res.output
    res = runner.invoke(app, ["run", "--home", str(tmp_path / "b"), "--mesh", "--mesh-port",
                              str(free_ports(1)[0]), *FAST])
    assert res.exit_code == 2 and "cluster" in res.output  # no cluster file in HOME/mesh
    assert not (tmp_path / "b").exists()  # refused before the swarm made its home
    homes, ports, _ = _setup(tmp_path / "c")
    res = runner.invoke(app, ["run", "--home", str(homes["r0"]), "--mesh", "--mesh-port",
                              "1", *FAST])
    assert res.exit_code == 2 and "--mesh-id" in res.output  # port 1 names no node
    res = runner.invoke(app, ["run", "--home", str(homes["r0"]), "--mesh", "--mesh-port",
                              str(ports["r0"]), "--peer", "tcp://127.0.0.1:1", *FAST])
    assert res.exit_code == 2 and "no single peer" in res.output
    res = runner.invoke(app, ["run", "--home", str(homes["r0"]), "--mesh", "--mesh-port",
                              str(ports["r0"]), *FAST, "--mesh-agree-every", "-1"])
    assert res.exit_code == 2
    doc = json.loads((homes["r0"] / "mesh" / "cluster.json").read_text())
    assert set(doc["nodes"]) == set(NAMES)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(
    st.sampled_from(["tcp://127.0.0.1:9001", "r2=tcp://10.0.0.2:9", "tcp://127.0.0.1:9000",
                     "r9=tcp://x:1", "r1=http://x", "=tcp://x:1"]),
    st.text(alphabet="rn012=tcp:/.17:9", max_size=30)), max_size=4))
def test_any_peer_text_is_resolved_or_refused_clearly(values: list[str]) -> None:
    cluster = Cluster({"r0": "tcp://127.0.0.1:9000", "r1": "tcp://127.0.0.1:9001",
                       "r2": "tcp://127.0.0.1:9002"}, NodeKeyRing({}))
    try:
        peers = resolve_peers(cluster, "r0", values)
    except InvalidParameter as exc:
        assert "--peer" in str(exc)
        return
    for name, address in peers.items():
        assert name and address.startswith("tcp://")
        assert f"{name}={address}" in values or address in values
