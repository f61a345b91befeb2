"""A swarm with the arbiter, paced by the pulse on a deterministic clock (kill -9 battery).

Usage: python _arbiter_child.py HOME DAYS HOOK MARKER
HOOK as in ``_kill_child.py``: "checkpoint" pauses inside a checkpoint write,
"ledger" inside a ledger transaction (after writing MARKER), "none" runs
straight. Imported by the tests for the same run in process.

The clock is fake: a beat "takes" ``duration(seq)`` (the executor's call
advances it), sleeping advances it, so the measured beat times, the late
beats and everything the PID does with them are the same in every run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from swarmvar.arbiter import Arbiter, Cadence
from swarmvar.data import load
from swarmvar.swarm import Replay, RoleConfig, Swarm

sys.path.insert(0, str(Path(__file__).parent))
from _kill_child import pause_inside  # noqa: E402

from conftest import TINY, TINY_POLICY  # noqa: E402

WINDOW = 100
SETTINGS: dict[str, Any] = {"agents": TINY, "policy": TINY_POLICY, "window": WINDOW,
                            "refit_every": 10, "checkpoint_every": 7, "ledger_batch": 3,
                            "fsync": False, "roles": RoleConfig.quiet()}


class FakeTime:
    """A monotonic clock that moves only when a beat works or the cadence sleeps (starting
    at 600 s: floats in [512, 1024) share one ulp, so the measured times are exact)."""

    def __init__(self, start: float = 600.0) -> None:
        self.now = start
        self.starts: list[float] = []
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def duration(seq: int, budget: float) -> float:
    """How long beat ``seq`` takes: 0.4 .. 1.4 budgets (two in five are late), on a grid of
    2^-20 s so that ``(now + d) - now == d`` exactly while the clock is in [512, 1024)."""
    return round(budget * (0.4 + 0.25 * ((seq * 7) % 5)) * 2**20) / 2**20


def paced_swarm(home: str | Path, fake: FakeTime, arbiter_options: dict[str, Any] | None = None,
                **overrides: Any) -> tuple[Swarm, Arbiter, Cadence]:
    """The swarm, its arbiter (entries in the beat's transaction) and a cadence on ``fake``."""
    swarm = Swarm(["sp500"], home=home, **{**SETTINGS, **overrides})
    arbiter = Arbiter.from_options(record_decisions=False, **(arbiter_options or {}))
    arbiter.ledger, arbiter.breakers = swarm.beat_entries, swarm.breakers
    swarm.add_observer(arbiter)
    cadence = Cadence(arbiter.config.pulse, fake.clock, fake.sleep)
    beats = swarm.executor.beats

    def timed_beats(inputs: Any) -> Any:
        fake.starts.extend(fake.now for _ in inputs)
        out = beats(inputs)
        fake.now += sum(duration(tick.seq, cadence.budget) for _, tick in inputs)
        return out

    swarm.executor.beats = timed_beats  # type: ignore[method-assign]
    return swarm, arbiter, cadence


def run(home: str | Path, days: int, beats: int | None = None) -> None:
    r = load("sp500").iloc[: WINDOW + days]
    fake = FakeTime()
    swarm, arbiter, cadence = paced_swarm(home, fake)
    with swarm, arbiter:
        swarm.start({"sp500": r.iloc[:WINDOW]})
        swarm.run(Replay(r, portfolio="sp500", start=WINDOW), pace=cadence, beats=beats)


def main() -> None:
    home, days, hook, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    pause_inside(hook, marker, batch_rows=12)
    run(home, days)


if __name__ == "__main__":
    main()
