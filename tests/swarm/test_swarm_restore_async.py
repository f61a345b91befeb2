"""A lost host is restored in the background: the other hosts' portfolios beat on, the lost
ones serve their last consensus (stale, widened) and catch up, exactly once, to the numbers
of an uninterrupted run — also after a kill -9 in the middle of a restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from swarmvar.errors import InvalidParameter, InvalidTick, RestoreQueueFull, WorkerFailed
from swarmvar.ledger import Ledger
from swarmvar.swarm import LocalExecutor, Replay
from swarmvar.swarm.executors import HostLost, shard_of
from swarmvar.swarm.runtime import RESTORE_ATTEMPTS, RESTORING
from swarmvar.types import Tick

from . import _restore_child as child
from .conftest import make_swarm

PORTFOLIOS = child.PORTFOLIOS  # "a" alone on shard 1 of 2; "d" and "e" on shard 0
LOST = "a"
HISTORY = child.HISTORY
SETTINGS = child.SETTINGS


def ledger_beats(home: Path) -> dict[tuple[str, int], list]:
    """(portfolio, seq) -> the recorded consensus; each once, gap-free, in per-portfolio order."""
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        out: dict[tuple[str, int], list] = {}
        last: dict[str, int] = {}
        for e in ledger.entries():
            if e.kind == "consensus" and "beat" in e.data:
                key = (e.data["beat"]["portfolio"], e.data["beat"]["seq"])
                assert key not in out, f"beat {key} recorded twice"
                assert key[1] == last.get(key[0], 0) + 1, f"beat {key} out of order"
                last[key[0]] = key[1]
                out[key] = [(c["var"], c["es"], c["var_interval"], c["es_interval"])
                            for c in e.data["levels"]]
        return out


def _numbers(rep: Any) -> tuple:
    return ({a: f.levels for a, f in rep.forecasts.items()}, rep.consensus)


def reference(home: Path, frame: pd.DataFrame, beats: int) -> dict[tuple[str, int], tuple]:
    """An uninterrupted run in this process: the numbers every other run must give."""
    out: dict[tuple[str, int], tuple] = {}
    with make_swarm(home, PORTFOLIOS, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        swarm.run(Replay(frame, start=HISTORY, stop=HISTORY + beats),
                  on_beat=lambda r: out.__setitem__((r.portfolio, r.seq), _numbers(r)))
    return out


def gated_run(home: Path, frame: pd.DataFrame, executor: Any, kill: Callable[[Any], None],
              beats: int, kill_at: int, release_after: int = 4) -> dict[str, Any]:
    """Beat ``beats`` ticks, kill the host of ``LOST`` before tick ``kill_at``, and hold its
    restore (a gate its restoring thread waits on) until the other portfolios have beaten
    ``release_after`` times with it lost. Returns what happened."""
    gate = threading.Event()
    waited: list[bool] = []
    real: dict[tuple[str, int], tuple] = {}
    served: list[Any] = []
    last_real: dict[str, Any] = {}
    others_while_held = 0
    with make_swarm(home, PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        restore = executor.restore

        def slow_restore(blobs: Any) -> None:  # the restoring thread waits for the test
            if threading.current_thread() is not threading.main_thread():
                waited.append(gate.wait(timeout=120))
            restore(blobs)

        executor.restore = slow_restore
        source = Replay(frame, start=HISTORY, stop=HISTORY + beats)
        for i, tick in enumerate(source):
            if i == kill_at:
                kill(executor)
            for rep in swarm.beat([tick], cursor=source.cursor):
                if rep.events and rep.events[0].startswith(RESTORING):
                    served.append((rep, last_real.get(rep.portfolio)))
                    continue
                assert (rep.portfolio, rep.seq) not in real
                real[(rep.portfolio, rep.seq)] = _numbers(rep)
                last_real[rep.portfolio] = rep
                if not gate.is_set() and LOST in swarm.restoring() and rep.portfolio != LOST:
                    others_while_held += 1
            if not gate.is_set() and others_while_held >= release_after * 2:
                assert swarm.restoring()[LOST].queued >= release_after
                gate.set()  # only now may the restore go on
        for rep in swarm.settle():
            real[(rep.portfolio, rep.seq)] = _numbers(rep)
        assert not swarm.restoring()
        seq = dict(swarm.seq)
    return {"real": real, "served": served, "waited": waited, "seq": seq,
            "others_while_held": others_while_held}


def check_gated(got: dict[str, Any], expected: dict[tuple[str, int], tuple], beats: int,
                release_after: int = 4) -> None:
    # (a) the other host's portfolios beat while the restore was held, and the restore
    # went on because the test released it (not by the gate's timeout): nothing waited for it
    assert got["waited"] == [True]
    assert got["others_while_held"] == release_after * 2
    assert len(got["served"]) >= release_after
    for rep, last in got["served"]:
        assert rep.portfolio == LOST and not rep.forecasts
        for c, before in zip(rep.consensus, last.consensus, strict=True):
            assert c.available == 0 and c.degraded and c.var == before.var
            assert c.var_interval[0] <= before.var_interval[0]
            assert c.var_interval[1] > before.var_interval[1]  # stale by >= 1 day: wider
            assert c.staleness > before.staleness
    # (c) after the catch-up: every beat, and every number, of the uninterrupted run
    assert got["seq"] == dict.fromkeys(PORTFOLIOS, beats)
    assert got["real"] == {k: v for k, v in expected.items() if k[1] <= beats}


@pytest.fixture(scope="module")
def frame(sp500: pd.Series) -> pd.DataFrame:
    return child.frame(sp500)


def test_local_worker_killed_restores_in_background_and_catches_up(tmp_path, frame):
    beats, more = 27, 6
    expected = reference(tmp_path / "reference", frame, beats + more)
    executor = LocalExecutor(workers=2)

    def kill(ex: LocalExecutor) -> None:
        os.kill(ex.pids()[shard_of(LOST, 2)], signal.SIGKILL)

    home = tmp_path / "killed"
    got = gated_run(home, frame, executor, kill, beats, kill_at=9)
    check_gated(got, expected, beats)
    # (b) exactly once in the ledger, in per-portfolio order, with the reference's numbers
    ref_ledger = ledger_beats(tmp_path / "reference")
    assert ledger_beats(home) == {k: v for k, v in ref_ledger.items() if k[1] <= beats}
    # a resume replays that interleaved ledger after the last checkpoint and goes on equal
    with make_swarm(home, PORTFOLIOS, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        summary = swarm.run(Replay(frame, start=HISTORY, stop=HISTORY + beats + more))
    assert summary.beats == dict.fromkeys(PORTFOLIOS, more)
    assert ledger_beats(home) == ref_ledger


def test_a_full_restore_queue_is_refused_and_catch_up_is_spread(tmp_path, frame):
    """A full queue refuses the tick before anything beats; with ``catch_up=2`` the restored
    portfolio beats two queued ticks per call (its new tick queues behind them) until its
    queue is empty, and the ledger holds every beat once."""
    executor = LocalExecutor(workers=2)
    gate = threading.Event()
    with make_swarm(tmp_path / "home", PORTFOLIOS, executor=executor, restore_queue=3,
                    catch_up=2, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        restore = executor.restore

        def slow_restore(blobs: Any) -> None:
            if threading.current_thread() is not threading.main_thread():
                gate.wait(timeout=120)
            restore(blobs)

        executor.restore = slow_restore
        source = iter(Replay(frame, start=HISTORY, stop=HISTORY + 12))
        swarm.beat([next(source)])
        os.kill(executor.pids()[shard_of(LOST, 2)], signal.SIGKILL)
        for _ in range(3):  # the lost beat and two more queue
            swarm.beat([next(source)])
        assert swarm.restoring()[LOST].queued == 3
        before = dict(swarm.seq)
        tick = next(source)
        with pytest.raises(RestoreQueueFull, match="'a' has 3 ticks queued"):
            swarm.beat([tick])
        assert swarm.seq == before and swarm.restoring()[LOST].queued == 3
        gate.set()
        swarm._recoveries[LOST].future.result(timeout=120)  # the host is back (not yet seen)
        caught = []
        for t in [tick, *source]:
            reports = swarm.beat([t])
            caught.append([r.seq for r in reports[len(PORTFOLIOS):]])
            if LOST in swarm.restoring():
                assert swarm.restoring()[LOST].attempt == 0  # back, catching up
        assert caught[:3] == [[2, 3], [4, 5], []]  # the second call emptied the queue
        assert swarm.seq == dict.fromkeys(PORTFOLIOS, 12) and not swarm.restoring()
    beats = ledger_beats(tmp_path / "home")
    assert sorted(beats) == sorted((p, s) for p in PORTFOLIOS for s in range(1, 13))


def test_a_host_dead_at_its_checkpoint_is_restored_with_that_checkpoint_redone(tmp_path, frame):
    """The host dies between a portfolio's beat and its checkpoint: the other host's
    portfolios are checkpointed, the lost one restored from its previous checkpoint and
    the rebase it missed redone at its place (the numbers stay those of the reference)."""
    beats = 14
    expected = reference(tmp_path / "reference", frame, beats)
    executor = LocalExecutor(workers=2)
    states = executor.states
    killed: list[list[str]] = []

    def kill_first(names: Any) -> Any:
        if LOST in names and not killed and threading.current_thread() is threading.main_thread():
            killed.append(list(names))
            os.kill(executor.pids()[shard_of(LOST, 2)], signal.SIGKILL)
            executor._procs[shard_of(LOST, 2)].process.join(5)  # dead before the call
        return states(names)

    got: dict[tuple[str, int], tuple] = {}
    with make_swarm(tmp_path / "home", PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        executor.states = kill_first
        source = Replay(frame, start=HISTORY, stop=HISTORY + beats)
        for tick in source:
            for rep in swarm.beat([tick], cursor=source.cursor):
                if not rep.events or not rep.events[0].startswith(RESTORING):
                    got[(rep.portfolio, rep.seq)] = _numbers(rep)
        for rep in swarm.settle():
            got[(rep.portfolio, rep.seq)] = _numbers(rep)
    assert killed == [list(PORTFOLIOS)]  # at the checkpoint of beat 6, all three due
    assert got == expected
    assert ledger_beats(tmp_path / "home") == ledger_beats(tmp_path / "reference")


def test_a_fresh_host_that_dies_too_is_tried_again(tmp_path, frame):
    """The fresh worker is killed while it is being restored: a second one is started
    (attempt 2) and the numbers are still the uninterrupted run's."""
    beats = 12
    expected = reference(tmp_path / "reference", frame, beats)
    executor = LocalExecutor(workers=2)
    gate, entered = threading.Event(), threading.Event()
    got: dict[tuple[str, int], tuple] = {}
    attempts: set[int] = set()
    with make_swarm(tmp_path / "home", PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        restore = executor.restore

        def slow_restore(blobs: Any) -> None:
            if threading.current_thread() is not threading.main_thread():
                entered.set()
                gate.wait(timeout=120)
            restore(blobs)

        executor.restore = slow_restore
        source = Replay(frame, start=HISTORY, stop=HISTORY + beats)
        for i, tick in enumerate(source):
            if i == 3:
                os.kill(executor.pids()[shard_of(LOST, 2)], signal.SIGKILL)
            if i == 6:
                assert entered.wait(60)
                first = swarm._recoveries[LOST].future
                os.kill(executor.pids()[shard_of(LOST, 2)], signal.SIGKILL)  # the fresh one
                gate.set()
                assert isinstance(first.exception(timeout=60), WorkerFailed)
            for rep in swarm.beat([tick], cursor=source.cursor):
                if not rep.events or not rep.events[0].startswith(RESTORING):
                    got[(rep.portfolio, rep.seq)] = _numbers(rep)
            attempts.update(r.attempt for r in swarm.restoring().values())
        for rep in swarm.settle():
            got[(rep.portfolio, rep.seq)] = _numbers(rep)
    assert attempts >= {1, 2}
    assert got == expected
    assert ledger_beats(tmp_path / "home") == ledger_beats(tmp_path / "reference")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_restore_queue_is_checked(tmp_path, bad):
    with pytest.raises(InvalidParameter, match="restore_queue"):
        make_swarm(tmp_path, PORTFOLIOS, restore_queue=bad)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "3"])
def test_restore_timeout_is_checked(tmp_path, bad):
    with pytest.raises(InvalidParameter, match="restore_timeout"):
        make_swarm(tmp_path, PORTFOLIOS, restore_timeout=bad)


@pytest.mark.parametrize("bad", [0, 1, 2.0, True, "4"])
def test_catch_up_is_checked(tmp_path, bad):
    with pytest.raises(InvalidParameter, match="catch_up"):
        make_swarm(tmp_path, PORTFOLIOS, catch_up=bad)


def test_bad_restore_settings_never_touch_the_home(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    junk = st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.booleans(),
                     st.lists(st.integers(), max_size=2))

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from(["restore_queue", "restore_timeout", "catch_up"]),
           st.one_of(junk, st.integers(max_value=0)))
    def refused(name: str, value: Any) -> None:
        if name == "restore_timeout" and isinstance(value, float) and 0 < value < float("inf"):
            return  # a valid timeout
        with pytest.raises(InvalidParameter, match=name):
            make_swarm(tmp_path / "home", PORTFOLIOS, **{name: value})
        assert not (tmp_path / "home").exists()

    refused()


def test_kill_minus_nine_while_a_host_restores_loses_no_queued_tick(tmp_path, frame):
    """The run is killed while the restore is held with ticks queued: those ticks were never
    recorded, and the resumed run (its source sought to before the first of them) beats them
    once; the other portfolios' ticks recorded meanwhile are not beaten again."""
    days = child.DAYS
    expected = reference(tmp_path / "reference", frame, days)
    home = tmp_path / "killed"
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    err = tmp_path / "child.err"
    with open(err, "wb") as fh:
        proc = subprocess.Popen([sys.executable, child.__file__, str(home), "kill", str(marker)],
                                env=env, stdout=subprocess.DEVNULL, stderr=fh)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, err.read_text()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    queued = int(marker.read_text())
    got = ledger_beats(home)
    lost_seq = max(s for p, s in got if p == LOST)
    assert queued >= 3 and lost_seq < max(s for p, s in got if p != LOST)
    final = subprocess.run([sys.executable, child.__file__, str(home), "none", str(marker)],
                           env=env, capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    ref_ledger = ledger_beats(tmp_path / "reference")
    assert ledger_beats(home) == ref_ledger
    assert sorted(ref_ledger) == sorted(expected)


class _Faulty(LocalExecutor):
    """Portfolio swarms in this process whose next beats call ``fault(inputs)`` instead:
    it beats what its host would have beaten and raises the HostLost a host's death gives."""

    fault: Callable[[Any], Any] | None = None

    def beats(self, inputs: Any) -> Any:
        if self.fault is not None:
            return self.fault(inputs)
        return super().beats(inputs)

    def beat_only(self, inputs: Any, names: set[str]) -> dict[int, Any]:
        keep = [(i, x) for i, x in enumerate(inputs) if x[0] in names]
        outs = LocalExecutor.beats(self, [x for _, x in keep]) if keep else []
        return {i: o for (i, _), o in zip(keep, outs, strict=True)}


def _ticks(frame: pd.DataFrame, k: int) -> list[Tick]:
    when = frame.index[k].to_pydatetime()
    return [Tick(p, when, float(frame[p].iloc[k])) for p in PORTFOLIOS]


def test_catch_up_beats_before_a_refused_tick_are_counted_and_handed_on(tmp_path, frame):
    """A refused tick raises after the queued ticks were beaten first: run() still counts
    them and hands them to on_beat (they are in the ledger)."""
    executor = _Faulty(workers=0)

    def kill_a(inputs: Any) -> Any:
        executor.fault = None
        raise HostLost("a's host died", [LOST], {},
                       executor.beat_only(inputs, set(PORTFOLIOS) - {LOST}))

    def source(swarm: Any) -> Any:
        for k in range(HISTORY, HISTORY + 6):
            if k == HISTORY + 3:
                executor.fault = kill_a
            yield from _ticks(frame, k)
            if k == HISTORY + 4:  # the host is back (its ticks queued), then a duplicate
                # wait for the restore itself (bounded): its entry stays in restoring() until
                # a beat polls it, so waiting for attempt 0 here always ran out the bound
                recovery = swarm._recoveries.get(LOST)
                if recovery is not None:
                    recovery.future.result(timeout=60)
                assert swarm.restoring()[LOST].queued == 2
                yield _ticks(frame, k)[1]
    seen: list[tuple[str, int]] = []
    with make_swarm(tmp_path, PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        summary = swarm.run(source(swarm), on_beat=lambda r: seen.append((r.portfolio, r.seq)))
    assert summary.beats == dict.fromkeys(PORTFOLIOS, 6)
    assert sum(summary.rejected.values()) == 1
    assert sorted(s for p, s in seen if p == LOST) == [1, 2, 3, 4, 5, 6]
    assert len(ledger_beats(tmp_path)) == 18


def test_a_tick_that_always_kills_its_host_is_given_up(tmp_path, frame):
    """The same tick kills every fresh host: after RESTORE_ATTEMPTS restores the swarm gives
    up with WorkerFailed (settle and close end); the other portfolios beat on."""
    executor = _Faulty(workers=0)
    kills: list[int] = []

    def poison(inputs: Any) -> Any:
        if not any(n == LOST and x.seq == 4 for n, x in inputs):
            return LocalExecutor.beats(executor, inputs)
        kills.append(1)
        if len(kills) > 3 * RESTORE_ATTEMPTS:
            raise RuntimeError("the swarm kept sending the tick that kills its host")
        raise HostLost("a's host died", [LOST], {},
                       executor.beat_only(inputs, set(PORTFOLIOS) - {LOST}))

    executor.fault = poison
    with make_swarm(tmp_path, PORTFOLIOS, executor=executor, restore_timeout=30,
                    **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        for k in range(HISTORY, HISTORY + 6):
            swarm.beat(_ticks(frame, k))
        with pytest.raises(WorkerFailed, match="died 4 times in a row"):
            for _ in range(10):
                swarm.settle(timeout=30)
        assert len(kills) == RESTORE_ATTEMPTS + 1
        assert swarm.seq == {LOST: 3, "d": 6, "e": 6}
        with pytest.raises(WorkerFailed):
            swarm.settle(timeout=1)  # still given up, and says so at once


def test_step_refuses_a_star_tick_every_portfolio_recorded_before_the_restart(tmp_path, frame):
    def star(k: int) -> Tick:
        return Tick("*", frame.index[k].to_pydatetime(),
                    assets={p: float(frame[p].iloc[k]) for p in PORTFOLIOS})

    with make_swarm(tmp_path, PORTFOLIOS, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        for k in range(HISTORY, HISTORY + 3):
            swarm.step(star(k))
    with make_swarm(tmp_path, PORTFOLIOS, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        before = sum(swarm.rejected.values())
        with pytest.raises(InvalidTick, match=frame.index[HISTORY + 2].date().isoformat()):
            swarm.step(star(HISTORY + 2))
        assert sum(swarm.rejected.values()) == before + 1
        assert swarm.step(star(HISTORY + 3)).seq == 4


def test_a_shard_that_raises_while_another_host_dies_is_restored_and_beats_once(
        tmp_path, frame):
    """The host of "d" and "e" beats "d", then raises at "e", in the call where "a"'s host
    dies: both hosts are restored from their checkpoint, and every beat runs exactly once
    (the numbers and the ledger are an uninterrupted run's)."""
    beats = 10
    expected = reference(tmp_path / "reference", frame, beats)
    executor = _Faulty(workers=0)

    def two_faults(inputs: Any) -> Any:
        executor.fault = None
        executor.beat_only(inputs, {"d"})  # "d" beat, then "e" raised on the same host
        raise HostLost("a's host died", [LOST], {}, {}, errors=[ValueError("e's beat failed")])

    got: dict[tuple[str, int], tuple] = {}
    with make_swarm(tmp_path / "home", PORTFOLIOS, executor=executor, **SETTINGS) as swarm:
        swarm.start(frame.iloc[:HISTORY])
        source = Replay(frame, start=HISTORY, stop=HISTORY + beats)
        for i, tick in enumerate(source):
            if i == 4:
                executor.fault = two_faults
            for rep in swarm.beat([tick], cursor=source.cursor):
                if not rep.events or not rep.events[0].startswith(RESTORING):
                    assert (rep.portfolio, rep.seq) not in got
                    got[(rep.portfolio, rep.seq)] = _numbers(rep)
        for rep in swarm.settle():
            got[(rep.portfolio, rep.seq)] = _numbers(rep)
        assert swarm.seq == dict.fromkeys(PORTFOLIOS, beats)
    assert got == expected
    assert ledger_beats(tmp_path / "home") == ledger_beats(tmp_path / "reference")
