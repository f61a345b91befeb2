"""Sandbox profiles: what sandboxed work may use, by kind of work.

The three kinds of the design documents, with limits sized for this
project's work on a small machine: a training profile fits an agent (the
GARCH agents' first fit is the heaviest, ~2 s of CPU on 1,000 returns), a
validation profile runs backtest rows and simulations, a realtime profile
serves one forecast and must answer fast. No profile reaches the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from ..errors import InvalidParameter

MiB = 1 << 20
GiB = 1 << 30


class NetworkPolicy(Enum):
    """What network a sandbox sees: none (its own empty namespace) is the only policy."""

    NONE = "none"


@dataclass(frozen=True)
class Profile:
    """Resource and wall-clock limits of one sandbox.

    ``cpu_seconds`` and ``wall_seconds`` bound each task; ``memory_bytes``
    is the address space of the sandbox's process (and its cgroup's memory
    where the machine allows cgroups); ``processes`` the process count of
    its cgroup; ``file_bytes`` the largest file it may write;
    ``result_bytes`` the largest result frame the host accepts;
    ``tasks_per_worker`` recycles the warm worker after that many tasks.
    """

    name: str
    cpu_seconds: float
    wall_seconds: float
    memory_bytes: int
    processes: int
    file_bytes: int
    open_files: int = 256
    result_bytes: int = 256 * MiB
    tasks_per_worker: int = 100
    network: NetworkPolicy = NetworkPolicy.NONE

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InvalidParameter(f"profile {self.name!r}: {name} must be > 0, got {value!r}")
        for name in ("memory_bytes", "processes", "file_bytes", "open_files", "result_bytes",
                     "tasks_per_worker"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidParameter(
                    f"profile {self.name!r}: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.network, NetworkPolicy):
            raise InvalidParameter(f"profile {self.name!r}: network must be a NetworkPolicy")


TRAINING = Profile("training", cpu_seconds=120, wall_seconds=300, memory_bytes=4 * GiB,
                   processes=64, file_bytes=256 * MiB)
VALIDATION = Profile("validation", cpu_seconds=600, wall_seconds=900, memory_bytes=4 * GiB,
                     processes=64, file_bytes=256 * MiB)
REALTIME = Profile("realtime", cpu_seconds=5, wall_seconds=10, memory_bytes=2 * GiB,
                   processes=32, file_bytes=16 * MiB, tasks_per_worker=1000)

PROFILES = {p.name: p for p in (TRAINING, VALIDATION, REALTIME)}


def profile(name: str | Profile) -> Profile:
    """A profile by name (``training``, ``validation``, ``realtime``) or itself."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise InvalidParameter(
            f"unknown sandbox profile {name!r}; choose one of {', '.join(PROFILES)}") from None
