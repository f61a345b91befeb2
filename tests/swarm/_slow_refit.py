"""A deliberately slow forager (module-level so worker processes can import it)."""

from __future__ import annotations

import time

from swarmvar.swarm import RefitJob, RefitResult, run_refit

SECONDS = 1.5


def slow_refit(job: RefitJob) -> RefitResult:
    time.sleep(SECONDS)
    return run_refit(job)
