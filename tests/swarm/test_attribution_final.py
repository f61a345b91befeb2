"""A streamed book's attribution under the runtime's final review: a ``book_var`` that
raises is said when its record lands (before, only ledgered); after a stall a beat waits for
its book's oldest only, and a worker that moved on during the wait is said to be behind."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from swarmvar import book_var
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


def test_a_book_var_that_raises_is_warned_on_the_landing_thread_once_in_a_row(
        tmp_path: Path, caplog: Any) -> None:
    """``book_var`` itself raising (caught in ``run_attribution``: ledgered without levels,
    the error as its note) is a WARNING, said on the thread that lands it, not the
    worker's; the book's next failure in a row is at INFO; after a success the next
    failure is a WARNING again."""
    outcomes = iter([False, False, True, False])

    def flaky(*args: Any, **kw: Any) -> Any:
        if next(outcomes):
            return book_var(*args, **kw)
        raise ValueError("a bug in book_var")

    frame = asset_returns(WINDOW + 8)
    caplog.set_level(logging.INFO, logger="swarmvar.swarm")
    with book_swarm(tmp_path / "h", every=2, book_var=flaky) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 8):
            swarm.step(tick(frame, i))
    records = attributions(tmp_path / "h")
    seqs = sorted(seq for _, seq in records)
    assert len(seqs) == 4, records
    notes = [records["book", seq][0]["detail"]["note"] for seq in seqs]
    assert [n == "ValueError: a bug in book_var" for n in notes] == [True, True, False, True]
    said = [(r.levelno, r.getMessage(), r.threadName) for r in caplog.records
            if " failed" in r.getMessage() and "attribution of book" in r.getMessage()]
    assert [(level, msg.split(":")[0]) for level, msg, _ in said] == [
        (logging.WARNING, f"attribution of book at beat {seqs[0]} failed"),
        (logging.INFO, f"attribution of book at beat {seqs[1]} failed again"),
        (logging.WARNING, f"attribution of book at beat {seqs[3]} failed")], said
    assert "failed: ValueError: a bug in book_var (ledgered without levels" in said[0][1]
    assert {thread for _, _, thread in said} == {threading.main_thread().name}


def one_job_per_wait(monkeypatch: Any, held: Any) -> tuple[threading.Semaphore, list[int]]:
    """Jobs ``held(job)`` each take a permit of the semaphore returned; each beat's wait
    (``wait_futures`` in the module) releases one first: the worker moves on by one job
    per wait, no sleep. The list: each timed-out wait's count of futures waited for."""
    permits = threading.Semaphore(0)
    real_wait = attribution_module.wait_futures
    timed_out: list[int] = []

    def run(job: Any, fn: Any) -> Any:
        if held(job):
            assert permits.acquire(timeout=30)
        return attribution_module._failed(job, RuntimeError("held"))

    def wait(fs: Any, timeout: float | None = None) -> Any:
        permits.release()
        done, pending = real_wait(fs, timeout=timeout)
        if pending:
            timed_out.append(len(fs))
        return done, pending

    monkeypatch.setattr(attribution_module, "_attr_run", run)
    monkeypatch.setattr(attribution_module, "wait_futures", wait)
    return permits, timed_out


def test_after_a_stall_a_beat_waits_for_its_books_oldest_only(tmp_path, monkeypatch, caplog):
    """Beat 1's attribution holds the worker: beat 5 waits once and says it; beats 6-10
    queue theirs. Then the worker moves on one job per wait: beats 11 and 12 each wait for
    the book's oldest (done in the wait), not for all queued but MAX_QUEUED - 1 (before:
    5 or 6, so the wait timed out and called the busy worker stuck a second time)."""
    stall = threading.Event()

    def held(job: Any) -> bool:
        if job.seq == 1:
            assert stall.wait(timeout=30)
            return False
        return True

    permits, timed_out = one_job_per_wait(monkeypatch, held)
    frame = asset_returns(WINDOW + 12)
    swarm = book_swarm(tmp_path / "h", every=1, restore_timeout=0.3, checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            for i in range(WINDOW, WINDOW + 10):
                swarm.step(tick(frame, i))
            stall.set()
            for i in range(WINDOW + 10, WINDOW + 12):
                swarm.step(tick(frame, i))
        waits = list(timed_out)
    finally:
        stall.set()
        permits.release(100)
        swarm.close()
    assert waits == [1], waits
    said = [r.getMessage() for r in caplog.records if "after 0.3 s" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("attribution of book at beat 1 still running")
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", s) for s in range(1, 13)]
    assert all(len(v) == 1 for v in got.values())


def test_a_wait_past_which_the_worker_moved_on_says_it_is_behind_not_stuck(
        tmp_path, monkeypatch, caplog):
    """A's oldest queued behind B's beats 1 and 2: B's 1 ends during the wait, B's 2 is
    running at its end. The WARNING says the worker is behind, naming B's beat 2, not that
    B's beat 2 (just started) is still running after the wait's timeout."""
    permits, timed_out = one_job_per_wait(monkeypatch, lambda job: job.portfolio == "B")
    books = {"A": {"positions": POSITIONS}, "B": {"positions": POSITIONS}}
    frame = asset_returns(WINDOW + 6)
    swarm = book_swarm(tmp_path / "h", books, every=1, restore_timeout=0.3,
                       checkpoint_every=1000)
    try:
        swarm.start(frame.iloc[:WINDOW])
        with caplog.at_level(logging.WARNING, logger="swarmvar"):
            t = tick(frame, WINDOW)
            swarm.step(Tick("B", t.as_of, assets=t.assets))  # B's beat 1: holds the worker
            t = tick(frame, WINDOW + 1)
            swarm.step(Tick("B", t.as_of, assets=t.assets))  # B's beat 2, queued
            for i in range(WINDOW, WINDOW + 5):  # A's beats 1-5: beat 5 waits for A's 1
                t = tick(frame, i)
                swarm.step(Tick("A", t.as_of, assets=t.assets))
        waits = list(timed_out)
    finally:
        permits.release(100)
        swarm.close()
    assert waits == [1], waits
    said = [r.getMessage() for r in caplog.records if "after 0.3 s" in r.getMessage()]
    assert said == ["attribution of A at beat 1 not done after 0.3 s: the worker is behind "
                    "(others ended during the wait; it runs B's beat 2 now): the beats queue "
                    "theirs without waiting until that one ends"], said
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("A", s) for s in range(1, 6)] + [("B", 1), ("B", 2)]
