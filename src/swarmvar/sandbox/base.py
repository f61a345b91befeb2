"""The sandbox interface, and the warm-worker machinery the process backends share.

``create(profile)`` → ``run(task)`` → :class:`~swarmvar.sandbox.wire.TaskResult`,
``put_file``/``get_file`` in the sandbox's scratch folder, ``health()``,
``kill()``. A process backend keeps one warm worker
(:mod:`swarmvar.sandbox._worker`) per sandbox: the interpreter and numpy are
loaded once, a task costs a round trip. The worker is recycled after the
profile's ``tasks_per_worker`` tasks and after any violation, crash or
timeout; the next task starts a fresh one.
"""

from __future__ import annotations

import abc
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, ClassVar

import numpy as np

from ..errors import SandboxError, SandboxUnavailable, SandboxViolation, TaskFailed, Violation
from .profiles import Profile, profile
from .wire import Task, TaskResult, read_frame, write_frame

#: Modules a warm worker imports before it says it is ready (the rest on first use). They
#: must be trusted code: a worker that ends before it is ready is the sandbox's failure
#: (:class:`~swarmvar.errors.SandboxUnavailable`), not a violation.
PRELOAD = ("numpy",)

#: Bytes of the worker's error output kept to explain a failure (the last ones).
STDERR_TAIL = 4000

#: How the worker starts: the host's swarmvar folder first on ``sys.path`` (a source
#: checkout on PYTHONPATH is not seen by ``python -I``), then the worker's ``main``.
_BOOT = ("import sys; root = sys.argv.pop(1); sys.path[:0] = [root] if root else []; "
         "from swarmvar.sandbox._worker import main; sys.exit(main(sys.argv))")


@dataclass(frozen=True)
class Health:
    """A sandbox's state: whether its worker is alive, and what it has done."""

    backend: str
    alive: bool
    tasks: int
    violations: int
    workers_started: int
    pid: int | None = None


class Sandbox(abc.ABC):
    """Isolated execution of :class:`~swarmvar.sandbox.wire.Task` objects."""

    backend: ClassVar[str]

    def __init__(self, profile_: Profile) -> None:
        self.profile = profile_

    @classmethod
    def create(cls, profile_: str | Profile = "training", **options: Any) -> Sandbox:
        """A sandbox of this backend under ``profile_`` (a name or a :class:`Profile`)."""
        return cls(profile(profile_), **options)

    @abc.abstractmethod
    def run(self, task: Task) -> TaskResult:
        """Run ``task``: a violation raises :class:`SandboxViolation`, the task's error
        :class:`TaskFailed`."""

    @abc.abstractmethod
    def put_file(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name`` inside the sandbox's scratch folder."""

    @abc.abstractmethod
    def get_file(self, name: str) -> bytes:
        """Read ``name`` from the sandbox's scratch folder."""

    @abc.abstractmethod
    def health(self) -> Health:
        """Whether the sandbox is alive and what it has run."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the sandbox and everything in it."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def outcome(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TaskResult:
    """Turn a worker's result frame into a result, a violation or the task's own error."""
    if header.get("ok") is True and isinstance(header.get("values"), dict):
        seconds = header.get("seconds")
        if not isinstance(seconds, int | float):
            raise SandboxViolation(Violation.MALFORMED_RESULT, "a result without its seconds")
        return TaskResult(values=header["values"], arrays=arrays, seconds=float(seconds))
    if "violation" in header:
        try:
            kind = Violation(header["violation"])
        except ValueError:
            kind = Violation.MALFORMED_RESULT
        raise SandboxViolation(kind, str(header.get("detail", ""))[:2000])
    if isinstance(header.get("error"), str):
        raise TaskFailed(header["error"], str(header.get("message", ""))[:2000])
    raise SandboxViolation(Violation.MALFORMED_RESULT, f"an unexpected frame: {header!r:.200}")


class WorkerSandbox(Sandbox):
    """A sandbox served by one warm worker process started by :meth:`command`."""

    #: Whether the worker has a pid namespace of its own (leftover-process checks).
    own_pid_namespace: ClassVar[bool] = True

    def __init__(self, profile_: Profile, *, plugin_paths: Sequence[str] = (),
                 preload: Sequence[str] = PRELOAD) -> None:
        super().__init__(profile_)
        self.preload = tuple(preload)
        from pathlib import Path
        for folder in plugin_paths:
            if not Path(folder).is_dir():
                raise SandboxError(f"plug-in folder {folder} does not exist")
        #: Folders of plug-in code (a user's agent modules): read-only inside, on sys.path.
        self.plugin_paths = tuple(str(Path(p).resolve()) for p in plugin_paths)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._tasks = 0
        self._worker_tasks = 0
        self._violations = 0
        self._started = 0
        self._timed_out = False
        self._stderr: _Tail | None = None

    @property
    def workers_started(self) -> int:
        """How many warm workers this sandbox has started (a recycled one is a new one):
        read without a round trip, so a caller can tell a fresh worker before it runs
        a task there (:meth:`start`, then this)."""
        return self._started

    # -- what a backend provides -------------------------------------------

    @abc.abstractmethod
    def command(self, worker_argv: Sequence[str]) -> list[str]:
        """The argv that starts ``worker_argv`` inside this backend's walls."""

    def scratch(self) -> str:
        """The worker's writable scratch folder, as the worker sees it."""
        return "/tmp/work"

    def read_roots(self) -> list[str]:
        """Folders the worker's code may read (the interpreter and the package)."""
        return sorted({sys.prefix, sys.base_prefix, *package_roots(), *self.plugin_paths})

    def cleanup(self) -> None:
        """Release what :meth:`command` set up (cgroups, temporary folders)."""

    def environment(self) -> dict[str, str]:
        """The environment the backend's first process starts with: nothing of the host's.

        Inside a pid namespace that process is pid 1, whose ``/proc/1/environ``
        the sandboxed code can read; so it never sees the host's variables
        (API keys, database URLs).
        """
        return {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", "LANG": "C.UTF-8"}

    # -- the worker's life -------------------------------------------------

    def _config(self) -> str:
        return json.dumps({
            "preload": list(self.preload), "scratch": self.scratch(),
            "read_roots": self.read_roots(), "cpu_seconds": self.profile.cpu_seconds,
            "frame_bytes": self.profile.result_bytes,
            "pid_namespace": self.own_pid_namespace, "sys_path": list(self.plugin_paths),
        })

    def _start(self) -> None:
        argv = [sys.executable, "-I", "-c", _BOOT, import_root(), self._config()]
        try:
            proc = subprocess.Popen(self.command(argv), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True, env=self.environment())
        except OSError as exc:
            self.cleanup()
            raise SandboxUnavailable(f"cannot start a {self.backend} sandbox: {exc}") from None
        assert proc.stderr is not None
        self._stderr = _Tail(proc.stderr)
        self._proc, self._out, self._worker_tasks = proc, proc.stdout, 0
        self._started += 1
        self._timed_out = False
        # no task code has run yet: whatever stops the worker now is the machine's setup
        # (imports, the walls, the limits), never counted as the code's violation
        try:
            header, _ = self._receive(self.profile.wall_seconds + 60.0)
        except SandboxError as exc:
            code = proc.poll()
            self._stop()
            why = (f"no ready answer within {self.profile.wall_seconds + 60.0:g} s"
                   if self._timed_out else f"it ended with status {code}"
                   if code is not None else str(exc))
            raise SandboxUnavailable(
                f"the {self.backend} sandbox's worker could not start ({why}); this is the "
                "sandbox's setup (the worker's imports, the walls or the limits), not the "
                "task's doing", self._stderr_tail()) from None
        if header.get("ready") is not True:
            self._stop()
            raise SandboxUnavailable(
                f"the {self.backend} sandbox's worker did not start: {header!r:.200}",
                self._stderr_tail())

    def _stderr_tail(self) -> str:
        """The last of the worker's error output (waits briefly for it to be read)."""
        return "" if self._stderr is None else self._stderr.text()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # the whole group, even when the worker has ended on its own: a child it left
            # behind would hold the stderr pipe open
            try:
                import os
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except OSError:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            if self._stderr is not None:
                self._stderr.close()
        self.cleanup()

    def _died_because(self) -> SandboxViolation:
        """Why the worker ended inside a task, from its exit status."""
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if self._timed_out:
            return SandboxViolation(Violation.WALL_TIMEOUT,
                                    f"the task ran past {self.profile.wall_seconds:g} s")
        sig = -code if code is not None and code < 0 else (code - 128 if code and code > 128
                                                            else None)
        if sig == signal.SIGXCPU:
            return SandboxViolation(
                Violation.CPU_TIME, f"the task used over {self.profile.cpu_seconds:g} s of CPU")
        if sig == signal.SIGXFSZ:
            return SandboxViolation(
                Violation.FILE_SIZE,
                f"the task wrote a file over {self.profile.file_bytes:,} bytes")
        if sig == signal.SIGKILL and self.memory_exceeded():
            return SandboxViolation(Violation.MEMORY, "the sandbox's memory limit was reached")
        tail = self._stderr_tail()[-1000:]
        return SandboxViolation(Violation.CRASHED, f"the worker ended with status {code}"
                                + (f"; its last error output:\n{tail}" if tail else ""))

    def memory_exceeded(self) -> bool:
        """Whether the sandbox's memory cgroup hit its limit (backends with cgroups)."""
        return False

    def _receive(self, timeout: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        assert self._out is not None
        box: list[Any] = []
        reader = threading.Thread(
            target=lambda: box.append(_try(read_frame, self._out, self.profile.result_bytes)),
            daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self._timed_out = True
            assert self._proc is not None
            try:
                import os
                os.killpg(self._proc.pid, signal.SIGKILL)
            except OSError:
                self._proc.kill()
            reader.join(10)
        if not box:
            raise SandboxViolation(Violation.WALL_TIMEOUT, "the worker did not answer")
        value = box[0]
        if isinstance(value, BaseException):
            if isinstance(value, EOFError):
                raise self._died_because()
            raise value
        result: tuple[dict[str, Any], dict[str, np.ndarray]] = value
        return result

    def _exchange(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None,
                  timeout: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self._stop()
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            write_frame(self._proc.stdin, header, arrays)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError):
            violation = self._died_because()
            self._stop()
            raise violation from None
        try:
            return self._receive(timeout)
        except SandboxViolation:
            self._violations += 1
            self._stop()
            raise

    # -- the interface -----------------------------------------------------

    def start(self) -> None:
        """Start the warm worker now (it otherwise starts with the first task)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    self._stop()
                self._start()

    def run(self, task: Task) -> TaskResult:
        if not isinstance(task, Task):
            raise SandboxError(f"run() takes a Task, got {type(task).__name__}")
        with self._lock:
            header = {"op": "run", "entry": task.entry, "params": dict(task.params),
                      "seed": task.seed}
            frame = self._exchange(header, dict(task.arrays), self.profile.wall_seconds)
            self._tasks += 1
            self._worker_tasks += 1
            try:
                result = outcome(*frame)
            except SandboxViolation:
                self._violations += 1
                self._stop()
                raise
            finally:
                if self._worker_tasks >= self.profile.tasks_per_worker:
                    self._stop()
            return result

    def put_file(self, name: str, data: bytes) -> None:
        with self._lock:
            header, _ = self._exchange({"op": "put", "name": str(name)},
                                       {"data": np.frombuffer(bytes(data), np.uint8)}, 60.0)
        if header.get("ok") is not True:
            raise SandboxError(str(header.get("message", "put_file failed")))

    def get_file(self, name: str) -> bytes:
        with self._lock:
            header, arrays = self._exchange({"op": "get", "name": str(name)}, None, 60.0)
        if header.get("ok") is not True or "data" not in arrays:
            raise SandboxError(str(header.get("message", f"no file {name!r}")))
        return arrays["data"].tobytes()

    def health(self) -> Health:
        with self._lock:
            alive = self._proc is not None and self._proc.poll() is None
            if alive:
                try:
                    header, _ = self._exchange({"op": "ping"}, None, 10.0)
                    alive = header.get("ok") is True
                except SandboxViolation:
                    alive = False
            return Health(self.backend, alive, self._tasks, self._violations, self._started,
                          self._proc.pid if alive and self._proc is not None else None)

    def kill(self) -> None:
        with self._lock:
            self._stop()


class _Tail:
    """Drains a worker's stderr on a thread, keeping its last :data:`STDERR_TAIL` bytes (a
    pipe never fills, whatever a task prints)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._kept = b""
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                self._kept = (self._kept + chunk)[-STDERR_TAIL:]
        except (OSError, ValueError):  # closed under us
            pass
        finally:
            self._stream.close()  # at end of file: whoever held the pipe last let it go

    def text(self) -> str:
        """The kept tail as text, without control characters but newlines and tabs (it
        reaches terminals and the ledger)."""
        self._thread.join(2.0)  # the worker has ended: its last words are on the way
        text = self._kept.decode(errors="replace")
        return _CONTROL.sub("", text).strip()

    def close(self) -> None:
        """Close the pipe if it is drained; else the drain thread closes it at end of file
        (closing under a blocked read would wait for whoever still holds the pipe)."""
        self._thread.join(1.0)
        if not self._thread.is_alive():
            self._stream.close()


#: Control characters but newline and tab (ANSI escapes start with ESC, \x1b).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _swarmvar_root() -> tuple[str, str]:
    """The running swarmvar's package folder, and the folder to put on ``sys.path`` for it
    ("" when that is an installation's site-packages, found there anyway)."""
    import site
    from pathlib import Path

    import swarmvar
    package = Path(swarmvar.__file__).resolve().parent
    installed = {Path(p).resolve() for p in site.getsitepackages() if Path(p).is_dir()}
    return str(package), "" if package.parent in installed else str(package.parent)


def import_root() -> str:
    """The folder the running swarmvar is imported from, for the worker's ``sys.path``;
    empty when that is an installation's site-packages (found there anyway)."""
    return _swarmvar_root()[1]


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except BaseException as exc:  # handed to the waiting thread, which re-raises it
        return exc


def package_roots() -> list[str]:
    """Folders holding swarmvar and its installed dependencies (read-only in a sandbox).

    For swarmvar, only its package folder: a source checkout's other files (``.git``,
    keys, ``.env``) stay outside, though its parent is on the worker's ``sys.path``.
    """
    import site
    from pathlib import Path

    roots = {_swarmvar_root()[0]}
    roots.update(p for p in site.getsitepackages() if Path(p).is_dir())
    return sorted(roots)
