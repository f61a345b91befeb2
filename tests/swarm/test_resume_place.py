"""Where a resume given its source starts: the place of the ledger's last beats in the data
given now (``check_source``'s answer), not the cursor the run recorded (a place in the data
it read); every beat read from a source records a cursor, a fresh run's first ones too;
``Replay.ticks_on`` finds every row of a date, the index converted once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar.errors import InvalidParameter, ResumeDataMismatch, WorkerFailed
from swarmvar.swarm import FollowedFile, Replay, _records, sources
from swarmvar.swarm.ticks import PortfolioSpec, as_utc

from . import _restore_child as child
from .conftest import TINY, TINY_POLICY, make_swarm
from .test_recovery_refusals import losing_a_never_restored
from .test_resume_data import WINDOW, _beat, _cursors, run_losing_a
from .test_swarm_restore_async import _Faulty


def _days(home: Path) -> list[str]:
    return [day for _, day, _ in _cursors(home)]


def test_a_replay_whose_oldest_rows_were_dropped_resumes_at_its_next_date(
        tmp_path: Path, sp500: pd.Series) -> None:
    """The run's recorded cursor (row 155) is 30 rows past its last beaten date in the
    trimmed data: seeking there skipped 30 unbeaten days."""
    home = tmp_path / "h"
    _beat(home, sp500.iloc[:WINDOW + 10], 5)
    assert [c for *_, c in _cursors(home)] == list(range(WINDOW + 1, WINDOW + 6))
    trimmed = sp500.iloc[30:WINDOW + 40]  # a rolling file: 30 oldest rows gone, 30 new
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = Replay(trimmed, portfolio="sp500", start=WINDOW)
        swarm.start(trimmed.iloc[:WINDOW], source=source)
        summary = swarm.run(source, beats=3)
    assert summary.total_beats == 3 and summary.skipped == 0
    want = [str(d.date()) for d in sp500.index[WINDOW:WINDOW + 8]]
    assert _days(home) == want  # no day skipped, none twice
    # the new beats' cursors are places in the trimmed data
    assert [c for *_, c in _cursors(home)][5:] == [WINDOW + 6 - 30, WINDOW + 7 - 30,
                                                  WINDOW + 8 - 30]


def test_a_refused_line_deleted_before_the_cursor_loses_no_row(tmp_path: Path,
                                                               sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    path = tmp_path / "live.csv"
    data.iloc[:WINDOW + 6].to_csv(path, index_label="date")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(WINDOW + 3, "not a date,0.01\n")  # refused by the run (data line 153)
    path.write_text("".join(lines))

    def follow() -> FollowedFile:
        return FollowedFile(path, portfolio="sp500", idle_timeout=0.05, sleep=lambda _: None)

    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = follow()
        source.seek(WINDOW)
        swarm.start(data.iloc[:WINDOW], source=source)
        summary = swarm.run(source)
    assert summary.total_beats == 6 and sum(summary.rejected.values()) == 1
    assert _cursors(home)[-1][2] == WINDOW + 7  # a place past the refused line
    data.to_csv(path, index_label="date")  # the refused line gone, 4 rows added
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = follow()
        swarm.start(data.iloc[:WINDOW], source=source)
        summary = swarm.run(source)
    assert summary.total_beats == 4 and not summary.rejected
    assert _days(home) == [str(d.date()) for d in data.index[WINDOW:]]


def test_beats_of_a_host_lost_at_a_fresh_runs_first_tick_are_compared(
        tmp_path: Path, sp500: pd.Series) -> None:
    """d's and e's beats while a's host is restored record the place before a's first
    queued tick: at a fresh run's first tick that is where the source stood (it was
    None, and those beats were never compared)."""
    frame, start = child.frame(sp500), child.HISTORY
    home = tmp_path / "h"
    run_losing_a(home, frame, start, at=start + 1, stop=start + 6)
    cursors = _cursors(home)
    assert all(c is not None for *_, c in cursors), cursors
    assert ("d", str(frame.index[start].date()), start) in cursors
    other = frame.copy()
    other.iloc[start, list(other.columns).index("d")] += 0.01  # d's first beaten day
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        with pytest.raises(ResumeDataMismatch, match=r"portfolio 'd'.*first difference at "
                           rf"{frame.index[start].date()} \(row {start + 1}, beat 1\)"):
            swarm.start(other.iloc[:start], source=Replay(other, start=start))


@pytest.mark.parametrize("give_source", [True, False])
def test_a_portfolio_never_beaten_from_the_source_loses_no_row_on_a_resume(
        tmp_path: Path, sp500: pd.Series, give_source: bool) -> None:
    """a's host is lost at a fresh run's first tick and never restored: a has no ledgered
    beat; a resume given the source must not seek past a's queued rows (the place of the
    others' last beats), but beat every one of them."""
    frame, start = child.frame(sp500), child.HISTORY
    executor = _Faulty(workers=0)
    killing = losing_a_never_restored(executor, Replay, start + 1)
    home = tmp_path / "h"
    with make_swarm(home, child.PORTFOLIOS, executor=executor, restore_timeout=2,
                    **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        with pytest.raises(WorkerFailed):  # bounded: the source stops after 5 rows
            swarm.run(killing(frame, start=start, stop=start + 5))
    first = _cursors(home)
    assert first and not any(p == "a" for p, _, _ in first)  # a beat nothing
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = Replay(frame, start=start, stop=start + 8)
        swarm.start(frame.iloc[:start], source=source if give_source else None)
        swarm.run(source)
    a_days = [day for p, day, _ in _cursors(home) if p == "a"]
    assert a_days == [str(x.date()) for x in frame.index[start:start + 8]]


def test_replay_ticks_on_gives_every_row_of_a_date_whatever_the_hint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    days = pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-05", "2021-01-06"])
    data = pd.Series([0.01, 0.02, 0.03, 0.04], index=days, name="x")
    day = as_utc(days[1])
    for hint in (2, 3, None, 99):  # each row of the date, none, past the data
        got = Replay(data).ticks_on({day: hint})
        assert [(n, t.value) for n, t in got[day]] == [(2, 0.02), (3, 0.03)]
    aware = data.tz_localize("America/New_York")  # an instant, as the tick carries it
    assert Replay(aware).ticks_on({as_utc(aware.index[3]): 1})[as_utc(aware.index[3])][0][0] \
        == 4
    big = pd.Series(np.zeros(50_000), name="x",  # from a year nanoseconds cannot hold
                    index=pd.date_range("1500-01-01", periods=50_000, freq="D", unit="s"))
    calls = []
    real = sources.as_utc
    monkeypatch.setattr(sources, "as_utc", lambda w: calls.append(w) or real(w))
    wanted = {as_utc(big.index[i]): 1 for i in (5, 40_000)}
    got = Replay(big).ticks_on(wanted)
    assert {w: [n for n, _ in t] for w, t in got.items()} == dict(zip(wanted, ([6], [40_001]),
                                                                      strict=True))
    assert len(calls) <= 2  # the two ticks made, not one conversion per row


def test_reserved_portfolio_names_are_refused() -> None:
    for name in ("__run__", "__start__", "__x__"):
        with pytest.raises(InvalidParameter, match=f"portfolio name '{name}' is reserved"):
            PortfolioSpec(name)
    assert PortfolioSpec("__x").name == "__x" and PortfolioSpec("____").name == "____"
    assert _records.RUN_KEY == _records.STATE_PREFIX + "__run__"  # why they are reserved


def test_a_start_digest_under_the_first_versions_key_is_read(
        tmp_path: Path, sp500: pd.Series, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    with monkeypatch.context() as m:
        m.setattr(_records, "START_KEY", _records.OLD_START_KEY)
        _beat(home, data, 3)
    other = data.copy()
    other.iloc[5] = 0.03  # a start row only
    with pytest.raises(ResumeDataMismatch, match=r"start history \(150 rows"):
        _beat(home, other, 2)


def test_a_fresh_start_from_an_array_says_what_history_must_be(tmp_path: Path) -> None:
    with make_swarm(tmp_path / "h", agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(InvalidParameter, match=r"start history \(ndarray\) is not a "
                           r"Series, an asset-returns DataFrame or a mapping"):
            swarm.start(np.zeros(WINDOW))  # type: ignore[arg-type]
