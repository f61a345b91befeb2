"""A group's catch-up after its host was lost: what it did for the ticks its portfolio beat
without it is ledgered late, once — its estimates that verify (not the ones it forged), its
agents' errors and its role records — both when it catches up live and when a resume replays
it; and a run dropped (as by kill -9) during or after the outage resumes to the same
consensus, beat for beat, as an uninterrupted run with the same outage."""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmvar.ledger import Ledger
from swarmvar.swarm import LocalExecutor, Replay
from swarmvar.swarm.roles import RoleRecord
from swarmvar.types import Action, BeatReport, Decision

from .test_swarm_spread import HISTORY, HeldRestore, drop, kill_group_host, started
from .test_swarm_spread import KILL_SETTINGS as KW

G1 = "sp500#g1"  # the bootstrap's group (row 1)
NIG, BOOT = "NormalInverseGamma", "BayesianBootstrap"
KILL_AT = 2  # g1's host is killed before tick 2 (seq 3): its first missed tick


class _AskRefit:
    """An observer asking for a refit of the bootstrap after beat ``seq`` (the next tick, its
    group's host lost, carries the request to its catch-up: a ``refit-done`` role record)."""

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def observe(self, report: BeatReport) -> list[Decision]:
        if report.seq != self.seq:
            return []
        return [Decision(Action.APPLY_OPTIMIZE, report.portfolio, report.seq, (BOOT,),
                         reason="asked by the test")]

    def excluded(self, portfolio: str) -> frozenset[str]:
        return frozenset()

    def weight_factors(self, portfolio: str) -> dict[str, float]:
        return {}


def _outage(home: Path, sp500: Any, *, hold: int, end: int, drop_at: int | None = None,
            tamper: Callable[[Any], Any] | None = None) -> None:
    """Beat ``end`` ticks; g1's host killed before tick KILL_AT, its restore held until
    ``hold`` beats went without it (then settled). With ``drop_at`` the run is dropped
    after that many ticks (no close, no checkpoint since seq 0: as a kill -9) and resumed
    to ``end``. ``tamper`` rewrites g1's catch-up outcomes (a compromised host)."""
    executor = LocalExecutor(workers=2)
    swarm = started(home, sp500, executor=executor, observers=(_AskRefit(KILL_AT + 1),), **KW)
    held = HeldRestore(executor)
    if tamper is not None:
        beats = executor.beats

        def compromised(inputs: Any) -> Any:
            out = beats(inputs)
            if [name for name, _ in inputs] == [G1]:  # a catch-up beat of g1 alone
                out[0] = tamper(out[0])
            return out

        executor.beats = compromised  # type: ignore[method-assign]
    source = Replay(sp500, portfolio="sp500", start=HISTORY,
                    stop=HISTORY + (end if drop_at is None else drop_at))
    for i, tick in enumerate(source):
        if i == KILL_AT:
            kill_group_host(swarm, executor)
        swarm.beat([tick], cursor=source.cursor)
        if i == KILL_AT + hold - 1 and (drop_at is None or i < drop_at - 1):
            held.gate.set()
            swarm.settle()
    if drop_at is None:
        swarm.close()
        return
    drop(swarm, executor, held)
    try:
        with started(home, sp500, observers=(_AskRefit(KILL_AT + 1),), **KW) as again:
            again.run(Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + end))
    finally:
        held.gate.set()  # a restore the dead run left waiting ends (on its closed executor)


def _ledger(home: Path) -> dict[str, Any]:
    levels: dict[int, list] = {}
    late: dict[tuple[str, int], dict] = {}
    flows: list[tuple] = []
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        for e in ledger.entries():
            d = e.data
            if e.kind == "consensus" and "beat" in d:
                assert d["beat"]["seq"] not in levels, "a beat twice"
                levels[d["beat"]["seq"]] = d["levels"]
            elif e.kind == "estimate" and d.get("late"):
                assert (d["group"], d["seq"]) not in late, "a group's late entry twice"
                late[d["group"], d["seq"]] = d
            elif e.kind == "flow" and e.data["result"].get("late"):
                r = e.data["result"]
                flows.append((e.data["flow"], r["group"], r["seq"], r["action"],
                              tuple(r["agents"])))
    assert len(flows) == len(set(flows)), "a late role record twice"
    return {"levels": levels, "late": late, "flows": sorted(flows)}


def _unsigned(late: dict[tuple[str, int], dict]) -> dict[tuple[str, int], list]:
    """Late estimates without signatures (each home has its own keys)."""
    return {k: [(x["agent_id"], x["seq"], x["var"], x["es"]) for x in d["estimates"]]
            for k, d in late.items()}


@pytest.mark.parametrize(("hold", "drop_at"), [(3, 8), (6, 8)], ids=["after", "during"])
def test_a_resume_after_an_outage_equals_the_uninterrupted_run(tmp_path, sp500, hold,
                                                               drop_at):
    """Dropped after the group caught up (``after``: its late entries written live) or
    while it is still held restoring (``during``: the resume replays it and writes them):
    the same consensus at every beat, the same late estimates and role records, once."""
    end = 14
    _outage(tmp_path / "whole", sp500, hold=hold, end=end)
    _outage(tmp_path / "dropped", sp500, hold=hold, end=end, drop_at=drop_at)
    whole, dropped = _ledger(tmp_path / "whole"), _ledger(tmp_path / "dropped")
    assert sorted(whole["levels"]) == sorted(dropped["levels"]) == list(range(1, end + 1))
    assert dropped["levels"] == whole["levels"]
    missed = [(G1, s) for s in range(KILL_AT + 1, KILL_AT + 1 + hold)]
    assert sorted(whole["late"]) == sorted(dropped["late"]) == missed
    assert _unsigned(dropped["late"]) == _unsigned(whole["late"])
    assert dropped["flows"] == whole["flows"]
    # the refit asked while the host was lost ran in the group's catch-up: recorded, late
    assert ("forager", G1, KILL_AT + 2, "refit-done", (BOOT,)) in whole["flows"]


def test_a_compromised_groups_catch_up_is_vetted_and_its_errors_kept(tmp_path, sp500):
    """g1's catch-up outcomes carry a forged estimate, one for another group's agent, an
    agent error and a role record for another group's agent: the late entries hold only the
    estimates that verify, say what was refused, keep the error and drop the foreign record
    (before, every estimate sent was ledgered as the agent's and the rest was lost)."""

    def tamper(outcome: Any) -> Any:
        first, *rest = outcome.estimates
        forged = dc.replace(first, var=0.5, es=0.6)
        foreign = dc.replace(first, agent_id=NIG)
        report = dc.replace(outcome.report, rejected={BOOT: "update failed: simulated"})
        role = RoleRecord("guard", "refit-requested", (NIG,), {"why": "forged"})
        return dc.replace(outcome, estimates=(forged, *rest, foreign), estimate_records=(),
                          report=report, roles=(*outcome.roles, role))

    hold = 3
    _outage(tmp_path, sp500, hold=hold, end=8, tamper=tamper)
    got = _ledger(tmp_path)
    assert sorted(got["late"]) == [(G1, s) for s in range(KILL_AT + 1, KILL_AT + 1 + hold)]
    for d in got["late"].values():
        assert [(x["agent_id"], x["alpha"]) for x in d["estimates"]] == [(BOOT, 0.975)]
        assert d["rejected"] == {BOOT: "update failed: simulated"}
        assert len(d["refused"]) == 3 and any("forged" in n for n in d["refused"])
    assert not [f for f in got["flows"] if f[0] == "guard" and f[4] == (NIG,)]
    assert ("forager", G1, KILL_AT + 2, "refit-done", (BOOT,)) in got["flows"]
