"""``swarmvar run --mesh``'s start: the node's settings checked before any work, the node
bound only after the swarm is built (``mesh.launch.check_swarm_node`` /
``bind_swarm_node``; ``swarm_node`` is both).

Was: the node's own refusals (no cluster file, a bad port, an unknown node id, a garbled
or missing key, a bad peer) came from ``swarm_node`` after ``Swarm(...)`` had made the
home: ``run --home NEW --mesh`` without a cluster file left NEW/ holding the swarm's
ledger, evolution store and states/. Now each refusal reads no data (``_no_data``) and
leaves no home. A key file not the node's (its public key not the cluster file's for
that node) was not noticed at all: the peers refused every message the node signed; now
it is refused at the start. A port another process holds was a ``ZMQError`` traceback
(and its socket left open); now a :class:`~swarmvar.errors.MeshError` naming the address.
"""

from __future__ import annotations

import gc
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter, MeshError
from swarmvar.mesh import free_ports, write_cluster, write_key
from swarmvar.mesh.launch import bind_swarm_node, check_swarm_node, swarm_node

pytestmark = pytest.mark.timeout(120)
NAMES = ("r0", "r1")
QUICK = ["--agents", "nig", "--window", "30", "--quiet", "--beats", "2"]


def _plain(output: str) -> str:
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}")
    return result.exit_code, _plain(result.output)


@pytest.fixture
def _no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` reading its ``--data`` fails the test: the executor, the swarm's home and
    the mesh node all come after it."""
    def refuse(source: str) -> None:
        raise AssertionError(f"run read --data {source} before refusing")

    monkeypatch.setattr("swarmvar.cli.run._data", refuse)


def _cluster(where: Path) -> tuple[Path, Path, dict[str, int]]:
    """A two-node cluster file and r0's key file under ``where`` (outside any home); r1's
    key file beside it."""
    keys = {n: Ed25519PrivateKey.generate() for n in NAMES}
    ports = dict(zip(NAMES, free_ports(len(NAMES)), strict=True))
    where.mkdir(parents=True, exist_ok=True)
    cluster, key = where / "cluster.json", where / "r0.key"
    write_cluster(cluster, {n: f"tcp://127.0.0.1:{p}" for n, p in ports.items()}, keys, {})
    write_key(key, keys["r0"])
    write_key(where / "r1.key", keys["r1"])
    return cluster, key, ports


def _returns_csv(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(0, 0.01, n)},
                         index=pd.bdate_range("2020-01-01", periods=n))
    frame.to_csv(path, index_label="date")
    return path


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


# --- run --mesh: each refusal of the node before any work ----------------------------------

@pytest.mark.parametrize("case", ["no-cluster", "port-0", "port-high", "port-names-no-node",
                                  "unknown-id", "garbled-key", "no-key", "other-key",
                                  "peer-unknown", "peer-id-unknown", "agree-every"])
def test_run_mesh_refused_by_the_node_reads_no_data_and_leaves_no_home(
        case: str, tmp_path: Path, _no_data: None) -> None:
    cluster, key, ports = _cluster(tmp_path / "cfg")
    other = free_ports(1)[0]
    while other in ports.values():  # bounded in practice: two ports taken of thousands
        other = free_ports(1)[0]
    files = ["--mesh-cluster", str(cluster), "--mesh-key", str(key)]
    port = ["--mesh-port", str(ports["r0"])]
    args, said = {
        "no-cluster": (port, "cannot read the cluster file"),  # HOME/mesh/cluster.json
        "port-0": (["--mesh-port", "0", *files], "--mesh-port must be a TCP port 1..65535"),
        "port-high": (["--mesh-port", "70000", *files], "--mesh-port must be a TCP port"),
        "port-names-no-node": (["--mesh-port", str(other), *files], "give --mesh-id"),
        "unknown-id": ([*port, "--mesh-id", "r9", *files], "no node 'r9'"),
        "garbled-key": ([*port, "--mesh-cluster", str(cluster), "--mesh-key",
                         str(tmp_path / "cfg" / "bad.key")], "cannot read the Ed25519 key file"),
        "no-key": ([*port, "--mesh-cluster", str(cluster), "--mesh-key",
                    str(tmp_path / "cfg" / "none.key")], "no key file"),
        "other-key": ([*port, "--mesh-cluster", str(cluster), "--mesh-key",
                       str(tmp_path / "cfg" / "r1.key")], "is not node 'r0''s"),
        "peer-unknown": ([*port, *files, "--peer", f"tcp://127.0.0.1:{other}"],
                         "no single peer has this address"),
        "peer-id-unknown": ([*port, *files, "--peer", f"r7=tcp://127.0.0.1:{other}"],
                            "'r7' is not a peer in the cluster file"),
        "agree-every": ([*port, *files, "--mesh-agree-every", "-1"],
                        "--mesh-agree-every must be >= 0"),
    }[case]
    (tmp_path / "cfg" / "bad.key").write_text("not hex at all\n", encoding="utf-8")
    home = tmp_path / "home"
    code, out = _cli("run", "--data", "sp500", *QUICK, "--home", str(home), "--mesh", *args)
    assert code == 2 and "error:" in out and said in out, out
    assert not home.exists()


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cluster_text=st.one_of(st.none(), st.one_of(
           st.text(max_size=60), st.just('{"nodes": {}}'),
           st.just('{"nodes": {"r0": {"address": "udp://x:1"}}}'))),
       key_text=st.one_of(st.none(), st.one_of(st.text(max_size=70), st.just("00" * 31),
                                               st.just("r1"))),
       port=st.one_of(st.none(), st.sampled_from(["r0", "r1"]), st.integers(-5, 70_000)),
       node_id=st.one_of(st.none(), st.sampled_from(["r0", "r1", "r9", ""])),
       peers=st.one_of(st.just([]), st.lists(st.sampled_from([
           "r1", "r0", "r1=tcp://127.0.0.1:1", "r9=tcp://x:1", "tcp://nowhere:1",
           "r1=http://x"]), max_size=2)))
def test_checking_any_settings_makes_nothing(tmp_path: Path, cluster_text: str | None,
                                             key_text: str | None, port: int | str | None,
                                             node_id: str | None, peers: list[str]) -> None:
    """Whatever the files and options, the check refuses (InvalidParameter) or returns the
    settings of a node of the cluster file; it never makes the home (nor HOME/mesh), nor
    binds anything. None: the real cluster file, r0's real key; "r1": r1's key (not the
    node's unless it is r1); a bare "r0"/"r1" peer: that node's address."""
    where = tmp_path / "files"
    cluster, key, ports = _cluster(where)
    if cluster_text is not None:
        cluster.write_text(cluster_text, encoding="utf-8")
    if key_text == "r1":
        key = where / "r1.key"
    elif key_text is not None:
        key.write_text(key_text, encoding="utf-8")
    port_number = ports[port] if isinstance(port, str) else port
    peer_values = [f"tcp://127.0.0.1:{ports[v]}" if v in ports else v for v in peers]
    home = tmp_path / "home"
    try:
        found = check_swarm_node(home, port=port_number, node_id=node_id, peers=peer_values,
                                 cluster=cluster, key=key)
    except InvalidParameter as exc:
        event("refused")
        assert str(exc)
    else:
        event("accepted")
        assert cluster_text is None and key_text in (None, "r1")
        me = found.config.node_id
        assert me == ("r1" if key_text == "r1" else "r0") and me not in found.config.peers
        assert found.key.public_key().public_bytes_raw() == \
            found.config.ring.nodes[me].public_bytes_raw()
        assert port_number is None or found.config.bind == f"tcp://*:{port_number}"
    assert not home.exists()
    for p in ports.values():
        assert _port_is_free(p)


def test_the_check_reads_what_the_node_is_built_from(tmp_path: Path) -> None:
    """The settings: the port bound on every interface, the peers and key ring from the
    cluster file, HOME/mesh as the node's home, the key read; nothing made yet."""
    cluster, key, ports = _cluster(tmp_path / "cfg")
    home = tmp_path / "home"
    found = check_swarm_node(home, port=ports["r0"], cluster=cluster, key=key, agree_every=7)
    assert not home.exists()
    config = found.config
    assert (config.node_id, config.bind) == ("r0", f"tcp://*:{ports['r0']}")
    assert dict(config.peers) == {"r1": f"tcp://127.0.0.1:{ports['r1']}"}
    assert set(config.ring.nodes) == set(NAMES) and config.home == home / "mesh"
    assert config.agree_every == 7
    assert found.key.public_key().public_bytes_raw() == \
        config.ring.nodes["r0"].public_bytes_raw()
    assert "key=" not in repr(found)


# --- the bind step ---------------------------------------------------------------------------

def test_bind_makes_the_node_home_and_binds_its_port_until_closed(tmp_path: Path) -> None:
    cluster, key, ports = _cluster(tmp_path / "cfg")
    home = tmp_path / "home"
    node = bind_swarm_node(check_swarm_node(home, port=ports["r0"], cluster=cluster, key=key))
    try:
        assert (home / "mesh").is_dir() and node.me == "r0"
        assert not _port_is_free(ports["r0"])
    finally:
        node.close()
    assert _port_is_free(ports["r0"])  # its context (made by the bind step) terminated too


def test_swarm_node_is_the_check_then_the_bind(tmp_path: Path) -> None:
    cluster, key, ports = _cluster(tmp_path / "cfg")
    with pytest.raises(InvalidParameter, match="no node 'r9'"):
        swarm_node(tmp_path / "a", port=ports["r0"], node_id="r9", cluster=cluster, key=key)
    assert not (tmp_path / "a").exists()
    node = swarm_node(tmp_path / "b", port=ports["r0"], cluster=cluster, key=key,
                      agree_every=3)
    try:
        checked = check_swarm_node(tmp_path / "b", port=ports["r0"], cluster=cluster, key=key,
                                   agree_every=3)
        assert node.config == checked.config
    finally:
        node.close()


def test_a_port_held_elsewhere_is_a_mesh_error_and_leaves_nothing_open(
        tmp_path: Path) -> None:
    """Was: zmq's ``ZMQError`` (a traceback from ``run``), its socket and context left open
    (an unclosed-socket warning when collected)."""
    cluster, key, ports = _cluster(tmp_path / "cfg")
    found = check_swarm_node(tmp_path / "home", port=ports["r0"], cluster=cluster, key=key)
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", ports["r0"]))
        holder.listen()
        with pytest.raises(MeshError, match=rf"cannot bind tcp://\*:{ports['r0']}: .*"
                                            "choose another --mesh-port"):
            bind_swarm_node(found)
        gc.collect()  # an unclosed zmq socket or context warns here (warnings are errors)
    assert _port_is_free(ports["r0"])


def test_run_mesh_on_a_held_port_exits_2_and_closes_the_swarm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bind comes after the swarm (a start the swarm refuses binds nothing); when the
    bind itself fails, ``run`` exits 2 with the node's words and closes the swarm."""
    from swarmvar.swarm import Swarm

    closed: list[Any] = []
    original = Swarm.close

    def close(self: Swarm) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(Swarm, "close", close)
    cluster, key, ports = _cluster(tmp_path / "cfg")
    data = _returns_csv(tmp_path / "r.csv")
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", ports["r0"]))
        holder.listen()
        code, out = _cli("run", "--data", str(data), *QUICK, "--home", str(tmp_path / "home"),
                         "--mesh", "--mesh-port", str(ports["r0"]), "--mesh-cluster",
                         str(cluster), "--mesh-key", str(key))
        gc.collect()
    assert code == 2 and f"cannot bind tcp://*:{ports['r0']}" in out, out
    assert len(closed) == 1
    assert _port_is_free(ports["r0"])


def test_mesh_node_refuses_another_nodes_key_before_binding(tmp_path: Path) -> None:
    cluster, _, ports = _cluster(tmp_path / "cfg")
    result = CliRunner().invoke(build_app(), [
        "mesh", "node", "--id", "r0", "--cluster", str(cluster),
        "--key", str(tmp_path / "cfg" / "r1.key"), "--max-seconds", "5"])
    assert result.exit_code == 2, result.output
    assert "is not node 'r0'" in result.output and "--key" in result.output
    with socket.socket() as s:  # nothing bound on the node's port
        s.bind(("127.0.0.1", ports["r0"]))
