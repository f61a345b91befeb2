"""The Arbiter observer: quarantine through the breaker, ledger, determinism, bad inputs."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import (
    Arbiter,
    ArbiterConfig,
    BeatHistory,
    Retraining,
    ThreatVersions,
    Thresholds,
    t_lambda,
)
from swarmvar.arbiter.signals import SignalConfig, SignalMemory, read_beat
from swarmvar.errors import InvalidParameter, InvalidSignal, SwarmVarError, UnknownAgent
from swarmvar.evolution import BreakerState, MemoryBreakerStorage
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.types import Action, BeatReport, Decision

from .conftest import synthetic_history


@runtime_checkable
class BeatObserver(Protocol):
    def observe(self, report: BeatReport) -> Sequence[Decision]: ...

    def excluded(self, portfolio: str) -> frozenset[str]: ...

    def weight_factors(self, portfolio: str) -> Mapping[str, float]: ...


def kinds(ledger: Ledger) -> Counter[str]:
    return Counter(e.kind.value if hasattr(e.kind, "value") else str(e.kind)
                   for e in ledger.entries(1))


def test_implements_the_runtime_protocol() -> None:
    assert isinstance(Arbiter(), BeatObserver)


def test_from_options_wires_the_pulse() -> None:
    ledger = Ledger.in_memory()
    a = Arbiter.from_options(k_flows=8, p_nodes=5, t_threshold=0.05, ledger=ledger,
                             thresholds=Thresholds(alert=0.7))
    assert a.config.pulse.budget == t_lambda(8, 5)
    assert a.config.pulse.t_threshold == 0.05 and a.config.thresholds.alert == 0.7
    assert a.ledger is ledger
    with pytest.raises(InvalidParameter):
        Arbiter.from_options(k_flows=1, p_nodes=1)


def test_every_step_is_recorded(history: BeatHistory) -> None:
    ledger = Ledger.in_memory()
    a = Arbiter(ledger=ledger)
    reports = list(history.beats())[:10]
    for r in reports:
        a.observe(r, beat_seconds=0.001)
    k = kinds(ledger)
    assert k["pulse"] == 10 and k["flow"] == 50 and k["action"] >= 10
    pulse = next(e for e in ledger.entries(1) if e.kind == EntryKind.PULSE)
    assert pulse.data["t_lambda"] == pytest.approx(0.004211, abs=5e-7)
    assert ledger.verify_chain().ok
    quiet = Ledger.in_memory()
    b = Arbiter(ledger=quiet, record_decisions=False)
    for r in reports:
        b.observe(r)
    assert kinds(quiet)["action"] == 0


def test_quarantine_round_trip_through_the_breaker() -> None:
    """Agent A under-forecasts until day 60, then forecasts well: it is quarantined
    (its breaker opens), fails probation while bad, and is let back in once a
    probation check passes (its breaker closes)."""
    history = synthetic_history(days=120, seed=1, mend_at=60)
    ledger = Ledger.in_memory()
    storage = MemoryBreakerStorage()
    eager = ArbiterConfig(thresholds=Thresholds(quarantine=0.5, alert=0.5))
    a = Arbiter(eager, ledger=ledger, breakers=storage)
    beats = list(history.beats())
    out_at = None
    for r in beats[:59]:
        (d,) = a.observe(r)
        if d.action is Action.QUARANTINE and out_at is None:
            out_at = r.seq
            assert d.agents == ("A",)
            assert a.excluded("simulated") == {"A"}
    assert out_at is not None
    assert storage.load("arbiter:simulated:A").state is BreakerState.OPEN
    assert a.excluded("simulated") == {"A"}
    a.config = dataclasses.replace(eager, thresholds=Thresholds())  # no new quarantines
    back_at = None
    for r in beats[59:]:
        a.observe(r)
        if back_at is None and not a.excluded("simulated"):
            back_at = r.seq
    assert back_at is not None and back_at <= 60 + 8  # within one probation of mending
    assert storage.load("arbiter:simulated:A").state is BreakerState.CLOSED
    actions = Counter(e.data["type"] for e in ledger.entries(1) if e.kind == EntryKind.ACTION)
    assert actions["quarantine"] >= 2  # the decision and the breaker event
    assert actions["probation_failed"] >= 1 and actions["release"] == 1
    assert ledger.verify_chain().ok


def test_operator_quarantine_and_release(history: BeatHistory) -> None:
    a = Arbiter()
    a.observe(next(history.beats()))
    a.quarantine_now("simulated", "C")
    assert a.excluded("simulated") == {"C"}
    a.release("simulated", "C")
    assert a.excluded("simulated") == frozenset()
    with pytest.raises(UnknownAgent, match="known: A, B, C, D, E"):
        a.release("simulated", "Z")
    with pytest.raises(UnknownAgent):
        a.quarantine_now("elsewhere", "A")
    with pytest.raises(UnknownAgent):
        a.state("elsewhere")


def test_same_beats_same_decisions(history: BeatHistory) -> None:
    def run(parallel: bool) -> list[Decision]:
        with Arbiter(parallel=parallel) as a:
            return [d for r in history.beats() for d in a.observe(r, beat_seconds=0.004)]

    first = run(False)
    assert first == run(False) == run(True)
    assert {d.action for d in first} >= {Action.ALERT, Action.APPLY_BALANCE}


def test_optional_work_follows_the_measured_beat_time(history: BeatHistory) -> None:
    fast, slow = Arbiter(), Arbiter()
    assert fast.optional_work("simulated") == 0.5
    budget = fast.config.pulse.budget
    for r in list(history.beats())[:20]:
        fast.observe(r, beat_seconds=0.5 * budget)  # spare time: do more
        slow.observe(r, beat_seconds=2.0 * budget)  # overrun: do less
    assert fast.optional_work("simulated") == 1.0
    assert slow.optional_work("simulated") == 0.0
    assert slow.state("simulated").late == 20


def test_balance_factors_hold_for_the_next_consensus(history: BeatHistory) -> None:
    a = Arbiter()
    for r in history.beats():
        (d,) = a.observe(r)
        f = a.weight_factors("simulated")
        if d.action is Action.APPLY_BALANCE:
            assert f == d.weights and all(0 < v < 1 for v in f.values())
        else:
            assert f == {}
    assert a.weight_factors("nowhere") == {}


def test_retraining_publishes_versions() -> None:
    history = synthetic_history(days=260, seed=2)
    versions = ThreatVersions()
    ledger = Ledger.in_memory()
    a = Arbiter(versions=versions, ledger=ledger,
                retraining=Retraining(every=50, min_beats=100, horizon=5))
    for r in history.beats():
        a.observe(r)
    assert len(versions.versions()) >= 2
    assert a.model.version == versions.versions()[-1] and a.model.label
    assert any(e.data["type"] == "threat_model" for e in ledger.entries(1)
               if e.kind == EntryKind.ACTION)


def _corrupt(report: BeatReport, what: str, value: float) -> BeatReport:
    if what == "realized":
        return dataclasses.replace(report, realized=value)
    if what == "regime":
        return dataclasses.replace(report, regime_probability=value)
    if what == "log_score":
        return dataclasses.replace(report, log_scores={**report.log_scores, "B": value})
    fc = report.forecasts["B"]
    m = dataclasses.replace(fc.levels[0], var=value)
    return dataclasses.replace(report, forecasts={
        **report.forecasts, "B": dataclasses.replace(fc, levels=(m, *fc.levels[1:]))})


@settings(max_examples=40, deadline=None)
@given(what=st.sampled_from(["realized", "regime", "log_score", "var"]),
       value=st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                       st.floats(-1e6, 1e6)))
def test_bad_signals_change_nothing(history: BeatHistory, what: str, value: float) -> None:
    ledger = Ledger.in_memory()
    a = Arbiter(ledger=ledger)
    beats = history.beats()
    a.observe(next(beats))
    before, size = a.state("simulated"), ledger.size
    report = _corrupt(next(beats), what, value)
    bad = not math.isfinite(value) or (what == "regime" and not 0 <= value <= 1)
    if what == "log_score" and value == -math.inf:
        bad = False  # an agent that called the return impossible: a (floored) signal
    if bad:
        with pytest.raises(InvalidSignal):
            a.observe(report)
        assert a.state("simulated") == before and ledger.size == size
    else:
        a.observe(report)
        assert ledger.size > size


def test_a_beat_without_consensus_is_an_anomaly_not_an_error(history: BeatHistory) -> None:
    a = Arbiter()
    beats = history.beats()
    a.observe(next(beats))
    report = next(beats)
    plain, plain_first = Arbiter(), Arbiter()
    plain.observe(next(history.beats()))
    plain.observe(report)
    a.observe(dataclasses.replace(report, consensus=()))
    assert a.last_signals("simulated").anomalies == plain.last_signals("simulated").anomalies + 1
    empty = dataclasses.replace(report, consensus=(), forecasts={}, breaches={}, log_scores={})
    with pytest.raises(InvalidSignal, match="neither consensus"):  # the pure read refuses it
        read_beat(SignalMemory(), empty, SignalConfig())
    fresh = Arbiter()  # the observer decides nothing on it, remembers nothing, and goes on
    assert tuple(fresh.observe(empty)) == ()
    with pytest.raises(UnknownAgent):  # nothing remembered
        fresh.state("simulated")
    first = next(history.beats())
    assert fresh.observe(first) == plain_first.observe(first)


@pytest.mark.parametrize(("field", "value"), [("realized", math.nan), ("realized", math.inf),
                                               ("regime_probability", math.nan),
                                               ("regime_probability", 1.5)])
def test_a_level_less_first_beat_is_still_checked(history: BeatHistory, field: str,
                                                   value: float) -> None:
    """Was: a beat without levels returned () before any check (a NaN return passed)."""
    report = next(history.beats())
    empty = dataclasses.replace(report, consensus=(), forecasts={}, breaches={}, log_scores={})
    fresh = Arbiter()
    with pytest.raises(InvalidSignal, match="realized return|regime_probability"):
        fresh.observe(dataclasses.replace(empty, **{field: value}))
    with pytest.raises(UnknownAgent):  # nothing remembered
        fresh.state("simulated")
    with pytest.raises(InvalidSignal, match="late flag"):  # the fields too
        fresh.observe(dataclasses.replace(empty, late="no"))


@pytest.mark.parametrize("case", ["flags", "seconds", "type", "levels"])
def test_bad_reports(history: BeatHistory, case: str) -> None:
    a = Arbiter()
    report = next(history.beats())
    if case == "flags":
        report = dataclasses.replace(report, breaches={**report.breaches, "A": (True,)})
    elif case == "levels":
        report = dataclasses.replace(report, consensus=report.consensus[:1])
    with pytest.raises(SwarmVarError) as err:
        if case == "seconds":
            a.observe(report, beat_seconds=math.nan)
        elif case == "type":
            a.observe("not a report")  # type: ignore[arg-type]
        else:
            a.observe(report)
    assert isinstance(err.value, InvalidSignal)
