"""The cloud sandbox: E2B's Firecracker microVMs, through the ``e2b`` SDK.

``pip install swarmvar[e2b]`` and set ``E2B_API_KEY``. Each task is one
command in the VM: the task frame is uploaded as a file, ``python3 -m
swarmvar.sandbox._worker --oneshot`` runs it with the same reporting audit
hook as the local worker, and the result frame is downloaded and checked
exactly as the local backend checks it. The VM's template must have swarmvar
installed (an E2B template built from ``pip install swarmvar``); its name is
the ``template`` option. The wall is the microVM: nothing of the host is in
it; ``allow_internet_access=False`` keeps it off the network.

The SDK's endpoints can be moved with ``api_url`` / ``sandbox_url`` (or
``E2B_API_URL`` / ``E2B_SANDBOX_URL``); the tests point them at a local fake
of E2B's HTTP API, since E2B's cloud cannot be reached from the test machines.
"""

from __future__ import annotations

import io
import os
import posixpath
import uuid
from typing import Any, ClassVar

from ..errors import SandboxError, SandboxUnavailable, SandboxViolation, Violation
from .base import Health, Sandbox, outcome
from .profiles import Profile
from .wire import Task, TaskResult, encode, read_frame

INSTALL_HINT = "pip install 'swarmvar[e2b]'"


def _sdk() -> Any:
    try:
        import e2b
    except ImportError:
        raise SandboxError(f"the E2B backend needs the e2b SDK: {INSTALL_HINT}") from None
    return e2b


class E2BSandbox(Sandbox):
    """A sandbox in an E2B microVM (see the module docstring).

    Parameters
    ----------
    profile_ : Profile
        The limits; its wall-clock bound is the command's timeout and the
        VM's lifetime, its CPU budget is enforced inside by the worker.
    template : str
        The E2B template with swarmvar installed.
    api_key, api_url, sandbox_url : str, optional
        Passed to the SDK (default: its environment variables).
    """

    backend: ClassVar[str] = "e2b"

    def __init__(self, profile_: Profile, *, template: str = "swarmvar",
                 api_key: str | None = None, api_url: str | None = None,
                 sandbox_url: str | None = None, python: str = "python3") -> None:
        super().__init__(profile_)
        e2b = _sdk()
        key = api_key or os.environ.get("E2B_API_KEY")
        if not key:
            raise SandboxError("the E2B backend needs an API key: set E2B_API_KEY "
                               "(or use the local backend, --sandbox bwrap)")
        options: dict[str, Any] = {"api_key": key}
        if api_url:
            options["api_url"] = api_url
        if sandbox_url:
            options["sandbox_url"] = sandbox_url
        self._python = python
        self._tasks = 0
        self._violations = 0
        try:
            self._vm = e2b.Sandbox.create(template=template,
                                          timeout=int(profile_.wall_seconds) + 60,
                                          allow_internet_access=False, **options)
        except Exception as exc:  # the SDK's own errors: no network, bad key, quota
            # no task ran: the sandbox is unavailable, which callers tell apart from a bug
            raise SandboxUnavailable("cannot create an E2B sandbox", str(exc)) from None
        self._dir = f"swarmvar-{uuid.uuid4().hex[:8]}"

    def _path(self, name: str) -> str:
        clean = posixpath.normpath(str(name))
        if clean.startswith(("/", "..")) or clean == ".":
            raise SandboxError(f"{name!r} leaves the sandbox's scratch folder")
        return posixpath.join(self._dir, "scratch", clean)

    def run(self, task: Task) -> TaskResult:
        if not isinstance(task, Task):
            raise SandboxError(f"run() takes a Task, got {type(task).__name__}")
        config = {"scratch": posixpath.join(self._dir, "scratch"), "read_roots": ["/"],
                  "cpu_seconds": self.profile.cpu_seconds}
        frame = encode({"op": "run", "entry": task.entry, "params": dict(task.params),
                        "seed": task.seed, "config": config}, dict(task.arrays))
        task_file = posixpath.join(self._dir, "task.frame")
        result_file = posixpath.join(self._dir, "result.frame")
        try:
            self._vm.files.write(task_file, frame, use_octet_stream=True)
            run = self._vm.commands.run(
                f"{self._python} -I -m swarmvar.sandbox._worker --oneshot "
                f"{task_file} {result_file}", timeout=self.profile.wall_seconds)
        except Exception as exc:
            self._violations += 1
            if "timeout" in type(exc).__name__.lower() or "deadline" in str(exc).lower():
                raise SandboxViolation(
                    Violation.WALL_TIMEOUT,
                    f"the task ran past {self.profile.wall_seconds:g} s") from None
            raise SandboxViolation(Violation.CRASHED, f"the E2B command failed: {exc}") from None
        if getattr(run, "exit_code", 1) != 0:
            self._violations += 1
            raise SandboxViolation(Violation.CRASHED,
                                   f"the worker exited with {getattr(run, 'exit_code', None)}")
        try:
            raw = bytes(self._vm.files.read(result_file, format="bytes"))
        except Exception as exc:
            raise SandboxViolation(Violation.MALFORMED_RESULT, f"no result file: {exc}") from None
        self._tasks += 1
        try:
            return outcome(*read_frame(io.BytesIO(raw), self.profile.result_bytes))
        except SandboxViolation:
            self._violations += 1
            raise

    def put_file(self, name: str, data: bytes) -> None:
        try:
            self._vm.files.write(self._path(name), bytes(data), use_octet_stream=True)
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxError(f"cannot write {name!r} in the E2B sandbox: {exc}") from None

    def get_file(self, name: str) -> bytes:
        try:
            return bytes(self._vm.files.read(self._path(name), format="bytes"))
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxError(f"no file {name!r} in the E2B sandbox: {exc}") from None

    def health(self) -> Health:
        try:
            alive = bool(self._vm.is_running())
        except Exception:
            alive = False
        return Health(self.backend, alive, self._tasks, self._violations, 1)

    def kill(self) -> None:
        try:
            self._vm.kill()
        except Exception:  # already gone: killing is idempotent
            pass

