"""Sandbox tests: attack code lives in a plug-in folder the sandbox binds read-only."""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swarmvar import sandbox

ATTACKS = textwrap.dedent('''
    """Attack tasks: each tries one way out of the sandbox."""
    import os, socket, time
    import numpy as np

    def _ok(**values):
        return values, {}

    def connect(params, arrays, seed):
        s = socket.create_connection(("127.0.0.1", int(params["port"])), timeout=2)
        s.sendall(b"escaped")
        return _ok(connected=True)

    def resolve(params, arrays, seed):
        return _ok(addr=socket.getaddrinfo("example.com", 80)[0][4][0])

    def read_file(params, arrays, seed):
        with open(params["path"], "rb") as f:
            return _ok(data=f.read(100).hex())

    def write_file(params, arrays, seed):
        with open(params["path"], "w") as f:
            f.write("escaped")
        return _ok(written=True)

    def environ(params, arrays, seed):
        with open("/proc/1/environ", "rb") as f:
            return _ok(env=f.read().hex())

    def signal_parent(params, arrays, seed):
        os.kill(os.getppid(), 9)
        return _ok(killed=True)

    def ptrace_parent(params, arrays, seed):
        import ctypes
        libc = ctypes.CDLL(None)
        return _ok(rc=libc.ptrace(16, os.getppid(), 0, 0))

    def fork_bomb(params, arrays, seed):
        for _ in range(100000):
            os.fork()
        return _ok(forked=True)

    def allocate(params, arrays, seed):
        block = np.ones(int(params["bytes"]) // 8)
        return _ok(total=float(block.sum()))

    def spin(params, arrays, seed):
        x = 0
        while True:
            x += 1

    def sleep_forever(params, arrays, seed):
        time.sleep(10_000)

    def big_file(params, arrays, seed):
        chunk = b"x" * (1 << 20)
        with open("big.bin", "wb") as f:
            for _ in range(int(params["mib"])):
                f.write(chunk)
        return _ok(written=True)

    def malformed(params, arrays, seed):
        return "not a tuple"

    def object_array(params, arrays, seed):
        return {}, {"x": np.array([object()], dtype=object)}

    def not_json(params, arrays, seed):
        return {"x": object()}, {}

    def oversized(params, arrays, seed):
        return {}, {"x": np.zeros(int(params["bytes"]) // 8)}

    def corrupt_stream(params, arrays, seed):
        os.write(int(params.get("fd", 3)), b"\\xff" * 64)
        return _ok()

    def leave_child(params, arrays, seed):
        import subprocess
        subprocess.Popen(["sleep", "1000"])
        return _ok()

    def crash(params, arrays, seed):
        os._exit(3)

    def _unguarded():
        """Switch the reporting hook off, as hostile code could: the kernel walls remain."""
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == "Guard":
                obj.active = False

    def unguarded(params, arrays, seed):
        _unguarded()
        what = params["what"]
        try:
            if what == "connect":
                socket.create_connection(("127.0.0.1", int(params["port"])), timeout=2)
            elif what == "read":
                with open(params["path"], "rb") as f:
                    return _ok(outcome="read", data=f.read(200).hex())
            elif what == "write":
                with open(params["path"], "w") as f:
                    f.write("escaped")
            elif what == "environ":
                with open("/proc/1/environ", "rb") as f:
                    return _ok(outcome="read", data=f.read().decode(errors="replace"))
            elif what == "processes":
                return _ok(outcome="listed", pids=sorted(p for p in os.listdir("/proc")
                                                         if p.isdigit()))
        except OSError as exc:
            return _ok(outcome="refused", errno=exc.errno, error=type(exc).__name__)
        return _ok(outcome="done")

    def ok(params, arrays, seed):
        return {"sum": float(np.sum(arrays.get("x", np.zeros(1))))}, {"y": arrays["x"] * 2}
''')


@pytest.fixture(scope="session")
def attack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sandbox-plugins")
    (folder / "sbx_attacks.py").write_text(ATTACKS)
    return folder


def _bwrap_available() -> bool:
    return shutil.which("bwrap") is not None




@pytest.fixture
def bwrap_box(attack_dir: Path, tmp_path: Path) -> Iterator[sandbox.Sandbox]:
    if not _bwrap_available():
        pytest.skip("bubblewrap is not installed")
    profile = sandbox.Profile("test", cpu_seconds=2, wall_seconds=4, memory_bytes=2 << 30,
                              processes=64, file_bytes=64 << 20, result_bytes=16 << 20)
    box = sandbox.BubblewrapSandbox(profile, plugin_paths=[str(attack_dir)],
                                    hidden=[str(tmp_path)])
    yield box
    box.kill()


@pytest.fixture
def nig_canary() -> Callable[[Path], str]:
    """Make a NIG variant (forgetting 0.95) in a canary release started 400 s ago in a home;
    returns its id."""
    from swarmvar.evolution import new_variant, open_home, start_canary
    from swarmvar.models.nig import NormalInverseGamma

    def make(home: Path) -> str:
        h = open_home(home)
        try:
            v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.95},
                                           {NormalInverseGamma.name: NormalInverseGamma},
                                           now=time.time() - 400))
            return start_canary(h.variants, v, h.config.canary, time.time() - 400).id
        finally:
            h.close()

    return make
