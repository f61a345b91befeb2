"""Admin commands and the CLI: bad input answered with a clear error, nothing stored half-way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import SwarmVarError
from swarmvar.mesh import MeshNode, NodeConfig, NodeKeyRing, free_ports

KEYS = {n: Ed25519PrivateKey.generate() for n in ("a", "b", "c", "d")}
RING = NodeKeyRing({n: k.public_key() for n, k in KEYS.items()})


@pytest.fixture(scope="module")
def node() -> Iterator[MeshNode]:
    port, *others = free_ports(4)
    peers = {p: f"tcp://127.0.0.1:{q}" for p, q in zip("bcd", others, strict=True)}
    n = MeshNode(NodeConfig("a", f"tcp://127.0.0.1:{port}", peers, RING), KEYS["a"],
                 epoch=time.time_ns())
    yield n
    n.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                         allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["agree", "observe", "inject", "status", "nope", None]),
       st.dictionaries(st.sampled_from(["run", "value", "f", "rounds", "round_timeout",
                                        "values", "genome", "anoms", "ml_weight"]),
                       json_values, max_size=6))
def test_any_admin_body_is_answered_never_raised(node: MeshNode, op: object,
                                                 body: dict[str, object]) -> None:
    before = (node.ledger.size, node._version, list(node._observations))
    answer = node.handle_admin({"op": op, **body}, time.monotonic())
    assert isinstance(answer, dict) and isinstance(answer["ok"], bool)
    if not answer["ok"]:
        assert answer["error"]  # says what was wrong
        assert (node.ledger.size, node._version, list(node._observations)) == before


def test_inject_data_checks_then_records(node: MeshNode) -> None:
    size = node.ledger.size
    bad = node.handle_admin({"op": "inject", "genome": [0.25, 0.25, 0.15, 0.35], "anoms": 3,
                             "ml_weight": 1.5}, 0.0)
    assert not bad["ok"] and "ml_weight" in bad["error"] and node.ledger.size == size
    ok = node.handle_admin({"op": "inject", "genome": [0.25, 0.25, 0.15, 0.35], "anoms": 3,
                            "ml_weight": 0.3}, 0.0)
    assert ok["ok"] and node.ledger.size == size + 1
    last = node.ledger.entry(node.ledger.size - 1).data
    assert last["type"] == "mesh.inject_data" and last["details"]["anoms"] == 3
    assert node.genome.e == 0.3 and node.crdt.read().count >= 3
    bad_obs = node.handle_admin({"op": "observe", "values": [0.01, float("nan")]}, 0.0)
    assert not bad_obs["ok"]
    nan_agree = node.handle_admin({"op": "agree", "run": "x", "f": 1, "rounds": 3,
                                   "round_timeout": 1.0}, 0.0)
    assert not nan_agree["ok"] and "no swarm estimate" in nan_agree["error"]


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    cluster = tmp_path / "cluster.json"
    cluster.write_text("{}")
    key = tmp_path / "k.key"
    r = runner.invoke(app, ["mesh", "keygen", str(key)])
    assert r.exit_code == 0 and len(r.output.strip()) == 64
    r = runner.invoke(app, ["mesh", "keygen", str(key)])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, ["mesh", "node", "--id", "a", "--cluster", str(cluster), "--key",
                            str(key)])
    assert r.exit_code == 2 and "nodes" in r.output
    r = runner.invoke(app, ["mesh", "node", "--id", "a", "--cluster", str(cluster), "--key",
                            str(key), "--policy", "fast"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["mesh", "node", "--id", "a", "--cluster", str(cluster), "--key",
                            str(key), "--peer", "b=udp://x"])
    assert r.exit_code == 2


def test_cli_node_and_status_end_to_end(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from swarmvar.mesh import write_cluster, write_key

    (port,) = free_ports(1)
    node_key, admin_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_key(tmp_path / "n0.key", node_key)
    write_key(tmp_path / "admin.key", admin_key)
    cluster = tmp_path / "cluster.json"
    write_cluster(cluster, {"n0": f"tcp://127.0.0.1:{port}", "n1": "tcp://127.0.0.1:1"},
                  {"n0": node_key, "n1": Ed25519PrivateKey.generate()}, {"admin": admin_key})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from swarmvar.cli import main; main()", "mesh", "node",
         "--id", "n0", "--cluster", str(cluster), "--key", str(tmp_path / "n0.key"),
         "--port", str(port), "--peer", "n1=tcp://127.0.0.1:2", "--max-seconds", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        runner = CliRunner()
        app = build_app()
        answer: dict[str, object] = {}
        for _ in range(10):  # the node may still be starting
            r = runner.invoke(app, ["mesh", "status", "n0", "--cluster", str(cluster),
                                    "--admin", "admin", "--key", str(tmp_path / "admin.key"),
                                    "--timeout", "3"])
            if r.exit_code == 0:
                answer = json.loads(r.output)
                break
        assert answer.get("ok") is True
        status = answer["status"]
        assert isinstance(status, dict) and status["node"] == "n0"
        assert status["members"] == {"n1": "suspect"} or status["members"] == {"n1": "dead"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0  # SIGTERM: a graceful stop


def test_inject_data_keeps_the_observation_limit(node: MeshNode,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.mesh import node as node_module

    monkeypatch.setattr(node_module, "MAX_OBSERVATIONS", len(node._observations) + 2)
    before = (node.ledger.size, node._version, list(node._observations))
    answer = node.handle_admin({"op": "inject", "genome": [0.25, 0.25, 0.15, 0.35],
                                "anoms": 3, "ml_weight": 0.3}, 0.0)
    assert not answer["ok"] and "limit" in answer["error"]
    assert (node.ledger.size, node._version, list(node._observations)) == before


def test_cli_status_after_an_f0_agreement_on_two_nodes(tmp_path: Path) -> None:
    """A 2-node cluster can only run f = 0: the status must still be JSON (factor null)."""
    import json
    import subprocess
    import sys

    from swarmvar.mesh import AdminClient, load_cluster, write_cluster, write_key

    names = ("n0", "n1")
    ports = free_ports(2)
    keys = {n: Ed25519PrivateKey.generate() for n in names}
    admin_key = Ed25519PrivateKey.generate()
    for n in names:
        write_key(tmp_path / f"{n}.key", keys[n])
    write_key(tmp_path / "admin.key", admin_key)
    cluster = tmp_path / "cluster.json"
    write_cluster(cluster, {n: f"tcp://127.0.0.1:{p}" for n, p in zip(names, ports, strict=True)},
                  keys, {"admin": admin_key})
    procs = [subprocess.Popen(
        [sys.executable, "-c", "from swarmvar.cli import main; main()", "mesh", "node",
         "--id", n, "--cluster", str(cluster), "--key", str(tmp_path / f"{n}.key"),
         "--max-seconds", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in names]
    spec = load_cluster(cluster)
    client = AdminClient("admin", admin_key, spec.ring, spec.addresses)
    try:
        for n in names:  # wait until each node answers (it may still be starting)
            for _ in range(20):
                try:
                    if client.request(n, "status", timeout=3).get("ok"):
                        break
                except SwarmVarError:
                    client.reset(n)
        for i, n in enumerate(names):  # then ask once: a retried "agree" would reuse the id
            answer = client.request(n, "agree", timeout=15, run="r1", value=float(i),
                                    f=0, rounds=2, round_timeout=10.0)
            assert answer == {"ok": True, "re": answer["re"]}, answer
        # wait for the run to finish at n1, the node asked below (waiting on n0 alone raced
        # n1's last round on a loaded machine); a slow status answer is asked again
        deadline = time.monotonic() + 60
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for n in sorted(pending):
                try:
                    st = client.request(n, "status", timeout=5)
                except SwarmVarError:
                    client.reset(n)
                    continue
                if st.get("ok") and "r1" in st["status"]["runs"]:
                    pending.discard(n)
            time.sleep(0.1)
        assert not pending, f"run r1 never finished at {sorted(pending)}"
        runner = CliRunner()
        r = runner.invoke(build_app(), ["mesh", "status", "n1", "--cluster", str(cluster),
                                        "--admin", "admin", "--key",
                                        str(tmp_path / "admin.key"), "--timeout", "15"])
        assert r.exit_code == 0, r.output
        answer = json.loads(r.stdout)
        assert answer["ok"] is True
        run = answer["status"]["runs"]["r1"]
        assert run["factor"] is None  # no finite bound with f = 0 (not a made-up number)
        assert run["values"][0] == 1.0 and run["values"][-1] == 0.5  # agreed exactly
    finally:
        client.close()
        for p in procs:
            p.terminate()
            p.wait(timeout=20)


def test_cli_status_exits_1_on_a_refused_request(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.mesh import AdminClient, write_cluster, write_key

    def refusing(self: AdminClient, node: str, op: str, timeout: float = 5.0,
                 **body: object) -> dict[str, object]:
        return {"ok": False, "re": 1, "error": "InvalidParameter: example refusal"}

    monkeypatch.setattr(AdminClient, "request", refusing)
    admin_key = Ed25519PrivateKey.generate()
    write_key(tmp_path / "admin.key", admin_key)
    cluster = tmp_path / "cluster.json"
    write_cluster(cluster, {"n0": "tcp://127.0.0.1:1", "n1": "tcp://127.0.0.1:2"},
                  {"n0": Ed25519PrivateKey.generate(), "n1": Ed25519PrivateKey.generate()},
                  {"admin": admin_key})
    r = CliRunner().invoke(build_app(), ["mesh", "status", "n0", "--cluster", str(cluster),
                                         "--admin", "admin", "--key",
                                         str(tmp_path / "admin.key")])
    assert r.exit_code == 1
    assert "example refusal" in r.stderr and '"ok": false' in r.stdout
