"""Alert episodes: an ALERT opens one, beats over the threshold while it is open are held
unless an agent shows a kind of anomaly the episode has not named it for (or the threat is
at the quarantine level), and it closes after ``release_beats`` calm beats (an
``alert_closed`` event); a held beat says so; the episode is in the checkpoint, and a
checkpoint from before episodes restores with none open."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from swarmvar.arbiter import (
    SEED_THRESHOLDS,
    AlertEpisode,
    Arbiter,
    ArbiterConfig,
    BeatHistory,
    Thresholds,
    decide,
)
from swarmvar.arbiter.checkpoint import _MAGIC
from swarmvar.arbiter.decide import anomaly_kinds
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.replay import replay
from swarmvar.errors import InvalidParameter, InvalidState
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.types import Action, Decision

from .test_decide_cores import BAD, CLEAN, agent, beat, vector

LAGGING = agent("c", lagging=True)
DEFAULT = Thresholds()


def _run(episode: AlertEpisode, threats: list[float], agents: list[Any],
         t: Thresholds = DEFAULT, seq: int = 7) -> tuple[list[Decision], AlertEpisode]:
    """Decide one beat per threat (seqs ``seq``, ``seq + 1``, ...), moving the episode on."""
    out = []
    for k, threat in enumerate(threats):
        signals = dataclasses.replace(beat(agents), seq=seq + k)
        d = decide(vector(threat=threat, stability=0.0), signals, (), t, episode)
        episode = episode.after(d, t)
        out.append(d)
    return out, episode


def test_an_episode_opens_holds_and_closes_after_release_beats_calm_beats() -> None:
    t = Thresholds()
    (first,), ep = _run(AlertEpisode(), [0.7], [BAD, *CLEAN])
    assert first.action is Action.ALERT and first.agents == ("bad",)
    assert ep == AlertEpisode(True, 7, 0, anomaly_kinds(BAD))
    assert ep.named == ("breach:bad", "drifting:bad", "outside_low:bad")
    held, ep = _run(ep, [0.7, 0.99], [BAD, *CLEAN])  # over alert; over quarantine: quarantined
    assert held[0].action is not Action.ALERT and held[1].action is Action.QUARANTINE
    assert ep.open and ep.calm == 0
    calm, ep = _run(ep, [0.5] * (t.release_beats - 1), [BAD, *CLEAN])
    assert ep.open and ep.calm == t.release_beats - 1
    assert all(d.action is not Action.ALERT for d in calm)
    _, ep = _run(ep, [0.5], [BAD, *CLEAN])
    assert ep == AlertEpisode()
    (again,), ep = _run(ep, [0.7], [BAD, *CLEAN])
    assert again.action is Action.ALERT and ep.open


def test_a_beat_at_the_release_level_restarts_the_calm_count() -> None:
    t = Thresholds(alert=0.7, release=0.6, release_beats=3)
    _, ep = _run(AlertEpisode(), [0.8, 0.5, 0.5], [BAD, *CLEAN], t)
    assert ep.open and ep.calm == 2
    held, ep = _run(ep, [0.6], [BAD, *CLEAN], t)  # exactly the release level: not calm
    assert held[0].action is not Action.ALERT and ep.open and ep.calm == 0
    _, ep = _run(ep, [0.5, 0.5], [BAD, *CLEAN], t)
    held, ep = _run(ep, [0.65], [BAD, *CLEAN], t)  # below alert, not below release
    assert held[0].action is not Action.ALERT and ep.open and ep.calm == 0
    _, ep = _run(ep, [0.5, 0.5, 0.5], [BAD, *CLEAN], t)
    assert not ep.open


def test_a_new_agent_raises_the_alert_again_inside_the_episode() -> None:
    _, ep = _run(AlertEpisode(), [0.7], [BAD, *CLEAN])
    (d,), ep = _run(ep, [0.7], [BAD, LAGGING, *CLEAN[1:]], seq=9)
    assert d.action is Action.ALERT and d.agents == ("bad", "c")
    assert "new in the alert episode open since beat 7: c" in d.reason
    assert (d.signals["raised_again"], d.signals["episode_since"]) == (1.0, 7.0)
    assert d.signals["episode_new:c"] == 1.0 and "episode_new:bad" not in d.signals
    assert ep.agents() == ("bad", "c") and ep.since == 7  # not the raising beat's seq 9
    (held,), _ = _run(ep, [0.7], [LAGGING, *CLEAN[1:]], seq=10)  # c alone: already named
    assert held.action is not Action.ALERT


def test_a_held_beat_falls_through_to_the_next_rule() -> None:
    _, ep = _run(AlertEpisode(), [0.7], [LAGGING, *CLEAN[1:]])
    d = decide(vector(threat=0.7), beat([LAGGING, *CLEAN[1:]]), (), Thresholds(), ep)
    assert d.action is Action.APPLY_BALANCE and d.agents == ("c",)
    assert decide(vector(threat=0.7), beat([LAGGING, *CLEAN[1:]]), (), Thresholds(),
                  None).action is Action.ALERT  # no episode given: the design's rule


def test_release_beats_zero_is_the_design_every_beat_alerts() -> None:
    assert SEED_THRESHOLDS.release_beats == 0
    ds, ep = _run(AlertEpisode(), [0.7, 0.7, 0.7], [BAD, *CLEAN], SEED_THRESHOLDS)
    assert [d.action for d in ds] == [Action.ALERT] * 3 and ep == AlertEpisode()


@pytest.mark.parametrize("kw", [dict(release=0.7), dict(release=-0.1), dict(release=0.0),
                                dict(alert=0.0), dict(release=float("nan")),
                                dict(release_beats=-1),
                                dict(release_beats=1.5), dict(release_beats=True)])
def test_bad_release_settings_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        Thresholds(**kw)


def test_release_level_defaults_to_the_alert_threshold() -> None:
    assert Thresholds(alert=0.7).release_level == 0.7
    assert Thresholds(release=0.55).release_level == 0.55


def test_release_zero_still_allows_every_beat_alerts_at_alert_zero() -> None:
    assert Thresholds(alert=0.0, release_beats=0).release_level == 0.0


@pytest.mark.parametrize("kw", [dict(open=1), dict(since=-2), dict(calm=-1),
                                dict(named=(3,)), dict(named="bad"), dict(named=5)])
def test_a_malformed_episode_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        AlertEpisode(**kw)


def test_named_is_a_sorted_tuple_of_unique_names() -> None:
    ep = AlertEpisode(True, 3, 0, ["lagging:b", "breach:a", "lagging:b"])  # type: ignore
    assert ep.named == ("breach:a", "lagging:b") and hash(ep) == hash(
        AlertEpisode(True, 3, 0, ("lagging:b", "breach:a")))
    assert ep.agents() == ("a", "b")


_KIND_OF = {"breaches": "breach", "drift_z": "drifting", "score_gap": "lagging",
            "failed": "failed"}


def _kinds(d: Decision) -> set[str]:
    """The (kind, agent) names of a decision, read from its per-agent signals."""
    out = set()
    for key, v in d.signals.items():
        kind, _, name = key.partition(":")
        if kind in _KIND_OF:
            out.add(f"{_KIND_OF[kind]}:{name}")
        elif kind == "outside":
            out.add(f"{'outside_low' if v < 0 else 'outside_high'}:{name}")
    return out


def _reference_alerts(decisions: list[Decision], seen: list[set[str]], t: Thresholds
                      ) -> list[int]:
    """The episode rule written out plainly over the every-beat arbiter's decisions (same
    threats: a decision does not feed back into the signals or the threat) and each beat's
    kinds of anomaly ``seen``: a named kind unseen for ``release_beats`` beats is
    forgotten."""
    raised, open_, calm = [], False, 0
    quiet: dict[str, int] = {}  # named kind -> beats since it was last seen
    for d, now in zip(decisions, seen, strict=True):
        kinds = _kinds(d)
        alert = d.action is Action.ALERT  # every-beat: ALERT iff over the threshold
        if alert and (not open_ or kinds - set(quiet) or d.threat >= t.quarantine):
            raised.append(d.seq)
            if not open_:
                open_, calm, quiet = True, 0, dict.fromkeys(kinds, 0)
                continue
            calm = 0
            quiet.update(dict.fromkeys(kinds, 0))
        elif open_:
            calm = 0 if d.threat >= t.release_level else calm + 1
            if calm >= t.release_beats:
                open_, calm, quiet = False, 0, {}
                continue
        elif not open_:
            continue
        quiet = {k: 0 if k in now else q + 1 for k, q in quiet.items()}
        quiet = {k: q for k, q in quiet.items() if q < t.release_beats}
    return raised


@pytest.fixture(scope="module")
def calm_history() -> BeatHistory:
    """Six agents, all forecasting the true volatility: a calm, calibrated swarm."""
    return simulated_history(600, seed=5, scales=(1.0,) * 6)


@pytest.mark.parametrize("t", [Thresholds(), Thresholds(release=0.55, release_beats=10)])
def test_on_a_calm_history_alerts_are_the_episode_openings(calm_history: BeatHistory,
                                                           t: Thresholds) -> None:
    every: list[Decision] = []
    episodes: list[Decision] = []
    seen: list[set[str]] = []
    every_t = Thresholds(release=t.release, release_beats=0)
    plain = Arbiter(ArbiterConfig(thresholds=every_t))

    def keep(d: Decision) -> None:
        every.append(d)
        seen.append({k for a in plain.last_signals(d.portfolio).agents if a.anomalies
                     for k in anomaly_kinds(a)})

    replay(calm_history, plain, on_decision=keep)
    replay(calm_history, Arbiter(ArbiterConfig(thresholds=t)), on_decision=episodes.append)
    assert [d.threat for d in every] == [d.threat for d in episodes]
    alerts = [d.seq for d in episodes if d.action is Action.ALERT]
    n_every = sum(d.action is Action.ALERT for d in every)
    assert n_every > len(alerts) > 0  # the calm swarm still crosses the threshold
    assert alerts == _reference_alerts(every, seen, t)


def _sealed(doc: dict[str, Any]) -> bytes:
    body = _MAGIC + json.dumps(doc, sort_keys=True).encode()
    return body + hashlib.sha256(body).digest()


def _open_episode_checkpoint(history: BeatHistory) -> tuple[Arbiter, int]:
    """An arbiter stopped on a beat where its alert episode is open."""
    a = Arbiter()
    for report in history.beats(history.name):
        a.observe(report)
        if a.state(history.name).episode.open:
            return a, report.seq
    raise AssertionError("no alert episode opened on the history")


def test_the_episode_is_checkpointed_and_a_restart_decides_as_the_uninterrupted_run(
        calm_history: BeatHistory) -> None:
    name = calm_history.name
    first, stop = _open_episode_checkpoint(calm_history)
    blob = first.checkpoint_state(name)
    restored = Arbiter()
    restored.restore_state(name, blob, agents=calm_history.agents)
    assert restored.state(name).episode == first.state(name).episode
    rest = [r for r in calm_history.beats(name) if r.seq > stop]
    assert [first.observe(r) for r in rest] == [restored.observe(r) for r in rest]


def test_a_checkpoint_from_before_episodes_restores_with_none_open(
        calm_history: BeatHistory) -> None:
    name = calm_history.name
    first, stop = _open_episode_checkpoint(calm_history)
    doc = json.loads(first.checkpoint_state(name)[len(_MAGIC):-32])
    old = copy.deepcopy(doc)
    del old["episode"]
    restored = Arbiter()
    restored.restore_state(name, _sealed(old), agents=calm_history.agents)
    state = restored.state(name)
    assert state.episode == AlertEpisode()
    assert (state.genome, state.beats, state.memory) == (first.state(name).genome, stop,
                                                         first.state(name).memory)
    # it goes on deciding: the next beat over the threshold opens an episode again
    for r in calm_history.beats(name):
        if r.seq > stop and restored.observe(r)[0].action is Action.ALERT:
            assert restored.state(name).episode.open
            break
    else:
        raise AssertionError("no ALERT after the restore")


def test_a_new_kind_of_anomaly_of_a_named_agent_raises_the_alert_again() -> None:
    """Named for a lagging score, then drifting (and below the others) in the same
    episode: an ALERT again, naming it for the new kinds."""
    _, ep = _run(AlertEpisode(), [0.7], [LAGGING, *CLEAN[1:]])
    assert ep.named == ("lagging:c",)
    drifting = agent("c", drifting=True, low=True, lagging=True)
    (d,), ep = _run(ep, [0.7], [drifting, *CLEAN[1:]], seq=8)
    assert d.action is Action.ALERT and d.signals["episode_new:c"] == 1.0
    assert ep.named == ("drifting:c", "lagging:c", "outside_low:c") and ep.since == 7
    (held,), _ = _run(ep, [0.7], [drifting, *CLEAN[1:]], seq=9)
    assert held.action is not Action.ALERT


def test_a_held_beat_says_so_in_its_reason_and_signals() -> None:
    _, ep = _run(AlertEpisode(), [0.7], [LAGGING, *CLEAN[1:]], seq=4)
    (d,), _ = _run(ep, [0.93], [LAGGING, *CLEAN[1:]], seq=5)  # stability 0: no balance
    assert d.action is Action.NOOP and d.signals["alert_held"] == 1.0
    assert d.signals["episode_since"] == 4.0
    assert "no threshold reached" not in d.reason
    assert "alert held (threat 0.930 >= 0.6)" in d.reason and "since beat 4" in d.reason
    assert d.reason.endswith("; named already: c (score lag)")
    fell = decide(vector(threat=0.7), dataclasses.replace(beat([LAGGING, *CLEAN[1:]]), seq=5),
                  (), DEFAULT, ep)
    assert fell.action is Action.APPLY_BALANCE and fell.signals["alert_held"] == 1.0
    assert "alert held" in fell.reason
    (calm,), _ = _run(AlertEpisode(), [0.3], [LAGGING, *CLEAN[1:]])
    assert "alert_held" not in calm.signals and calm.reason == "no threshold reached"


def test_the_quarantine_level_alert_is_never_held() -> None:
    """An agent that cannot be quarantined (only lagging) at threat 0.97 inside an episode
    that has named it already: still an ALERT, in words of the quarantine level."""
    _, ep = _run(AlertEpisode(), [0.7], [LAGGING, *CLEAN[1:]])
    (d,), after = _run(ep, [0.97], [LAGGING, *CLEAN[1:]], seq=8)
    assert d.action is Action.ALERT and d.agents == ("c",)
    assert "at quarantine level but no agent to quarantine" in d.reason
    assert d.reason.endswith("; in the alert episode open since beat 7")  # no new agent
    assert "episode_new:c" not in d.signals
    assert (d.signals["raised_again"], d.signals["episode_since"]) == (1.0, 7.0)
    assert after.since == 7 and after.open


def test_an_open_episode_restored_into_release_beats_zero_holds_nothing() -> None:
    """An episode naming every kind of every agent, given to an arbiter without episodes:
    every beat over the threshold is an ALERT, with no episode marks."""
    t = Thresholds(release_beats=0)
    ep = AlertEpisode(True, 1, 0, ("c", "b", "d", "e"))  # bare names: every kind
    ds, after = _run(ep, [0.7, 0.7], [LAGGING, *CLEAN[1:]], t)
    assert [d.action for d in ds] == [Action.ALERT] * 2 and after == AlertEpisode()
    assert not any(k in ds[0].signals for k in ("raised_again", "episode_since"))
    # a bare name (a checkpoint from before the kinds) holds every kind of that agent
    held, _ = _run(ep, [0.7], [LAGGING, *CLEAN[1:]])
    assert held[0].action is not Action.ALERT


def _observe_until(a: Arbiter, history: BeatHistory, ok: Any) -> int:
    for report in history.beats(history.name):
        a.observe(report)
        if ok(a.state(history.name).episode):
            return report.seq
    raise AssertionError("the history never reached the episode state looked for")


def test_a_restart_inside_an_episode_with_calm_beats_decides_as_the_uninterrupted_run(
        calm_history: BeatHistory) -> None:
    """Stopped while an episode is open and has counted calm beats: the restored arbiter
    has the same episode (calm count included) and the same decisions after."""
    name = calm_history.name
    first = Arbiter()
    stop = _observe_until(first, calm_history, lambda e: e.open and e.calm > 0)
    restored = Arbiter()
    restored.restore_state(name, first.checkpoint_state(name), agents=calm_history.agents)
    assert restored.state(name).episode == first.state(name).episode
    assert restored.state(name).episode.calm > 0
    rest = [r for r in calm_history.beats(name) if r.seq > stop]
    assert [first.observe(r) for r in rest] == [restored.observe(r) for r in rest]


def test_a_checkpointed_episode_naming_a_string_is_refused(calm_history: BeatHistory) -> None:
    name = calm_history.name
    first = Arbiter()
    _observe_until(first, calm_history, lambda e: e.open)
    doc = json.loads(first.checkpoint_state(name)[len(_MAGIC):-32])
    doc["episode"]["named"] = "abc"
    with pytest.raises(InvalidState, match="naming 'abc'.*needs lists"):
        Arbiter().restore_state(name, _sealed(doc), agents=calm_history.agents)
    doc["episode"]["named"], doc["episode"]["quiet"] = ["breach:a"], "0"
    with pytest.raises(InvalidState, match="needs lists"):
        Arbiter().restore_state(name, _sealed(doc), agents=calm_history.agents)


def test_the_end_of_an_episode_is_ledgered(calm_history: BeatHistory, tmp_path: Path) -> None:
    """Each episode's close is an ``alert_closed`` event on its closing beat, with the beat
    it opened and the agents it named, as the episodes of the decisions say."""
    decisions: list[Decision] = []
    said: list[Any] = []
    with Ledger.open(tmp_path) as ledger:
        arbiter = Arbiter(ledger=ledger)
        assert arbiter.alert_closed(calm_history.name) is None  # no beat seen
        replay(calm_history, arbiter, on_decision=lambda d: (
            decisions.append(d), said.append(arbiter.alert_closed(d.portfolio))))
        closed = [e.data["details"] for e in ledger.entries()
                  if e.kind == EntryKind.ACTION and e.data["type"] == "alert_closed"]
    t, ep, expected = DEFAULT, AlertEpisode(), []
    for d in decisions:
        after = ep.after(d, t)
        if ep.open and not after.open:
            expected.append((ep.since, d.seq, list(ep.agents()), list(ep.named)))
        ep = after
    assert len(expected) > 1
    assert [(c["since"], c["until"], c["agents"], c["named"]) for c in closed] == expected
    assert [{**c, "type": "alert_closed"} for c in said if c is not None] == [
        {k: c[k] for k in ("type", "since", "until", "agents", "named")} for c in closed]
    assert all(u - s >= t.release_beats for s, u, *_ in expected)


def test_a_kind_unseen_for_release_beats_beats_is_forgotten_and_raises_again() -> None:
    """Named for a lagging score; the episode stays open (threat at the release level) while
    c is clean for ``release_beats`` beats: its lagging score, back, is an ALERT again."""
    t = Thresholds(alert=0.7, release=0.6, release_beats=3)
    _, ep = _run(AlertEpisode(), [0.8], [LAGGING, *CLEAN[1:]], t)
    steps = [(0.65, CLEAN), (0.65, CLEAN)]
    for threat, agents in steps:  # quiet 1, 2: still named
        d = decide(vector(threat=threat), beat(agents), (), t, ep)
        ep = ep.after(d, t, [])
    assert ep.named == ("lagging:c",) and ep.quiet == (2,)
    (held,), _ = _run(ep, [0.8], [LAGGING, *CLEAN[1:]], t)  # seen within 3 beats: held
    assert held.action is not Action.ALERT
    ep = ep.after(decide(vector(threat=0.65), beat(CLEAN), (), t, ep), t, [])
    assert ep.open and ep.named == () and ep.since == 7
    (again,), _ = _run(ep, [0.8], [LAGGING, *CLEAN[1:]], t, seq=20)
    assert again.action is Action.ALERT and again.signals["raised_again"] == 1.0
    # seen again (anywhere in the beat) restarts its count
    seen_ep = AlertEpisode(True, 7, 0, ("lagging:c",), (2,)).after(
        decide(vector(threat=0.65), beat([LAGGING]), (), t, None), t, ["lagging:c"])
    assert seen_ep.quiet == (0,)


@pytest.mark.parametrize("kw", [dict(named=("a", "b"), quiet=(1,)), dict(named=("a",),
                                quiet=(-1,)), dict(named=("a",), quiet="1")])
def test_malformed_quiet_counts_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        AlertEpisode(True, 0, 0, **kw)
