"""The arbiter as an observer of the real runtime (swarm.Swarm), on S&P 500 ticks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from swarmvar.arbiter import Arbiter
from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.data import load
from swarmvar.ledger import EntryKind
from swarmvar.swarm import BeatObserver, RoleConfig, Swarm
from swarmvar.swarm.ticks import as_utc
from swarmvar.types import Tick

CHEAP = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")


def test_swarm_runs_with_the_arbiter_and_honours_its_quarantine(tmp_path: Path) -> None:
    series = load("sp500").iloc[:290]
    arbiter = Arbiter.from_options(k_flows=4, p_nodes=5, record_decisions=False)
    assert isinstance(arbiter, BeatObserver)
    swarm = Swarm(("sp500",), home=tmp_path, agents=CHEAP, policy=replace(DEFAULT_POLICY, f=0),
                  window=250, fsync=False, roles=RoleConfig.quiet(), observers=[arbiter])
    try:
        swarm.start({"sp500": series.iloc[:260]})
        reports = []
        for day, value in series.iloc[260:].items():
            reports.append(swarm.step(Tick("sp500", as_utc(day), value=float(value))))
            if len(reports) == 10:
                arbiter.quarantine_now("sp500", "StudentT")
        assert arbiter.state("sp500").beats == len(reports) == 30
        assert all(len(r.decisions) == 1 for r in reports)
        after = reports[10]
        assert "StudentT" in after.quarantined
        assert all("StudentT" not in (*c.used, *c.trimmed) for c in after.consensus)
        assert all("StudentT" in (*c.used, *c.trimmed) for c in reports[9].consensus)
        kinds = {e.kind for e in swarm.ledger.entries(1)}
        assert EntryKind.PULSE not in kinds  # the arbiter was given no ledger
    finally:
        swarm.close()
        arbiter.close()
