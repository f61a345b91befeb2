"""How a held beat shares its 500 characters: the note re-sized when the reason's first part
is cut back, a quarantined agent refitted in a held beat said once with its day, the
note's last form sized by the room the first part leaves, and cuts never inside brackets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import AlertEpisode, Thresholds, decide
from swarmvar.arbiter.decide import (
    HELD_CHARS,
    REASON_CHARS,
    Quarantined,
    _cut,
    agent_kinds,
    agent_words,
    anomaly_kinds,
    describe_agents,
    held_note,
    quarantine_marks,
)
from swarmvar.types import Action

from .test_decide_cores import CLEAN, agent, beat, vector

T = Thresholds()
DAY = datetime(2013, 3, 4, tzinfo=UTC).timestamp()
SINCE = "quarantined since 2013-03-04"


def _held(agents: list, out: list, v: object, days: dict[str, Quarantined] | None = None):
    """A held beat (seq 9) of ``agents`` and the quarantined ``out``: the episode open since
    beat 3 has named every kind of the agents in the consensus, none of the others'."""
    ep = AlertEpisode(True, 3, 0, tuple(k for a in agents for k in anomaly_kinds(a)))
    s = dataclasses.replace(beat([*agents, *out]), seq=9)
    names = [a.agent for a in out]
    d = decide(v, s, names, T, ep, days or {n: Quarantined(DAY) for n in names})
    assert d.signals["alert_held"] == 1.0 and len(d.reason) <= REASON_CHARS, d.reason
    return d


def test_a_first_part_cut_back_leaves_its_agents_to_the_note() -> None:
    """Given all the room, the refit's first part describes its three agents; the held note
    then has too little room for any of its lists' forms, and the first part is cut back to
    two ("and 1 more"). The note is worked out again for those two: the third, described
    nowhere else, is named in it with its kinds (reviewed: untested, and without it the
    note was its last form, "3 agents named already", naming none of them)."""
    three = [agent(n, lagging=True, failed=True)
             for n in ("t", "StudentT-var-9876", "GarchEVT-var-5432")]
    d = _held(three, [], vector(threat=0.7, stability=0.0, gain=0.5))
    assert d.action is Action.APPLY_OPTIMIZE
    # what "all the room" describes: every agent, nothing counted
    full = describe_agents([a.agent for a in three], d.signals, room=REASON_CHARS)
    assert "more" not in full and all(a.agent in full for a in three)
    first = d.reason[:d.reason.index(" [")]
    assert first.endswith("; and 1 more"), d.reason
    assert "GarchEVT-var-5432" not in first
    assert d.reason.endswith("named already: t, StudentT-var-9876, GarchEVT-var-5432 "
                             "(score lag, no forecast)"), d.reason


def test_a_quarantined_agent_refitted_in_a_held_beat_has_its_day_said_once() -> None:
    """A held refit names bad, quarantined, among its agents (since ba2eb02): its day is
    said beside its name in the first part and not again in the note, which gives its kinds
    new to the episode; when the first part only counts it ("and 1 more"), the note says
    its day (probe p1)."""
    bad = agent("bad", lagging=True, low=True)
    c = agent("c", lagging=True)
    refit = vector(threat=0.7, stability=0.0, gain=0.5)
    d = _held([c, *CLEAN[1:]], [bad], refit)
    assert d.action is Action.APPLY_OPTIMIZE and set(d.agents) == {"bad", "c"}, d.reason
    assert d.reason.count(SINCE) == 1, d.reason
    assert d.reason.startswith(f"asking for a refit: bad ({SINCE}): VaR below"), d.reason
    assert d.reason.endswith("named already: c; quarantined, new but not alerted on: "
                             "bad (VaR below the others, score lag)"), d.reason
    # three agents as bad as it first: bad is counted, not described, so the note says its
    # day
    worse = [agent(n, (True, False), lagging=True) for n in ("x", "y", "z")]
    d = _held(worse, [bad], refit)
    assert d.action is Action.APPLY_OPTIMIZE and "bad" in d.agents, d.reason
    assert "; and 1 more [" in d.reason and d.reason.count(SINCE) == 1, d.reason
    assert d.reason.endswith(f"bad (VaR below the others, score lag; {SINCE})"), d.reason


# p3's case: eight agents in the consensus with long names and every kind, six quarantined
# with long names and a kind new to the episode: no form of the note fits
_IN = [agent(f"In{i:02d}-" + "y" * 35, (True, True), drifting=True, low=True, lagging=True,
             failed=True) for i in range(8)]
_OUT = [agent(f"Out{i}-" + "q" * 34, (True, False), low=True) for i in range(6)]


def test_the_last_form_leaves_the_first_parts_words_their_room() -> None:
    """The reviewed case (p3): the note's last form gave the quarantined names 160
    characters whatever the room, and the first agent's words lost two of their kinds for
    them. Its list now takes HELD_CHARS (80) when the first part must be cut: the refit's
    first agent keeps four kinds, the balance's three (its factor takes room)."""
    days = {a.agent: Quarantined(1.36e9, 1) for a in _OUT}
    for v, action, kept in (
            (vector(threat=0.61, stability=0.26, repair=0.09), Action.APPLY_BALANCE, 3),
            (vector(threat=0.61, stability=0.0, gain=0.11), Action.APPLY_OPTIMIZE, 4)):
        d = _held(_IN, _OUT, v, days)
        assert d.action is action, d.reason
        first = d.reason[:d.reason.index(" [")]
        words = agent_words(_IN[0].agent, {**agent_kinds(_IN[0]), **d.signals},
                            d.weights.get(_IN[0].agent))
        name, _, kinds = words.partition(": ")
        said = ", ".join(kinds.split(", ")[:kept])
        assert first.startswith(f"{d.reason[:d.reason.index(':')]}: {name}: {said}, …; "
                                "and 7 more"), d.reason
        second = d.reason[d.reason.index("; quarantined, new, no alert: "):]
        assert len(second) - len("; quarantined, new, no alert: ") <= HELD_CHARS
        assert second.endswith(", and 5 more"), d.reason


def test_the_last_forms_list_takes_the_room_the_first_part_leaves() -> None:
    """A short first part (one lagging agent, balanced) and ten agents in the consensus
    with long names (each breached, named already: counted in the last form): the six
    quarantined agents' names take the room left, all of them (they were cut at 160
    characters, "and 2 more", with a third of the line free)."""
    breached = [agent(f"Breach{i}-" + "b" * 31, (True, False)) for i in range(10)]
    out = [agent(f"Out{i}-" + "q" * 24, (True, False), low=True) for i in range(6)]
    d = _held([agent("c", lagging=True), *breached], out,
              vector(threat=0.7, stability=0.9))
    assert d.action is Action.APPLY_BALANCE and d.agents == ("c",), d.reason
    assert "11 agents named already; quarantined, new, no alert: " in d.reason, d.reason
    assert d.reason.endswith(", ".join(a.agent for a in out)), d.reason
    # held_note itself: in the room, whatever that room; else the list in HELD_CHARS
    marks: dict[str, float] = {}
    for a in _OUT:
        marks.update(quarantine_marks(a.agent, {a.agent: Quarantined(DAY)}))
    args = ("threat 0.700 >= 0.6", 3, breached, [(a.agent, anomaly_kinds(a)) for a in _OUT],
            marks)
    for room in range(0, 400, 7):  # 58 rooms
        note = held_note(*args, room=room)
        lead = note.index(": ", note.index("no alert")) + 2
        assert len(note) <= room or len(note) - lead <= HELD_CHARS, (room, note)


_PHRASE = ("c: log score lagging the others' by 0.20 nats a beat, no usable forecast "
           "(rejected, missing or failed its diagnostics), VaR below all the others' "
           "intervals, coverage drifting below 99% (14.8 breaches in ~499 beats against 5.0 "
           "expected)")


def _bare_brackets(text: str) -> bool:
    """Every "(" closed, none closed unopened."""
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def test_a_cut_never_falls_inside_brackets() -> None:
    """"no usable forecast (rejected, missing or failed its diagnostics)" is one kind: a
    cut keeps it whole or leaves it out, at every room (reviewed: it was cut at the ", "
    inside its brackets); with no whole kind in the room, before the bracket."""
    kinds = _PHRASE.partition(": ")[2]
    for room in range(20, len(_PHRASE)):
        cut = _cut(_PHRASE, room)
        assert len(cut) <= room and cut.endswith("…"), (room, cut)
        assert _bare_brackets(cut), (room, cut)
        if cut.endswith(", …"):  # whole kinds, as written
            assert kinds.startswith(cut[3:-3]), (room, cut)
    assert _cut(_PHRASE, 110) == ("c: log score lagging the others' by 0.20 nats a beat, "
                                  "…")
    assert _cut(_PHRASE, 140).endswith("(rejected, missing or failed its diagnostics), …")
    assert _cut("c: no usable forecast (rejected, missing or failed its diagnostics)", 50) == (
        "c: no usable forecast …")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(),
                          st.booleans(), st.integers(1, 40)), min_size=1, max_size=12),
       st.integers(0, 6), st.booleans())
def test_any_held_reason_keeps_its_brackets_closed(
        rows: list[tuple[bool, bool, bool, bool, bool, int]], quarantined: int,
        gain: bool) -> None:
    """Any held beat's reason (a balance or a refit, names without brackets): at most 500
    characters, its brackets all closed (whole kinds; a name's quarantine words and factor
    whole). Reviewed: a refit's first agent was cut at "no usable forecast (rejected, …"."""
    agents = [agent(f"A{i}-" + "z" * k, (b, False), drifting=dr, low=lo, lagging=lag,
                    failed=fa) for i, (b, dr, lo, lag, fa, k) in enumerate(rows)]
    out = [a.agent for a in agents[:quarantined]]
    ep = AlertEpisode(True, 3, 0, tuple(k for a in agents if a.agent not in out
                                        for k in anomaly_kinds(a)) or ("nobody",))
    d = decide(vector(threat=0.7, stability=0.0 if gain else 0.9, gain=0.5), beat(agents),
               out, T, ep, {n: Quarantined(DAY, 1) for n in out})
    assert len(d.reason) <= REASON_CHARS and _bare_brackets(d.reason), d.reason
