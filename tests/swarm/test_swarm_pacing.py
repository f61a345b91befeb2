"""``Swarm.run(pace=...)`` and ``swarmvar run --pace pulse``: beats start on the arbiter's
pulse, the PID gets the measured beat time, late beats are counted and recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay

from . import _arbiter_child as child


def test_a_paced_run_measures_each_beat_and_records_the_late_ones(tmp_path: Path) -> None:
    days = 20
    r = child.load("sp500").iloc[: child.WINDOW + days]
    fake = child.FakeTime()
    swarm, arbiter, cadence = child.paced_swarm(tmp_path, fake)
    seen = []
    with swarm, arbiter:
        swarm.start({"sp500": r.iloc[: child.WINDOW]})
        began = fake.now
        summary = swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW), pace=cadence,
                            on_beat=seen.append)
        o_after = arbiter.state("sp500").genome.o
    b = cadence.budget
    durations = [child.duration(s, b) for s in range(1, days + 1)]
    late = [d > b for d in durations]
    assert [rep.late for rep in seen] == late
    assert summary.late == sum(late) == cadence.late and 0 < summary.late < days
    # beats start on boundaries of one anchored schedule; an overrun skips to the next one
    starts = fake.starts
    assert starts[0] == began
    n = 0
    for k in range(1, days):
        n += 1 if durations[k - 1] <= b else 2
        assert starts[k] == pytest.approx(began + n * b, abs=1e-9)
    assert cadence.skipped == sum(late)
    with Ledger.open(tmp_path) as ledger:
        pulses = {e.data["seq"]: e.data for e in ledger.entries() if e.kind == "pulse"}
        pids = {e.data["result"]["seq"]: e.data["result"] for e in ledger.entries()
                if e.kind == "flow" and e.data["flow"] == "pid"}
        beats = {e.data["beat"]["seq"]: e.data["beat"] for e in ledger.entries()
                 if e.kind == "consensus" and "beat" in e.data}
    for s in range(1, days + 1):
        d = durations[s - 1]
        assert pulses[s]["beat_seconds"] == d == beats[s]["beat_seconds"]
        assert pulses[s]["late"] == (d > b) == beats[s].get("late", False)
        assert pids[s]["error"] == pytest.approx((d - b) / b, rel=1e-12)
    # beats mostly under the budget: the PID raises the optional work
    assert o_after > 0.35


FAST = ["--agents", "nig,bootstrap", "--window", "150", "--quiet", "--alpha", "0.99"]


def test_swarmvar_run_pace_pulse(tmp_path: Path) -> None:
    """A real run on a 20 ms pulse (T1 5 ms): every beat ledgered with its time and lateness;
    generous bounds only (the machine is shared)."""
    home = tmp_path / "h"
    res = CliRunner().invoke(build_app(), [
        "run", "--home", str(home), "--beats", "6", "--arbiter", "--pace", "pulse",
        "--t1", "0.005", "--data", "sp500", *FAST])
    assert res.exit_code == 0, res.output
    assert "paced by the pulse T_Λ = 21.053 ms" in res.output
    with Ledger.open(home) as ledger:
        beats = [e.data["beat"] for e in ledger.entries()
                 if e.kind == "consensus" and "beat" in e.data]
        pulses = [e.data for e in ledger.entries() if e.kind == "pulse"]
    assert len(beats) == len(pulses) == 6
    for beat, pulse in zip(beats, pulses, strict=True):
        assert 0 < beat["beat_seconds"] == pulse["beat_seconds"] < 60
        assert pulse["late"] == (pulse["beat_seconds"] > pulse["t_lambda"]) == beat.get(
            "late", False)
    late = sum(p["late"] for p in pulses)
    assert f"{late} of 6 beats late" in res.output


@pytest.mark.parametrize("args", [
    ["--pace", "pulse"],                              # no arbiter: no pulse
    ["--pace", "rate"],                               # no --rate
    ["--arbiter", "--pace", "pulse", "--rate", "5"],  # two pacings
    ["--pace", "sometimes"],
])
def test_bad_pacing_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    res = CliRunner().invoke(build_app(), ["run", "--home", str(tmp_path / "h"), "--beats",
                                           "2", *args, *FAST])
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "h").exists()


def test_a_refused_tick_is_no_paced_beat(tmp_path: Path) -> None:
    """A tick refused before any portfolio beat is not counted, not late, and the next
    tick does not wait a pulse for it."""
    from swarmvar.types import Tick

    r = child.load("sp500").iloc[: child.WINDOW + 3]
    day = lambda k: r.index[child.WINDOW + k].to_pydatetime()  # noqa: E731
    ticks = [Tick("sp500", day(0), value=float(r.iloc[child.WINDOW])),
             Tick("sp500", day(0), value=0.001),  # a duplicate date: refused
             Tick("sp500", day(1), value=float(r.iloc[child.WINDOW + 1]))]
    fake = child.FakeTime()
    swarm, arbiter, cadence = child.paced_swarm(tmp_path, fake)
    with swarm, arbiter:
        swarm.start({"sp500": r.iloc[: child.WINDOW]})
        summary = swarm.run(iter(ticks), pace=cadence)
    assert sum(summary.beats.values()) == 2 and sum(summary.rejected.values()) == 1
    assert cadence.beats == 2 and len(fake.slept) <= 2
