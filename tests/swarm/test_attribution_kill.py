"""kill -9 and resume: every due attribution of a book in the ledger exactly once, each equal
to ``book_var`` on its window and seed (run as a script, this file is the killed child).

Usage as the child: python test_attribution_kill.py HOME DAYS HOOK MARKER RATE. HOOK
"held" holds every attribution in its worker (after writing MARKER) until the parent kills
the process: a kill while attributions are running, some of them in the checkpoint;
"none" runs straight.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _kill_at import kill_at  # tests/_kill_at.py (on the path: tests/conftest.py)

DAYS = 30
EVERY = 4
CHECKPOINT_EVERY = 7


def _child(home: Path, days: int, hook: str, marker: Path, rate: float) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_attribution import WINDOW, asset_returns, book_swarm  # type: ignore[import-not-found]

    from swarmvar.swarm import Replay
    from swarmvar.swarm import attribution as attribution_module

    if hook == "held":
        def held(job, fn):  # type: ignore[no-untyped-def]
            marker.write_text("here")
            time.sleep(30)  # killed here; bounded all the same
            raise RuntimeError("not killed")

        attribution_module._attr_run = held  # type: ignore[assignment]
    frame = asset_returns(WINDOW + days)
    with book_swarm(home, every=EVERY, checkpoint_every=CHECKPOINT_EVERY,
                    restore_timeout=60.0) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.run(Replay(frame, portfolio="*", start=WINDOW, rate=rate or None))


def _spawn(home: Path, hook: str, marker: Path, rate: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(marker.with_suffix(".err"), "wb") as err:
        return subprocess.Popen([sys.executable, __file__, str(home), str(DAYS), hook,
                                 str(marker), str(rate)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _beats(home: Path) -> list[int]:
    from swarmvar.ledger import Ledger

    with Ledger.open(home) as ledger:
        return [e.data["beat"]["seq"] for e in ledger.entries()
                if e.kind == "consensus" and "beat" in e.data]


@pytest.mark.slow
def test_kill_minus_nine_records_each_attribution_once(tmp_path):
    from .test_attribution import assert_equal_to_direct, asset_returns, attributions

    home = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for step, kind in enumerate(["held", "random", "held", "random", "held"]):
        marker = tmp_path / f"marker-{step}"
        proc = _spawn(home, "held" if kind == "held" else "none", marker, 10.0)
        kills += kill_at(proc, kind, marker, rng, (0.5, 3.0))
        beats = _beats(home)
        assert beats == list(range(1, len(beats) + 1))  # each beat once
        assert all(len(v) == 1 for v in attributions(home).values())  # each record once
    final = _spawn(home, "none", tmp_path / "marker-final", 0.0)
    final.wait(timeout=300)
    assert final.returncode == 0, (tmp_path / "marker-final.err").read_text()[-2000:]
    assert kills >= 3
    assert _beats(home) == list(range(1, DAYS + 1))
    got = attributions(home)
    assert sorted(got) == [("book", s) for s in range(EVERY, DAYS + 1, EVERY)]
    frame = asset_returns(250 + DAYS)
    for recs in got.values():
        assert len(recs) == 1
        assert_equal_to_direct(recs[0], frame)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]),
           float(sys.argv[5]))
