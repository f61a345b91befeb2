"""Alert episodes: an ALERT opens one, beats over the threshold while it is open are held
unless they name a new agent, and it closes after ``release_beats`` calm beats; the episode
is in the checkpoint, and a checkpoint from before episodes restores with none open."""

from __future__ import annotations

import copy
import hashlib
import json
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
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.replay import replay
from swarmvar.errors import InvalidParameter
from swarmvar.types import Action, Decision

from .test_decide_cores import BAD, CLEAN, agent, beat, vector

LAGGING = agent("c", lagging=True)
DEFAULT = Thresholds()


def _run(episode: AlertEpisode, threats: list[float], agents: list[Any],
         t: Thresholds = DEFAULT) -> tuple[list[Decision], AlertEpisode]:
    out = []
    for threat in threats:
        d = decide(vector(threat=threat, stability=0.0), beat(agents), (), t, episode)
        episode = episode.after(d, t)
        out.append(d)
    return out, episode


def test_an_episode_opens_holds_and_closes_after_release_beats_calm_beats() -> None:
    t = Thresholds()
    (first,), ep = _run(AlertEpisode(), [0.7], [BAD, *CLEAN])
    assert first.action is Action.ALERT and first.agents == ("bad",)
    assert ep == AlertEpisode(True, 7, 0, ("bad",))
    held, ep = _run(ep, [0.7, 0.99], [BAD, *CLEAN])  # over alert, and over quarantine
    assert all(d.action is not Action.ALERT for d in held) and ep.open and ep.calm == 0
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
    held, ep = _run(ep, [0.65], [BAD, *CLEAN], t)  # below alert, not below release
    assert held[0].action is not Action.ALERT and ep.open and ep.calm == 0
    _, ep = _run(ep, [0.5, 0.5, 0.5], [BAD, *CLEAN], t)
    assert not ep.open


def test_a_new_agent_raises_the_alert_again_inside_the_episode() -> None:
    _, ep = _run(AlertEpisode(), [0.7], [BAD, *CLEAN])
    (d,), ep = _run(ep, [0.7], [BAD, LAGGING, *CLEAN[1:]])
    assert d.action is Action.ALERT and d.agents == ("bad", "c")
    assert "new in the alert episode open since beat 7: c" in d.reason
    assert ep.named == ("bad", "c") and ep.since == 7
    (held,), _ = _run(ep, [0.7], [LAGGING, *CLEAN[1:]])  # c alone: already named
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


@pytest.mark.parametrize("kw", [dict(release=0.7), dict(release=-0.1),
                                dict(release=float("nan")), dict(release_beats=-1),
                                dict(release_beats=1.5), dict(release_beats=True)])
def test_bad_release_settings_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        Thresholds(**kw)


def test_release_level_defaults_to_the_alert_threshold() -> None:
    assert Thresholds(alert=0.7).release_level == 0.7
    assert Thresholds(release=0.55).release_level == 0.55


@pytest.mark.parametrize("kw", [dict(open=1), dict(since=-2), dict(calm=-1),
                                dict(named=(3,))])
def test_a_malformed_episode_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        AlertEpisode(**kw)


def _reference_alerts(decisions: list[Decision], t: Thresholds) -> list[int]:
    """The episode rule written out plainly over the every-beat arbiter's decisions (same
    threats: a decision does not feed back into the signals or the threat)."""
    raised, open_, calm, named = [], False, 0, set()
    for d in decisions:
        agents = set(d.agents)
        alert = d.action is Action.ALERT  # every-beat: ALERT iff over the threshold
        if alert and (not open_ or agents - named):
            raised.append(d.seq)
            open_, calm, named = True, 0, named | agents if open_ else agents
        elif open_:
            calm = 0 if d.threat >= t.release_level else calm + 1
            if calm >= t.release_beats:
                open_, calm, named = False, 0, set()
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
    every_t = Thresholds(release=t.release, release_beats=0)
    replay(calm_history, Arbiter(ArbiterConfig(thresholds=every_t)), on_decision=every.append)
    replay(calm_history, Arbiter(ArbiterConfig(thresholds=t)), on_decision=episodes.append)
    assert [d.threat for d in every] == [d.threat for d in episodes]
    alerts = [d.seq for d in episodes if d.action is Action.ALERT]
    n_every = sum(d.action is Action.ALERT for d in every)
    assert n_every > len(alerts) > 0  # the calm swarm still crosses the threshold
    assert alerts == _reference_alerts(every, t)


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
