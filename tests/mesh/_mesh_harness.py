"""Test harness: mesh nodes as processes, each in its own Linux network namespace.

Every node gets a namespace with one veth pair whose outer end is enslaved to
a bridge in the root namespace; addresses are in a private /24 used only
here, the test process (in the root namespace) sits on the bridge as ``.1``
and speaks to the nodes as the admin. A partition is a set of iptables DROP
rules inside the namespaces between the two sides (the admin's address is
never dropped). Everything is removed on close, also after a failure. Where
namespaces cannot be made (not root, no ``ip``) — or when the environment
sets ``SWARMVAR_MESH_TEST_ISOLATION=loopback`` — the nodes run on loopback
instead, every link through a fault-injecting proxy (``_mesh_proxy.py``)
that partitions by dropping links, and :attr:`Harness.isolation` says
``"loopback"``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _mesh_proxy import LoopbackProxy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.mesh import AdminClient, free_ports, load_cluster, write_cluster, write_key

HERE = Path(__file__).parent
PORT = 9000


def wait_until(what: str, check: Callable[[], bool], timeout: float, *, every: float = 0.05,
               where: str = "") -> None:
    """Poll ``check`` until it holds, at most ``timeout`` seconds; fail naming ``what`` (and
    ``where``, e.g. the logs). A status request not answered in time (TimeoutError, a loaded
    machine) or an answer missing a key so far (KeyError) counts as not yet; the last one is
    chained to the failure."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (TimeoutError, KeyError) as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{where}") from last


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=20)


def namespaces_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None:
        return False
    name = f"svprobe{os.getpid() % 100000}"
    try:
        if _ip("netns", "add", name, check=False).returncode != 0:
            return False
        return True
    finally:
        _ip("netns", "del", name, check=False)


class Harness:
    """Nodes ``names`` (``byzantine`` ones run tests/mesh/_byzantine_node.py)."""

    def __init__(self, tmp: Path, names: Sequence[str], byzantine: Sequence[str] = (),
                 node_args: Sequence[str] = ()) -> None:
        self.tmp, self.names, self.byzantine = tmp, list(names), set(byzantine)
        self.node_args = list(node_args)
        forced = os.environ.get("SWARMVAR_MESH_TEST_ISOLATION") == "loopback"
        self.isolation = "netns" if not forced and namespaces_available() else "loopback"
        self.proxy: LoopbackProxy | None = None
        self._proxy_ports: dict[tuple[str, str], int] = {}
        tag = os.getpid()  # names carry the pid: leftovers of a killed run are swept
        self.subnet = f"10.213.{os.getpid() % 200 + 20}"
        self.bridge = f"svb{tag}"
        self.ns = {n: f"svm{tag}-{i}" for i, n in enumerate(self.names)}
        self.veth = {n: (f"svh{tag}-{i}", f"svn{tag}-{i}") for i, n in enumerate(self.names)}
        if self.isolation == "netns":
            self.ip = {n: f"{self.subnet}.{10 + i}" for i, n in enumerate(self.names)}
            self.addresses = {n: f"tcp://{self.ip[n]}:{PORT}" for n in self.names}
        else:
            links = [(a, b) for a in self.names for b in self.names if a != b]
            ports = free_ports(len(self.names) + len(links))
            self.ip = {n: "127.0.0.1" for n in self.names}
            self.addresses = {n: f"tcp://127.0.0.1:{p}" for n, p in zip(self.names, ports,
                                                                         strict=False)}
            self._proxy_ports = dict(zip(links, ports[len(self.names):], strict=True))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._made: list[str] = []
        self._logs: list[Any] = []
        self.admin_key = Ed25519PrivateKey.generate()
        keys = {n: Ed25519PrivateKey.generate() for n in self.names}
        for n, k in keys.items():
            write_key(tmp / f"{n}.key", k)
        self.keys = keys
        self.cluster_path = tmp / "cluster.json"
        write_cluster(self.cluster_path, self.addresses, keys, {"admin": self.admin_key})
        self.cluster = load_cluster(self.cluster_path)
        self.admin: AdminClient | None = None

    # --- network -------------------------------------------------------------

    def _proxy_port(self, src: str, dst: str) -> int:
        return self._proxy_ports[(src, dst)]

    @staticmethod
    def sweep_leftovers() -> None:
        """Remove namespaces and bridges left by harnesses whose process is gone (kill -9)."""
        import re

        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False

        for line in _ip("netns", "list", check=False).stdout.splitlines():
            m = re.match(r"svm(\d+)-\d+", line.split()[0] if line.split() else "")
            if m and gone(int(m.group(1))):
                _ip("netns", "del", m.group(0), check=False)
        for m in re.finditer(r"\d+: (svb(\d+))[:@]", _ip("link", "show", check=False).stdout):
            if gone(int(m.group(2))):
                _ip("link", "del", m.group(1), check=False)

    def build(self) -> None:
        if self.isolation == "netns":
            self.sweep_leftovers()
        if self.isolation != "netns":
            real = {n: int(self.addresses[n].rsplit(":", 1)[1]) for n in self.names}
            self.proxy = LoopbackProxy({(a, b): (self._proxy_port(a, b), real[b])
                                        for a in self.names for b in self.names if a != b})
            return
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append("bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n in self.names:
            ns, (outer, inner) = self.ns[n], self.veth[n]
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"{self.ip[n]}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def _iptables(self, node: str, *args: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.ns[node], "iptables", *args], check=True,
                       capture_output=True, timeout=20)

    def partition(self, side_a: Sequence[str], side_b: Sequence[str]) -> None:
        """Drop every packet between the two sides (inside each node's namespace)."""
        if self.proxy is not None:
            for a in side_a:
                for b in side_b:
                    self.proxy.block(a, b)
                    self.proxy.block(b, a)
            return
        for a in side_a:
            for b in side_b:
                for x, y in ((a, b), (b, a)):
                    self._iptables(x, "-A", "INPUT", "-s", self.ip[y], "-j", "DROP")
                    self._iptables(x, "-A", "OUTPUT", "-d", self.ip[y], "-j", "DROP")

    def heal(self) -> None:
        if self.proxy is not None:
            self.proxy.unblock_all()
            return
        for n in self.names:
            self._iptables(n, "-F", "INPUT")
            self._iptables(n, "-F", "OUTPUT")

    # --- processes ---------------------------------------------------------------

    def start(self, name: str, extra: Sequence[str] = ()) -> None:
        home = self.tmp / f"home-{name}"
        home.mkdir(exist_ok=True)
        if name in self.byzantine:
            cmd = [sys.executable, str(HERE / "_byzantine_node.py")]
        else:
            cmd = [sys.executable, "-c", "from swarmvar.cli import main; main()", "mesh", "node"]
        cmd += ["--id", name, "--cluster", str(self.cluster_path), "--key",
                str(self.tmp / f"{name}.key"), "--home", str(home), "--max-seconds", "300",
                *self.node_args, *extra]
        if self.isolation == "netns":
            cmd = ["ip", "netns", "exec", self.ns[name], *cmd]
        else:  # every peer through its link's proxy port
            for peer in self.names:
                if peer != name:
                    cmd += ["--peer", f"{peer}=tcp://127.0.0.1:{self._proxy_port(name, peer)}"]
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        if self.admin is not None:
            self.admin.reset(name)

    def start_all(self) -> None:
        for n in self.names:
            self.start(n)
        self.admin = AdminClient("admin", self.admin_key, self.cluster.ring, self.addresses)

    def kill9(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=20)

    def ask(self, node: str, op: str, timeout: float = 10.0, **body: Any) -> dict[str, Any]:
        assert self.admin is not None
        return self.admin.request(node, op, timeout=timeout, **body)

    def status(self, node: str) -> dict[str, Any]:
        answer = self.ask(node, "status")
        assert answer["ok"], answer
        return dict(answer["status"])

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll ``check`` (bounded in time) until it holds; fail naming ``what``
        (:func:`wait_until`)."""
        wait_until(what, check, timeout, every=0.2,
                   where=f" (isolation: {self.isolation}); logs in {self.tmp}")

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=20)
        self.procs.clear()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        for made in reversed(self._made):
            if made == "bridge":
                _ip("link", "del", self.bridge, check=False)
            else:
                _ip("netns", "del", made, check=False)
        self._made.clear()
