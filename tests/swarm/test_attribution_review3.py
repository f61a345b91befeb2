"""A streamed book's attribution under the third review's cases (swarm/attribution.py):
one worker stuck for every book, close's failure said by the attribution module."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

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


def counted_waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``wait_futures`` in the attribution module, counting the waits that timed out (each
    entry: how many futures were still pending)."""
    real = attribution_module.wait_futures
    timed_out: list[int] = []

    def wait(fs: Any, timeout: float | None = None) -> Any:
        done, pending = real(fs, timeout=timeout)
        if pending:
            timed_out.append(len(pending))
        return done, pending

    monkeypatch.setattr(attribution_module, "wait_futures", wait)
    return timed_out


def test_one_stuck_worker_is_waited_for_once_for_every_book(tmp_path, monkeypatch, caplog):
    """Two books, A's beat-1 attribution never ends (one worker thread for both): one beat
    waits ``restore_timeout``, once, and the WARNING names A's beat 1 (the one running);
    B's jobs, queued behind it, are never said to be running. Each recorded once."""
    gate = threading.Event()

    def run(job: Any, fn: Any) -> Any:
        if job.portfolio == "A" and job.seq == 1:
            gate.wait(timeout=30)
        return attribution_module._failed(job, RuntimeError("held"))

    monkeypatch.setattr(attribution_module, "_attr_run", run)
    books = {"A": {"positions": POSITIONS}, "B": {"positions": POSITIONS}}
    frame = asset_returns(WINDOW + 12)
    home = tmp_path / "h"
    swarm = book_swarm(home, books, every=1, restore_timeout=0.3, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        timed_out = counted_waits(monkeypatch)
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            for i in range(WINDOW, WINDOW + 12):
                swarm.step(tick(frame, i))
        waits = list(timed_out)
    finally:
        gate.set()
        swarm.close()
    assert waits == [1], waits  # before: A's wait and B's wait (B's never started)
    stuck = [r.getMessage() for r in caplog.records if "still running after" in r.getMessage()]
    assert stuck == ["attribution of A at beat 1 still running after 0.3 s: the beats "
                     "queue theirs without waiting until it ends"], stuck
    got = attributions(home)
    assert sorted(got) == [(p, s) for p in "AB" for s in range(1, 13)]
    assert all(len(v) == 1 for v in got.values())


def test_the_stuck_one_named_is_the_one_running_not_the_one_waited_for(tmp_path, monkeypatch,
                                                                        caplog):
    """B's beat-1 attribution never ends; then only A beats, its attributions queued behind
    B's: the beat that waits for A's oldest (never started) says B's beat 1 is stuck (the
    one the worker runs), not A's."""
    gate, started = threading.Event(), threading.Event()

    def run(job: Any, fn: Any) -> Any:
        if job.portfolio == "B" and job.seq == 1:
            started.set()
            gate.wait(timeout=30)
        return attribution_module._failed(job, RuntimeError("held"))

    monkeypatch.setattr(attribution_module, "_attr_run", run)
    books = {"A": {"positions": POSITIONS}, "B": {"positions": POSITIONS}}
    frame = asset_returns(WINDOW + 7)
    home = tmp_path / "h"
    swarm = book_swarm(home, books, every=1, restore_timeout=0.3, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        timed_out = counted_waits(monkeypatch)
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            swarm.step(tick(frame, WINDOW))  # A's and B's beat 1
            assert started.wait(timeout=30)  # B's holds the one worker
            for i in range(WINDOW + 1, WINDOW + 7):  # A's beats 2-7 only
                t = tick(frame, i)
                swarm.step(Tick("A", t.as_of, assets=t.assets))
        waits = list(timed_out)
    finally:
        gate.set()
        swarm.close()
    assert len(waits) == 1, waits
    stuck = [r.getMessage() for r in caplog.records if "still running after" in r.getMessage()]
    assert len(stuck) == 1 and stuck[0].startswith("attribution of B at beat 1 still"), stuck
    got = attributions(home)
    assert sorted(got) == [("A", s) for s in range(1, 8)] + [("B", 1)]
    assert all(len(v) == 1 for v in got.values())


def test_a_failure_in_closes_wait_is_the_attribution_modules_warning(tmp_path, monkeypatch,
                                                                      caplog):
    """Close's wait raising: closing goes on and the WARNING comes from the attribution
    module (what ``swarmvar run`` shows on stderr; before: from runtime, never shown)."""
    gate = threading.Event()
    real_run = attribution_module._attr_run

    def held(job: Any, fn: Any) -> Any:
        gate.wait(timeout=30)
        return real_run(job, fn)

    def broken(swarm: Any, *, wait: float | None = None, into: Any = None) -> Any:
        raise RuntimeError("a bug while landing")

    monkeypatch.setattr(attribution_module, "_attr_run", held)
    frame = asset_returns(WINDOW + 2)
    swarm = book_swarm(tmp_path / "h", every=1, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        swarm.step(tick(frame, WINDOW))
        monkeypatch.setattr(attribution_module, "_attr_landed", broken)
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            swarm.close()
    finally:
        gate.set()
    said = [r for r in caplog.records if r.getMessage().startswith("closing with attributions")]
    assert [(r.module, r.getMessage()) for r in said] == [
        ("attribution", "closing with attributions still running (a bug while landing)")]
    assert swarm._attr_pool is None


def test_closing_words_count_one_attribution_in_the_singular():
    assert attribution_module.closing_words(600, 1) == (
        "closing: waiting up to 600 s for 1 attribution still running (Ctrl-C stops the "
        "wait; a resume submits them again)")
    assert "for 2 attributions still" in attribution_module.closing_words(0.5, 2)
    assert "up to 0.5 s" in attribution_module.closing_words(0.5, 2)
