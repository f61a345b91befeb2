"""A resume that reads a followed file again from a place before the run's (``check_source``
answers 0: a portfolio with no ledgered beat) does not refuse and ledger a second time the
bad lines the run refused; a bad line the ledger does not hold is refused as ever."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from swarmvar.errors import WorkerFailed
from swarmvar.ledger import Ledger
from swarmvar.swarm import FollowedFile, _recovery
from swarmvar.swarm.executors import HostLost
from swarmvar.swarm.sources import BadLine
from swarmvar.types import Tick

from . import _restore_child as child
from .conftest import make_swarm
from .test_resume_data import _cursors
from .test_swarm_restore_async import _Faulty


def _refusals(home: Path) -> list[str]:
    """The messages of the ledger's tick-rejected entries, in order."""
    with Ledger.open(home) as ledger:
        return [e.data["details"]["message"] for e in ledger.entries(0)
                if e.kind == "action" and e.data.get("type") == "tick-rejected"]


def _file(path: Path, frame: pd.DataFrame, rows: int, bad: dict[int, str]) -> None:
    """``frame``'s first ``rows`` rows as a CSV, line ``bad[k]`` inserted before data row k."""
    frame.iloc[:rows].to_csv(path, index_label="date")
    lines = path.read_text().splitlines(keepends=True)
    for k in sorted(bad, reverse=True):
        lines.insert(1 + k, bad[k])
    path.write_text("".join(lines))


def test_a_resume_from_the_files_start_does_not_ledger_the_runs_refusals_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    # two bad lines the run reads while a's host is lost (data lines start+3 and start+5)
    _file(path, frame, start + 5, {start + 2: "not a date,0.01,0.02,0.03\n",
                                   start + 3: "2099-01-01,0.01\n"})
    executor = _Faulty(workers=0)

    def kill_a(inputs: object) -> object:
        executor.fault = None
        raise HostLost("a's host died", ["a"], {}, executor.beat_only(inputs, {"d", "e"}))

    def never(blobs: object) -> object:
        raise WorkerFailed("restore refused (test)")

    class Killing(FollowedFile):
        def __iter__(self) -> Iterator[Tick | BadLine]:
            for tick in super().__iter__():
                if self.cursor == start + 1:
                    executor.fault = kill_a
                    executor.restore = never  # type: ignore[method-assign]
                yield tick

    def follow(cls: type[FollowedFile] = FollowedFile) -> FollowedFile:
        return cls(path, idle_timeout=0.05, sleep=lambda _: None)

    home = tmp_path / "h"
    with make_swarm(home, child.PORTFOLIOS, executor=executor, restore_timeout=2,
                    **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        source = follow(Killing)
        source.seek(start)
        with pytest.raises(WorkerFailed):  # the run dies: a never beat
            swarm.run(source)
    first = _refusals(home)
    assert len(first) == 2, first
    assert not any(p == "a" for p, _, _ in _cursors(home))
    # the file grew: its old rows, and one new bad line after them
    _file(path, frame, start + 8, {start + 2: "not a date,0.01,0.02,0.03\n",
                                   start + 3: "2099-01-01,0.01\n",
                                   start + 7: "2099-01-02,x,0.01,0.01\n"})
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = follow()
        swarm.start(frame.iloc[:start], source=source)
        assert swarm.cursor == 0  # read from the file's start: its old bad lines again
        summary = swarm.run(source)
    again = _refusals(home)
    assert again[:2] == first and len(again) == 3, again  # the new line's only
    assert f"data line {start + 10}" in again[2]
    assert sum(summary.rejected.values()) == 1
    a_days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert a_days == [str(x.date()) for x in frame.index[start:start + 8]]


def test_each_ledgered_refusal_passes_over_one_line_read_again() -> None:
    """Two refusals of one line (a run that read it twice) pass over two re-reads, no
    more; another line, or another reason, is not passed over."""
    from swarmvar.errors import InvalidTick
    from swarmvar.swarm._records import _tick_repr

    bad = BadLine("data line 3: no date", "x,1\n")
    key = (str(InvalidTick(bad.reason)), _tick_repr(bad.raw))
    seen = _recovery._refused_again(Counter({key: 2}))
    assert not seen(BadLine("data line 4: no date", "x,1\n"))
    assert not seen(BadLine("data line 3: no date", "y,1\n"))
    assert [seen(bad) for _ in range(3)] == [True, True, False]
