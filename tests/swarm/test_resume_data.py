"""A resume must know its data and its plug-ins' code: ``Swarm.start(history, source=...)``
checks the source against the ledger's beats and the start history against its digest;
a plug-in whose source changed is refused; homes written before either resume."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from swarmvar.errors import PluginChanged, ResumeDataMismatch, ResumeMismatch
from swarmvar.evolution import Database, StateStore
from swarmvar.ledger import Ledger
from swarmvar.swarm import FollowedFile, JsonLines, Replay, _recovery
from swarmvar.swarm._records import RUN_KEY
from swarmvar.swarm.sandboxing import SandboxSetup
from swarmvar.types import Tick

from .conftest import TINY, TINY_POLICY, make_swarm

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
        with pytest.raises(ResumeDataMismatch, match=r"beats 1\.\.4 .* rows 151\.\.154 of "
                           r"the replayed data \(first difference at .*row 153, beat 3\).*"
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
        m.setattr(_recovery, "START_KEY", "not-read")
        _beat(home, data, 3)
    other = data.copy()
    other.iloc[5] = 0.03  # a start row only
    _beat(home, other, 2)  # nothing to compare the start rows with: resumed as before
    fresh = tmp_path / "f"
    _beat(fresh, data, 3)
    with pytest.raises(ResumeDataMismatch, match=r"start history \(150 rows"):
        _beat(fresh, other, 2)


def test_followed_file_ticks_at_reads_the_lines_the_follower_counted(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("date,x\n2020-01-01,0.01\n\n2020-01-03,bad\n2020-01-06,0.02\n"
                    "2020-01-07,0.0")  # a blank line counts; the last, unfinished, does not
    source = FollowedFile(path, portfolio="x", idle_timeout=0.05, sleep=lambda _: None)
    got = source.ticks_at([1, 2, 3, 4, 5])
    assert set(got) == {1, 3, 4}
    assert isinstance(got[1], Tick) and got[1].value == 0.01
    assert "row 2" in got[3].reason  # type: ignore[union-attr]  # as the follower names it
    assert isinstance(got[4], Tick) and got[4].value == 0.02
    followed = [t for t in source if isinstance(t, Tick)]  # the same ticks, followed
    assert [t.value for t in followed] == [0.01, 0.02]
    assert source.cursor == 4


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
