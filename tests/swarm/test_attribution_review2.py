"""A streamed book's attribution under the second review's cases (swarm/attribution.py):
a stuck worker and the queue cap, a Ctrl-C in close's wait, a worker raising SystemExit."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from swarmvar.swarm import attribution as attribution_module

sys.path.insert(0, str(Path(__file__).parent))
from test_attribution import WINDOW, asset_returns, attributions, book_swarm, tick  # noqa: E402


def test_a_stuck_attribution_is_waited_for_once_and_said(tmp_path, monkeypatch, caplog):
    """A worker that never ends, every beat due: the beat that finds MAX_QUEUED queued
    waits ``restore_timeout`` once and says which beat is stuck (a WARNING); the beats
    after it do not wait again while that one still runs."""
    gate = threading.Event()

    def hung(job: Any, fn: Any) -> Any:
        gate.wait(timeout=30)
        return attribution_module._failed(job, RuntimeError("held"))

    monkeypatch.setattr(attribution_module, "_attr_run", hung)
    real_wait = attribution_module.wait_futures
    timed_out: list[int] = []  # each wait that timed out (not a beat's time: load varies)

    def wait(fs: Any, timeout: float | None = None) -> Any:
        done, pending = real_wait(fs, timeout=timeout)
        if pending:
            timed_out.append(len(pending))
        return done, pending

    monkeypatch.setattr(attribution_module, "wait_futures", wait)
    frame = asset_returns(WINDOW + 10)
    timeout = 0.4
    swarm = book_swarm(tmp_path / "h", every=1, restore_timeout=timeout,
                       checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            for i in range(WINDOW, WINDOW + 10):
                swarm.step(tick(frame, i))
        waits = list(timed_out)
    finally:
        gate.set()
        swarm.close()
    assert waits == [1], waits  # before: beats 5-10 each waited
    stuck = [r.getMessage() for r in caplog.records if "still running after" in r.getMessage()]
    assert stuck == [f"attribution of book at beat 1 still running after {timeout:g} s: "
                     "the beats queue theirs without waiting until it ends"]
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", s) for s in range(1, 11)]
    assert all(len(v) == 1 for v in got.values())


def test_ctrl_c_in_close_keeps_the_attributions_landed_in_its_wait(tmp_path, monkeypatch):
    """Close waits for beat 1's and beat 2's (held) attribution; a Ctrl-C (SIGINT's
    KeyboardInterrupt) in the wait for beat 2's: beat 1's, landed in that wait, is still
    ledgered (once). Gates, not sleeps: beat 1's ends only once close waits for it; the
    KeyboardInterrupt is raised in the wait itself, deterministically."""
    first, gate = threading.Event(), threading.Event()
    real_wait = attribution_module.wait_futures
    waits: list[Any] = []

    def run(job: Any, fn: Any) -> Any:
        (first if job.seq == 1 else gate).wait(timeout=30)
        return attribution_module._failed(job, RuntimeError("done"))

    def wait(fs: Any, timeout: float | None = None) -> Any:
        waits.append(fs)
        if len(waits) == 1:  # close's wait for beat 1's: let it end
            first.set()
            return real_wait(fs, timeout=timeout)
        raise KeyboardInterrupt  # then a Ctrl-C in the wait for beat 2's (raised where
        # SIGINT's handler raises it; a real signal reached the loaded CI machine too late)

    monkeypatch.setattr(attribution_module, "_attr_run", run)
    frame = asset_returns(WINDOW + 3)
    home = tmp_path / "h"
    swarm = book_swarm(home, every=1, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 3):
            swarm.step(tick(frame, i))
        monkeypatch.setattr(attribution_module, "wait_futures", wait)
        with pytest.raises(KeyboardInterrupt):
            swarm.close()
    finally:
        first.set()
        gate.set()
    assert len(waits) == 2
    got = attributions(home)
    assert sorted(got) == [("book", 1)]  # before: none
    assert len(got["book", 1]) == 1


def test_a_worker_raising_system_exit_is_ledgered_as_failed(tmp_path, monkeypatch):
    """A book_var that raises SystemExit (a BaseException) in the worker thread: the beat
    goes on, and the attribution is ledgered as failed, saying so."""
    def exits(job: Any, fn: Any) -> Any:
        raise SystemExit("book_var called sys.exit")

    monkeypatch.setattr(attribution_module, "_attr_run", exits)
    frame = asset_returns(WINDOW + 4)
    with book_swarm(tmp_path / "h", every=2) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 4):
            swarm.step(tick(frame, i))
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", 2), ("book", 4)]
    for recs in got.values():
        assert len(recs) == 1
        assert recs[0]["detail"]["note"] == "SystemExit: book_var called sys.exit"


def test_a_replay_lands_the_attributions_it_submits_again(tmp_path, monkeypatch):
    """A run whose 12 attributions are all held when it stops without closing (as a kill:
    the ledger flushed, no checkpoint after the start); its resume replays the 12 beats
    and submits each again: the finished ones land as the replay goes (at most
    MAX_QUEUED + 1 held at its end, not the 12 windows), each ledgered once."""
    gate = threading.Event()
    n = 12

    def held(job: Any, fn: Any) -> Any:
        gate.wait(timeout=30)
        return attribution_module._failed(job, RuntimeError("held"))

    def quick(job: Any, fn: Any) -> Any:
        return attribution_module._failed(job, RuntimeError("quick"))

    frame = asset_returns(WINDOW + n + 1)
    home = tmp_path / "h"
    monkeypatch.setattr(attribution_module, "_attr_run", held)
    killed = book_swarm(home, every=1, checkpoint_every=1000, restore_timeout=0.05)
    try:
        killed.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + n):
            killed.step(tick(frame, i))
        killed.flush()  # then never closed
        monkeypatch.setattr(attribution_module, "_attr_run", quick)
        with book_swarm(home, every=1, checkpoint_every=1000) as swarm:
            swarm.start(frame.iloc[:WINDOW])
            held_at_start = len(swarm._attr_running)
            swarm.step(tick(frame, WINDOW + n))
    finally:
        gate.set()
    assert held_at_start <= attribution_module.MAX_QUEUED + 1  # before: 12
    got = attributions(home)
    assert sorted(got) == [("book", s) for s in range(1, n + 2)]
    assert all(len(v) == 1 for v in got.values())


def test_a_run_record_of_the_first_version_has_its_rhythm_checked(tmp_path, monkeypatch):
    """A run record written by the role's first version (``roles.attribute_every``, no
    ``attribution`` part): a resume under another rhythm is refused, naming the book; the
    saved None (the refit rhythm) resumes as the same number written out."""
    from swarmvar.errors import ResumeMismatch
    from swarmvar.swarm import _recovery

    real = _recovery._settings

    def first_version(swarm: Any) -> dict[str, Any]:
        out = real(swarm)
        del out["attribution"]
        out["roles"]["attribute_every"] = swarm.roles.attribute_every
        return out

    frame = asset_returns(WINDOW + 6)
    home = tmp_path / "h"
    with monkeypatch.context() as m:
        m.setattr(_recovery, "_settings", first_version)
        with book_swarm(home, every=None, refit_every=5) as swarm:
            swarm.start(frame.iloc[:WINDOW])
            swarm.step(tick(frame, WINDOW))
    with book_swarm(home, every=3, refit_every=5) as swarm, pytest.raises(
            ResumeMismatch, match=r"attribution\.every of book: saved 5, now 3\)"):
        swarm.start(frame.iloc[:WINDOW])  # before: resumed
    with book_swarm(home, every=5, refit_every=5) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW + 1, WINDOW + 6):
            swarm.step(tick(frame, i))
    assert sorted(attributions(home)) == [("book", 5)]
