"""The program that runs inside a sandbox: a warm worker serving tasks over its stdin/stdout.

Started by a backend as ``python -m swarmvar.sandbox._worker CONFIG_JSON``.
It imports what tasks need once (numpy, the models), then serves frames:
``run`` a task, ``put``/``get`` a file in its scratch folder, ``ping``.

Containment is the kernel's (namespaces, rlimits, cgroups, set up by the
backend before this program starts). What this program adds is *reporting*:
an audit hook (PEP 578), active only while a task runs, refuses and records
what a task must not do - open a socket, read outside the allowed roots,
write outside the scratch folder, signal, start processes, load native code -
so that the host hears a typed :class:`~swarmvar.errors.Violation` rather
than a bare failure. Code that goes around the hook (through native calls)
still meets the namespace walls; the host then sees the effect (a crash, a
limit, a leftover process) and reports that.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SandboxViolation, Violation
from .wire import DTYPES, MAX_FRAME_BYTES, read_frame, write_frame

_NETWORK_EVENTS = ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
                   "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto",
                   "socket.sendmsg")
_PROCESS_EVENTS = ("os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec",
                   "os.system", "subprocess.Popen", "os.startfile")
_SIGNAL_EVENTS = ("os.kill", "os.killpg", "signal.pthread_kill")
_NATIVE_EVENTS = ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle")
_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
                 "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.rmtree")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Guard:
    """The audit-hook policy: which paths a task may read and write, and what it tried."""

    def __init__(self, read_roots: list[str], scratch: str) -> None:
        self.read_roots = tuple(os.path.realpath(r) for r in read_roots) + (scratch,)
        self.scratch = os.path.realpath(scratch)
        self.active = False
        self.tried: list[tuple[Violation, str]] = []

    def _refuse(self, kind: Violation, detail: str) -> None:
        self.tried.append((kind, detail))
        raise PermissionError(f"refused by the sandbox ({kind.value}): {detail}")

    def _inside(self, path: str, roots: tuple[str, ...]) -> bool:
        real = os.path.realpath(path)
        return any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event in _NETWORK_EVENTS:
            self._refuse(Violation.NETWORK, f"{event}{args[1:3]!r}")
        elif event in _PROCESS_EVENTS:
            self._refuse(Violation.PROCESS, event)
        elif event in _SIGNAL_EVENTS:
            self._refuse(Violation.SIGNAL, f"{event}{args!r}")
        elif event in _NATIVE_EVENTS:
            self._refuse(Violation.NATIVE, f"{event}{args[:1]!r}")
        elif event == "open":
            self._check_open(*args)
        elif event in _WRITE_EVENTS and args and isinstance(args[0], str | bytes | os.PathLike):
            path = os.fsdecode(args[0])
            if not self._inside(path, (self.scratch,)):
                self._refuse(Violation.WRITE_OUTSIDE, f"{event} {path}")

    def _check_open(self, path: Any, mode: Any, flags: Any) -> None:
        if not isinstance(path, str | bytes | os.PathLike):
            return  # a file descriptor the worker already holds
        name = os.fsdecode(path)
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
        if writing:
            if not self._inside(name, (self.scratch,)):
                self._refuse(Violation.WRITE_OUTSIDE, f"open {name!r} for writing")
        elif name.startswith("/proc/") and not name.startswith(("/proc/self/",
                                                                f"/proc/{os.getpid()}/")):
            self._refuse(Violation.READ_FORBIDDEN, f"read {name!r}")
        elif not self._inside(name, self.read_roots):
            self._refuse(Violation.READ_FORBIDDEN, f"read {name!r}")


def _leftover_processes() -> list[int]:
    """Processes in this pid namespace other than its init and this worker."""
    mine = {1, os.getpid()}
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
    except OSError:
        return []


def _set_cpu_budget(seconds: float) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(spent + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


#: What a worker keeps between tasks for functions that take a ``session``
#: argument (live agents): it lives and dies with this worker process.
SESSION: dict[str, Any] = {}


def _call(entry: str, params: dict[str, Any], arrays: dict[str, Any], seed: int
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    module_name, _, func_name = entry.partition(":")
    func: Callable[..., Any] = getattr(importlib.import_module(module_name), func_name)
    if "session" in inspect.signature(func).parameters:
        out = func(params, arrays, seed, session=SESSION)
    else:
        out = func(params, arrays, seed)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict)
            and isinstance(out[1], dict)):
        raise SandboxViolation(Violation.MALFORMED_RESULT,
                               f"{entry} must return (values: dict, arrays: dict)")
    for name, value in out[1].items():
        if getattr(getattr(value, "dtype", None), "name", None) not in DTYPES:
            raise SandboxViolation(Violation.MALFORMED_RESULT,
                                   f"result array {name!r} is not one of {DTYPES}")
    return out


def _run(guard: Guard, cpu_seconds: float, header: dict[str, Any],
         arrays: dict[str, Any], out: Any, own_pid_namespace: bool) -> None:
    guard.tried.clear()
    _set_cpu_budget(cpu_seconds)
    start = time.perf_counter()
    result: tuple[dict[str, Any], dict[str, Any]] | None = None
    failure: dict[str, Any] | None = None
    guard.active = True
    try:
        result = _call(header["entry"], header.get("params", {}), arrays,
                       int(header.get("seed", 0)))
    except SandboxViolation as exc:
        failure = {"violation": exc.violation.value, "detail": exc.detail}
    except MemoryError:
        failure = {"violation": Violation.MEMORY.value, "detail": "the task ran out of memory"}
    except OSError as exc:
        if exc.errno == errno.EFBIG:  # CPython ignores SIGXFSZ: the limit shows as EFBIG
            failure = {"violation": Violation.FILE_SIZE.value,
                       "detail": "the task wrote a file over its size limit"}
        else:
            failure = {"error": type(exc).__name__, "message": str(exc)[:2000]}
    except RecursionError:
        failure = {"error": "RecursionError", "message": "maximum recursion depth exceeded"}
    except BaseException as exc:  # the task's own error, reported by type and message
        failure = {"error": type(exc).__name__, "message": str(exc)[:2000],
                   "trace": traceback.format_exc(limit=5)[-4000:]}
    finally:
        guard.active = False
    seconds = time.perf_counter() - start
    leftover = _leftover_processes() if own_pid_namespace else []
    if guard.tried:
        kind, detail = guard.tried[0]
        failure = {"violation": kind.value, "detail": detail}
    elif leftover:
        for pid in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        failure = {"violation": Violation.LEFTOVER_PROCESS.value,
                   "detail": f"{len(leftover)} process(es) left running: {leftover[:5]}"}
    if failure is not None or result is None:
        write_frame(out, {"ok": False, "seconds": seconds, **(failure or {})})
        return
    values, result_arrays = result
    try:
        write_frame(out, {"ok": True, "seconds": seconds, "values": values}, result_arrays)
    except (TypeError, ValueError) as exc:
        write_frame(out, {"ok": False, "violation": Violation.MALFORMED_RESULT.value,
                          "detail": f"values are not plain JSON: {exc}"})


def oneshot(task_path: str, result_path: str) -> int:
    """Run the one task in ``task_path`` and write its result frame to ``result_path``.

    For backends whose wall is a whole machine (E2B's microVMs): no warm
    worker, the same checks. The task frame's header carries the config
    (scratch folder, read roots, CPU budget) under ``"config"``.
    """
    sys.dont_write_bytecode = True
    task_path, result_path = os.path.abspath(task_path), os.path.abspath(result_path)
    with open(task_path, "rb") as stream:
        header, arrays = read_frame(stream)
    config = header.pop("config")
    scratch = os.path.realpath(config["scratch"])
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    sys.path.insert(0, scratch)  # plug-in modules put there by put_file
    guard = Guard(config["read_roots"], scratch)
    sys.addaudithook(guard.hook)
    with open(result_path, "wb") as out:
        _run(guard, float(config["cpu_seconds"]), header, arrays, out, False)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--oneshot":
        return oneshot(argv[2], argv[3])
    config = json.loads(argv[1])
    sys.dont_write_bytecode = True  # the package folders are read-only inside
    # Frames travel on a private copy of stdout; the task's prints go to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    sys.path[:0] = [str(p) for p in config.get("sys_path", [])]
    for name in config.get("preload", []):
        importlib.import_module(name)
    scratch = config["scratch"]
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    guard = Guard(config["read_roots"], scratch)
    sys.addaudithook(guard.hook)
    write_frame(out, {"ok": True, "ready": True, "pid": os.getpid()})
    limit = min(int(config.get("frame_bytes", MAX_FRAME_BYTES)), MAX_FRAME_BYTES)
    while True:
        try:
            header, arrays = read_frame(inp, limit)
        except EOFError:
            return 0
        op = header.get("op")
        if op == "run":
            _run(guard, float(config["cpu_seconds"]), header, arrays, out,
                 bool(config.get("pid_namespace", True)))
        elif op == "put":
            path = Path(scratch) / str(header["name"])
            if not os.path.realpath(path).startswith(os.path.realpath(scratch) + "/"):
                write_frame(out, {"ok": False, "error": "InvalidParameter",
                                  "message": f"{header['name']!r} leaves the scratch folder"})
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(arrays["data"].tobytes())
            write_frame(out, {"ok": True})
        elif op == "get":
            path = Path(scratch) / str(header["name"])
            real = os.path.realpath(path)
            if not real.startswith(os.path.realpath(scratch) + "/") or not path.is_file():
                write_frame(out, {"ok": False, "error": "FileNotFoundError",
                                  "message": f"no file {header['name']!r} in the sandbox"})
                continue
            import numpy as np
            write_frame(out, {"ok": True}, {"data": np.frombuffer(path.read_bytes(), np.uint8)})
        elif op == "ping":
            write_frame(out, {"ok": True, "pid": os.getpid()})
        else:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
