"""A portfolio's agents spread over hosts (``Swarm(spread=K)``): with every host up the served
consensus is the unspread portfolio's; a lost host leaves the portfolio beating on the other
groups' agents (m of n, degraded, intervals widened), the lost group restored in the
background, replaying what it missed, and the ledger holds everything exactly once."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter, ResumeMismatch
from swarmvar.ledger import Ledger
from swarmvar.swarm import LocalExecutor, Replay, RoleConfig, Swarm
from swarmvar.swarm.executors import place
from swarmvar.swarm.spread import HOST_LOST, spread_groups

from .conftest import CHEAP, TINY_POLICY, make_swarm

HISTORY = 260  # window 250
LOST_GROUP = "sp500#g1"  # BayesianBootstrap (row 1): NIG and StudentT (rows 0, 2) stay up
LOST_AGENT = "BayesianBootstrap"
#: f = 0: the live agents' consensus exists for any m >= 1
KILL_SETTINGS: dict[str, Any] = {"policy": TINY_POLICY, "checkpoint_every": 10}


# --- the setup the spread tests share (test_swarm_spread_*.py import it) ---------------

def started(home: Path, series: pd.Series, **kw: Any) -> Swarm:
    """A swarm of the cheap agents spread over two groups, started on the first HISTORY days
    (``kw`` go to :func:`make_swarm`: the executor, policy, observers ...)."""
    swarm = make_swarm(home, spread=2, **kw)
    swarm.start({"sp500": series.iloc[:HISTORY]})
    return swarm


def kill_group_host(swarm: Swarm, executor: LocalExecutor, group: int = 1) -> None:
    """SIGKILL the worker process hosting group ``group`` of the swarm's sp500 (2 hosts)."""
    shard = place(spread_groups(swarm.configs["sp500"], 2)[group], 2)
    os.kill(executor.pids()[shard], signal.SIGKILL)


class HeldRestore:
    """The executor's restore held, in the background restoring thread, until ``gate`` is
    set: the test decides when a lost group comes back. ``arrived``: that thread is past
    the new host's open; ``waited``: what each held wait returned."""

    def __init__(self, executor: Any, timeout: float = 60.0) -> None:
        self.gate, self.arrived = threading.Event(), threading.Event()
        self.waited: list[bool] = []
        restore = executor.restore

        def held(blobs: Any) -> None:
            if threading.current_thread() is not threading.main_thread():
                self.arrived.set()
                self.waited.append(self.gate.wait(timeout))
            restore(blobs)

        executor.restore = held


def drop(swarm: Swarm, executor: Any, held: HeldRestore) -> None:
    """The run dies as by kill -9: its ledger batch flushed, nothing else closed in order
    (the restoring thread first reached the new host: closing under it races it)."""
    swarm.flush()
    assert held.arrived.wait(60)
    executor.close()
    swarm.ledger.close()
    swarm._db.close()


def _run(home: Path, series: pd.Series, beats: int, **kw: Any) -> dict[int, Any]:
    out: dict[int, Any] = {}
    with make_swarm(home, **kw) as swarm:
        swarm.start({"sp500": series.iloc[:HISTORY]})
        swarm.run(Replay(series, portfolio="sp500", start=HISTORY, stop=HISTORY + beats),
                  on_beat=lambda r: out.__setitem__(r.seq, r))
    return out


def _ledger(home: Path, lost: frozenset[str] = frozenset({LOST_AGENT})
            ) -> tuple[dict[int, dict[str, Any]], dict[int, list], list[tuple]]:
    """Consensus beats by seq (each once, gap-free), their estimate entries, late estimates."""
    beats: dict[int, dict[str, Any]] = {}
    estimates: dict[int, list] = {}
    late: list[tuple] = []
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        for e in ledger.entries():
            d = e.data
            if e.kind == "consensus" and "beat" in d:
                seq = d["beat"]["seq"]
                assert seq not in beats and seq == len(beats) + 1, f"beat {seq} twice/out of order"
                beats[seq] = d
            elif e.kind == "estimate" and d.get("late"):
                late.append((d["group"], d["seq"]))
                assert {x["agent_id"] for x in d["estimates"]} == lost
            elif e.kind == "estimate":
                assert d["seq"] not in estimates
                estimates[d["seq"]] = d["estimates"]
    assert len(late) == len(set(late)), "a group's late estimates recorded twice"
    return beats, estimates, late


def test_spread_equals_unspread_on_the_sp500(tmp_path, sp500):
    """Every host up: the same consensus, forecasts, breaches and signed estimates, beat for
    beat, with the roles on (scouts, builders, guards)."""
    beats = 300
    kw: dict[str, Any] = {"roles": RoleConfig(), "checkpoint_every": 100}
    whole = _run(tmp_path / "whole", sp500, beats, **kw)
    spread = _run(tmp_path / "spread", sp500, beats, spread=2, **kw)
    assert sorted(whole) == sorted(spread) == list(range(1, beats + 1))
    for seq, rep in whole.items():
        other = spread[seq]
        assert other.consensus == rep.consensus, seq
        assert other.forecasts == rep.forecasts and other.breaches == rep.breaches
        assert all(c.available == c.total == len(CHEAP) for c in other.consensus)
    w_beats, w_est, _ = _ledger(tmp_path / "whole")
    s_beats, s_est, late = _ledger(tmp_path / "spread")
    def unsigned(est: dict[int, list]) -> dict[int, list]:  # each home has its own keys
        return {s: [{k: v for k, v in x.items() if k != "signature"} for x in xs]
                for s, xs in est.items()}

    assert unsigned(s_est) == unsigned(w_est) and not late  # what the whole swarm signs
    assert all(x["signature"] for xs in s_est.values() for x in xs)
    assert [b["levels"] for b in s_beats.values()] == [b["levels"] for b in w_beats.values()]
    assert all(b["beat"]["groups"] == ["sp500#g0", "sp500#g1"] for b in s_beats.values())


def spread_gated_run(home: Path, series: pd.Series, executor: Any,
                     kill: Callable[[Any, int], None], beats: int, kill_at: int,
                     hold: int = 4) -> dict[str, Any]:
    """Beat ``beats`` ticks of a portfolio spread over 2 hosts; kill the host of group 1
    before tick ``kill_at`` and hold its restore until ``hold`` beats were served without it."""
    got: dict[int, Any] = {}
    restoring: list[Any] = []
    with started(home, series, executor=executor, **KILL_SETTINGS) as swarm:
        shard = place(spread_groups(swarm.configs["sp500"], 2)[1], 2)
        held = HeldRestore(executor, timeout=120)
        source = Replay(series, portfolio="sp500", start=HISTORY, stop=HISTORY + beats)
        degraded = 0
        for i, tick in enumerate(source):
            if i == kill_at:
                kill(executor, shard)
            for rep in swarm.beat([tick], cursor=source.cursor):
                assert rep.seq not in got
                got[rep.seq] = rep
                if rep.consensus and rep.consensus[0].degraded:
                    degraded += 1
                    restoring.append(swarm.restoring())
            if not held.gate.is_set() and degraded >= hold:
                held.gate.set()  # only now may the restore go on: the portfolio served
        swarm.settle()
        assert not swarm.restoring()
        last = swarm.latest("sp500")
    return {"got": got, "waited": held.waited, "restoring": restoring, "last": last}


def check_spread_gated(home: Path, got: dict[str, Any], reference: dict[int, Any], beats: int,
                       kill_at: int, hold: int = 4) -> None:
    reps = got["got"]
    assert got["waited"] == [True] and sorted(reps) == list(range(1, beats + 1))
    down = [s for s, r in reps.items() if r.consensus[0].available < r.consensus[0].total]
    assert len(down) >= hold and down == list(range(kill_at + 1, kill_at + 1 + len(down)))
    for seq, rep in reps.items():
        ref = reference[seq]
        if seq <= kill_at:  # before the loss: the whole swarm's numbers
            assert rep.consensus == ref.consensus
        elif seq in down:  # m = 2 of n = 3, fresh beats from the live agents
            assert LOST_AGENT not in rep.forecasts and rep.rejected[LOST_AGENT] == HOST_LOST
            for c, full in zip(rep.consensus, ref.consensus, strict=True):
                assert (c.available, c.total, c.degraded) == (2, 3, True)
                assert c.var_interval[1] - c.var_interval[0] >= (
                    full.var_interval[1] - full.var_interval[0])
                assert c.es_interval[1] - c.es_interval[0] >= (
                    full.es_interval[1] - full.es_interval[0])
            assert {a: f for a, f in rep.forecasts.items()} == {
                a: f for a, f in ref.forecasts.items() if a != LOST_AGENT}
        else:  # restored, caught up: n of n; the lost agent replayed the ticks it missed,
            # so its forecasts are the uninterrupted run's (the weights remember the outage)
            assert all((c.available, c.degraded) == (3, False) for c in rep.consensus)
            assert rep.forecasts == ref.forecasts
    for r in got["restoring"]:
        assert set(r) == {LOST_GROUP}
    beats_, estimates, late = _ledger(home)
    assert sorted(beats_) == list(range(1, beats + 1))
    assert sorted(late) == [(LOST_GROUP, s) for s in down]  # its missed estimates, once each
    for seq, b in beats_.items():
        want = ["sp500#g0"] if seq in down else ["sp500#g0", "sp500#g1"]
        assert b["beat"]["groups"] == want
        assert all(lv["available"] == (2 if seq in down else 3) for lv in b["levels"])
        agents = {x["agent_id"] for x in estimates[seq]}
        assert (LOST_AGENT in agents) == (seq not in down)


def _kill_worker(executor: LocalExecutor, shard: int) -> None:  # spread_gated_run's kill
    os.kill(executor.pids()[shard], signal.SIGKILL)


def test_local_host_of_a_group_killed_the_portfolio_serves_m_of_n(tmp_path, sp500):
    beats, kill_at = 24, 6
    reference = _run(tmp_path / "reference", sp500, beats + 4, **KILL_SETTINGS)
    home = tmp_path / "killed"
    got = spread_gated_run(home, sp500, LocalExecutor(workers=2), _kill_worker, beats, kill_at)
    check_spread_gated(home, got, reference, beats, kill_at)
    # a resume replays the ledger (degraded beats composed as recorded) to the same last beat
    with started(home, sp500, **KILL_SETTINGS) as swarm:
        assert swarm.latest("sp500").consensus == got["last"].consensus
        summary = swarm.run(Replay(sp500, portfolio="sp500", start=HISTORY,
                                   stop=HISTORY + beats + 4))
        assert summary.beats == {"sp500": 4}
        assert all(c.available == 3 for c in swarm.latest("sp500").consensus)
        assert swarm.latest("sp500").forecasts == reference[beats + 4].forecasts
    assert sorted(_ledger(home)[0]) == list(range(1, beats + 5))


def test_a_run_killed_while_a_group_restores_resumes_exactly_once(tmp_path, sp500):
    """The swarm is dropped (no close: as a kill -9) while a group's host is held restoring;
    the resume replays the group through the ticks it missed, records its late estimates
    once, and beats on with every agent."""
    beats, kill_at = 14, 4
    home = tmp_path / "home"
    executor = LocalExecutor(workers=2)
    swarm = started(home, sp500, executor=executor, **KILL_SETTINGS)
    held = HeldRestore(executor)
    source = Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + beats)
    for i, tick in enumerate(source):
        if i == kill_at:
            kill_group_host(swarm, executor)
        swarm.beat([tick], cursor=source.cursor)
    assert swarm.restoring()[LOST_GROUP].queued == beats - kill_at
    drop(swarm, executor, held)
    with started(home, sp500, **KILL_SETTINGS) as again:
        again.run(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + beats + 3))
        assert all(c.available == 3 for c in again.latest("sp500").consensus)
    held.gate.set()  # the dead run's restoring thread ends (on a closed executor)
    beats_, _, late = _ledger(home)
    assert sorted(beats_) == list(range(1, beats + 4))
    assert sorted(late) == [(LOST_GROUP, s) for s in range(kill_at + 1, beats + 1)]


def test_spread_settings_are_checked(tmp_path, sp500):
    with pytest.raises(InvalidParameter, match="spread must be between 2"):
        make_swarm(tmp_path / "a", spread=4)
    with pytest.raises(InvalidParameter, match="refit_lag 0"):
        make_swarm(tmp_path / "b", spread=2, roles=RoleConfig.quiet(refit_lag=2))
    started(tmp_path / "c", sp500).close()
    for other in (1, 3):  # the home was spread over two groups
        with pytest.raises(ResumeMismatch), make_swarm(tmp_path / "c", spread=other) as swarm:
            swarm.start({"sp500": sp500.iloc[:HISTORY]})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.integers(-3, 8), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3),
                 st.none()))
def test_spread_values_are_accepted_or_refused_clearly(value):
    with tempfile.TemporaryDirectory() as home:
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(CHEAP)
        if ok:
            make_swarm(Path(home), spread=value).close()
        else:
            with pytest.raises(InvalidParameter, match="spread"):
                make_swarm(Path(home), spread=value)


def test_a_tampered_group_estimate_is_refused_by_the_runtime(tmp_path, sp500):
    """The groups' estimates cross a process boundary: the runtime verifies every signature,
    so an estimate changed on its way (any field a forger may touch) is refused, named in the
    consensus's ``rejected``, and the beat goes on with the others."""
    import dataclasses as dc

    executor = LocalExecutor()
    with started(tmp_path, sp500, executor=executor, **KILL_SETTINGS) as swarm:
        beats = executor.beats
        change: dict[str, Any] = {}

        def forging(inputs: Any) -> Any:
            out = beats(inputs)
            for i, (name, _) in enumerate(inputs):
                if name == LOST_GROUP and change:
                    o = out[i]
                    forged = tuple(dc.replace(e, **change) for e in o.estimates)
                    out[i] = dc.replace(o, estimates=forged, estimate_records=())
            return out

        executor.beats = forging  # type: ignore[method-assign]
        source = iter(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 400))

        @settings(max_examples=12, deadline=None)
        @given(st.sampled_from(["var", "es", "seq", "as_of", "portfolio"]),
               st.floats(0.001, 0.5))
        def forged_is_refused(field: str, x: float) -> None:
            tick = next(source)
            value: Any = {"var": x, "es": x + 0.01, "seq": 10**6, "portfolio": "other",
                          "as_of": tick.as_of - pd.Timedelta(days=1 + int(100 * x))}[field]
            change.clear()
            change[field] = value
            rep = swarm.step(tick)
            for c in rep.consensus:
                assert LOST_AGENT in c.rejected and LOST_AGENT not in c.used
                assert c.available == 2

        forged_is_refused()


def test_too_few_live_agents_for_the_policy_beat_without_a_consensus(tmp_path, sp500):
    """The swarm's trimmed mean (f = 1) needs three agents: with the host of NIG and StudentT
    lost, the bootstrap alone is not enough; the beats are recorded without a consensus,
    saying why, and the portfolio has all three again after the restore."""
    executor = LocalExecutor(workers=2)
    with started(tmp_path, sp500, executor=executor, checkpoint_every=10) as swarm:
        source = iter(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 12))
        swarm.step(next(source))
        kill_group_host(swarm, executor, group=0)
        rep = swarm.step(next(source))
        assert rep.consensus == () and "consensus" in rep.rejected
        assert rep.rejected["NormalInverseGamma"] == rep.rejected["StudentT"] == HOST_LOST
        assert list(rep.forecasts) == [LOST_AGENT]
        swarm.settle()
        reports = [swarm.step(t) for t in source]
        assert all(c.available == 3 for c in reports[-1].consensus)
    beats, _, late = _ledger(tmp_path, frozenset({"NormalInverseGamma", "StudentT"}))
    assert late == [("sp500#g0", 2)]
    assert beats[2]["levels"] == [] and beats[2]["beat"]["groups"] == ["sp500#g1"]
    assert sorted(beats) == list(range(1, 13))
