"""A swarm run for the kill -9 battery (run as a script by test_swarm_recovery.py).

Usage: python _kill_child.py HOME DAYS HOOK MARKER [REFIT_LAG [SPREAD [WORKERS [RATE]]]]
HOOK "checkpoint" pauses inside a checkpoint write (a state pack written, the
index not yet committed), "ledger" inside a ledger transaction (rows inserted,
not committed), "fit-again" inside the start's fit of hosts lost before its first
checkpoint (WORKERS > 0: every worker is killed after the start's fit; the
fresh hosts have fitted, their states not yet taken), after writing MARKER, so
that the parent can kill it there; "none" runs straight. RATE > 0 replays that many
ticks a second (0: as fast as it can), so that a long battery's run outlasts its kills
on an idle machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from swarmvar.data import load
from swarmvar.swarm import Replay, RoleConfig, Swarm

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY, TINY_POLICY  # noqa: E402

WINDOW = 100
SETTINGS = {"agents": TINY, "policy": TINY_POLICY, "window": WINDOW, "refit_every": 10,
            "checkpoint_every": 7, "ledger_batch": 3, "fsync": False,
            "roles": RoleConfig.quiet()}


def settings(lag: int = 0) -> dict:
    """SETTINGS with refits landing ``lag`` beats after their cut (pending across kills)."""
    return {**SETTINGS, "roles": RoleConfig.quiet(refit_lag=lag)}


def _pause(marker: Path) -> None:
    # held until the parent (which kills as soon as it sees the marker) kills it: a 0.5 s pause
    # let a parent slowed by a loaded machine kill it past the hook instead; bounded all the same
    marker.write_text("here")
    time.sleep(30)


def pause_inside(hook: str, marker: Path, batch_rows: int) -> None:
    """Make this process pause (after writing ``marker``) inside a checkpoint write
    (``hook="checkpoint"``) or inside a ledger transaction of more than ``batch_rows`` rows
    (``"ledger"``: a batch of beats, not a single entry), for the parent to kill it there."""
    if hook == "checkpoint":
        from swarmvar.evolution import statestore

        original = statestore.StateStore._write_pack

        def write_pack(self, pack, blobs):  # type: ignore[no-untyped-def]
            original(self, pack, blobs)
            _pause(marker)

        statestore.StateStore._write_pack = write_pack  # type: ignore[method-assign]
    elif hook == "ledger":
        from swarmvar.ledger import sqlite

        insert = sqlite._insert

        def paused_insert(conn, rows):  # type: ignore[no-untyped-def]
            insert(conn, rows)
            if len(rows) > batch_rows:
                _pause(marker)

        sqlite._insert = paused_insert  # type: ignore[assignment]
    elif hook == "fit-again":
        import os
        import signal

        from swarmvar.swarm import LocalExecutor

        start = LocalExecutor.start

        def start_then_lose(self, requests):  # type: ignore[no-untyped-def]
            start(self, requests)
            if not getattr(self, "_lost_once", False):  # the start's fit: its hosts die
                self._lost_once = True
                for pid in self.pids():
                    os.kill(pid, signal.SIGKILL)
            else:  # Swarm._fit_again's fit on fresh hosts, before its states are taken
                _pause(marker)

        LocalExecutor.start = start_then_lose  # type: ignore[method-assign]


def main() -> None:
    home, days, hook, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    lag = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    spread = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    workers = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    rate = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
    pause_inside(hook, marker, batch_rows=4)
    r = load("sp500").iloc[: WINDOW + days]
    from swarmvar.swarm import LocalExecutor

    with Swarm(["sp500"], home=home, spread=spread, executor=LocalExecutor(workers),
               **settings(lag)) as swarm:
        swarm.start({"sp500": r.iloc[:WINDOW]})
        swarm.run(Replay(r, portfolio="sp500", start=WINDOW, rate=rate or None))


if __name__ == "__main__":
    main()
