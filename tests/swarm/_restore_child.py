"""A swarm run killed while a lost host is restored (run as a script by
test_swarm_restore_async.py).

Usage: python _restore_child.py HOME MODE MARKER
MODE "kill": kill the worker process of portfolio ``a`` after ``d``'s beat
KILL_AFTER, hold its restore forever, and once ``d`` has beaten five more times
(``a``'s ticks queued meanwhile) write the queue length to MARKER and wait to be
killed. "none": run to the end (resuming whatever HOME holds).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from swarmvar.data import load
from swarmvar.swarm import LocalExecutor, Replay, RoleConfig

sys.path.insert(0, str(Path(__file__).parent))
from conftest import CHEAP, make_swarm  # noqa: E402

#: "a" alone on shard 1 of two worker processes, "d" and "e" on shard 0
PORTFOLIOS = ("a", "d", "e")
OFFSETS = {"a": 0, "d": 400, "e": 800}
HISTORY = 250
DAYS = 30
KILL_AFTER = 8
SETTINGS: dict[str, Any] = {"agents": CHEAP, "checkpoint_every": 6, "ledger_batch": 2,
                            "roles": RoleConfig.quiet()}


def frame(sp500: pd.Series) -> pd.DataFrame:
    """Three single-series portfolios over one date index (a Replay of it ticks all three)."""
    n = HISTORY + DAYS + 10
    return pd.DataFrame({p: sp500.iloc[o: o + n].to_numpy() for p, o in OFFSETS.items()},
                        index=sp500.index[:n])


def main(home: str, mode: str, marker: str) -> None:
    data = frame(load("sp500"))
    executor = LocalExecutor(workers=2)
    with make_swarm(Path(home), PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(data.iloc[:HISTORY])
        if mode == "kill":
            restore = executor.restore

            def held(blobs: Any) -> None:
                if threading.current_thread() is not threading.main_thread():
                    threading.Event().wait(600)  # never released: the parent kills us
                restore(blobs)

            executor.restore = held  # type: ignore[method-assign]
            state = {"killed_at": None}

            def on_beat(rep: Any) -> None:
                if rep.portfolio != "d":
                    return
                if state["killed_at"] is None and rep.seq >= KILL_AFTER:
                    from swarmvar.swarm.executors import shard_of

                    os.kill(executor.pids()[shard_of("a", 2)], signal.SIGKILL)
                    state["killed_at"] = rep.seq
                elif state["killed_at"] is not None and rep.seq >= state["killed_at"] + 5:
                    # (d's seq 13 is no checkpoint: the ledger holds d's beats after it)
                    queued = swarm.restoring()["a"].queued
                    Path(marker).write_text(str(queued))
                    time.sleep(600)

            swarm.run(Replay(data, start=HISTORY, stop=HISTORY + DAYS), on_beat=on_beat)
        else:
            swarm.run(Replay(data, start=HISTORY, stop=HISTORY + DAYS))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
