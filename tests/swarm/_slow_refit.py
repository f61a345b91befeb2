"""A deliberately slow forager (module-level so worker processes can import it).

With ``GATE_ENV`` set (to a file path) it is held until that file exists (at most
``GATE_SECONDS``, then it fails): the test decides when it finishes, so "no beat waited for
the refit" is proved by the beats that ran while it was held, not by a clock. Without it the
refit sleeps ``SECONDS``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from swarmvar.swarm import RefitJob, RefitResult, run_refit

SECONDS = 1.5
GATE_ENV = "SWARMVAR_TEST_REFIT_GATE"
GATE_SECONDS = 15.0  # the test fails a step() taking half of it: no long hang


def slow_refit(job: RefitJob) -> RefitResult:
    gate = os.environ.get(GATE_ENV)
    if gate is None:
        time.sleep(SECONDS)
        return run_refit(job)
    deadline = time.monotonic() + GATE_SECONDS
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the refit gate {gate} was never opened: did a beat wait for "
                               "the refit?")
        time.sleep(0.02)
    return run_refit(job)
