"""A MeshNode whose start fails after its bind leaves nothing open: its port is free again,
the ZeroMQ context it made is terminated, and a ledger it opened is closed.

Was (before the node's start was wrapped): a ledger that could not be opened (or a
replay that failed) left the ROUTER bound and the context open until collected. The
tests on a failed bind (``test_mesh_start.py``) never reach the ledger. Unit level: one
node on a loopback port picked by ``free_ports``; nothing listens for the peer.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import zmq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.ledger import Ledger
from swarmvar.ledger.ledger import LedgerNotFound
from swarmvar.mesh import MeshNode, NodeConfig, NodeKeyRing, free_ports

pytestmark = pytest.mark.timeout(60)


class _Contexts(zmq.Context):  # type: ignore[type-arg]
    """A zmq.Context that remembers each one made (to see it terminated)."""

    made: list[zmq.Context] = []  # type: ignore[type-arg]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        _Contexts.made.append(self)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _node(home: Path, port: int, peer_port: int) -> MeshNode:
    keys = {n: Ed25519PrivateKey.generate() for n in "ab"}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    return MeshNode(NodeConfig("a", f"tcp://127.0.0.1:{port}",
                               {"b": f"tcp://127.0.0.1:{peer_port}"}, ring, home=home),
                    keys["a"], epoch=time.time_ns())


def _open_fds(path: Path) -> int:
    """This process's descriptors open on ``path`` (or its ``-wal``, ``-shm``)."""
    found = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            found += os.readlink(fd).startswith(str(path.resolve()))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


@pytest.fixture
def contexts(monkeypatch: pytest.MonkeyPatch) -> list[zmq.Context]:  # type: ignore[type-arg]
    _Contexts.made = []
    monkeypatch.setattr(zmq, "Context", _Contexts)
    return _Contexts.made


def test_a_ledger_that_cannot_be_opened_leaves_the_port_free_and_no_context(
    tmp_path: Path, contexts: list[zmq.Context]  # type: ignore[type-arg]
) -> None:
    home = tmp_path / "a"
    (home / "ledger.sqlite").mkdir(parents=True)  # a folder where the ledger file goes
    port, peer = free_ports(2)
    with pytest.raises(LedgerNotFound, match="is a directory") as err:
        _node(home, port, peer)
    # err's traceback keeps the failed start's frames (and anything left open) alive here
    assert str(home / "ledger.sqlite") in str(err.value)
    assert len(contexts) == 1 and contexts[0].closed
    assert _port_is_free(port)


def test_a_failed_replay_closes_the_ledger_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    contexts: list[zmq.Context]  # type: ignore[type-arg]
) -> None:
    home = tmp_path / "a"
    with Ledger(home):  # a whole ledger to open
        pass
    path = home / "ledger.sqlite"
    before = _open_fds(path)

    def failing(self: MeshNode) -> None:
        assert _open_fds(path) > before  # the ledger is open here
        raise RuntimeError("replay failed")

    monkeypatch.setattr(MeshNode, "_replay_ledger", failing)
    port, peer = free_ports(2)
    with pytest.raises(RuntimeError, match="replay failed") as err:
        _node(home, port, peer)
    assert "replay failed" in str(err.value) and _open_fds(path) == before
    assert len(contexts) == 1 and contexts[0].closed
    assert _port_is_free(port)
