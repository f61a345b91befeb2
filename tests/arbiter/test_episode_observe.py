"""Alert episodes end to end, through ``Arbiter.observe``: a kind forgotten after
``release_beats`` quiet beats raises the alert again, a restored bare name (a checkpoint
from before the kinds) stays held while its agent shows anomalies every beat, the close
event lists every agent the episode alerted on, and a quarantined agent raises no alert
again.

Each beat's signals and threat are scripted (``read_beat`` and the cores' aggregate
replaced), so the episode is moved on by the arbiter's own step, as in a run."""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

import pytest

from swarmvar.arbiter import AlertEpisode, Arbiter, Thresholds, decide
from swarmvar.arbiter.checkpoint import _MAGIC
from swarmvar.arbiter.decide import agent_kinds, anomaly_kinds, named_agent, signal_kinds
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.signals import AgentSignals
from swarmvar.errors import InvalidParameter
from swarmvar.types import Action, Decision

from .test_alert_episodes import _sealed
from .test_decide_cores import BAD, CLEAN, agent, beat, vector

# the modules (the package's names ``arbiter`` and ``step`` are a class and a function)
arbiter_module = importlib.import_module("swarmvar.arbiter.arbiter")
step_module = importlib.import_module("swarmvar.arbiter.step")
LAGGING = agent("c", lagging=True)
QUIET = list(CLEAN)  # b, c, d, e: all clean
LAG = [CLEAN[0], LAGGING, *CLEAN[2:]]  # c's log score lagging
T = Thresholds()  # alert 0.6, release at 0.6 after 5 calm beats


class Script:
    """The beats' threats and agents, read by the arbiter in place of its own."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.beats: list[tuple[float, list[AgentSignals]]] = []
        real_read = arbiter_module.read_beat

        def read(memory: Any, report: Any, config: Any) -> Any:
            memory, _ = real_read(memory, report, config)
            threat, agents = self.beats[self.index[report.seq]]
            self.threat = threat
            return memory, dataclasses.replace(beat(agents), portfolio=report.portfolio,
                                               seq=report.seq)

        monkeypatch.setattr(arbiter_module, "read_beat", read)
        monkeypatch.setattr(step_module, "aggregate_recommendations",
                            lambda cores, genome: vector(threat=self.threat, stability=0.0))
        self.history = simulated_history(60, seed=1)
        self.reports = list(self.history.beats(self.history.name))
        self.index = {r.seq: k for k, r in enumerate(self.reports)}

    def run(self, arbiter: Arbiter, beats: list[tuple[float, list[AgentSignals]]],
            start: int = 0) -> tuple[list[Decision], list[Any]]:
        """Observe ``beats`` from report ``start`` on: the decisions and alert_closed events."""
        self.beats[start:start + len(beats)] = beats
        self.beats += [(0.0, list(QUIET))] * (len(self.reports) - len(self.beats))
        out, closed = [], []
        for report in self.reports[start:start + len(beats)]:
            (d,) = arbiter.observe(report)
            out.append(d)
            closed.append(arbiter.alert_closed(report.portfolio))
        return out, closed


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    return Script(monkeypatch)


def _alerts(decisions: list[Decision]) -> list[int]:
    """The positions of the ALERTs among ``decisions``."""
    return [k for k, d in enumerate(decisions) if d.action is Action.ALERT]


def test_a_kind_quiet_for_release_beats_beats_raises_the_alert_again(script: Script) -> None:
    """c's lagging score opens the episode; the threat stays over the alert threshold (the
    episode open) while c is clean: back after ``release_beats`` quiet beats it is an ALERT
    again, back sooner it is held."""
    r = T.release_beats
    beats = ([(0.7, LAG)] + [(0.65, QUIET)] * (r - 1)
             + [(0.7, LAG)]  # quiet r - 1 beats: still named, held
             + [(0.65, QUIET)] * r + [(0.7, LAG)])  # quiet r: forgotten
    decisions, _ = script.run(Arbiter(), beats)
    again = 2 * r + 1
    assert _alerts(decisions) == [0, again]
    assert decisions[r].signals["alert_held"] == 1.0
    assert decisions[again].signals["raised_again"] == 1.0
    assert decisions[again].signals["episode_new:c"] == 1.0


def test_the_close_lists_every_agent_the_episode_alerted_on(script: Script) -> None:
    """c alerted on at beat 0, then quiet until the episode closes: its name is forgotten
    on the way but the close event still lists it (with bad, alerted on later)."""
    r = T.release_beats
    beats = ([(0.7, LAG)] + [(0.65, QUIET)] * (r + 1)
             + [(0.7, [BAD, *QUIET])] + [(0.3, QUIET)] * r)
    arbiter = Arbiter()
    decisions, closed = script.run(arbiter, beats)
    assert _alerts(decisions) == [0, r + 2]
    ends = [c for c in closed if c is not None]
    assert len(ends) == 1 and closed[-1] is ends[0]
    assert ends[0]["agents"] == ["bad", "c"] and ends[0]["since"] == decisions[0].seq
    assert not any(n.endswith(":c") for n in ends[0]["named"])  # c's kind was forgotten


def test_a_checkpoint_without_alerted_derives_it_from_the_names(script: Script) -> None:
    arbiter = Arbiter()
    script.run(arbiter, [(0.7, LAG)])
    name = script.history.name
    doc = json.loads(arbiter.checkpoint_state(name)[len(_MAGIC):-32])
    assert doc["episode"]["alerted"] == ["c"]
    del doc["episode"]["alerted"]
    doc["episode"]["named"], doc["episode"]["quiet"] = ["lagging:b", "c"], [0, 0]
    restored = Arbiter()
    restored.restore_state(name, _sealed(doc), agents=script.history.agents)
    assert restored.state(name).episode.alerted == ("b", "c")


def test_a_restored_bare_name_stays_held_while_its_agent_shows_anomalies(
        script: Script) -> None:
    """A checkpoint from before the kinds named agent c bare: c lagging every beat over
    the alert threshold (its kind changing too) is held beat after beat, past
    ``release_beats``; once c is quiet ``release_beats`` beats the name is forgotten."""
    arbiter = Arbiter()
    script.run(arbiter, [(0.7, [BAD, *QUIET])])  # an episode open, naming bad
    name = script.history.name
    doc = json.loads(arbiter.checkpoint_state(name)[len(_MAGIC):-32])
    doc["episode"]["named"], doc["episode"]["quiet"] = ["c"], [0]
    del doc["episode"]["alerted"]
    restored = Arbiter()
    restored.restore_state(name, _sealed(doc), agents=script.history.agents)
    r = T.release_beats
    drifting_c = agent("c", drifting=True)
    beats = [(0.7, [CLEAN[0], LAGGING if k % 2 else drifting_c, *CLEAN[2:]])
             for k in range(2 * r + 2)]
    decisions, _ = script.run(restored, beats, start=1)
    assert _alerts(decisions) == []
    assert restored.state(name).episode.named == ("c",)
    decisions, _ = script.run(restored, [(0.65, QUIET)] * r + [(0.7, LAG)],
                              start=2 * r + 3)
    assert _alerts(decisions) == [r]


def test_a_quarantined_agent_raises_no_alert_again() -> None:
    """The open episode named bad's breach only; bad, held out, shows a VaR below the
    others': no ALERT again (held), while the same for an agent in the consensus is."""
    ep = AlertEpisode(True, 3, 0, ("breach:bad",))
    signals = dataclasses.replace(beat([BAD, *CLEAN]), seq=9)
    held = decide(vector(threat=0.7, stability=0.0), signals, ("bad",), T, ep)
    assert held.action is not Action.ALERT and held.signals["alert_held"] == 1.0
    again = decide(vector(threat=0.7, stability=0.0), signals, (), T, ep)
    assert again.action is Action.ALERT and again.signals["episode_new:bad"] == 1.0
    # another agent's new kind still raises it, naming that agent anew, not bad
    other = dataclasses.replace(beat([BAD, *LAG]), seq=9)
    d = decide(vector(threat=0.7, stability=0.0), other, ("bad",), T, ep)
    assert d.action is Action.ALERT and d.signals["episode_new:c"] == 1.0
    assert "episode_new:bad" not in d.signals
    # a closed episode: the swarm's alert opens it whoever is held out
    opened = decide(vector(threat=0.7, stability=0.0), signals, ("bad",), T, AlertEpisode())
    assert opened.action is Action.ALERT and opened.signals["raised_again"] == 0.0


def test_alerted_must_be_names_not_one_string() -> None:
    with pytest.raises(InvalidParameter):
        AlertEpisode(True, 0, 0, ("lagging:c",), (), "cd")  # type: ignore[arg-type]
    assert AlertEpisode(True, 0, 0, ("lagging:c",), (), ("b",)).alerted == ("b", "c")


@pytest.mark.parametrize("a", [BAD, LAGGING, agent("f", failed=True),
                               AgentSignals("h", (False,), (0.0,), 0.0, False, True, False,
                                            False, False)])
def test_the_kinds_a_decision_records_read_back_as_the_agents_kinds(a: AgentSignals) -> None:
    """One table of kinds: what ``agent_kinds`` records reads back (``signal_kinds``) as the
    kinds ``anomaly_kinds`` names, each kind's agent found by ``named_agent``."""
    kinds = anomaly_kinds(a)
    assert kinds and signal_kinds(agent_kinds(a)) == set(kinds)
    assert {named_agent(k) for k in kinds} == {a.agent}


def test_the_close_of_a_beat_is_found_by_its_seq_after_later_beats() -> None:
    """``alert_closed(portfolio, seq)`` finds a close after later beats were observed (a
    catch-up's reports are handed over together); without ``seq``, the last beat's only."""
    from collections import deque

    from swarmvar.arbiter.arbiter import Arbiter

    arb = Arbiter.__new__(Arbiter)
    close = {"type": "alert_closed", "since": 3, "until": 7, "agents": ["GarchT"]}

    class _P:
        closed = None
        closes = deque([close], maxlen=64)

    arb._seen = lambda portfolio: _P() if portfolio == "p" else None  # type: ignore[method-assign]
    assert arb.alert_closed("p", 7) == close
    assert arb.alert_closed("p", 8) is None and arb.alert_closed("p") is None
    assert arb.alert_closed("q", 7) is None
