"""A spread portfolio's runtime takes from each group only what that group may say: its own
agents' forecasts, scores, errors and role records, and their estimates signed for the tick
being beaten. A compromised group host (simulated by rewriting what the real executor
returns for it) can neither speak for another group's agents nor replay signed estimates of
other beats; what it sends beyond its own is refused, counted and recorded, and the ledger
holds only estimates that verify. Also: the interval floor's baseline is a full consensus,
the Python API enforces spread <= hosts, and a worker process is told its parent's pid."""

from __future__ import annotations

import dataclasses as dc
import multiprocessing as mp
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.swarm import LocalExecutor, Replay
from swarmvar.swarm.roles import RoleRecord
from swarmvar.swarm.spread import GROUP_REFUSED
from swarmvar.types import BeatReport, Decision

from .conftest import make_swarm
from .test_swarm_spread import HISTORY, kill_group_host, started
from .test_swarm_spread import KILL_SETTINGS as KW

BEATS = 8
G0, G1 = "sp500#g0", "sp500#g1"  # g0: NIG and StudentT (rows 0, 2); g1: the bootstrap (row 1)
NIG, BOOT = "NormalInverseGamma", "BayesianBootstrap"

#: (g0's outcome, g1's outcome, memory across beats) -> what "g1's host" returns instead
Tamper = Callable[[Any, Any, dict[str, Any]], Any]


def _run(home: Path, sp500: Any, tamper: Tamper | None = None, observers: tuple = ()
         ) -> tuple[list[BeatReport], dict[str, float] | None]:
    executor = LocalExecutor()
    reports = []
    with started(home, sp500, executor=executor, observers=observers, **KW) as swarm:
        if tamper is not None:
            beats = executor.beats
            memory: dict[str, Any] = {}

            def compromised(inputs: Any) -> Any:
                out = beats(inputs)
                at = {name: i for i, (name, _) in enumerate(inputs)}
                if G0 in at and G1 in at:
                    out[at[G1]] = tamper(out[at[G0]], out[at[G1]], memory)
                return out

            executor.beats = compromised  # type: ignore[method-assign]
        for tick in Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + BEATS):
            reports.append(swarm.step(tick))
        weights = swarm._shells["sp500"].track.weights()
    return reports, weights


def _ledger(home: Path) -> tuple[dict[int, list[dict]], dict[int, dict], list[dict]]:
    """Estimate entries and consensus records by seq; every flow's result."""
    estimates: dict[int, list[dict]] = {}
    beats: dict[int, dict] = {}
    flows: list[dict] = []
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        for e in ledger.entries():
            if e.kind == "estimate" and "seq" in e.data:
                estimates[e.data["seq"]] = e.data["estimates"]
            elif e.kind == "consensus" and "beat" in e.data:
                beats[e.data["beat"]["seq"]] = e.data
            elif e.kind == "flow":
                flows.append({"flow": e.data["flow"], **e.data["result"]})
    return estimates, beats, flows


@pytest.fixture(scope="module")
def honest(tmp_path_factory: Any, sp500: Any) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("honest")
    reports, weights = _run(home, sp500)
    return {"reports": reports, "weights": weights, "ledger": _ledger(home)}


def _refused_each_beat(home: Path, reports: list[BeatReport], from_seq: int = 1) -> None:
    """Every beat from ``from_seq`` recorded the refusal, naming g1."""
    words = f"{GROUP_REFUSED[0]}: {GROUP_REFUSED[1]} (all)"
    for rep in reports:
        assert (words in rep.events) == (rep.seq >= from_seq), rep.seq
    refused = [f for f in _ledger(home)[2] if (f["flow"], f.get("action")) == GROUP_REFUSED]
    assert [f["seq"] for f in refused] == list(range(from_seq, BEATS + 1))
    assert all(f["detail"]["group"] == G1 and f["detail"]["refused"] for f in refused)


def _same_as_honest(reports: list[BeatReport], weights: Any, honest: dict[str, Any]) -> None:
    for rep, ref in zip(reports, honest["reports"], strict=True):
        assert rep.consensus == ref.consensus, rep.seq
        assert rep.forecasts == ref.forecasts and rep.log_scores == ref.log_scores
        assert rep.breaches == ref.breaches
    assert weights == honest["weights"]


def test_a_group_cannot_send_another_groups_forecasts(tmp_path, sp500, honest):
    """g1 sends NIG's forecast (g0's agent) with VaR and ES five times larger, and a log
    score for it: before, the track record scored the fake (NIG's weight fell by orders of
    magnitude within a few beats); now nothing of it is taken."""

    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        f = o0.report.forecasts[NIG]
        fake = dc.replace(f, levels=tuple(dc.replace(m, var=m.var * 5, es=m.es * 5)
                                          for m in f.levels))
        report = dc.replace(o1.report, forecasts={**o1.report.forecasts, NIG: fake},
                            log_scores={**o1.report.log_scores, NIG: -50.0},
                            rejected={**o1.report.rejected, NIG: "update failed: forged"})
        return dc.replace(o1, report=report)

    reports, weights = _run(tmp_path, sp500, tamper)
    _same_as_honest(reports, weights, honest)
    assert all(NIG not in r.rejected for r in reports)
    _refused_each_beat(tmp_path, reports)


def test_a_group_cannot_replay_another_groups_signed_estimates(tmp_path, sp500, honest):
    """g1 sends NIG's validly signed estimates of the beat before (and a copy of this beat's):
    before, a later group overwrote the honest estimate, which was refused as replayed, and an
    old never-admitted one could be admitted next beat; now the honest one stands."""

    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        now = tuple(e for e in o0.estimates if e.agent_id == NIG)
        extra = memory.get("before", ()) + now
        memory["before"] = now
        return dc.replace(o1, estimates=o1.estimates + extra, estimate_records=())

    reports, weights = _run(tmp_path, sp500, tamper)
    _same_as_honest(reports, weights, honest)
    for rep in reports:
        assert all(NIG in c.used and NIG not in c.rejected for c in rep.consensus)
    _refused_each_beat(tmp_path, reports)
    estimates, _, _ = _ledger(tmp_path)
    assert estimates == honest["ledger"][0] or all(  # (each home signs with its own keys)
        [(x["agent_id"], x["seq"], x["var"]) for x in estimates[s]]
        == [(x["agent_id"], x["seq"], x["var"]) for x in honest["ledger"][0][s]]
        for s in estimates)


def test_a_group_cannot_pass_its_agents_stale_signed_estimates(tmp_path, sp500):
    """g1 holds its bootstrap's estimates back one beat and sends them the next (validly
    signed, never admitted, seq higher than any admitted): before, each was admitted a day
    late; now each is refused as not this beat's, the bootstrap is out of the level and named
    in its ``rejected``, and the ledger holds none of them."""

    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        held = memory.get("held", ())
        memory["held"] = o1.estimates
        return dc.replace(o1, estimates=held, estimate_records=())

    reports, _ = _run(tmp_path, sp500, tamper)
    for rep in reports:
        for c in rep.consensus:
            assert BOOT not in c.used and c.available == 2, rep.seq
            if rep.seq > 1:
                assert c.rejected[BOOT].startswith("replayed: seq"), c.rejected
        assert BOOT not in rep.forecasts  # its forecast has no admitted estimate: not scored
    _refused_each_beat(tmp_path, reports)
    estimates, _, _ = _ledger(tmp_path)
    assert all(x["agent_id"] != BOOT for xs in estimates.values() for x in xs)


def test_refused_estimates_are_not_ledgered_as_the_agents(tmp_path, sp500):
    """g1's estimates changed on the way (signature broken): the vote refused them before;
    now the ledger's estimate entries do not hold them either, only the refusal does."""

    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        forged = tuple(dc.replace(e, var=0.5, es=0.6) for e in o1.estimates)
        return dc.replace(o1, estimates=forged, estimate_records=())

    reports, _ = _run(tmp_path, sp500, tamper)
    assert all(c.rejected[BOOT].startswith("forged") for r in reports for c in r.consensus)
    estimates, beats, _ = _ledger(tmp_path)
    assert sorted(estimates) == list(range(1, BEATS + 1))
    assert all(x["agent_id"] != BOOT and x["var"] != 0.5 for xs in estimates.values()
               for x in xs)
    assert all(BOOT in lv["rejected"] for b in beats.values() for lv in b["levels"])
    _refused_each_beat(tmp_path, reports)


def test_a_forecast_unlike_its_signed_estimate_is_not_scored(tmp_path, sp500):
    """g1's bootstrap forecast (unsigned) says a VaR five times its signed estimate's: the
    track record and builders score only forecasts equal to what the agent signed."""

    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        f = o1.report.forecasts[BOOT]
        fake = dc.replace(f, levels=tuple(dc.replace(m, var=m.var * 5) for m in f.levels))
        return dc.replace(o1, report=dc.replace(o1.report, forecasts={BOOT: fake}))

    reports, _ = _run(tmp_path, sp500, tamper)
    for rep in reports:
        assert BOOT not in rep.forecasts
        assert all(BOOT in c.used and c.available == 3 for c in rep.consensus)
    _refused_each_beat(tmp_path, reports)


def test_a_group_cannot_record_roles_for_another_groups_agents(tmp_path, sp500, honest):
    def tamper(o0: Any, o1: Any, memory: dict[str, Any]) -> Any:
        fake = RoleRecord("guard", "refit-requested", (NIG,), {"why": "forged"})
        return dc.replace(o1, roles=(*o1.roles, fake))

    reports, weights = _run(tmp_path, sp500, tamper)
    _same_as_honest(reports, weights, honest)
    assert not [f for f in _ledger(tmp_path)[2] if f.get("detail", {}).get("why") == "forged"]
    _refused_each_beat(tmp_path, reports)


class _Quarantine:
    """An observer holding StudentT out of the consensus at beats 4 and 5 (all hosts up)."""

    def observe(self, report: BeatReport) -> list[Decision]:
        return []

    def excluded(self, portfolio: str) -> frozenset[str]:
        return self.held

    def weight_factors(self, portfolio: str) -> dict[str, float]:
        return {}

    held: frozenset[str] = frozenset()


def test_the_interval_floor_starts_from_a_full_consensus_only(tmp_path, sp500):
    """A beat with every host up but an agent quarantined has m < n: it is not the floor's
    baseline (before, any beat without a lost host was)."""
    guard = _Quarantine()
    executor = LocalExecutor()
    with started(tmp_path, sp500, executor=executor, observers=(guard,), **KW) as swarm:
        shell = swarm._shells["sp500"]
        assert all(c.available == c.total == 3 for c in shell.full)
        ticks = list(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 5))
        for i, tick in enumerate(ticks):
            guard.held = frozenset({"StudentT"}) if i >= 3 else frozenset()
            rep = swarm.step(tick)
            if i == 2:
                full = rep.consensus
        assert all(c.available == 2 for c in rep.consensus)
        assert shell.full == list(full) and all(c.available == 3 for c in shell.full)


def test_a_begin_from_part_of_the_groups_is_no_floor_baseline(tmp_path, sp500):
    """The runtime's part of a spread portfolio begun from g0's start forecasts only (g1's
    host lost before the first checkpoint, the runtime's ``_forecasts_in`` of the blobs that
    came back): its first consensus is 2 of 3, so the floor stays empty and a degraded
    level is only marked, not floored at that partial beat; a beat of every agent is."""
    from datetime import timedelta

    from swarmvar.swarm.runtime import _forecasts_in
    from swarmvar.swarm.spread import SpreadConsensus

    executor = LocalExecutor()
    with started(tmp_path, sp500, executor=executor, **KW) as swarm:
        whole = swarm._shells["sp500"]
        assert whole.full and all(c.available == 3 for c in whole.full)  # both groups began
        blob = executor.states([G0])[G0]
        history = sp500.iloc[:HISTORY].to_numpy()
        part = SpreadConsensus(whole.config)
        part.begin(history, whole.last_as_of, _forecasts_in([(blob, ("NormalInverseGamma",
                                                                     "StudentT"))]))
        assert sorted(part.forecasts) == ["NormalInverseGamma", "StudentT"]
        assert part.consensus and all(c.available == 2 < c.total for c in part.consensus)
        assert part.full == []  # not the partial start
        later = whole.last_as_of + timedelta(days=3)
        for c in part.consensus:
            marked = part._floored(c, later)
            assert marked.degraded and "floored" not in marked.method
            assert (marked.var_interval, marked.es_interval) == (c.var_interval,
                                                                  c.es_interval)
        narrow = [dc.replace(c, var_interval=(c.var, c.var), es_interval=(c.es, c.es))
                  for c in part.consensus]
        whole_floored = [whole._floored(c, later) for c in narrow]  # the full start: floored
        assert all("floored at the full swarm's interval" in c.method for c in whole_floored)


def test_a_group_lost_before_the_starts_checkpoint_is_fitted_again(tmp_path, sp500):
    """g1's host dies right after the start's fit, before its first checkpoint: there is
    nothing stored to restore it from, so the start fits it again on a fresh host before
    it returns (it used to raise UnknownState). The checkpoint at seq 0 is complete, the
    first consensus is the full swarm's, and the beats equal an unbroken run's."""
    executor = LocalExecutor(workers=2)
    start = executor.start
    swarm = make_swarm(tmp_path / "lost", executor=executor, spread=2, **KW)
    killed: list[bool] = []

    def start_then_lose_g1(requests: Any) -> None:  # the groups fit, then g1's host dies
        start(requests)
        if not killed:
            killed.append(True)
            kill_group_host(swarm, executor)

    executor.start = start_then_lose_g1  # type: ignore[method-assign]
    ticks = list(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 4))
    with swarm:
        swarm.start({"sp500": sp500.iloc[:HISTORY]})
        assert killed and swarm.restoring() == {}
        shell = swarm._shells["sp500"]
        assert shell.full and all(c.available == 3 for c in shell.consensus)
        got = [swarm.step(t) for t in ticks]
    with make_swarm(tmp_path / "whole", executor=LocalExecutor(workers=2), spread=2,
                    **KW) as whole:
        whole.start({"sp500": sp500.iloc[:HISTORY]})
        want = [whole.step(t) for t in ticks]
    for g, w in zip(got, want, strict=True):
        assert [(c.var, c.es, c.var_interval, c.available) for c in g.consensus] == [
            (c.var, c.es, c.var_interval, c.available) for c in w.consensus]
    with make_swarm(tmp_path / "lost", executor=LocalExecutor(workers=2), spread=2,
                    **KW) as again:  # the seq-0 checkpoint holds every group: it resumes
        again.start({"sp500": sp500.iloc[:HISTORY]})
        assert again.seq["sp500"] == len(ticks)


def test_an_unspread_portfolio_lost_before_the_starts_checkpoint_is_fitted_again(
        tmp_path, sp500):
    """The same without spread: the host of the whole portfolio dies after the start's fit."""
    from swarmvar.swarm.executors import place

    executor = LocalExecutor(workers=2)
    start = executor.start
    swarm = make_swarm(tmp_path, executor=executor, **KW)
    killed: list[bool] = []

    def start_then_lose(requests: Any) -> None:
        start(requests)
        if not killed:
            killed.append(True)
            os.kill(executor.pids()[place(swarm.configs["sp500"], 2)], signal.SIGKILL)

    executor.start = start_then_lose  # type: ignore[method-assign]
    ticks = list(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 2))
    with swarm:
        swarm.start({"sp500": sp500.iloc[:HISTORY]})
        assert killed and swarm.restoring() == {}
        assert all(not c.degraded for t in ticks for c in swarm.step(t).consensus)
    with make_swarm(tmp_path, executor=LocalExecutor(workers=2), **KW) as again:
        again.start({"sp500": sp500.iloc[:HISTORY]})
        assert again.seq["sp500"] == len(ticks)


def test_the_python_api_refuses_more_groups_than_hosts(tmp_path):
    with pytest.raises(InvalidParameter, match=r"spread 3 .* executor has 2"):
        make_swarm(tmp_path / "a", spread=3, executor=LocalExecutor(workers=2))
    assert not (tmp_path / "a").exists()  # refused before anything was written
    make_swarm(tmp_path / "b", spread=2, executor=LocalExecutor(workers=2)).close()
    make_swarm(tmp_path / "c", spread=3, executor=LocalExecutor()).close()  # in this process


def test_a_worker_knows_its_parent_from_the_parent():
    """The worker stops when its parent is not the pid the parent gave it (before, it read
    its own getppid at start: a parent killed while the worker was still starting left an
    orphan)."""
    import os

    from swarmvar.swarm.executors import _serve

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    live = ctx.Process(target=_serve, args=(there, os.getpid()), daemon=True)
    live.start()
    here.send(("stop", None))
    assert here.poll(60) and here.recv() == ("ok", None)
    live.join(30)
    assert live.exitcode == 0
    here, there = ctx.Pipe()
    orphan = ctx.Process(target=_serve, args=(there, -1), daemon=True)  # not its parent
    orphan.start()
    orphan.join(60)
    assert orphan.exitcode == 0  # it returned by itself, without being told to stop



def test_a_forager_ends_when_its_run_is_gone():
    """A forager (a process pool worker) watches the pid its parent gave it: given a pid
    that is not its parent, it ends at once (not after its 60 s of work); given its real
    parent, it lives on and works."""
    import os
    import subprocess
    import sys

    code = ("import sys, time; from swarmvar.swarm.executors import _watch_parent; "
            "_watch_parent(int(sys.argv[1]), 0.05); time.sleep(float(sys.argv[2])); "
            "print('alive')")
    orphan = subprocess.run([sys.executable, "-c", code, "-1", "60"], capture_output=True,
                            text=True, timeout=45)
    assert orphan.returncode == 0 and "alive" not in orphan.stdout
    child = subprocess.run([sys.executable, "-c", code, str(os.getpid()), "0.5"],
                           capture_output=True, text=True, timeout=45)
    assert child.returncode == 0 and "alive" in child.stdout

def test_vet_admits_an_estimate_only_as_signed_for_its_group_and_tick(tmp_path, sp500):
    """Property: whatever a group changes in a real signed estimate of its beat — the agent,
    the level, the portfolio, the horizon, the date, the seq, a number — the runtime's vet
    admits it only when nothing changed; a changed one is refused and said, never admitted
    under another name."""
    from datetime import timedelta

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    executor = LocalExecutor()
    kept: dict[str, Any] = {}
    with started(tmp_path, sp500, executor=executor, **KW) as swarm:
        beats = executor.beats

        def keep(inputs: Any) -> Any:
            out = beats(inputs)
            kept.update({name: (tick, o) for (name, tick), o in zip(inputs, out, strict=True)})
            return out

        executor.beats = keep  # type: ignore[method-assign]
        swarm.step(next(iter(Replay(sp500, portfolio="sp500", start=HISTORY,
                                    stop=HISTORY + 1))))
        shell = swarm._shells["sp500"]
        tick, outcome = kept[G1]
        honest = shell.vet(G1, tick.seq, tick.as_of, outcome, late=True)
        assert [e.agent_id for e in honest.estimates] == [BOOT, BOOT] and not honest.notes
        again = shell.vet(G1, tick.seq, tick.as_of, outcome)  # admitted by the beat already
        said = [n for n in again.notes if n.startswith("the estimate")]
        assert again.estimates == () and len(said) == 2 and all("replayed" in n for n in said)
        changes = st.one_of(
            st.just({}),
            st.sampled_from([NIG, "StudentT", "nobody"]).map(lambda a: {"agent_id": a}),
            st.sampled_from([0.95, 0.975, 0.99]).map(lambda a: {"alpha": a}),
            st.just({"portfolio": G1}), st.integers(2, 5).map(lambda h: {"horizon": h}),
            st.integers(-3, 3).filter(bool).map(lambda d: {"as_of": tick.as_of
                                                           + timedelta(days=d)}),
            st.integers(-5, 5).filter(bool).map(lambda d: {"seq": tick.seq * 2 + d}),
            st.floats(1e-4, 0.5).map(lambda v: {"var": v, "es": v * 1.2}))

        @settings(max_examples=60, deadline=None, suppress_health_check=[
            HealthCheck.function_scoped_fixture])
        @given(changes, st.integers(0, 1))
        def vetted(change: dict[str, Any], which: int) -> None:
            e = outcome.estimates[which]
            changed = dc.replace(e, **change)
            got = shell.vet(G1, tick.seq, tick.as_of,
                            dc.replace(outcome, estimates=(changed,), estimate_records=()),
                            late=True)  # (a ring without replay state: the checks alone)
            same = changed == e
            assert (got.estimates == (e,)) == same
            assert bool(got.notes) != same
            if not same:
                assert got.estimates == () and G1 in got.notes[0]

        vetted()


def test_a_groups_estimate_is_verified_once(tmp_path, sp500, monkeypatch):
    """The vet verifies each admitted estimate (it came from another host); the vote
    admits those very bytes without a second Ed25519 verification (OwnSignatures.vouch),
    and neither the vote nor the ledger record writes its signing text again."""
    import traceback

    from swarmvar.consensus import signed_bytes

    calls: list[bytes] = []
    written: list[str] = []
    direct = signed_bytes._payload_text

    def payload_text(e: Any, as_of: str | None = None) -> str | None:
        # not the groups' own signing (in this process here): the rest
        if not any(f.name == "sign_measures" for f in traceback.extract_stack()):
            written.append(e.agent_id)
        return direct(e, as_of)

    monkeypatch.setattr(signed_bytes, "_payload_text", payload_text)

    class Counting:  # the portfolio ring's public key, counting its verifications
        def __init__(self, key: Any) -> None:
            self.key = key

        def verify(self, signature: bytes, message: bytes) -> None:
            calls.append(signature)
            self.key.verify(signature, message)

    with started(tmp_path, sp500, executor=LocalExecutor(), **KW) as swarm:
        ring = swarm._shells["sp500"].ring
        ring._keys = {a: Counting(k) for a, k in ring._keys.items()}  # white box
        ticks = Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + 3)
        written.clear()
        for k, tick in enumerate(ticks, start=1):
            rep = swarm.step(tick)
            assert all(c.available == 3 for c in rep.consensus)
            # three agents x two levels, each signature verified once (twice before)
            assert len(calls) == 6 * k and len(set(calls)) == 6 * k
            # and each signing text written once here, by the vet (three times before)
            assert len(written) == 6 * k, written


def test_a_groups_seconds_that_are_not_times_are_left_out(tmp_path, sp500):
    """Review: a group's ``seconds`` passed any float, so +inf from a bad host reached the
    arbiter's PID, which refuses a non-finite beat time and stopped the run."""
    from swarmvar.arbiter import Arbiter
    from swarmvar.swarm.runtime import beat_seconds

    assert beat_seconds({"a": 0.5, "b": float("inf"), "c": float("nan"), "d": -1.0,
                         "e": True, "f": "x", "g": 2}) == 2.5

    def bad_clock(g0: Any, g1: Any, memory: dict[str, Any]) -> Any:
        return dc.replace(g1, seconds={"agents": float("inf"), "combine": float("nan")})

    reports, _ = _run(tmp_path, sp500, bad_clock, observers=(Arbiter(),))
    assert len(reports) == BEATS and all(r.consensus for r in reports)
