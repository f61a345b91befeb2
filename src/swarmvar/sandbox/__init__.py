"""Sandboxes (layer 2): agent fits and validations of model variants run isolated.

A :class:`Task` names a function (``"package.module:function"``) and hands
it JSON parameters, numeric arrays and a seed; a :class:`Sandbox` runs it
behind walls and returns a checked :class:`TaskResult`, or raises a typed
:class:`~swarmvar.errors.SandboxViolation` naming what the code tried.

Backends: :class:`BubblewrapSandbox` (the default: namespaces, rlimits,
cgroups where allowed), ``E2BSandbox`` (E2B's cloud microVMs, in
:mod:`swarmvar.sandbox.e2b`: ``pip install swarmvar[e2b]`` and
``E2B_API_KEY``) and :class:`UnsandboxedWorker` (``--sandbox none``: no
walls, only when asked).
See docs/sandbox.md for the threat model.
"""

from typing import Any

from ..errors import SandboxError, SandboxUnavailable, SandboxViolation, TaskFailed, Violation
from .base import Health, Sandbox, WorkerSandbox
from .bubblewrap import BubblewrapSandbox, UnsandboxedWorker, bwrap_path
from .profiles import PROFILES, REALTIME, TRAINING, VALIDATION, NetworkPolicy, Profile, profile
from .wire import Task, TaskResult

BACKENDS = ("bwrap", "e2b", "none")


def create(backend: str = "bwrap", profile_: str | Profile = "training",
           **options: Any) -> Sandbox:
    """A sandbox of ``backend`` (``bwrap``, ``e2b`` or ``none``) under ``profile_``."""
    if backend == "bwrap":
        return BubblewrapSandbox.create(profile_, **options)
    if backend == "none":
        return UnsandboxedWorker.create(profile_, **options)
    if backend == "e2b":
        from .e2b import E2BSandbox  # the e2b SDK only when asked for
        return E2BSandbox.create(profile_, **options)
    raise SandboxError(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "PROFILES",
    "REALTIME",
    "TRAINING",
    "VALIDATION",
    "BubblewrapSandbox",
    "Health",
    "NetworkPolicy",
    "Profile",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "SandboxViolation",
    "Task",
    "TaskFailed",
    "TaskResult",
    "UnsandboxedWorker",
    "Violation",
    "WorkerSandbox",
    "bwrap_path",
    "create",
    "profile",
]
