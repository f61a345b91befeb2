"""The local sandbox: bubblewrap namespaces, rlimits, and cgroups where the machine allows.

What the worker gets (``bwrap`` argv below): new user, pid, network, IPC,
UTS and cgroup namespaces (``--unshare-all``; the network namespace has only
a loopback of its own, so no host or outside address is reachable);
read-only binds of ``/usr``, the libraries, the Python installation and the
folders holding swarmvar and its dependencies - nothing else of the host, so
the data home (keys, ledger, state store) does not exist inside; a private
tmpfs at ``/tmp`` as the only writable place; ``--die-with-parent``; a
cleared environment. Limits: ``prlimit`` sets the address space, CPU
seconds, process count, file size and open files before ``bwrap`` starts;
as root (where ``RLIMIT_NPROC`` does not bind) a pids and a memory cgroup of
its own bound the process count and memory too, when ``/sys/fs/cgroup`` is
writable. bubblewrap itself has no resource limits (bubblewrap#233): they
all come from the kernel's rlimits and cgroups.
"""

from __future__ import annotations

import os
import shlex
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import SandboxError
from .base import PRELOAD, WorkerSandbox, package_roots
from .profiles import Profile

CGROUP_ROOT = Path("/sys/fs/cgroup")
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


def bwrap_path() -> str:
    """The ``bwrap`` executable, or a :class:`SandboxError` naming the install command."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}, "
                           "or run with --sandbox none to run without isolation")
    return path


class _Cgroup:
    """A pids + memory cgroup of the sandbox's own, when the machine lets us make one."""

    def __init__(self, processes: int, memory_bytes: int) -> None:
        self.paths: list[Path] = []
        name = f"swarmvar-sandbox-{uuid.uuid4().hex[:12]}"
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2
            candidates = [(CGROUP_ROOT / name, {"pids.max": processes,
                                                "memory.max": memory_bytes,
                                                "memory.swap.max": 0})]
        else:  # cgroup v1: one hierarchy per controller
            candidates = [(CGROUP_ROOT / "pids" / name, {"pids.max": processes}),
                          (CGROUP_ROOT / "memory" / name,
                           {"memory.limit_in_bytes": memory_bytes})]
        for path, limits in candidates:
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                for key, value in limits.items():
                    if (path / key).exists():
                        (path / key).write_text(str(value))
            except OSError:
                path.rmdir()
                continue
            self.paths.append(path)

    def join_command(self) -> str:
        """Shell words that move the starting shell (and so the sandbox) into the cgroups."""
        return "; ".join(f"echo $$ > {shlex.quote(str(p / 'cgroup.procs'))}"
                         for p in self.paths)

    def memory_failures(self) -> int:
        for path in self.paths:
            for key in ("memory.failcnt", "memory.events"):
                file = path / key
                if file.exists():
                    text = file.read_text()
                    if key == "memory.failcnt":
                        return int(text.strip() or 0)
                    for line in text.splitlines():
                        if line.startswith(("max ", "oom_kill ")) and int(line.split()[1]) > 0:
                            return int(line.split()[1])
        return 0

    def remove(self) -> None:
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    procs = path / "cgroup.procs"
                    if procs.exists() and not procs.read_text().strip():
                        continue
                    import time
                    time.sleep(0.02)
        self.paths = []


class BubblewrapSandbox(WorkerSandbox):
    """The default local sandbox (see the module docstring for the walls it builds).

    Parameters
    ----------
    profile_ : Profile
        The limits.
    hidden : sequence of path, optional
        Folders that must not be visible inside (the data home); creating the
        sandbox fails if any of them lies inside a folder it would bind.
    cgroups : bool
        Use a cgroup of the sandbox's own where the machine allows it.
    """

    backend: ClassVar[str] = "bwrap"

    def __init__(self, profile_: Profile, *, hidden: Sequence[str | Path] = (),
                 cgroups: bool = True, plugin_paths: Sequence[str] = (),
                 preload: Sequence[str] = PRELOAD) -> None:
        super().__init__(profile_, plugin_paths=plugin_paths, preload=preload)
        self._bwrap = bwrap_path()
        self._cgroups = cgroups
        self._cgroup: _Cgroup | None = None
        binds = self.binds()
        for folder in hidden:
            real = Path(folder).resolve()
            for bound in binds:
                if real == Path(bound) or Path(bound) in real.parents:
                    raise SandboxError(
                        f"{folder} (which must stay hidden) lies inside {bound}, which the "
                        "sandbox binds read-only; keep the data home (--home) outside the "
                        "Python installation and the package folders")

    def binds(self) -> list[str]:
        """Host folders bound read-only into the sandbox: the system's and Python's."""
        system = [p for p in ("/usr", "/lib", "/lib64", "/bin", "/sbin") if Path(p).exists()]
        python = {str(Path(p).resolve()) for p in super().read_roots()}
        return sorted(set(system) | python)

    def read_roots(self) -> list[str]:
        return self.binds()

    def command(self, worker_argv: Sequence[str]) -> list[str]:
        p = self.profile
        argv = [self._bwrap, "--unshare-all", "--die-with-parent", "--new-session",
                "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                "--setenv", "HOME", "/tmp/work", "--setenv", "JAX_PLATFORMS", "cpu",
                "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "OPENBLAS_NUM_THREADS", "1",
                "--setenv", "MPLBACKEND", "Agg",
                # the tmpfs first: binds below /tmp (plug-in folders) must land on top of it
                "--tmpfs", "/tmp"]
        for folder in self.binds():
            argv += ["--ro-bind", folder, folder]
        if Path("/etc/ld.so.cache").exists():
            argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        argv += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
        limits = ["prlimit", f"--as={p.memory_bytes}",
                  f"--cpu={int(p.cpu_seconds) + 60}:{int(p.cpu_seconds * p.tasks_per_worker) + 60}",
                  f"--nproc={p.processes}", f"--fsize={p.file_bytes}",
                  f"--nofile={p.open_files}", "--core=0", "--"]
        inner = limits + argv + list(worker_argv)
        if self._cgroups and os.geteuid() == 0:
            self._cgroup = _Cgroup(p.processes, p.memory_bytes)
            if self._cgroup.paths:
                return ["/bin/sh", "-c", f"{self._cgroup.join_command()}; exec \"$@\"", "sh",
                        *inner]
        return inner

    def memory_exceeded(self) -> bool:
        return self._cgroup is not None and self._cgroup.memory_failures() > 0

    def cleanup(self) -> None:
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None


class UnsandboxedWorker(WorkerSandbox):
    """``--sandbox none``: the same warm worker and checks with no walls at all.

    Only for machines without bubblewrap, when the user asks for it; callers
    record a warning in the ledger when they use it.
    """

    backend: ClassVar[str] = "none"
    own_pid_namespace: ClassVar[bool] = False

    def __init__(self, profile_: Profile, *, plugin_paths: Sequence[str] = (),
                 preload: Sequence[str] = PRELOAD, **_: Any) -> None:
        super().__init__(profile_, plugin_paths=plugin_paths, preload=preload)
        self._dir: str | None = None

    def scratch(self) -> str:
        if self._dir is None:
            import tempfile
            self._dir = tempfile.mkdtemp(prefix="swarmvar-unsandboxed-")
        return self._dir

    def command(self, worker_argv: Sequence[str]) -> list[str]:
        return list(worker_argv)

    def read_roots(self) -> list[str]:
        return sorted({*super().read_roots(), "/usr", "/lib", "/etc", "/proc/self",
                       *package_roots()})

    def cleanup(self) -> None:
        if self._dir is not None and self._proc is None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

