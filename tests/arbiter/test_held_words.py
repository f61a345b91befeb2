"""What a held beat and a quarantined agent say: the held beat lists this beat's agents in
the consensus (not the episode's other names) and each quarantined agent's kind of anomaly
new to the episode, with since when it is quarantined; any reason naming a quarantined
agent says so; every such reason stays one bounded line."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import AlertEpisode, Arbiter, ArbiterConfig, Thresholds, decide
from swarmvar.arbiter.decide import (
    REASON_CHARS,
    Quarantined,
    anomaly_kinds,
    held_note,
    kind_words,
    quarantine_marks,
    quarantine_words,
    short_name,
)
from swarmvar.arbiter.history import simulated_history
from swarmvar.types import Action

from .test_decide_cores import BAD, CLEAN, agent, beat, vector

T = Thresholds()
LAGGING = agent("c", lagging=True)
DAY = datetime(2013, 3, 4, tzinfo=UTC).timestamp()


def test_a_held_beat_says_its_own_agents_and_a_quarantined_agents_new_kind() -> None:
    """The episode named bad's breach, c's lag and e's lag; this beat c lags (named) and bad,
    quarantined, sits below the others (new): held, naming c with its kind, not e (quiet this
    beat), and bad's new kind with its quarantine's day; the signals say the same."""
    ep = AlertEpisode(True, 3, 0, ("breach:bad", "lagging:c", "lagging:e"))
    low = agent("bad", low=True)
    signals = dataclasses.replace(beat([low, LAGGING, *CLEAN[1:]]), seq=9)
    d = decide(vector(threat=0.7, stability=0.0), signals, ("bad",), T, ep,
               {"bad": Quarantined(DAY)})
    assert d.action is Action.NOOP and d.signals["alert_held"] == 1.0
    assert d.reason == (
        "no action; alert held (threat 0.700 >= 0.6): nothing new to the alert episode open "
        "since beat 3; named already: c (score lag); quarantined, new but not alerted on: "
        "bad (VaR below the others; quarantined since 2013-03-04)")
    assert d.signals["unalerted:bad"] == 1.0 and d.signals["quarantined_since:bad"] == DAY
    # its kind already named (a breach): nothing said of it, nothing recorded
    breach = dataclasses.replace(beat([agent("bad", (True, False)), LAGGING]), seq=9)
    quiet = decide(vector(threat=0.7, stability=0.0), breach, ("bad",), T, ep)
    assert quiet.reason.endswith("named already: c (score lag)"), quiet.reason
    assert not any(k.endswith(":bad") for k in quiet.signals)
    # no agent in the consensus with an anomaly: the swarm's own signals
    alone = decide(vector(threat=0.7, stability=0.0), dataclasses.replace(beat(CLEAN), seq=9),
                   (), T, ep)
    assert alone.reason.endswith("no agent in the consensus shows an anomaly (the swarm's own "
                                 "signals)"), alone.reason


def test_a_reason_naming_a_quarantined_agent_says_since_when() -> None:
    """An ALERT whose agents include a quarantined one says it beside its name; after a
    failed probation, the day it failed; without its day, only that it is."""
    d = decide(vector(threat=0.7, stability=0.0), beat([BAD, *CLEAN]), ("bad",), T, None,
               {"bad": Quarantined(DAY, failed=2)})
    assert d.action is Action.ALERT
    assert "bad (quarantined, probation failed 2013-03-04): breached its VaR" in d.reason
    assert d.signals["probation_failed:bad"] == 2.0 and d.signals["quarantined:bad"] == 1.0
    plain = decide(vector(threat=0.7, stability=0.0), beat([BAD, *CLEAN]), ("bad",), T)
    assert "bad (quarantined): breached" in plain.reason
    assert quarantine_words("c", plain.signals) == ""  # not quarantined: nothing said


def test_the_arbiter_gives_the_day_its_breaker_opened() -> None:
    """An operator's quarantine on beat k: later reasons name its day (data time), read
    with the agents held out in one pass over the breakers."""
    h = simulated_history(40, seed=3)
    arbiter = Arbiter()
    reports = list(h.beats(h.name))
    arbiter.observe(reports[0])
    name = h.agents[0]
    arbiter.quarantine_now(h.name, name)
    out, since = arbiter._held_out(h.name)
    assert out == arbiter.excluded(h.name) == {name}
    assert since == {name: Quarantined(reports[0].as_of.timestamp(), 0)}
    day = reports[0].as_of.date().isoformat()
    words = quarantine_words(name, {f"quarantined:{name}": 1.0,
                                    f"quarantined_since:{name}": since[name].since})
    assert words == f"quarantined since {day}"


def test_observe_says_the_day_a_probation_failed() -> None:
    """Arbiter.observe passes the breakers' days to the decision: an agent quarantined on
    day 1 is named "quarantined since" that day, and from the beat its probation (7 days
    of data time) fails, "probation failed" that beat's day, its signals counting the
    failed probations. Every beat is an ALERT here (alert 0, no episodes), so the
    agent, breaching and below the others, is in every reason."""
    h = simulated_history(12, seed=1, scales=(0.3, 1.0, 1.0))
    every = Thresholds(alert=0.0, quarantine=1.0, agent_p=0.0, release_beats=0)
    arbiter = Arbiter(ArbiterConfig(thresholds=every))
    reports = list(h.beats(h.name))
    arbiter.observe(reports[0])
    arbiter.quarantine_now(h.name, "A")
    first = reports[0].as_of
    failed = None
    for r in reports[1:]:  # at most 11 beats
        (d,) = arbiter.observe(r)
        assert d.action is Action.ALERT and "A" in d.agents, d.reason
        if "probation_failed:A" in d.signals:
            failed = (r, d)
            break
        assert f"A (quarantined since {first.date().isoformat()}): " in d.reason, d.reason
        assert d.signals["quarantined_since:A"] == first.timestamp()
    assert failed is not None, "the agent's probation never failed"
    r, d = failed
    assert (r.as_of - first).days == 7  # the probation's 7 days, then checked on this beat
    assert f"A (quarantined, probation failed {r.as_of.date().isoformat()}): " in d.reason
    assert d.signals["probation_failed:A"] == 1.0
    assert d.signals["quarantined_since:A"] == r.as_of.timestamp()


def test_observe_step_passes_the_quarantines_days_on() -> None:
    """The public pure beat, observe_step, takes ``quarantined`` as step does."""
    from swarmvar.arbiter.step import ArbiterState, observe_step
    from swarmvar.arbiter.threat import SEED_MODEL

    h = simulated_history(3, seed=1, scales=(0.3, 1.0, 1.0))
    config = ArbiterConfig(thresholds=Thresholds(alert=0.0, quarantine=1.0, agent_p=0.0,
                                                 release_beats=0))
    state, said = ArbiterState(), []
    for r in h.beats(h.name):  # 2 beats
        state, out = observe_step(state, r, config=config, model=SEED_MODEL, excluded=("A",),
                                  quarantined={"A": Quarantined(DAY, 2)})
        said.append(out.decision)
    assert said and all(d.signals["probation_failed:A"] == 2.0 for d in said)
    assert "A (quarantined, probation failed 2013-03-04): " in said[-1].reason


def test_a_time_no_date_holds_is_said_as_not_known() -> None:
    """A finite quarantined_since past any date (or before year 1) reads ``quarantined``,
    as a missing or non-finite one does, instead of raising OverflowError."""
    for since in (1e300, -1e300, 2.6e11, float("inf"), float("nan")):
        assert quarantine_words("a", {"quarantined:a": 1.0,
                                      "quarantined_since:a": since}) == "quarantined"
    assert quarantine_words("a", {"quarantined:a": 1.0, "quarantined_since:a": 0.0}) == (
        "quarantined since 1970-01-01")


def test_with_room_a_held_note_says_every_quarantined_agents_day_and_kinds() -> None:
    """Most of the 500 characters are the note's when the first part is short: three
    quarantined agents with long names and three new kinds each, every one with its kinds
    and its day (reviewed: the day and kinds were dropped at 175-188 characters)."""
    ep = AlertEpisode(True, 3, 0, ("lagging:c",))
    out = [agent("MarkovSwitchingGarch-variant-7", (True, False), drifting=True, low=True),
           agent("NormalInverseGamma", low=True), agent("StudentT", (True, False), low=True)]
    signals = dataclasses.replace(beat([*out, LAGGING, *CLEAN[1:]]), seq=9)
    d = decide(vector(threat=0.7, stability=0.0), signals, [a.agent for a in out], T, ep,
               {a.agent: Quarantined(DAY, 1) for a in out})
    assert d.action is Action.NOOP and len(d.reason) <= REASON_CHARS
    assert "named already: c (score lag); quarantined, new but not alerted on: " in d.reason
    for a in out:
        words = (f"{a.agent} ({kind_words(anomaly_kinds(a))}; quarantined, probation failed "
                 "2013-03-04)")
        assert words in d.reason, d.reason


def test_the_first_lists_kinds_go_before_a_quarantined_agents_day() -> None:
    """In a room too short for both lists' kinds, the note keeps the quarantined agent's
    kinds and day and names the agents in the consensus without theirs."""
    low = agent("NormalInverseGamma", (True, False), low=True)
    marks = quarantine_marks(low.agent, {low.agent: Quarantined(DAY)})
    args = ("threat 0.700 >= 0.6", 350, [agent("GarchT", lagging=True)],
            [(low.agent, ("breach:NormalInverseGamma", "outside_low:NormalInverseGamma"))],
            marks)
    full = held_note(*args)
    assert "GarchT (score lag)" in full and "quarantined since 2013-03-04" in full
    shorter = held_note(*args, room=len(full) - 1)
    assert shorter == full.replace("GarchT (score lag)", "GarchT")
    # less room: fewer words, then the day goes, then the kinds; last, names in a count
    days = [held_note(*args, room=n) for n in range(len(full), 0, -1)]
    kept = ["quarantined since" in n for n in days]
    assert kept == sorted(kept, reverse=True)  # once dropped, never back
    assert all(len(n) <= room or n == days[-1]
               for room, n in zip(range(len(full), 0, -1), days, strict=True))
    assert days[-1].endswith(": 1 agent named already; quarantined, new, no alert: "
                             "NormalInverseGamma")


def test_the_held_note_gives_its_kinds_to_agents_the_first_part_only_counts() -> None:
    """A refit of five lagging agents describes three and counts two ("and 2 more"): the
    held note names the three by name and gives the other two their kinds."""
    five = [agent(n, lagging=True) for n in "abcde"]
    ep = AlertEpisode(True, 3, 0, tuple(f"lagging:{n}" for n in "abcde"))
    d = decide(vector(threat=0.7, stability=0.0, gain=0.5),
               dataclasses.replace(beat(five), seq=9), (), T, ep)
    assert d.action is Action.APPLY_OPTIMIZE and "; and 2 more [" in d.reason, d.reason
    assert d.reason.endswith("named already: a, b, c, d (score lag), e (score lag)"), d.reason


def test_a_quarantined_agent_is_not_down_weighted_but_may_be_refitted() -> None:
    """APPLY_BALANCE leaves quarantined agents out (held out of the consensus already,
    down-weighting does nothing); APPLY_OPTIMIZE may name one (a refit is how it can heal
    before its probation)."""
    lag = agent("bad", lagging=True)
    both = beat([lag, agent("c", lagging=True), *CLEAN[1:]])
    d = decide(vector(threat=0.0, stability=0.9), both, ("bad",), T, None,
               {"bad": Quarantined(DAY)})
    assert d.action is Action.APPLY_BALANCE and d.agents == ("c",) and "bad" not in d.weights
    refit = vector(threat=0.0, stability=0.0, gain=0.5)
    d = decide(refit, both, ("bad",), T)
    assert d.action is Action.APPLY_OPTIMIZE and set(d.agents) == {"bad", "c"}
    alone = beat([lag, *CLEAN])
    balance = vector(threat=0.0, stability=0.9)
    assert decide(balance, alone, ("bad",), T).action is Action.NOOP
    assert decide(balance, alone, (), T).agents == ("bad",)  # not quarantined: it is named
    d = decide(refit, alone, ("bad",), T)
    assert d.action is Action.APPLY_OPTIMIZE and d.agents == ("bad",)


_KINDS = st.sampled_from(["breach", "drifting", "outside_low", "lagging", "failed"])
_NAME = st.text(st.characters(exclude_characters="<>…"), min_size=1, max_size=80)
#: the reviewed input: a 40-character quarantined agent with three new kinds, one agent
#: in the consensus (its note was cut inside the brackets: "(breach, coverage drift, …")
_REVIEWED = [("x" * 37, True, False, True, True, False, False),
             ("c", False, False, False, False, True, False)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_NAME, st.booleans(), st.booleans(), st.booleans(), st.booleans(),
                          st.booleans(), st.booleans()),
                min_size=1, max_size=12, unique_by=lambda t: t[0]),
       st.floats(0.6, 0.94), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 10**12),
       st.lists(st.booleans(), min_size=12, max_size=12), st.lists(_KINDS, max_size=6),
       st.floats(0.0, 4e9), st.integers(0, 5))
@example(_REVIEWED, 0.7, 0.0, 0.0, 0, [True] + [False] * 11, [], 0.0, 0)
@example([(f"MarkovSwitchingGarch-{i}", True, False, True, True, False, False)
          for i in range(6)] + _REVIEWED[1:], 0.7, 0.0, 0.0, 10**12, [True] * 6 + [False] * 6,
         [], 4e9, 3)
@example([("bad", False, False, False, True, True, False), _REVIEWED[1]], 0.7, 0.0, 0.5, 3,
         [True] + [False] * 11, [], 1.36e9, 0)  # a held refit naming a quarantined agent
def test_any_held_beat_gives_a_bounded_line_naming_every_unalerted_agent(
        rows: list[tuple[str, bool, bool, bool, bool, bool, bool]], threat: float,
        stability: float, gain: float, since: int, out: list[bool], kinds: list[str],
        day: float, failed: int) -> None:
    """Any held beat (a balance, a refit - which may name a quarantined agent - or no
    action): one line of at most 500 characters; its note names every quarantined
    agent with a kind new to the episode, or counts exactly those it leaves out ("and N
    more" at its end); names every agent of the consensus with anomalies or counts them;
    and cuts no item ("…" only inside a long name, brackets closed)."""
    # each name carries "<i>", found in the reason only where the agent is named
    agents = [agent(f"<{i}>{n}", (b1, b2), drifting=dr, low=lo, lagging=lag, failed=fa)
              for i, (n, b1, b2, dr, lo, lag, fa) in enumerate(rows)]
    excluded = {a.agent for a, o in zip(agents, out, strict=False) if o}
    # the episode has named every kind of the agents in the consensus (so the beat is held)
    # and some kinds of the quarantined ones (the others new to it)
    named = tuple(k for a in agents for k in anomaly_kinds(a) if a.agent not in excluded
                  or k.partition(":")[0] in kinds)
    ep = AlertEpisode(True, since, 0, named or ("nobody",))
    d = decide(vector(threat=threat, stability=stability, gain=gain), beat(agents), excluded,
               T, ep, {a: Quarantined(day, failed) for a in excluded})
    assert len(d.reason) <= REASON_CHARS and "\n" not in d.reason, d.reason
    if d.action is not Action.QUARANTINE:  # (the per-agent rule comes first)
        assert d.signals.get("alert_held") == 1.0, d.reason
    if not d.signals.get("alert_held"):
        return
    assert "alert held (threat " in d.reason
    assert not d.reason.endswith(("…", ", ", ": ")), d.reason
    note = d.reason[d.reason.index("; alert held ("):]
    mark = {a.agent: a.agent[:a.agent.index(">") + 1] for a in agents}
    unalerted = [a for a in agents if a.agent in excluded and ep.new(anomaly_kinds(a))]
    for a in unalerted:
        assert d.signals[f"unalerted:{a.agent}"] == len(ep.new(anomaly_kinds(a)))
    if unalerted:
        second = note[note.index("; quarantined, new"):]
        left = [a for a in unalerted if mark[a.agent] not in second]
        assert not left or second.endswith(f", and {len(left)} more"), (len(left), d.reason)
    # a quarantined agent's day said once at most, in the first part (a refit naming it)
    # or in the note (days alike: the same words for each such agent)
    days = {quarantine_words(a, d.signals) for a in excluded} - {""}
    told = excluded & {*d.agents, *(a.agent for a in unalerted)}
    assert sum(d.reason.count(w) for w in days) <= len(told), d.reason
    noisy = [a for a in agents if a.agent not in excluded and a.anomalies > 0]
    if noisy:
        counted = f"{len(noisy)} agent{'s' if len(noisy) > 1 else ''} named already"
        assert counted in note or all(mark[a.agent] in note for a in noisy), d.reason
    bare = note
    for a in agents:
        bare = bare.replace(short_name(a.agent), "")
    assert "…" not in bare and bare.count("(") == bare.count(")"), d.reason
