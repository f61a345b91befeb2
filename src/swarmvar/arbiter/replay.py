"""Does the arbiter help? Replay a backtest's beats through it, with its actions and without.

:func:`replay` drives an :class:`~.arbiter.Arbiter` over a
:class:`~.history.BeatHistory` and records, per day, the agents it holds
out and the weight factors it asks for, as the runtime would apply them:
what the arbiter decides at beat ``i`` changes the consensus of the next
beat (day ``i + 1``). :func:`applied_consensus` recomputes that day's
consensus from the agents' forecasts with the swarm's policy (the same
track-record weights, robust rule and level rearrangement as the
backtest's consensus row: the weights of the agents kept, times their
factors, renormalized); days without an action keep the backtest's
consensus. Refits an APPLY_OPTIMIZE requests are counted, not simulated:
the agents' forecasts are the backtest's.

The replay's beat time is simulated (deterministic): ``load`` of the
pulse budget plus ``optional`` of it scaled by the genome's optional work.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..consensus import Policy, TrackRecord, agent_weights, rearrange_levels
from ..consensus.combine import aggregate_rows
from ..errors import InvalidParameter
from ..models.base import check_real
from ..types import Action, Decision
from ..validation import christoffersen, fz0_loss, kupiec
from .arbiter import Arbiter, threat_labels
from .drill import Drift, drifted
from .history import BeatHistory
from .threat import FEATURES, SEED_MODEL, ThreatModel, compare_auc, fit_threat_model, roc_auc

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ReplayOutcome:
    """What the arbiter did over a history: per day ``(T, n)`` masks and factors applied to
    that day's consensus, per beat the threat ``(T,)`` (NaN on day 0) and features
    ``(T, F)`` and consensus breach flag ``(T,)``, and the count of each action."""

    excluded: NDArray[np.bool_]
    factors: FloatArray
    threat: FloatArray
    features: FloatArray
    breached: NDArray[np.bool_]
    counts: Mapping[Action, int]
    refits: int
    late: int


def check_replay(history: object, arbiter: object) -> None:
    """A replay needs a :class:`BeatHistory` and an :class:`Arbiter`, else InvalidParameter."""
    if not isinstance(history, BeatHistory):
        raise InvalidParameter(f"history must be a BeatHistory (e.g. cached_history(...)), not "
                               f"{type(history).__name__}")
    if not isinstance(arbiter, Arbiter):
        raise InvalidParameter(f"arbiter must be an Arbiter, not {type(arbiter).__name__}")


def replay(history: BeatHistory, arbiter: Arbiter, *, load: float = 0.7,
           optional: float = 0.5,
           on_beat: Callable[[int, int], None] | None = None,
           on_decision: Callable[[Decision], None] | None = None) -> ReplayOutcome:
    """Drive ``arbiter`` over every beat of ``history`` (see the module docstring).

    ``on_decision`` sees each beat's decision; a drift drill replays
    :func:`~.drill.drifted` of the history.
    """
    check_replay(history, arbiter)
    load = check_real("load (the share of the pulse budget a beat uses)", load, 0.0, 1e6)
    optional = check_real("optional (the budget share of optional work)", optional, 0.0, 1e6)
    days, n = history.days, len(history.agents)
    excluded = np.zeros((days, n), dtype=bool)
    factors = np.ones((days, n))
    threat = np.full(days, math.nan)
    features = np.full((days, len(FEATURES)), math.nan)
    breached = np.zeros(days, dtype=bool)
    counts: Counter[Action] = Counter()
    refits = 0
    index = {a: j for j, a in enumerate(history.agents)}
    budget = arbiter.config.pulse.budget
    name = history.name
    for report in history.beats(name):
        i = report.seq
        work = arbiter.optional_work(name)
        seconds = budget * (load + optional * work)
        (decision,) = arbiter.observe(report, beat_seconds=seconds)
        counts[decision.action] += 1
        if on_decision is not None:
            on_decision(decision)
        if decision.action is Action.APPLY_OPTIMIZE:
            refits += len(decision.agents)
        threat[i] = decision.threat
        signals = arbiter.last_signals(name)
        features[i] = signals.features
        breached[i] = any(signals.consensus_breaches)
        if i + 1 < days:
            for agent in arbiter.excluded(name):
                excluded[i + 1, index[agent]] = True
            for agent, f in arbiter.weight_factors(name).items():
                factors[i + 1, index[agent]] = f
        if on_beat is not None:
            on_beat(i, days - 1)
    return ReplayOutcome(excluded, factors, threat, features, breached, dict(counts), refits,
                         arbiter.state(name).late)


def applied_consensus(history: BeatHistory, excluded: NDArray[np.bool_], factors: FloatArray,
                      policy: Policy) -> FloatArray:
    """The consensus ``(L, 6, T)`` with the arbiter's exclusions and factors applied.

    Days with no exclusion and all factors 1 keep the history's consensus.
    """
    out = history.consensus.copy()
    levels, n = len(history.alphas), len(history.agents)
    acted = np.flatnonzero(excluded.any(axis=1) | (factors != 1.0).any(axis=1))
    for t in acted:
        prior = day_weights(history, int(t), policy)
        keep = ~excluded[t]
        w = prior[keep] * factors[t, keep]
        w = w / w.sum() if w.sum() > 0 else np.full(int(keep.sum()), 1.0 / keep.sum())
        day = np.empty((levels, 6))
        for k in range(levels):
            rows = history.cols[k, :, t, :].T[keep]  # (m, 6)
            var, es, vi, ei, _ = aggregate_rows(rows, policy, w, total=n)
            day[k] = (var, es, *vi, *ei)
        if levels > 1:
            v, e, vi2, ei2 = rearrange_levels(
                history.alphas, day[:, 0:1], day[:, 1:2], day[:, None, 2:4], day[:, None, 4:6])
            day = np.column_stack([v[:, 0], e[:, 0], vi2[:, 0], ei2[:, 0]])
        out[:, :, t] = day
    return out


def day_weights(history: BeatHistory, t: int, policy: Policy) -> FloatArray:
    """The policy's prior agent weights ``(n,)`` on day ``t`` from days before ``t`` only."""
    n = len(history.agents)
    if t == 0:
        return np.full(n, 1.0 / n)
    start = 0 if policy.window is None else max(0, t - policy.window)
    records = [TrackRecord(history.agents, history.returns[start:t], alpha,
                           history.cols[k, 0, start:t, :], history.cols[k, 1, start:t, :])
               for k, alpha in enumerate(history.alphas)]
    return agent_weights(history.agents, policy, records)


@dataclass(frozen=True)
class LevelScore:
    """One consensus's backtest at one level."""

    alpha: float
    breaches: int
    expected: float
    kupiec_p: float
    christoffersen_p: float
    fz0: float


def score_consensus(history: BeatHistory, consensus: FloatArray, start: int = 0
                    ) -> tuple[LevelScore, ...]:
    """Breaches, Kupiec and Christoffersen p-values and mean FZ0 loss per level, from day
    ``start`` on."""
    losses = -history.returns[start:]
    out = []
    for k, alpha in enumerate(history.alphas):
        var, es = consensus[k, 0, start:], consensus[k, 1, start:]
        hits = losses > var
        out.append(LevelScore(alpha, int(hits.sum()), float((1 - alpha) * hits.size),
                              kupiec(hits, alpha).pvalue, christoffersen(hits).pvalue,
                              float(np.mean(fz0_loss(losses, var, es, alpha)))))
    return tuple(out)


@dataclass(frozen=True)
class ThreatStudy:
    """Out-of-sample AUC of the trained threat model beside the design's fixed one, and
    the DeLong standard error of their difference (beats taken as independent: too small
    for clustered breaches, see :func:`~.threat.block_bootstrap_auc_difference`)."""

    train_beats: int
    test_beats: int
    positives: float
    auc_trained: float
    auc_seed: float
    model: ThreatModel
    difference_se: float = math.nan


def threat_study(features: FloatArray, breached: NDArray[np.bool_], *, horizon: int = 5,
                 train_fraction: float = 0.5, l2: float = 1.0) -> ThreatStudy:
    """Train on the first ``train_fraction`` of beats, score the rest (AUC, ROC).

    ``features (T, F)`` per beat, ``breached (T,)`` the consensus breach flags
    each beat brings; beat ``i``'s label is a breach at beats ``i+1 ..
    i+horizon``. The training labels stop ``horizon`` beats before the test
    begins, so no test outcome is seen in training.
    """
    labels = threat_labels(list(breached), horizon)
    x = features[: labels.size]
    cut = int(train_fraction * labels.size)
    train = slice(0, max(1, cut - horizon))
    test = slice(cut, labels.size)
    model = fit_threat_model(x[train], labels[train], l2=l2,
                             label=f"consensus breach within {horizon} beats")
    trained, seed, y = model.scores(x[test]), SEED_MODEL.scores(x[test]), labels[test]
    if 2 <= int(y.sum()) <= y.size - 2:  # DeLong's comparison: both AUCs and the se
        c = compare_auc(trained, seed, y)
        auc_trained, auc_seed, se = c.auc_a, c.auc_b, c.se
    else:  # too few of a class for a variance: the AUCs alone (NaN with one class)
        auc_trained, auc_seed, se = roc_auc(trained, y), roc_auc(seed, y), math.nan
    return ThreatStudy(train.stop, labels.size - cut, float(y.mean()), auc_trained, auc_seed,
                       model, se)


@dataclass(frozen=True)
class ReplayReport:
    """A replay's decision counts and the consensus's backtest without and with the
    arbiter's actions (days 1 .. T-1, the beats the arbiter saw)."""

    name: str
    days: int
    outcome: ReplayOutcome
    without: tuple[LevelScore, ...]
    with_actions: tuple[LevelScore, ...]
    study: ThreatStudy | None
    #: AUC, on the second half of the beats, of the threats the arbiter itself used
    #: (its model as it was at each beat: the design's, or retrained versions).
    used_auc: float


def replay_report(history: BeatHistory, arbiter: Arbiter, policy: Policy, *,
                  horizon: int = 5, drift: Drift | None = None,
                  on_decision: Callable[[Decision], None] | None = None) -> ReplayReport:
    """Replay, apply the actions to the consensus, score both ways, and run the threat study.

    With ``drift`` the whole report is of the drifted history (:func:`~.drill.drifted`:
    one agent scaled or frozen, the consensus recomputed); ``on_decision`` sees each
    beat's decision (e.g. to find the beats to the drifting agent's quarantine).
    """
    if drift is not None:
        history = drifted(history, drift)
    outcome = replay(history, arbiter, on_decision=on_decision)
    applied = applied_consensus(history, outcome.excluded, outcome.factors, policy)
    try:
        study: ThreatStudy | None = threat_study(outcome.features[1:], outcome.breached[1:],
                                                 horizon=horizon)
    except ValueError:  # one class only in a short history: no AUC to report
        study = None
    labels = threat_labels(list(outcome.breached[1:]), horizon)
    half = slice(labels.size // 2, labels.size)
    used = roc_auc(outcome.threat[1:][: labels.size][half], labels[half])
    return ReplayReport(history.name, history.days - 1, outcome,
                        score_consensus(history, history.consensus, 1),
                        score_consensus(history, applied, 1), study, used)
