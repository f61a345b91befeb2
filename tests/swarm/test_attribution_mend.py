"""A streamed book's attribution under the review's cases (swarm/attribution.py): dates
with zones and offsets, a second resume, a failing worker, Ctrl-C in close, a backlog."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from swarmvar import book_var
from swarmvar.ledger import Ledger
from swarmvar.swarm import attribution as attribution_module
from swarmvar.types import Tick

sys.path.insert(0, str(Path(__file__).parent))
from test_attribution import (  # noqa: E402
    POSITIONS,
    WINDOW,
    asset_returns,
    attributions,
    book_swarm,
    tick,
)


def test_ticks_dated_with_an_offset_are_attributed(tmp_path):
    """A UTC start history, then ticks whose as_of carries -05:00 (as JSON lines may):
    the window mixes offsets and is still attributed, as in UTC."""
    frame = asset_returns(WINDOW + 8)
    with book_swarm(tmp_path / "h", every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 8):
            when = (frame.index[i] + timedelta(hours=21)).to_pydatetime()
            when = when.astimezone(timezone(timedelta(hours=-5)))
            swarm.step(Tick("*", when.isoformat(), assets=frame.iloc[i].to_dict()))
    got = attributions(tmp_path / "h")
    assert {k: [r["action"] for r in v] for k, v in got.items()} == {
        ("book", 4): ["attributed"], ("book", 8): ["attributed"]}


def test_a_zone_with_a_dst_change_resumed_records_what_an_uninterrupted_run_does(tmp_path):
    """America/New_York dates with a DST change in the window: closed at beat 6 and resumed
    (the ring rebuilt from ISO strings with two offsets), the records equal a run's."""
    frame = asset_returns(WINDOW + 12)
    frame.index = frame.index.tz_convert(None).tz_localize("America/New_York")
    runs = {}
    for label, parts in (("whole", [(WINDOW, WINDOW + 12)]),
                         ("resumed", [(WINDOW, WINDOW + 6), (WINDOW + 6, WINDOW + 12)])):
        home = tmp_path / label
        for a, b in parts:
            with book_swarm(home, every=4, checkpoint_every=3) as swarm:
                swarm.start(frame.iloc[:WINDOW])
                for i in range(a, b):
                    swarm.step(tick(frame, i))
        got = attributions(home)
        for recs in got.values():
            for r in recs:
                r["detail"].pop("seconds")
        runs[label] = got
    assert sorted(runs["whole"]) == [("book", 4), ("book", 8), ("book", 12)]
    assert all(v[0]["action"] == "attributed" for v in runs["whole"].values())
    assert runs["resumed"] == runs["whole"]


def test_a_second_resume_still_ledgers_each_due_one_until_the_ring_is_full(tmp_path):
    """An old home (no ring), resumed: its first checkpoint stores a partial ring; a second
    resume reads that ring and still ledgers each due one as skipped, never silently."""
    frame = asset_returns(WINDOW + 25)
    home = tmp_path / "h"
    parts = [(WINDOW, WINDOW + 5, None), (WINDOW + 5, WINDOW + 13, book_var),
             (WINDOW + 13, WINDOW + 25, book_var)]
    for a, b, fn in parts:
        with book_swarm(home, every=4, checkpoint_every=3, book_var=fn) as swarm:
            swarm.start(frame.iloc[:WINDOW])
            for i in range(a, b):
                swarm.step(tick(frame, i))
    got = attributions(home)
    assert sorted(got) == [("book", s) for s in range(4, 25, 4)]
    for recs in got.values():
        assert len(recs) == 1 and recs[0]["action"] == "attribution-skipped"
        assert "asset ring holds" in recs[0]["detail"]["reason"]


def test_a_start_without_asset_rows_says_each_due_one_it_skips(tmp_path):
    """A start from a mapping of the book's own returns leaves the ring empty: each due
    attribution until it fills is ledgered as skipped (an uninterrupted run and a resumed
    one alike)."""
    frame = asset_returns(WINDOW + 12)
    w = np.array(list(POSITIONS.values()))
    own = pd.Series(np.log1p(np.expm1(frame.iloc[:WINDOW].to_numpy()) @ w / w.sum()),
                    index=frame.index[:WINDOW])
    runs = {}
    for label, cuts in (("whole", [WINDOW + 12]), ("resumed", [WINDOW + 6, WINDOW + 12])):
        home, a = tmp_path / label, WINDOW
        for b in cuts:
            with book_swarm(home, every=4, checkpoint_every=3) as swarm:
                swarm.start({"book": own})
                for i in range(a, b):
                    swarm.step(tick(frame, i))
            a = b
        runs[label] = attributions(home)
    assert sorted(runs["whole"]) == [("book", 4), ("book", 8), ("book", 12)]
    assert all(len(v) == 1 and v[0]["action"] == "attribution-skipped"
               for v in runs["whole"].values())
    assert runs["resumed"] == runs["whole"]


def _failing_book_var(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("a bug in the attribution")


def test_a_failing_attribution_is_ledgered_with_its_error_once(tmp_path):
    """A worker that raises (a bug, not a SwarmVarError): each due one is still ledgered,
    once, saying the error; a resumed run records the same."""
    frame = asset_returns(WINDOW + 8)
    runs = {}
    for label, cuts in (("whole", [WINDOW + 8]), ("resumed", [WINDOW + 5, WINDOW + 8])):
        home, a = tmp_path / label, WINDOW
        for b in cuts:
            with book_swarm(home, every=4, checkpoint_every=3,
                            book_var=_failing_book_var) as swarm:
                swarm.start(frame.iloc[:WINDOW])
                for i in range(a, b):
                    swarm.step(tick(frame, i))
            a = b
        got = attributions(home)
        for recs in got.values():
            for r in recs:
                r["detail"].pop("seconds")
        runs[label] = got
    assert sorted(runs["whole"]) == [("book", 4), ("book", 8)]
    for recs in runs["whole"].values():
        assert len(recs) == 1 and recs[0]["detail"]["levels"] == []
        assert recs[0]["detail"]["note"] == "ValueError: a bug in the attribution"
    assert runs["resumed"] == runs["whole"]


def test_ctrl_c_while_close_waits_still_flushes_and_closes(tmp_path, monkeypatch):
    """A Ctrl-C (KeyboardInterrupt) while close waits for held attributions: the beats
    batched are still flushed, the worker pool shut down and the ledger closed; the
    interrupt goes on to the caller."""
    gate = threading.Event()
    real_run, real_landed = attribution_module._attr_run, attribution_module._attr_landed

    def held(job: Any, fn: Any) -> Any:
        gate.wait(timeout=30)
        return real_run(job, fn)

    def interrupted(swarm: Any, *, wait: float | None = None, **kw: Any) -> Any:
        if wait is not None:
            raise KeyboardInterrupt
        return real_landed(swarm, wait=wait, **kw)

    monkeypatch.setattr(attribution_module, "_attr_run", held)
    monkeypatch.setattr(attribution_module, "_attr_landed", interrupted)
    frame = asset_returns(WINDOW + 9)
    home = tmp_path / "h"
    swarm = book_swarm(home, every=2, ledger_batch=50, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 9):
            swarm.step(tick(frame, i))
        pool = swarm._attr_pool
        assert pool is not None and len(swarm._batch) > 0
        with pytest.raises(KeyboardInterrupt):
            swarm.close()
    finally:
        gate.set()
    assert swarm._batch == [] and swarm._attr_pool is None
    with pytest.raises(RuntimeError):  # shut down
        pool.submit(int)
    with Ledger.open(home) as ledger:
        beats = [e for e in ledger.entries() if e.kind == "consensus" and "beat" in e.data]
    assert len(beats) == 9


def test_a_backlog_is_bounded_and_its_checkpoint_stores_no_date_strings(tmp_path, monkeypatch):
    """Beats faster than their attributions (every beat due): at most MAX_QUEUED of the
    book's are queued or running, each still ledgered once; a checkpoint's run record
    holds no window of date strings (the dates are an int64 blob)."""
    def slow(job: Any, fn: Any) -> Any:
        time.sleep(0.05)
        return attribution_module._failed(job, RuntimeError("slowed"))

    monkeypatch.setattr(attribution_module, "_attr_run", slow)
    frame = asset_returns(WINDOW + 24)
    peak, sizes = 0, []
    with book_swarm(tmp_path / "h", every=1, checkpoint_every=5) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 24):
            swarm.step(tick(frame, i))
            peak = max(peak, sum(1 for _, f in swarm._attr_running.values()
                                 if f is not None and not f.done()))
            if (i - WINDOW + 1) % 5 == 0:
                run = json.loads(swarm.states.get("swarm:__run__").decode())
                sizes.append(len(json.dumps(run["marks"]["book"]["attribution"])))
    assert 1 < peak <= attribution_module.MAX_QUEUED
    assert max(sizes) < 1000  # ISO dates: 250 x ~27 bytes for the ring alone
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", s) for s in range(1, 25)]
    assert all(len(v) == 1 for v in got.values())


def test_a_ring_reads_back_its_dates_blob_and_the_first_versions_iso_strings():
    ny = pd.date_range("2021-03-10", periods=5, freq="D", tz="America/New_York")
    dates = [d.to_pydatetime() for d in ny]  # a DST change on the 14th
    ring = attribution_module.AssetRing(5, 2)
    for k, d in enumerate(dates):
        ring.push(d, [k, -k])
    blob, rows = ring.dump()
    for saved in (attribution_module.blob_dates(blob), [d.isoformat() for d in dates]):
        back = attribution_module.AssetRing(5, 2)
        back.load(saved, rows)
        got, values = back.window()
        assert got == tuple(dates) and all(d.utcoffset() == timedelta(0) for d in got)
        assert values.tolist() == [[k, -k] for k in range(5)]


def test_asset_rows_of_ticks_never_beaten_are_dropped(tmp_path):
    """A tick's asset row kept, then its tick refused (or queued and lost): the next beat
    of the book drops it, so the rows kept do not grow."""
    frame = asset_returns(WINDOW + 4)
    with book_swarm(tmp_path / "h", every=50) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.step(tick(frame, WINDOW))
        stale = frame.index[WINDOW].to_pydatetime() + timedelta(hours=1)  # never beaten
        swarm._asset_rows["book", stale] = np.zeros(3)
        swarm.step(tick(frame, WINDOW + 1))
        assert swarm._asset_rows == {}


def test_the_forager_pool_picks_its_start_method_when_it_is_created(monkeypatch):
    """The executor chose fork at open; by the first refit another thread runs (an
    attribution's): the forager pool is started with the method chosen then."""
    import importlib
    import multiprocessing as mp

    from swarmvar.swarm import executors

    backtest = importlib.import_module("swarmvar.validation.backtest")  # the module

    made: list[Any] = []

    class Pool:
        def __init__(self, n: int, *, mp_context: Any, **kw: Any) -> None:
            made.append(mp_context)

        def submit(self, fn: Any, job: Any) -> Any:
            return None

    monkeypatch.setattr(executors, "ProcessPoolExecutor", Pool)
    executor = executors.LocalExecutor(0)
    executor._ctx = mp.get_context("fork")  # chosen at open, before the thread
    monkeypatch.setattr(backtest, "_pool_context", lambda: mp.get_context("spawn"))
    executor.submit_refit(None)  # type: ignore[arg-type]
    assert [c.get_start_method() for c in made] == ["spawn"]


def test_the_attribution_thread_stops_when_idle(tmp_path):
    """Once nothing is queued or running, the worker thread stops (a fork stays safe);
    the next due attribution starts another."""
    frame = asset_returns(WINDOW + 4)
    with book_swarm(tmp_path / "h", every=2) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.step(tick(frame, WINDOW))
        swarm.step(tick(frame, WINDOW + 1))  # beat 2: due, submitted
        assert swarm._attr_pool is not None
        deadline = time.monotonic() + 60
        while not all(f.done() for _, f in swarm._attr_running.values()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        swarm.step(tick(frame, WINDOW + 2))  # beat 3 lands beat 2's
        assert swarm.attribution("book") is not None and swarm._attr_pool is None
        swarm.step(tick(frame, WINDOW + 3))  # beat 4: due, another thread
        assert swarm._attr_pool is not None
    assert sorted(attributions(tmp_path / "h")) == [("book", 2), ("book", 4)]


def test_a_resume_gives_the_latest_attribution_landed_before_its_checkpoint(tmp_path):
    """Beat 5's attribution lands at beat 6, the checkpoint at 8 is the resume's: its
    Swarm.attribution is beat 5's at once, not None until a new one lands."""
    frame = asset_returns(WINDOW + 8)
    home = tmp_path / "h"
    with book_swarm(home, every=5, checkpoint_every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 5):
            swarm.step(tick(frame, i))
        deadline = time.monotonic() + 60
        while not all(f.done() for _, f in swarm._attr_running.values()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for i in range(WINDOW + 5, WINDOW + 8):
            swarm.step(tick(frame, i))
        before = swarm.attribution("book")
        assert before is not None and before.seq == 5
    with book_swarm(home, every=5, checkpoint_every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        assert swarm.attribution("book") == before
