"""A resume must know its data and its plug-ins' code: ``Swarm.start(history, source=...)``
checks the source against the ledger's beats and the start history against its digest;
a plug-in whose source changed is refused; homes written before either resume."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from swarmvar.errors import (
    InvalidParameter,
    InvalidSource,
    PluginChanged,
    ResumeDataMismatch,
    ResumeMismatch,
)
from swarmvar.evolution import Database, StateStore
from swarmvar.ledger import Ledger
from swarmvar.swarm import FollowedFile, JsonLines, Replay, _records, _recovery
from swarmvar.swarm._records import RUN_KEY
from swarmvar.swarm.executors import HostLost
from swarmvar.swarm.sandboxing import SandboxSetup
from swarmvar.swarm.sources import BadLine
from swarmvar.swarm.ticks import as_utc
from swarmvar.types import Tick

from . import _restore_child as child
from .conftest import TINY, TINY_POLICY, make_swarm
from .test_swarm_restore_async import _Faulty

WINDOW = 150


def _size(home: Path) -> int:
    with Ledger.open(home) as ledger:
        return ledger.size


def _beat(home: Path, data: pd.Series, beats: int, **kw: object) -> None:
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW, **kw) as swarm:
        source = Replay(data, portfolio="sp500", start=WINDOW)
        swarm.start(data.iloc[:WINDOW], source=source)
        swarm.run(source, beats=beats)


def test_errors_are_resume_mismatches() -> None:
    assert issubclass(ResumeDataMismatch, ResumeMismatch)
    assert issubclass(PluginChanged, ResumeMismatch)


def test_start_with_a_source_refuses_other_data_before_anything_is_written(
        tmp_path: Path, sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    _beat(home, data, 4)
    size = _size(home)
    other = data.copy()
    other.iloc[WINDOW + 2] = other.iloc[WINDOW + 2] * 0.5
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match=r"beats 1\.\.4 \(1999-08-10\.\."
                           r"1999-08-13\) .* the replayed data's rows at those dates \(first "
                           r"difference at 1999-08-12 \(row 153, beat 3\).*"
                           r"1 of 4 beats differ"):
            swarm.start(other.iloc[:WINDOW], source=Replay(other, portfolio="sp500"))
    assert _size(home) == size
    _beat(home, sp500.iloc[:WINDOW + 12], 2)  # the same series, grown: resumes
    assert _size(home) > size


def test_a_home_without_the_start_digest_resumes_on_other_start_rows(
        tmp_path: Path, sp500: pd.Series, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    with monkeypatch.context() as m:  # written as before the digest was stored
        m.setattr(_records, "START_KEY", "not-read")
        _beat(home, data, 3)
    other = data.copy()
    other.iloc[5] = 0.03  # a start row only
    _beat(home, other, 2)  # nothing to compare the start rows with: resumed as before
    fresh = tmp_path / "f"
    _beat(fresh, data, 3)
    with pytest.raises(ResumeDataMismatch, match=r"start history \(150 rows"):
        _beat(fresh, other, 2)


def test_followed_file_ticks_on_reads_the_dated_lines_the_follower_counted(
        tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("date,x\n2020-01-01,0.01\n\n2020-01-03,bad\n2020-01-06,0.02\n"
                    "2020-01-07,0.0")  # a blank line counts; the last, unfinished, does not
    source = FollowedFile(path, portfolio="x", idle_timeout=0.05, sleep=lambda _: None)
    days = {as_utc(d): None for d in ("2020-01-01", "2020-01-03", "2020-01-06",
                                      "2020-01-07", "2020-01-02")}
    got = source.ticks_on(days)
    assert set(got) == {as_utc("2020-01-01"), as_utc("2020-01-03"), as_utc("2020-01-06")}
    ((n, first),) = got[as_utc("2020-01-01")]
    assert n == 1 and isinstance(first, Tick) and first.value == 0.01
    ((n, bad),) = got[as_utc("2020-01-03")]
    # one numbering: the refusal's place and the line's own reason name data line 3
    assert n == 3 and isinstance(bad, BadLine) and bad.reason.startswith("data line 3:")
    followed = list(source)  # the same ticks and reasons, followed
    assert [t.value for t in followed if isinstance(t, Tick)] == [0.01, 0.02]
    assert [t.reason for t in followed if isinstance(t, BadLine)] == [bad.reason]
    assert source.cursor == 4
    path.write_text("date\n2020-01-01\n")  # no value column: refused by both
    with pytest.raises(InvalidSource, match="at least one value column"):
        source.ticks_on(days)
    with pytest.raises(InvalidSource, match="at least one value column"):
        list(FollowedFile(path, portfolio="x", idle_timeout=0.05))


def test_a_stream_checks_the_ticks_the_ledger_recorded_as_they_arrive(
        tmp_path: Path, sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    _beat(home, data, 4)

    def lines(series: pd.Series) -> io.StringIO:
        return io.StringIO("".join(json.dumps({"portfolio": "sp500", "as_of": str(d.date()),
                                               "value": float(v)}) + "\n"
                                   for d, v in series.items()))

    size = _size(home)
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        bad = data.iloc[WINDOW:WINDOW + 6].copy()
        bad.iloc[1] = 0.5
        source = JsonLines(lines(bad))
        swarm.start(data.iloc[:WINDOW], source=source)
        with pytest.raises(ResumeDataMismatch, match="line 2 of the JSON lines on stdin"):
            swarm.run(source)
    assert _size(home) == size
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        good = data.iloc[WINDOW:WINDOW + 6].copy()
        good.iloc[5] = 0.5  # past the last ledgered beat: a new tick, not compared
        source = JsonLines(lines(good))
        swarm.start(data.iloc[:WINDOW], source=source)
        summary = swarm.run(source)
    assert summary.skipped == 4 and summary.total_beats == 2


PLUGIN = """
    from swarmvar.models import NormalInverseGamma


    class HalfLife(NormalInverseGamma):
        name = "HalfLife"

        def __init__(self, forgetting=0.97):
            super().__init__(forgetting=forgetting)
"""


def test_a_changed_plugin_is_refused_and_an_old_home_resumes(tmp_path: Path,
                                                              sp500: pd.Series) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    module = folder / "house_agents.py"
    module.write_text(textwrap.dedent(PLUGIN))
    setup = SandboxSetup("none", ("house_agents:HalfLife",), (str(folder),))
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    _beat(home, data, 2, sandbox=setup)
    size = _size(home)
    module.write_text(textwrap.dedent(PLUGIN).replace("0.97", "0.9"))
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW,
                    sandbox=setup) as swarm:
        with pytest.raises(PluginChanged, match=r"plug-in agent 'HalfLife' "
                           r"\(house_agents:HalfLife\) has changed.*--home"):
            swarm.start(data.iloc[:WINDOW])
    assert _size(home) == size
    db = Database(home)  # a home checkpointed before the digests: resumed as before
    try:
        states = StateStore(db)
        run = json.loads(states.get(RUN_KEY).decode())
        assert run["plugins"]["HalfLife"]["files"] == 1
        del run["plugins"]
        states.put(RUN_KEY, json.dumps(run).encode(), now=1e9)
    finally:
        db.close()
    _beat(home, data, 2, sandbox=setup)
    assert _size(home) > size


def _cursors(home: Path) -> list[tuple[str, str, object]]:
    """Each ledgered beat's portfolio, date and cursor, in ledger order."""
    with Ledger.open(home) as ledger:
        return [(b["portfolio"], b["as_of"][:10], b["cursor"]) for e in ledger.entries(0)
                if e.kind == "consensus" and isinstance(b := e.data.get("beat"), dict)]


def run_losing_a(home: Path, frame: pd.DataFrame, start: int, *, at: int, stop: int) -> None:
    """A fresh run of ``_restore_child``'s portfolios over ``frame`` rows ``start..stop``
    whose a-host dies once, when the source reaches cursor ``at`` (d and e beat on)."""
    executor = _Faulty(workers=0)

    def kill_a(inputs: object) -> object:
        executor.fault = None
        raise HostLost("a's host died", ["a"], {}, executor.beat_only(inputs, {"d", "e"}))

    class Killing(Replay):
        def __iter__(self) -> Iterator[Tick | BadLine]:
            for tick in super().__iter__():
                if self.cursor == at:
                    executor.fault = kill_a
                yield tick

    with make_swarm(home, child.PORTFOLIOS, executor=executor, **child.SETTINGS) as swarm:
        swarm.start(frame.iloc[:start])
        swarm.run(Killing(frame, start=start, stop=stop))


def test_a_run_that_lost_a_host_resumes_on_its_own_data(tmp_path: Path,
                                                        sp500: pd.Series) -> None:
    """While a's host is restored, d's and e's beats record the cursor before a's first
    queued tick, and a's catch-up beats the cursor read by then: a resume matches the
    ledger's beats by date, not by those cursors."""
    frame, start = child.frame(sp500), child.HISTORY
    home = tmp_path / "h"
    run_losing_a(home, frame, start, at=start + 4, stop=start + 10)
    rows = {str(d.date()): i + 1 for i, d in enumerate(frame.index)}
    off = [(p, day, c) for p, day, c in _cursors(home) if c != rows[day]]
    assert {p for p, _, _ in off} >= {"d", "e"}, off  # their cursors not at their rows
    size = _size(home)
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        source = Replay(frame, start=start)
        swarm.start(frame.iloc[:start], source=source)
        assert swarm.run(source, beats=3).total_beats == 3
    assert _size(home) > size
    other = frame.copy()
    other.iloc[start + 5, 0] += 0.01  # a's return on a day beaten while its host restored
    with make_swarm(home, child.PORTFOLIOS, **child.SETTINGS) as swarm:
        with pytest.raises(ResumeDataMismatch, match=r"portfolio 'a'.*first difference at "
                           rf"{frame.index[start + 5].date()} \(row {start + 6}, beat 6\)"):
            swarm.start(other.iloc[:start], source=Replay(other, start=start))


def _lines(series: pd.Series) -> io.StringIO:
    return io.StringIO("".join(json.dumps({"portfolio": "sp500", "as_of": str(d.date()),
                                           "value": float(v)}) + "\n"
                               for d, v in series.items()))


def test_a_home_beaten_from_a_stream_resumes_on_a_file_of_the_same_ticks(
        tmp_path: Path, sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 12]
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        stream = JsonLines(_lines(data.iloc[WINDOW:WINDOW + 6]))
        swarm.start(data.iloc[:WINDOW], source=stream)
        swarm.run(stream)
    assert [c for *_, c in _cursors(home)] == [1, 2, 3, 4, 5, 6]  # line counts, not rows
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = Replay(data, portfolio="sp500", start=WINDOW)
        swarm.start(data.iloc[:WINDOW], source=source)
        summary = swarm.run(source)
    assert summary.total_beats == 6 and summary.last_seq == {"sp500": 12}
    other = data.copy()
    other.iloc[WINDOW + 1] += 0.01  # the stream's second tick, another return
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match=r"row 152, beat 2"):
            swarm.start(data.iloc[:WINDOW], source=Replay(other, portfolio="sp500",
                                                          start=WINDOW))


def test_a_replay_with_older_history_prepended_resumes(tmp_path: Path,
                                                       sp500: pd.Series) -> None:
    home = tmp_path / "h"
    late = sp500.iloc[40:40 + WINDOW + 10]
    _beat(home, late, 4)
    size = _size(home)
    grown = sp500.iloc[:40 + WINDOW + 10]  # 40 older rows before it: every row moved
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = Replay(grown, portfolio="sp500", start=WINDOW)
        swarm.start(grown.iloc[:WINDOW], source=source)  # other days: not compared
        assert swarm.run(source, beats=2).total_beats == 2
    assert _size(home) > size
    cut = pd.concat([sp500.iloc[:40 + WINDOW + 1], sp500.iloc[40 + WINDOW + 2:]])
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match=rf"has no row dated "
                           rf"{sp500.index[40 + WINDOW + 1].date()}, which the run beat "
                           r"\(beat 2; its beats 1\.\.6 .*truncated or replaced"):
            swarm.start(cut.iloc[:WINDOW], source=Replay(cut, portfolio="sp500"))


def test_a_row_refused_or_without_a_return_now_is_named(tmp_path: Path,
                                                        sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 8]
    path = tmp_path / "live.csv"
    data.to_csv(path, index_label="date")
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        source = FollowedFile(path, portfolio="sp500", idle_timeout=0.05,
                              sleep=lambda _: None)
        source.seek(WINDOW)
        swarm.start(data.iloc[:WINDOW], source=source)
        assert swarm.run(source).total_beats == 8
    lines = path.read_text().splitlines(keepends=True)
    day = str(data.index[WINDOW + 2].date())
    assert lines[WINDOW + 3].startswith(day)
    lines[WINDOW + 3] = f"{day},oops\n"  # data line 153: no number now
    path.write_text("".join(lines))
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match=rf"first difference at data line 153 "
                           rf"\(beat 3, {day}\): it is refused now \(data line 153: "):
            swarm.start(data.iloc[:WINDOW], source=FollowedFile(path, portfolio="sp500"))
    lines[WINDOW + 3] = f"{day},nan\n"
    path.write_text("".join(lines))
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match=r"data line 153 \(beat 3, .*\): it gives "
                           r"no return now"):
            swarm.start(data.iloc[:WINDOW], source=FollowedFile(path, portfolio="sp500"))


def test_a_resume_given_no_start_history_is_not_checked_on_it(tmp_path: Path,
                                                              sp500: pd.Series) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 6]
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(InvalidParameter, match=r"portfolio 'sp500': .*holds no series"):
            swarm.start({}, source=Replay(data, portfolio="sp500", start=WINDOW))
    _beat(home, data, 2)
    for nothing in (None, {}):
        with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
            source = Replay(data, portfolio="sp500", start=WINDOW)
            swarm.start(nothing, source=source)  # type: ignore[arg-type]
            assert swarm.run(source, beats=1).total_beats == 1
    other = data.copy()
    other.iloc[WINDOW] += 0.01  # its beats are still checked
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        with pytest.raises(ResumeDataMismatch, match="beat 1"):
            swarm.start(None, source=Replay(other, portfolio="sp500"))  # type: ignore[arg-type]


def test_a_stream_refusal_with_several_portfolios_comes_before_that_portfolios_new_beats(
        tmp_path: Path, sp500: pd.Series) -> None:
    """What docs/runtime.md says: a portfolio's refused tick ends the run before any of its
    own new beats; other portfolios' new ticks earlier in the stream were beaten."""
    frame = pd.DataFrame({"a": sp500.iloc[:WINDOW + 10].to_numpy(),
                          "b": sp500.iloc[500:500 + WINDOW + 10].to_numpy()},
                         index=sp500.index[:WINDOW + 10])

    def lines(col: str, rows: slice, bump: int | None = None) -> str:
        return "".join(json.dumps({"portfolio": col, "as_of": str(d.date()),
                                   "value": float(v) + (0.01 if k == bump else 0)}) + "\n"
                       for k, (d, v) in enumerate(frame[col].iloc[rows].items()))

    home = tmp_path / "h"
    kw = {"agents": TINY, "policy": TINY_POLICY, "window": WINDOW}
    with make_swarm(home, ("a", "b"), **kw) as swarm:
        stream = JsonLines(io.StringIO(lines("a", slice(WINDOW, WINDOW + 3))
                                       + lines("b", slice(WINDOW, WINDOW + 3))))
        swarm.start(frame.iloc[:WINDOW], source=stream)
        swarm.run(stream)
    with make_swarm(home, ("a", "b"), **kw) as swarm:
        stream = JsonLines(io.StringIO(lines("a", slice(WINDOW, WINDOW + 5))
                                       + lines("b", slice(WINDOW, WINDOW + 3), bump=1)))
        swarm.start(frame.iloc[:WINDOW], source=stream)
        with pytest.raises(ResumeDataMismatch, match="portfolio 'b': line 7 "):
            swarm.run(stream)
    assert [p for p, *_ in _cursors(home)].count("a") == 5  # a's 2 new ticks beaten
    assert [p for p, *_ in _cursors(home)].count("b") == 3  # none of b's


def _plugin(folder: Path, text: str = PLUGIN) -> SandboxSetup:
    (folder / "house" / "more").mkdir(parents=True, exist_ok=True)
    (folder / "house" / "__init__.py").write_text("")
    (folder / "house" / "agents.py").write_text(textwrap.dedent(text))
    return SandboxSetup("none", ("house.agents:HalfLife",), (str(folder),))


def test_the_plugin_digest_is_taken_once_as_the_swarm_starts(tmp_path: Path,
                                                            sp500: pd.Series) -> None:
    folder = tmp_path / "plugins"
    setup = _plugin(folder)
    module = folder / "house" / "agents.py"
    was = _recovery.plugin_sources(setup)["HalfLife"]
    assert was["files"] == 2  # the module's folder: __init__.py and agents.py
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 10]
    edited = textwrap.dedent(PLUGIN).replace("0.97", "0.5")

    def edit(report: object) -> None:  # mid-run (a checkout, an editor): the hosts run V1
        if getattr(report, "seq", 0) == 1:
            module.write_text(edited)

    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW, sandbox=setup,
                    checkpoint_every=2) as swarm:
        source = Replay(data, portfolio="sp500", start=WINDOW)
        swarm.start(data.iloc[:WINDOW], source=source)
        swarm.run(source, beats=4, on_beat=edit)  # checkpoints at beats 2 and 4
    db = Database(home)
    try:
        run = json.loads(StateStore(db).get(RUN_KEY).decode())
    finally:
        db.close()
    assert run["plugins"]["HalfLife"]["source"] == was["source"]  # V1's, not the file's
    with pytest.raises(PluginChanged, match="has changed"):
        _beat(home, data, 1, sandbox=setup, checkpoint_every=2)
    module.write_text(textwrap.dedent(PLUGIN))
    (folder / "house" / "more" / "unrelated.py").write_text("X = 1\n")  # not its folder
    _beat(home, data, 1, sandbox=setup, checkpoint_every=2)  # V1 again: resumed


def test_a_plugin_class_from_another_module_is_refused(tmp_path: Path,
                                                       sp500: pd.Series) -> None:
    folder = tmp_path / "plugins"
    setup = _plugin(folder)
    (folder / "house" / "copy.py").write_text(textwrap.dedent(PLUGIN))
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 6]
    _beat(home, data, 2, sandbox=setup)
    moved = SandboxSetup("none", ("house.copy:HalfLife",), (str(folder),))
    with pytest.raises(PluginChanged, match=r"'HalfLife' was house\.agents:HalfLife in this "
                       r"home's run, and is house\.copy:HalfLife here.*--plugin "
                       r"house\.agents:HalfLife"):
        _beat(home, data, 1, sandbox=moved)


def test_a_plugin_whose_files_are_not_found_resumes_as_before(
        tmp_path: Path, sp500: pd.Series, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = SandboxSetup("none", ("no_such_pkg.mod:Gone",), (str(tmp_path),))
    assert _recovery.plugin_sources(nowhere) == {
        "Gone": {"plugin": "no_such_pkg.mod:Gone", "source": None, "files": 0}}
    folder = tmp_path / "plugins"
    setup = _plugin(folder)
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 6]
    with monkeypatch.context() as m:  # its files not found when the run checkpointed
        m.setattr(_recovery, "_plugin_digest", lambda *_: None)
        _beat(home, data, 2, sandbox=setup)
    (folder / "house" / "agents.py").write_text(textwrap.dedent(PLUGIN).replace("97", "9"))
    _beat(home, data, 1, sandbox=setup)  # nothing to compare with: resumed
