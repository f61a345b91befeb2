"""A resume that reads a followed file again from a place before the run's (``check_source``
answers 0: a portfolio with no ledgered beat) does not refuse and ledger a second time the
bad lines the run refused; a bad line the ledger does not hold is refused as ever."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest

from swarmvar.errors import WorkerFailed
from swarmvar.ledger import Ledger
from swarmvar.swarm import FollowedFile, Replay, _recovery
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


_Source = TypeVar("_Source", bound=Replay | FollowedFile)


def losing_a_never_restored(executor: _Faulty, source: type[_Source], at: int
                            ) -> type[_Source]:
    """``source`` arming ``executor`` when its cursor reaches ``at``: a's host is lost (d and
    e beat on) and every restore is refused (WorkerFailed), so a beats nothing more."""

    def kill_a(inputs: object) -> object:
        executor.fault = None
        raise HostLost("a's host died", ["a"], {}, executor.beat_only(inputs, {"d", "e"}))

    def never(blobs: object) -> object:
        raise WorkerFailed("restore refused (test)")

    class Killing(source):  # type: ignore[valid-type,misc]
        def __iter__(self) -> Iterator[Tick | BadLine]:
            for tick in super().__iter__():
                if self.cursor == at:
                    executor.fault = kill_a
                    executor.restore = never
                yield tick

    return Killing  # type: ignore[return-value]


def _follow(path: Path, cls: type[FollowedFile] = FollowedFile) -> FollowedFile:
    return cls(path, idle_timeout=0.05, sleep=lambda _: None)


def _die_losing_a(home: Path, path: Path, frame: pd.DataFrame, start: int) -> None:
    """A fresh run of ``_restore_child``'s portfolios following ``path`` from data line
    ``start``: a's host is lost at cursor ``start + 1``, never restored; the run dies."""
    executor = _Faulty(workers=0)
    with make_swarm(home, child.PORTFOLIOS, executor=executor, restore_timeout=2,
                    **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        source = _follow(path, losing_a_never_restored(executor, FollowedFile, start + 1))
        source.seek(start)
        with pytest.raises(WorkerFailed):  # the run dies: a never beat
            swarm.run(source)


def test_a_resume_from_the_files_start_does_not_ledger_the_runs_refusals_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    # two bad lines the run reads while a's host is lost (data lines start+3 and start+5)
    _file(path, frame, start + 5, {start + 2: "not a date,0.01,0.02,0.03\n",
                                   start + 3: "2099-01-01,0.01\n"})
    home = tmp_path / "h"
    _die_losing_a(home, path, frame, start)
    first = _refusals(home)
    assert len(first) == 2, first
    assert not any(p == "a" for p, _, _ in _cursors(home))
    # the file grew: its old rows, and one new bad line after them
    _file(path, frame, start + 8, {start + 2: "not a date,0.01,0.02,0.03\n",
                                   start + 3: "2099-01-01,0.01\n",
                                   start + 7: "2099-01-02,x,0.01,0.01\n"})
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = _follow(path)
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
    key = (str(InvalidTick(bad.reason)), _recovery._tick_key(_tick_repr(bad.raw)))
    seen = _recovery._RefusedAgain(Counter({key: 2}))
    assert not seen(BadLine("data line 4: no date", "x,1\n"))
    assert not seen(BadLine("data line 3: no date", "y,1\n"))
    assert [seen(bad) for _ in range(3)] == [True, True, False]


def test_a_tick_refused_at_the_beat_is_matched_by_its_message_and_recorded_tick() -> None:
    """A refused tick's key is read back from the ledger as a dict in other key order:
    matched by its canonical JSON, one for one with the bad lines from the same count."""
    from datetime import datetime

    from swarmvar.canonical import loads
    from swarmvar.errors import InvalidTick
    from swarmvar.swarm._records import _tick_repr

    tick = Tick("*", datetime(2001, 1, 2), assets={"a": 5.0, "d": 0.01})
    exc = InvalidTick("the return of 'a' is 5.0, beyond |r| <= 1")
    stored = loads(_recovery._tick_key(_tick_repr(tick)))  # (sorted keys, as the ledger)
    key = (str(exc), _recovery._tick_key(stored))
    again = _recovery._RefusedAgain(Counter({key: 1}))
    other = Tick("*", datetime(2001, 1, 2), assets={"a": 6.0, "d": 0.01})
    assert not again.tick(exc, other)
    assert not again.tick(InvalidTick("another reason"), tick)
    assert [again.tick(exc, tick) for _ in range(2)] == [True, False]


def _beat_refused(frame: pd.DataFrame, k: int) -> dict[int, str]:
    """Two lines the beat refuses (they parse), inserted before data row ``k`` (dated as
    that row): a return beyond |r| <= 1, and a NaN cell (an empty one)."""
    day = str(frame.index[k].date())
    return {k: f"{day},5.0,0.01,0.01\n{day},,0.01,0.01\n"}


def test_a_plain_restart_does_not_ledger_the_beats_refusals_after_its_last_beat_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    """The lines after the last beat are read again by every restart (its cursor is the
    place after that beat's line): the ones the beat refused are not ledgered twice."""
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    _file(path, frame, start + 5, _beat_refused(frame, start + 5))  # after the last row

    home = tmp_path / "h"
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        source = _follow(path)
        source.seek(start)
        assert sum(swarm.run(source).rejected.values()) == 2
    first = _refusals(home)
    assert len(first) == 2 and "5.0" in first[0] and "nan" in first[1], first
    # the file grew: its rows after the bad lines, and a new bad line (|r| > 1) after them
    day = str(frame.index[start + 8].date())
    _file(path, frame, start + 8, {**_beat_refused(frame, start + 5),
                                   start + 8: f"{day},7.0,0.01,0.01\n"})
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = _follow(path)
        swarm.start(frame.iloc[:start], source=source)
        assert swarm.cursor == start + 5  # the last beat's place: the bad lines read again
        summary = swarm.run(source)
    again = _refusals(home)
    assert again[:2] == first and len(again) == 3 and "7.0" in again[2], again
    assert sum(summary.rejected.values()) == 1
    days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert days == [str(x.date()) for x in frame.index[start:start + 8]]


def test_a_resume_from_the_files_start_does_not_ledger_the_beats_refusals_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    """A resume from the file's start (a portfolio without a beat) reads the lines the beat
    refused again: each is passed over once, as the ledger holds one refusal of it."""
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    # the first lines the run reads, refused before a's host is lost at the next tick
    _file(path, frame, start + 5, _beat_refused(frame, start))
    home = tmp_path / "h"
    _die_losing_a(home, path, frame, start)
    first = _refusals(home)
    assert len(first) == 2 and "5.0" in first[0] and "nan" in first[1], first
    assert not any(p == "a" for p, _, _ in _cursors(home))
    _file(path, frame, start + 7, _beat_refused(frame, start))  # grown by good rows
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = _follow(path)
        swarm.start(frame.iloc[:start], source=source)
        assert swarm.cursor == 0  # read from the file's start: the refused lines again
        summary = swarm.run(source)
    assert _refusals(home) == first
    assert sum(summary.rejected.values()) == 0
    a_days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert a_days == [str(x.date()) for x in frame.index[start:start + 7]]


def test_a_plain_restarts_cursor_reads_the_lines_refused_after_the_last_beat_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    """The cursor a plain restart keeps is the place after the last beat's own line: the
    lines the run refused after it are read again (what ``skip_refused`` is for), not
    passed by the seek."""
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    lines = "not a date,0.01,0.01,0.01\n" + _beat_refused(frame, start + 3)[start + 3]
    _file(path, frame, start + 3, {start + 3: lines})  # after the last row
    home = tmp_path / "h"
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        source = FollowedFile(path, idle_timeout=0.05, sleep=lambda _: None)
        source.seek(start)
        assert sum(swarm.run(source).rejected.values()) == 3
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start], source=FollowedFile(path))
        assert swarm.cursor == start + 3  # the last beat's line
        cursor = swarm.cursor
    again = FollowedFile(path, idle_timeout=0.05, sleep=lambda _: None)
    again.seek(cursor)
    read = list(again)
    assert len(read) == 3 and isinstance(read[0], BadLine), read
    assert [getattr(t, "assets", {}).get("a") for t in read[1:]] == [5.0, pytest.approx(
        float("nan"), nan_ok=True)]


def test_older_rows_prepended_shift_the_data_lines_a_refusal_names(
        tmp_path: Path, sp500: pd.Series) -> None:
    """A file grown by 10 older rows numbers the run's lines 10 further on: a refused line
    read again is matched with the ledger's refusal of it under its old number."""
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    bad = "not a date,0.01,0.01,0.01\n"
    # the run's file: from frame row 10 (its data line n is row n + 9), a bad last line
    _file(path, frame.iloc[10:], start - 5, {start - 5: bad})

    home = tmp_path / "h"
    rejected, first = _first_follow(home, frame, path, start)
    assert rejected == 1
    assert len(first) == 1 and f"data line {start - 4}:" in first[0], first
    # the file now: frame rows 0.. (10 older ones before), the bad line, 3 new rows
    _file(path, frame, start + 8, {start + 5: bad})
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = _follow(path)
        swarm.start(frame.iloc[:start], source=source)
        assert swarm.cursor == start + 5  # the last beat's line as numbered now
        summary = swarm.run(source)
    assert _refusals(home) == first
    assert sum(summary.rejected.values()) == 0
    days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert days == [str(x.date()) for x in frame.index[start:start + 8]]


def test_the_line_shift_is_the_most_common_difference_of_place_and_cursor() -> None:
    """Beats recorded while a host was restored (cursor before their own line) differ each
    by another amount: the beats at their own place decide."""
    from datetime import datetime

    days = [datetime(2001, 1, d) for d in range(1, 8)]
    found = {day: [(20 + i, None)] for i, day in enumerate(days)}
    cursors = [10, 11, 12, 13, 10, 10, 16]  # two beats during a restore (cursor 10)
    beats = {"a": [(i + 1, day, 0.0, c)
                   for i, (day, c) in enumerate(zip(days, cursors, strict=True))]}
    assert _recovery._line_shift(beats, found) == 10
    assert _recovery._line_shift({}, found) == 0


def test_a_plain_restart_on_a_replay_does_not_ledger_the_beats_refusal_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    """A Replay has no ``skip_refused`` (no bad lines), but a restart on the same frame reads
    the ticks after the last beat again: the one the beat refused (``|r| > 1``) is matched
    with the ledger's refusal of it (``Swarm._refuse``), not ledgered and counted twice."""
    frame, start = child.frame(sp500), child.HISTORY
    data = frame.iloc[:start + 6].copy()
    data.iloc[start + 5, 0] = 5.0  # the last row: refused at the beat
    home = tmp_path / "h"
    rejected = []
    for k in range(2):
        with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
            source = Replay(data, portfolio="*", start=start)
            swarm.start(frame.iloc[:start], source=source if k else None)
            rejected.append(sum(swarm.run(source).rejected.values()))
    refusals = _refusals(home)
    assert len(refusals) == 1 and "5.0" in refusals[0], refusals
    assert rejected == [1, 0]
    days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert days == [str(x.date()) for x in frame.index[start:start + 5]]


def test_a_shifted_line_is_matched_under_its_old_number_first() -> None:
    """Identical bad lines, more of them than the shift: each read again takes the refusal
    of its own old number, not that of the line ``shift`` lines on (which would leave the
    last one's refusal used up, and it refused a second time)."""
    from swarmvar.errors import InvalidTick
    from swarmvar.swarm._records import _tick_repr

    def key(n: int) -> tuple[str, str]:
        bad = BadLine(f"data line {n}: no date", ",,,\n")
        return str(InvalidTick(bad.reason)), _recovery._tick_key(_tick_repr(bad.raw))

    seen = _recovery._RefusedAgain(Counter(key(n) for n in range(1, 12)))  # lines 1..11
    seen.shift = 10  # 10 older rows prepended: now lines 11..21
    assert [seen(BadLine(f"data line {n}: no date", ",,,\n")) for n in range(11, 23)] == [
        True] * 11 + [False]


def test_a_block_of_identical_bad_lines_longer_than_the_shift_is_not_refused_again(
        tmp_path: Path, sp500: pd.Series) -> None:
    """11 identical ``,,,`` lines after the last beat, 10 older rows prepended since: a
    restart reads them again as lines 10 further on, each matched with its own refusal."""
    frame, start = child.frame(sp500), child.HISTORY
    path = tmp_path / "live.csv"
    bad = ",,,\n" * 11
    _file(path, frame.iloc[10:], start - 5, {start - 5: bad})
    home = tmp_path / "h"
    rejected, first = _first_follow(home, frame, path, start)
    assert rejected == 11
    _file(path, frame, start + 8, {start + 5: bad})
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = _follow(path)
        swarm.start(frame.iloc[:start], source=source)
        summary = swarm.run(source)
    assert _refusals(home) == first
    assert sum(summary.rejected.values()) == 0


def _first_follow(home: Path, frame: pd.DataFrame, path: Path, start: int) -> tuple[int, list[str]]:
    """The first run: the followed file from its line ``start - 10``; its refusals counted
    and as the ledger holds them."""
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        source = _follow(path)
        source.seek(start - 10)
        rejected = sum(swarm.run(source).rejected.values())
    return rejected, _refusals(home)
