"""A mesh's description on disk: the cluster file and node key files.

The cluster file is JSON::

    {"nodes": {"n0": {"address": "tcp://10.0.0.10:9000", "public_key": "<64 hex>"}, ...},
     "admins": {"admin": {"public_key": "<64 hex>"}}}

Every node and admin holds the same file; each keeps its own private key in
a key file (the 32-byte Ed25519 seed as hex, mode 0600).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..errors import InvalidParameter
from .wire import NodeKeyRing, public_key_from_hex, public_key_hex


@dataclass(frozen=True)
class Cluster:
    """Node id -> ROUTER address, and the key ring."""

    addresses: Mapping[str, str]
    ring: NodeKeyRing

    def peers_of(self, node_id: str) -> dict[str, str]:
        if node_id not in self.addresses:
            raise InvalidParameter(f"node {node_id!r} is not in the cluster file; it has "
                                   f"{sorted(self.addresses)}")
        return {n: a for n, a in self.addresses.items() if n != node_id}


def load_cluster(path: str | os.PathLike[str]) -> Cluster:
    """Read and check a cluster file; InvalidParameter naming what is wrong."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"cannot read the cluster file {path}: {exc}") from None
    if not isinstance(d, dict) or not isinstance(d.get("nodes"), dict) or not d["nodes"]:
        raise InvalidParameter(f"{path}: needs a non-empty 'nodes' object")
    addresses, nodes, admins = {}, {}, {}
    for name, spec in d["nodes"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("address"), str) \
                or not spec["address"].startswith("tcp://"):
            raise InvalidParameter(f"{path}: node {name!r} needs an address tcp://HOST:PORT")
        addresses[name] = spec["address"]
        nodes[name] = public_key_from_hex(str(spec.get("public_key")), f"node {name}")
    for name, spec in (d.get("admins") or {}).items():
        admins[name] = public_key_from_hex(str((spec or {}).get("public_key")), f"admin {name}")
    return Cluster(addresses, NodeKeyRing(nodes, admins))


def write_cluster(path: str | os.PathLike[str], addresses: Mapping[str, str],
                  node_keys: Mapping[str, Ed25519PrivateKey | str],
                  admin_keys: Mapping[str, Ed25519PrivateKey | str]) -> None:
    """Write a cluster file from addresses and (private or public hex) keys."""

    def hex_of(k: Ed25519PrivateKey | str) -> str:
        return k if isinstance(k, str) else public_key_hex(k)

    doc: dict[str, Any] = {
        "nodes": {n: {"address": addresses[n], "public_key": hex_of(node_keys[n])}
                  for n in addresses},
        "admins": {a: {"public_key": hex_of(k)} for a, k in admin_keys.items()},
    }
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")


def write_key(path: str | os.PathLike[str], key: Ed25519PrivateKey) -> None:
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(seed.hex())


def read_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    try:
        seed = bytes.fromhex(Path(path).read_text(encoding="utf-8").strip())
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"cannot read the Ed25519 key file {path}: {exc} (it holds the "
                               "32-byte seed as hex; make one with `swarmvar mesh keygen`)") \
            from None


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` now (for local clusters, tests, benchmarks).

    Drawn at random below the kernel's ephemeral range
    (``/proc/sys/net/ipv4/ip_local_port_range``; 10000 up to it), where no
    outgoing connection or bind to port 0 is ever placed, and checked by
    binding each. A port the kernel picked (bind to port 0) could be handed to
    another process's connection between this call and the node's bind; one
    from below the range can only be taken by an explicit bind. Bind soon all
    the same.
    """
    import random
    import socket

    if not 1 <= n <= 1000:
        raise InvalidParameter(f"ask for 1..1000 ports, got {n}")
    low = _ephemeral_low()
    draw = random.SystemRandom()
    ports: list[int] = []
    for _ in range(50 * n):  # bounded: a busy range falls back to the kernel's picks
        if len(ports) == n:
            return ports
        port = draw.randrange(10000, low)
        if port in ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        ports.append(port)
    sockets = []
    try:
        for _ in range(n - len(ports)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return ports + [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _ephemeral_low() -> int:
    """The low end of the kernel's ephemeral port range (32768 where it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low if 11000 <= low <= 65535 else 32768
