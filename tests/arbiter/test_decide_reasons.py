"""The decisions' reasons in words: each kind of anomaly and each action named in plain words,
the numbers after them, the same kinds in the decision's signals, one bounded line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import AgentSignals, AlertEpisode, Arbiter, BeatSignals, Thresholds, decide
from swarmvar.arbiter.cores import DecisionVector
from swarmvar.arbiter.decide import (
    NAME_CHARS,
    QUARANTINE_OWN,
    QUARANTINE_OWN_MANY,
    QUARANTINE_SWARM,
    QUARANTINED,
    RAISED_AGAIN,
    REASON_AGENTS,
    REASON_CHARS,
    agent_kinds,
    agent_words,
    compared,
    describe_agents,
    short_name,
)
from swarmvar.arbiter.drill import Drift, drifted
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.replay import replay
from swarmvar.arbiter.threat import FEATURES
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.types import Action, Decision

from .test_decide_cores import vector

LEVELS = ((0.99, 5.0, 499.0), (0.975, 12.5, 499.0))


def agent(name: str, breaches: tuple[bool, bool] = (False, False), *, drifting: bool = False,
          low: bool = False, high: bool = False, lagging: bool = False, failed: bool = False,
          p: float = 1.0) -> AgentSignals:
    """An agent with its levels known (as ``read_beat`` gives them): drifting at 99 % with
    14.8 weighted breaches of 499 (5.0 expected); a lag of 0.23 nats a beat."""
    counts = ((0.99, 14.8, 499.0), LEVELS[1]) if drifting else LEVELS
    return AgentSignals(name, breaches, (4.4 if drifting else 0.0, 0.0),
                        -0.23 if lagging else 0.0, low, high, failed, drifting, lagging,
                        tail_p=(p, 1.0), tail_counts=counts)


def beat(agents: list[AgentSignals]) -> BeatSignals:
    total = sum(a.anomalies for a in agents)
    return BeatSignals("p", 7, 0.0, tuple(agents), (False, False), (0.0, 0.0), 0.0, False,
                       (float(total),) + (0.0,) * (len(FEATURES) - 1))


CLEAN = [agent(n) for n in ("c1", "c2", "c3", "c4")]

KINDS = [  # one kind of anomaly each: the agent, its words, its signals
    (agent("A", (True, False)), "A: breached its 99% VaR this beat",
     {"breaches:A": 1.0, "breach_alpha:A": 0.99}),
    (agent("A", (False, True)), "A: breached its 97.5% VaR this beat",
     {"breaches:A": 1.0, "breach_alpha:A": 0.975}),
    (agent("A", drifting=True),
     "A: coverage drifting below 99% (14.8 breaches in ~499 beats against 5.0 expected)",
     {"drift_z:A": 4.4, "drift_alpha:A": 0.99, "drift_breaches:A": 14.8,
      "drift_beats:A": 499.0}),
    (agent("A", low=True), "A: VaR below all the others' intervals", {"outside:A": -1.0}),
    (agent("A", high=True), "A: VaR above all the others' intervals", {"outside:A": 1.0}),
    (agent("A", lagging=True), "A: log score lagging the others' by 0.23 nats a beat",
     {"score_gap:A": -0.23}),
    (agent("A", failed=True),
     "A: no usable forecast (rejected, missing or failed its diagnostics)", {"failed:A": 1.0}),
]


@pytest.mark.parametrize(("a", "words", "kinds"), KINDS)
def test_each_kind_of_anomaly_is_named_in_the_alert_and_in_its_signals(
        a: AgentSignals, words: str, kinds: dict[str, float]) -> None:
    d = decide(vector(threat=0.7, stability=0.0), beat([a, *CLEAN]))
    assert d.action is Action.ALERT and d.agents == ("A",)
    assert d.reason == (f"risk signals high, check these agents' forecasts: {words} "
                        "[threat 0.700 >= 0.6]")
    assert {k: v for k, v in d.signals.items() if k.endswith(":A")} == pytest.approx(
        {"anomalies:A": 1.0, **kinds})
    assert agent_kinds(a) == pytest.approx(kinds)


def test_every_kind_at_once_explains_the_whole_count() -> None:
    a = agent("A", (True, True), drifting=True, low=True, lagging=True, failed=True)
    words = agent_words("A", {"anomalies:A": a.anomalies, **agent_kinds(a)})
    assert words == ("A: breached its VaR at 2 levels (up to 99%) this beat, coverage "
                     "drifting below 99% (14.8 breaches in ~499 beats against 5.0 expected), VaR "
                     "below all the others' intervals, log score lagging the others' by 0.23 "
                     "nats a beat, no usable forecast (rejected, missing or failed its "
                     "diagnostics)")
    assert a.anomalies == 6  # 2 breaches + drift + outside + lag + failure: all six said


def test_hand_built_signals_without_levels_still_say_the_kind() -> None:
    a = AgentSignals("A", (True, True), (3.0, 0.0), 0.0, False, False, False, True, False)
    kinds = agent_kinds(a)
    assert kinds == {"breaches:A": 2.0, "drift_z:A": 3.0}
    assert agent_words("A", kinds) == ("A: breached its VaR at 2 levels this beat, coverage "
                                       "drifting (breach rate 3.0 sd above its level)")
    bare = AgentSignals("B", (), (), 0.0, False, False, True, True, False)  # no levels at all
    assert agent_words("B", agent_kinds(bare)) == (
        "B: coverage drifting, no usable forecast (rejected, missing or failed its diagnostics)")


def test_a_decision_recorded_before_the_kinds_reads_as_its_count() -> None:
    old = {"threat": 0.618, "anomalies:GarchEVT": 2.0, "anomalies:GarchT": 1.0}
    assert describe_agents(("GarchT", "GarchEVT"), old) == (
        "GarchEVT: 2 anomalies; GarchT: 1 anomaly")
    assert agent_words("X", {}) == "X: no anomaly recorded"


def test_each_action_says_what_it_means_first_and_its_numbers_last() -> None:
    bad = agent("bad", (True, True), drifting=True, low=True, p=1e-5)
    lag = agent("slow", lagging=True)
    q = decide(vector(threat=0.97), beat([bad, *CLEAN]), thresholds=Thresholds(agent_p=0))
    assert q.action is Action.QUARANTINE
    assert q.reason.startswith("quarantined (held out of the consensus): the swarm's risk "
                               "signals at quarantine level, and these agents the worst: bad: "
                               "breached its VaR at 2 levels (up to 99%) this beat, coverage")
    assert q.reason.endswith("[threat 0.970 >= 0.95]")
    own = decide(vector(threat=0.1), beat([bad, *CLEAN]))
    assert own.action is Action.QUARANTINE
    assert own.reason == (
        "quarantined (held out of the consensus): its own VaR breached far more often than "
        "its level allows, and its VaR below the others' intervals: bad breaches 14.8 of 499 "
        "(exponentially weighted) at 0.99, expected 5.0, binomial p = 1e-05 [p < 0.001]")
    none = decide(vector(threat=0.97), beat([lag, *CLEAN]))
    assert none.action is Action.ALERT and none.reason == (
        "risk signals at quarantine level but no agent to quarantine (none drifting or below "
        "the others, or too few would remain), check these agents' forecasts: slow: log "
        "score lagging the others' by 0.23 nats a beat [threat 0.970 >= 0.95]")
    swarm = decide(vector(threat=0.7), beat(CLEAN))
    assert swarm.action is Action.ALERT and swarm.agents == () and swarm.reason == (
        "risk signals high, no single agent stands out (the anomalies are the swarm's: "
        "consensus breaches, regime, a late beat, no consensus) [threat 0.700 >= 0.6]")
    balance = decide(vector(stability=0.5, repair=0.01), beat([lag, *CLEAN]))
    assert balance.action is Action.APPLY_BALANCE and balance.reason == (
        "down-weighting in the consensus: slow (weight x 0.67): log score lagging the "
        "others' by 0.23 nats a beat [stability 0.50 > 0.25, repair 0.01 < 0.1]")
    refit = decide(vector(stability=0.0, gain=0.12), beat([lag, *CLEAN]))
    assert refit.action is Action.APPLY_OPTIMIZE and refit.reason == (
        "asking for a refit: slow: log score lagging the others' by 0.23 nats a beat "
        "[expected gain 0.12 > 0.1]")
    noop = decide(vector(), beat(CLEAN))
    assert noop.action is Action.NOOP and noop.reason == "no threshold reached"
    assert noop.signals.keys() == {"threat", "stability", "repair", "gain", "anomalies"}
    for d in (q, own, none, swarm, balance, refit, noop):
        assert "dominant core" not in d.reason


def test_an_alert_raised_again_names_the_new_agents_after_the_numbers() -> None:
    ep = AlertEpisode(True, 3, 0, ("bad",))
    lag = agent("slow", lagging=True)
    d = decide(vector(threat=0.7, stability=0.0), beat([agent("bad", (True, False)), lag,
                                                        *CLEAN]), episode=ep)
    assert d.action is Action.ALERT
    assert d.reason.endswith(f"[threat 0.700 >= 0.6]; {RAISED_AGAIN} open since beat 3: slow")


def test_the_reason_is_one_bounded_line_worst_agents_first() -> None:
    worst = agent("worst", (True, True), high=True, lagging=True, failed=True)  # no quarantine
    long = "L\n" + "x" * 300  # a name with a line break, far past NAME_CHARS
    many = [agent(f"a{i:02d}", (True, False)) for i in range(30)]
    crowd = [worst, *many, agent(long, lagging=True, failed=True)]
    ep = AlertEpisode(True, 1, 0, ("nobody",))
    for threat, episode in ((0.7, None), (0.97, ep)):
        d = decide(vector(threat=threat, stability=0.0), beat(crowd), episode=episode)
        assert d.action is Action.ALERT and len(d.agents) == 32
        assert len(d.reason) <= REASON_CHARS and "\n" not in d.reason, d.reason
        assert d.reason.split(": ", 1)[1].startswith("worst: breached its VaR at 2 levels")
        listed = d.reason.split(" [")[0]
        assert listed.count("breached its 99% VaR") <= REASON_AGENTS - 1
        left = len(d.agents) - 1 - listed.count("breached its 99% VaR") - listed.count("L x")
        assert f"; and {left} more [" in d.reason
    # every agent's words hold a cut name and all its kinds, however long the name
    words = agent_words(long, agent_kinds(crowd[-1]))
    name, said = words.split(": ", 1)
    assert len(name) == NAME_CHARS and name.startswith("L xxx") and name.endswith("xxx"), name
    assert name.count("…") == 1 and said.startswith("log score lagging"), words
    # an agent whose words alone fill the room is cut, not let past the bound
    huge = describe_agents([long, "b"], {f"anomalies:{long}": 2.0, **agent_kinds(crowd[-1])},
                           room=70)
    assert len(huge) <= 70 and huge.endswith("…; and 1 more")


def _replayed(tmp_path: Path) -> list[Decision]:
    h = drifted(simulated_history(400, seed=7), Drift("B", 200, scale=0.3))
    decisions: list[Decision] = []
    with Ledger.open(tmp_path / "home") as ledger:
        arbiter = Arbiter.from_options(ledger=ledger)
        try:
            replay(h, arbiter, on_decision=decisions.append)
        finally:
            arbiter.close()
        entries = [ledger.entry(i) for i in range(ledger.size)]
    recorded = [e.data["details"] for e in entries if e.kind is EntryKind.ACTION
                and "signals" in e.data["details"]]  # decisions (not the breaker's events)
    assert [(r["seq"], r["reason"], r["signals"]) for r in recorded] == [
        (d.seq, d.reason, dict(d.signals)) for d in decisions]
    return decisions


def test_a_replay_explains_every_agent_count_in_its_reason_and_ledger(tmp_path: Path) -> None:
    decisions = _replayed(tmp_path)
    acting = [d for d in decisions if d.action is not Action.NOOP]
    assert {d.action for d in acting} >= {Action.ALERT, Action.QUARANTINE,
                                           Action.APPLY_BALANCE}
    for d in acting:
        assert len(d.reason) <= REASON_CHARS and "\n" not in d.reason
        for a in d.agents:  # the kinds recorded add up to the agent's count
            s = d.signals
            said = (s.get(f"breaches:{a}", 0) + (f"drift_z:{a}" in s) + (f"outside:{a}" in s)
                    + (f"score_gap:{a}" in s) + s.get(f"failed:{a}", 0))
            assert said == s[f"anomalies:{a}"], (a, d)
        worst = max(d.agents, key=lambda a: d.signals[f"anomalies:{a}"])
        if "binomial p = " not in d.reason:  # (a per-agent quarantine gives its evidence)
            assert agent_words(worst, d.signals, d.weights.get(worst)) in d.reason, d


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), st.booleans(), st.booleans(),
                          st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                min_size=1, max_size=12, unique_by=lambda t: t[0]),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 0.5),
       st.integers(0, 10**12), st.booleans())
def test_any_beat_gives_a_one_line_reason_within_the_bound(
        rows: list[tuple[str, bool, bool, bool, bool, bool, bool]], threat: float,
        stability: float, gain: float, since: int, open_: bool) -> None:
    agents = [agent(n, (b1, b2), drifting=dr, low=lo, lagging=lag, failed=fa)
              for n, b1, b2, dr, lo, lag, fa in rows]
    ep = AlertEpisode(True, since, 0, ("someone else",)) if open_ else None
    d = decide(vector(threat=threat, stability=stability, repair=0.0, gain=gain), beat(agents),
               episode=ep)
    assert len(d.reason) <= REASON_CHARS and "\n" not in d.reason, d.reason
    for a in d.agents:  # every named agent's count is explained by its recorded kinds
        s = d.signals
        said = (s.get(f"breaches:{a}", 0) + (f"drift_z:{a}" in s) + (f"outside:{a}" in s)
                + (f"score_gap:{a}" in s) + s.get(f"failed:{a}", 0))
        assert said == s[f"anomalies:{a}"]


# --- the brackets read as true comparisons; cuts at a whole kind; names; meanings ---------

def _holds(bracket: str) -> bool:
    """Whether ``name value op threshold`` (one comparison, as printed) is true."""
    *_, v, op, t = bracket.split()
    a, b = float(v), float(t)
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


@pytest.mark.parametrize(("vec", "th", "action", "brackets"), [
    (vector(stability=0.2504, repair=0.0996), Thresholds(), Action.APPLY_BALANCE,
     ["stability 0.2504 > 0.25", "repair 0.0996 < 0.1"]),
    (vector(stability=0.0, gain=0.1004), Thresholds(), Action.APPLY_OPTIMIZE,
     ["expected gain 0.1004 > 0.1"]),
    (vector(threat=0.97), Thresholds(quarantine=0.1 + 0.2 + 0.65), Action.ALERT,
     ["threat 0.970 >= 0.95"]),
    (vector(threat=0.6004, stability=0.0), Thresholds(alert=0.6004), Action.ALERT,
     ["threat 0.6004 >= 0.6004"]),
])
def test_the_brackets_read_as_true_comparisons(vec: DecisionVector, th: Thresholds,
                                               action: Action, brackets: list[str]) -> None:
    d = decide(vec, beat([agent("slow", lagging=True), *CLEAN]), thresholds=th)
    assert d.action is action, d.reason
    inside = d.reason[d.reason.rindex("[") + 1:d.reason.rindex("]")]
    assert inside.split(", ") == brackets, d.reason
    assert all(_holds(b) for b in brackets)


@pytest.mark.parametrize(("value", "op", "threshold"), [
    (0.25 + 1e-12, ">", 0.25), (0.1 - 1e-13, "<", 0.1), (0.95, ">=", 0.95),
    (0.2499996, ">", 0.2499995), (0.30000000000000004, ">", 0.3)])
def test_compared_tells_a_value_from_its_threshold(value: float, op: str,
                                                   threshold: float) -> None:
    text = compared("x", value, op, threshold)
    assert _holds(text), text
    assert text.startswith("x ") and f" {op} " in text


def test_a_crowded_reason_cuts_the_worst_agents_words_at_a_whole_kind() -> None:
    worst = agent("W" * 30, (True, True), high=True, lagging=True, failed=True)
    others = [agent(f"o{i}", (True, False)) for i in range(11)]
    full = agent_words(worst.agent, agent_kinds(worst))
    said = describe_agents([worst.agent, *(a.agent for a in others)],
                           {f"anomalies:{worst.agent}": 5.0, **agent_kinds(worst)}, room=140)
    assert len(said) <= 140 and said.endswith(", …; and 11 more"), said
    kept = said.removesuffix(", …; and 11 more")
    assert full.startswith(kept + ", ") and len(kept) < len(full), said
    assert "no usable forecast" in full and "no usable forecast" not in said


def test_long_names_that_differ_at_the_end_stay_apart() -> None:
    a, b = "Q" * 80 + "0", "Q" * 80 + "1"
    assert short_name(a) != short_name(b) and len(short_name(a)) == NAME_CHARS
    assert short_name(a).endswith("0") and "…" in short_name(a)
    assert short_name("x" * NAME_CHARS) == "x" * NAME_CHARS
    assert short_name("two\n words") == "two words"
    bad = [agent(n, (True, True), drifting=True, low=True, p=1e-9) for n in (a, b)]
    d = decide(vector(threat=0.1, stability=0.0), beat([*bad, *CLEAN]))
    assert d.action is Action.QUARANTINE and short_name(a) in d.reason, d.reason
    assert short_name(b) in d.reason


def test_the_per_agent_quarantine_says_its_or_their_own_var() -> None:
    one = agent("D", (True, True), drifting=True, low=True, p=1e-9)
    two = agent("E", (True, True), drifting=True, low=True, p=1e-8)
    d1 = decide(vector(threat=0.1, stability=0.0), beat([one, *CLEAN]))
    d2 = decide(vector(threat=0.1, stability=0.0), beat([one, two, *CLEAN]))
    assert d1.reason.startswith(QUARANTINE_OWN + ": D breaches"), d1.reason
    assert d2.reason.startswith(QUARANTINE_OWN_MANY + ": D breaches"), d2.reason
    assert "their own VaRs" in d2.reason and "its own VaR" not in d2.reason
    swarm = decide(vector(threat=0.97), beat([one, *CLEAN]))
    assert swarm.action is Action.QUARANTINE and swarm.reason.startswith(QUARANTINE_SWARM)
    assert all(m.startswith(QUARANTINED) for m in (QUARANTINE_OWN, QUARANTINE_OWN_MANY,
                                                    QUARANTINE_SWARM))


@pytest.mark.parametrize(("gap", "said"), [
    (-0.23, " by 0.23 nats a beat"), (-0.004, " by 0.004 nats a beat"), (0.0, ""),
    (-0.0, "")])
def test_a_small_or_no_score_lag_is_not_said_as_zero(gap: float, said: str) -> None:
    a = AgentSignals("A", (), (), gap, False, False, False, False, True)
    words = agent_words("A", agent_kinds(a))
    assert words == "A: log score lagging the others'" + said, words
    assert "0.00 nats" not in words


def test_a_cut_never_stops_inside_the_drift_phrase() -> None:
    """The drift phrase says its figures without ", " inside its brackets, so a crowded
    reason's cut (at the last ", " that fits) never leaves half of it with an open bracket."""
    from swarmvar.arbiter.decide import describe_agents

    signals = {"anomalies:A": 3.0, "drift_z:A": 4.4, "drift_alpha:A": 0.99,
               "drift_breaches:A": 14.8, "drift_beats:A": 499.0, "outside:A": -1.0,
               "breaches:A": 1.0, "breach_alpha:A": 0.99}
    for room in range(40, 200, 7):
        words = describe_agents(["A"], signals, room=room)
        assert words.count("(") == words.count(")"), (room, words)
