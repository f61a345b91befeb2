"""Kill a child run at one step of a kill plan: the one loop of the SIGKILL recovery tests
(``tests/swarm/test_swarm_recovery.py``, ``test_swarm_arbiter_recovery.py``,
``test_attribution_kill.py``).

A test module imports it with ``from _kill_at import kill_at`` (``tests/`` is on the test
process's path: ``tests/conftest.py``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

#: How long a step waits for its child's marker file before killing it anyway (seconds).
MARKER_WAIT_S = 60.0


def kill_at(proc: subprocess.Popen[bytes], kind: str, marker: Path, rng: random.Random,
            after_s: tuple[float, float]) -> bool:
    """SIGKILL ``proc`` at a step of kind ``kind`` and reap it; return whether it was alive.

    ``"random"``: after ``rng.uniform(*after_s)`` seconds; any other kind: once the child has
    written ``marker`` (its hook's point was reached), once it has ended, or after
    :data:`MARKER_WAIT_S`, whichever comes first. A child that has already ended is only
    reaped (the step's kill did not land).

    Raises
    ------
    subprocess.TimeoutExpired
        If the child does not end within 60 s of the kill.
    """
    deadline = time.monotonic() + MARKER_WAIT_S
    if kind == "random":
        time.sleep(rng.uniform(*after_s))
    else:
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return alive
