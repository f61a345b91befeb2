"""What a held beat and a quarantined agent say: the held beat lists this beat's agents in
the consensus (not the episode's other names) and each quarantined agent's kind of anomaly
new to the episode, with since when it is quarantined; any reason naming a quarantined
agent says so; every such reason stays one bounded line."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import AlertEpisode, Arbiter, Thresholds, decide
from swarmvar.arbiter.decide import (
    REASON_CHARS,
    Quarantined,
    anomaly_kinds,
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
    """An operator's quarantine on beat k: later reasons name its day (data time)."""
    h = simulated_history(40, seed=3)
    arbiter = Arbiter()
    reports = list(h.beats(h.name))
    arbiter.observe(reports[0])
    name = h.agents[0]
    arbiter.quarantine_now(h.name, name)
    since = arbiter._since(h.name, frozenset({name}))
    assert since == {name: Quarantined(reports[0].as_of.timestamp(), 0)}
    day = reports[0].as_of.date().isoformat()
    words = quarantine_words(name, {f"quarantined:{name}": 1.0,
                                    f"quarantined_since:{name}": since[name].since})
    assert words == f"quarantined since {day}"


_KINDS = st.sampled_from(["breach", "drifting", "outside_low", "lagging", "failed"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), st.booleans(), st.booleans(),
                          st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                min_size=1, max_size=12, unique_by=lambda t: t[0]),
       st.floats(0.6, 0.94), st.floats(0.0, 1.0), st.integers(0, 10**12),
       st.lists(st.booleans(), min_size=12, max_size=12), st.lists(_KINDS, max_size=6),
       st.floats(0.0, 4e9), st.integers(0, 5))
def test_any_held_beat_gives_a_bounded_line_naming_every_unalerted_agent(
        rows: list[tuple[str, bool, bool, bool, bool, bool, bool]], threat: float,
        stability: float, since: int, out: list[bool], kinds: list[str], day: float,
        failed: int) -> None:
    agents = [agent(n, (b1, b2), drifting=dr, low=lo, lagging=lag, failed=fa)
              for n, b1, b2, dr, lo, lag, fa in rows]
    excluded = {a.agent for a, o in zip(agents, out, strict=False) if o}
    # the episode has named every kind of the agents in the consensus (so the beat is held)
    # and some kinds of the quarantined ones (the others new to it)
    named = tuple(k for a in agents for k in anomaly_kinds(a) if a.agent not in excluded
                  or k.partition(":")[0] in kinds)
    ep = AlertEpisode(True, since, 0, named or ("nobody",))
    d = decide(vector(threat=threat, stability=stability), beat(agents), excluded, T, ep,
               {a: Quarantined(day, failed) for a in excluded})
    assert len(d.reason) <= REASON_CHARS and "\n" not in d.reason, d.reason
    if d.action is not Action.QUARANTINE:  # (the per-agent rule comes first)
        assert d.signals.get("alert_held") == 1.0, d.reason
    if d.signals.get("alert_held"):
        assert "alert held (threat " in d.reason
        assert not d.reason.endswith(("…", ", ", ": ")), d.reason
        for a in agents:
            new = ep.new(anomaly_kinds(a))
            if a.agent in excluded and new:
                assert d.signals[f"unalerted:{a.agent}"] == len(new)
                assert short_name(a.agent) in d.reason or "more" in d.reason, d.reason
