"""``combine``: from signed estimates to one Byzantine-robust :class:`~swarmvar.types.Consensus`.

Steps, in order:

1. admit each estimate through the :class:`~.signing.KeyRing` (malformed,
   unknown agent, unsigned, forged and replayed ones are refused with a
   reason); keep each agent's newest;
2. keep those for the target (portfolio, alpha, horizon);
3. split fresh from stale (:class:`~.partition.StalenessBound`); use the
   fresh ones, or — when too few — refuse or degrade as the policy says;
4. weight agents (equal, track record, or BMA; computed here from realized
   returns, never self-reported);
5. aggregate the rows ``(VaR, ES, VaR lo, VaR hi, ES lo, ES hi)`` with the
   policy's robust rule;
6. restore ``ES >= VaR`` and ``lower <= point <= upper`` (each only moves a
   number towards another honest-range number) and widen the intervals for
   missing agents and staleness (:func:`~.partition.widen_interval`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidEstimate, InvalidParameter, NotEnoughAgents, StaleConsensus
from ..types import Consensus, Estimate
from .partition import SECONDS_PER_DAY, BoundMode, StalenessBound, _widen, z_value
from .robust import (
    _SMALL,
    MANY_DAY_RULES,
    Aggregator,
    aggregate_days,
    check_tolerance,
    disagreement_bounds,
    disagreement_bounds_days,
    robust_aggregate,
)
from .signing import KeyRing, OwnSignatures, Rejection, RejectionReason
from .tempered import TEMPERED_ETA, TEMPERED_WINDOW, joint_losses, tempered_weights
from .weights import Loss, bma_weights, joint_weights, track_record_weights

FloatArray = NDArray[np.float64]
MAD_TO_SD = 1.482602218505602  # 1 / Phi^-1(3/4)


class Weighting(Enum):
    """How agents are weighted before the robust rule."""

    EQUAL = "equal"
    TRACK_RECORD = "track_record"  # exponential weights of realized pinball / FZ0 loss (summed)
    BMA = "bma"  # posterior model probabilities from predictive log scores
    TEMPERED = "tempered"  # tempered exponential weights of the per-day mean joint loss


@dataclass(frozen=True)
class Policy:
    """How the swarm reaches consensus.

    Attributes
    ----------
    aggregator : Aggregator
        The robust rule.
    f : int
        Byzantine agents tolerated (the rule's bound on ``n`` applies).
    weighting : Weighting
        Equal, track-record, BMA or tempered weights (all but equal need a
        ``TrackRecord``).
    loss : Loss
        Scoring rule for track-record weights.
    window : int or None
        Trailing window of the track record (observations).
    eta : float or None
        Inverse temperature of track-record weights (default: see ``weights``;
        for tempered weights :data:`~.tempered.TEMPERED_ETA`).
    staleness : StalenessBound
        Bound on seq lag and data age.
    min_available : float
        Least fraction ``m/n`` of agents needed for a non-degraded consensus.
    on_bound : BoundMode
        Refuse or degrade past the staleness or availability bound.
    interval_mass : float
        Posterior mass of the credible intervals (for widening).
    drift : float
        Volatility of log-VaR per square-root day (for staleness widening).
    multi_krum_m : int or None
        How many inputs multi-Krum averages (default ``n - f``).
    f_steps : tuple of (int, int)
        ``(n, f_n)`` pairs: with at least ``n`` agents combined, the trimmed
        mean drops ``f_n`` per side instead of ``f`` (the largest that
        applies; a step at or below ``f`` does nothing, so the tolerance only
        grows; ``n >= 2 f_n + 1``, so the rule's bound still holds). :meth:`f_for` gives the
        ``f`` of ``m`` agents. The number of agents needed stays that of ``f``.
    """

    aggregator: Aggregator = Aggregator.TRIMMED_MEAN
    f: int = 1
    weighting: Weighting = Weighting.EQUAL
    loss: Loss = Loss.FZ0
    window: int | None = 250
    eta: float | None = None
    staleness: StalenessBound = field(default_factory=StalenessBound)
    min_available: float = 0.0
    on_bound: BoundMode = BoundMode.REFUSE
    interval_mass: float = 0.90
    drift: float = 0.05
    multi_krum_m: int | None = None
    f_steps: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.f, bool) or not isinstance(self.f, int) or self.f < 0:
            raise InvalidParameter(f"policy f must be an int >= 0, got {self.f!r}")
        steps = self.f_steps
        if not isinstance(steps, tuple) or not all(
                isinstance(st, tuple) and len(st) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in st)
                and st[1] >= 0 and st[0] >= 2 * st[1] + 1 for st in steps):
            raise InvalidParameter(
                f"f_steps must be a tuple of (n, f_n) int pairs with f_n >= 0 and "
                f"n >= 2 f_n + 1, got {steps!r}")
        if not 0.0 <= self.min_available <= 1.0:
            raise InvalidParameter(
                f"min_available is a fraction in [0, 1], got {self.min_available}"
            )
        if not self.drift >= 0:
            raise InvalidParameter(f"drift must be >= 0, got {self.drift}")
        z_value(self.interval_mass)

    def f_for(self, m: int) -> int:
        """The ``f`` the rule uses over ``m`` agents (``f``, or the largest step reached).

        Steps apply to the trimmed mean only: the other rules keep ``f``.
        """
        f = self.f
        if self.aggregator is not Aggregator.TRIMMED_MEAN:
            return f
        for n, fn in self.f_steps:
            if m >= n and fn > f:
                f = fn
        return f

    @property
    def method(self) -> str:
        """Short description for tables and ledgers, e.g.
        ``"trimmed_mean(f=1 (f=2 from 6 agents on), tempered)"``: a step is a threshold
        (it applies only from that many agents on), not the number of agents used."""
        steps = "; ".join(f"f={fn} from {n} agents on" for n, fn in self.f_steps)
        return (f"{self.aggregator.value}(f={self.f}{f' ({steps})' if steps else ''}, "
                f"{self.weighting.value})")


#: The swarm's default rule: drop the highest and lowest forecast (f = 1 Byzantine
#: agent tolerated with 3 or more agents; from 6 agents on, the two highest and two
#: lowest) and average the rest with tempered weights of each agent's per-day mean
#: joint FZ0 loss over its last TEMPERED_WINDOW realized forecasts; estimates whose
#: data are more than 5 days older than the beat are stale (a long weekend plus a
#: holiday). Chosen by the studies in docs/consensus.md (the f = 2 step: the third).
DEFAULT_POLICY = Policy(
    aggregator=Aggregator.TRIMMED_MEAN,
    f=1,
    weighting=Weighting.TEMPERED,
    loss=Loss.FZ0,
    window=TEMPERED_WINDOW,
    eta=TEMPERED_ETA,
    staleness=StalenessBound(max_age=5 * SECONDS_PER_DAY),
    f_steps=((6, 2),),
)


@dataclass(frozen=True)
class TrackRecord:
    """Realized returns and what each agent forecast for them, oldest first.

    ``returns (T,)``; ``var``, ``es``, ``log_scores`` are ``(T, k)`` with one
    column per ``agent_ids`` entry (``log_scores[t, i] = log p_i(r_t | past)``).
    """

    agent_ids: tuple[str, ...]
    returns: FloatArray
    alpha: float
    var: FloatArray | None = None
    es: FloatArray | None = None
    log_scores: FloatArray | None = None


def agent_weights(
    agents: Sequence[str],
    policy: Policy,
    record: TrackRecord | Sequence[TrackRecord] | None,
) -> FloatArray:
    """Weights ``(m,)`` for ``agents`` under the policy.

    ``record`` may hold one level's track record or several (one per
    confidence level, same agents and returns): track-record weights are then
    the joint weights of :func:`~.weights.joint_weights`, so every level of a
    beat leans on the same agents. Agents absent from the track record get
    the mean weight of those in it.
    """
    m = len(agents)
    if policy.weighting is Weighting.EQUAL:
        return np.full(m, 1.0 / m)
    if record is None:
        raise InvalidParameter(f"weighting {policy.weighting.value} needs a TrackRecord")
    records = [record] if isinstance(record, TrackRecord) else list(record)
    if not records or any(r.agent_ids != records[0].agent_ids for r in records):
        raise InvalidParameter("track records of several levels must cover the same agents")
    if policy.weighting is Weighting.TEMPERED:
        known = _tempered(records, policy)
    elif policy.weighting is Weighting.TRACK_RECORD:
        if any(r.var is None for r in records):
            raise InvalidParameter(
                "track-record weighting needs past VaR forecasts (TrackRecord.var)"
            )
        known = joint_weights([
            track_record_weights(r.returns, cast(FloatArray, r.var), r.alpha, es=r.es,
                                 loss=policy.loss, window=policy.window, eta=policy.eta)
            for r in records
        ])
    else:
        scores: ArrayLike | None = records[0].log_scores
        if scores is None:
            raise InvalidParameter(
                "BMA weighting needs predictive log scores (TrackRecord.log_scores)"
            )
        if policy.window is not None:
            scores = np.asarray(scores)[-policy.window :]
        known = bma_weights(scores)
    by_agent = dict(zip(records[0].agent_ids, known, strict=True))
    mean = float(np.mean(known))
    w = np.array([by_agent.get(a, mean) for a in agents], dtype=np.float64)
    return w / w.sum() if w.sum() > 0 else np.full(m, 1.0 / m)


def _tempered(records: Sequence[TrackRecord], policy: Policy) -> FloatArray:
    """Tempered weights from every level's record (the last ``policy.window`` days)."""
    if any(r.var is None or (policy.loss is Loss.FZ0 and r.es is None) for r in records):
        raise InvalidParameter("tempered weighting needs past VaR (and, for FZ0, ES) "
                               "forecasts in every TrackRecord")
    returns = np.asarray(records[0].returns, dtype=np.float64)
    shape = (returns.size, len(records[0].agent_ids))
    if returns.size == 0 or any(np.shape(r.returns) != shape[:1]
                                or np.shape(cast(FloatArray, r.var)) != shape
                                or (r.es is not None and np.shape(r.es) != shape)
                                or not np.array_equal(r.returns, returns) for r in records):
        raise InvalidParameter("every level's TrackRecord needs the same returns (T,) with "
                               "T >= 1, and var/es of shape (T, agents)")
    keep = slice(None) if policy.window is None else slice(-policy.window, None)
    var = np.stack([np.asarray(r.var, dtype=np.float64)[keep] for r in records])
    es = (None if policy.loss is not Loss.FZ0
          else np.stack([np.asarray(r.es, dtype=np.float64)[keep] for r in records]))
    losses = joint_losses(returns[keep], var, es, [r.alpha for r in records], policy.loss)
    eta = TEMPERED_ETA if policy.eta is None else policy.eta
    return tempered_weights(losses.mean(axis=0), eta, loss=policy.loss)


def _target(
    admitted: Sequence[Estimate], portfolio: str | None, alpha: float | None, horizon: int | None
) -> tuple[str, float, int]:
    if portfolio is not None and alpha is not None and horizon is not None:
        return portfolio, alpha, horizon
    votes = Counter(
        (e.portfolio, e.alpha, e.horizon)
        for e in admitted
        if (portfolio is None or e.portfolio == portfolio)
        and (alpha is None or e.alpha == alpha)
        and (horizon is None or e.horizon == horizon)
    )
    ranked = votes.most_common(2)
    if not ranked:
        raise NotEnoughAgents("no admitted estimate matches the requested portfolio/alpha/horizon")
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        raise InvalidEstimate(
            f"estimates disagree on the target ({ranked[0][0]} vs {ranked[1][0]}); "
            "pass portfolio=, alpha= and horizon= to combine"
        )
    return ranked[0][0]


def _median(values: list[float]) -> float:
    """``statistics.median`` of a short list (the same value, less overhead)."""
    s = sorted(values)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def _spread(points: list[float], half_widths: list[float], z: float) -> float:
    """Between-agent sd: scaled MAD of the points (>= 3 agents), else mean posterior sd."""
    if len(points) >= 3:
        centre = _median(points)
        return MAD_TO_SD * _median([abs(p - centre) for p in points])
    return statistics.fmean(half_widths) / z


def combine(
    estimates: Sequence[Estimate],
    policy: Policy,
    *,
    keyring: KeyRing,
    now: datetime,
    track_record: TrackRecord | Sequence[TrackRecord] | None = None,
    total: int | None = None,
    current_seq: int | None = None,
    portfolio: str | None = None,
    alpha: float | None = None,
    horizon: int | None = None,
    weights: Mapping[str, float] | ArrayLike | None = None,
    own: OwnSignatures | None = None,
) -> Consensus:
    """Combine signed estimates into a Byzantine-robust consensus.

    Parameters
    ----------
    estimates : sequence of Estimate
        What arrived this beat (any order; duplicates and junk allowed).
    policy : Policy
        Rule, f, weighting, bounds.
    keyring : KeyRing
        Registered keys; admitted ``seq`` numbers are recorded in it.
    now : datetime
        Data time of this beat (timezone-aware), for staleness.
    track_record : TrackRecord or sequence of TrackRecord, optional
        Needed for track-record and BMA weighting; give every level's record
        to weight agents by their joint tail skill (the same weights at
        every level).
    total : int, optional
        ``n``, agents expected (default: agents registered in ``keyring``).
    current_seq : int, optional
        Newest seq (default: the (f+1)-th highest among the admitted
        estimates, so at most ``f`` agents cannot set it).
    portfolio, alpha, horizon : optional
        The target; by default the most common among admitted estimates.
    weights : mapping of agent id to weight, or array, optional
        The agents' prior weights, already computed (e.g. the runtime's
        online :class:`~.tempered.TemperedWeights`), used instead of
        computing them from ``track_record`` (give one or the other). A
        mapping names agents; an array ``(k,)`` is aligned with
        ``keyring.agents`` (sorted ids). Finite and ``>= 0``; agents
        without a weight get the mean of the others, then the used
        agents' weights are renormalized, as :func:`agent_weights` does.
    own : OwnSignatures, optional
        Signatures this process made or already verified: an estimate whose
        exact signing bytes and key it holds is admitted without verifying
        it again (every other check applies; see
        :class:`~.signing.OwnSignatures`). Estimates from outside the process
        are verified as always, and a valid one is vouched into ``own``
        (:meth:`~.signing.OwnSignatures.vouch`), as the spread vet does before
        combining: only the very same bytes and key skip verification later.

    Raises
    ------
    InvalidParameter
        Bad ``now``, ``keyring``, ``estimates`` or ``weights``.
    NotEnoughAgents
        Fewer usable estimates than the rule's bound for ``f`` (or, with
        ``on_bound=REFUSE``, fewer than ``min_available``).
    StaleConsensus
        Too few fresh estimates and ``on_bound=REFUSE``.
    """
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidParameter("now must be a timezone-aware datetime")
    if not isinstance(keyring, KeyRing):
        raise InvalidParameter(f"keyring must be a KeyRing of the agents' public keys, "
                               f"got {type(keyring).__name__}")
    if type(estimates) is not list and (isinstance(estimates, (str, bytes, Mapping))
                                        or not isinstance(estimates, Sequence)):
        raise InvalidParameter(f"estimates must be a list of Estimate, "
                               f"got {type(estimates).__name__}")
    given = None if weights is None else _given_weights(weights, keyring, track_record)
    # screen now, record seqs only once a consensus exists: a refused beat can be retried
    if own is not None and not isinstance(own, OwnSignatures):
        raise InvalidParameter(f"own must be an OwnSignatures, got {type(own).__name__}")
    admitted, refused = keyring.screen(estimates, own=own)
    # data from after the beat cannot be: a clock error or a lie (and would dodge max_age)
    future = [e for e in admitted if e.as_of > now]
    if future:
        admitted = [e for e in admitted if e.as_of <= now]
        refused = [*refused, *(Rejection(e.agent_id, RejectionReason.MALFORMED,
                                         f"as_of {e.as_of.isoformat()} is after now "
                                         f"({now.isoformat()})") for e in future)]
    keyring.commit([], refused)  # refusals are counted whatever happens next
    newest: dict[str, Estimate] = {}
    for e in admitted:  # screen returns seq order: the last one per agent is the newest
        newest[e.agent_id] = e
    rejected: dict[str, Rejection] = {r.agent_id: r for r in refused if r.agent_id not in newest}
    if not newest:
        reasons = Counter(r.reason.value for r in refused)
        raise NotEnoughAgents(
            f"none of {len(estimates)} estimates was admitted ({dict(reasons)}); "
            "check keys, signatures and sequence numbers"
        )
    target = _target(list(newest.values()), portfolio, alpha, horizon)
    candidates = []
    for agent in sorted(newest):
        e = newest[agent]
        if (e.portfolio, e.alpha, e.horizon) == target:
            candidates.append(e)
        else:
            got = f"({e.portfolio}, {e.alpha}, {e.horizon})"
            rejected[agent] = Rejection(agent, RejectionReason.MISMATCHED, f"{got} is not {target}")
    n_total = len(keyring) if total is None else total
    latest = _quorum_seq(candidates, policy.f) if current_seq is None else current_seq
    ages = {e.agent_id: (now - e.as_of).total_seconds() for e in candidates}
    used_in, degraded = _choose(candidates, policy, n_total, latest, ages, rejected)
    agents = [e.agent_id for e in used_in]
    # admitted estimates hold finite numbers of magnitude <= MAX_MAGNITUDE (malformation)
    rows = [(float(e.var), float(e.es), float(e.var_interval[0]), float(e.var_interval[1]),
             float(e.es_interval[0]), float(e.es_interval[1])) for e in used_in]
    if given is not None:
        prior = _renormalized(agents, given)
    elif policy.weighting is Weighting.EQUAL:
        prior = [1.0 / len(agents)] * len(agents)  # agent_weights' np.full, as floats
    else:
        prior = agent_weights(agents, policy, track_record).tolist()
    staleness = max(0.0, max(ages[a] for a in agents))
    m, n = len(agents), max(n_total, len(agents))
    var, es, var_interval, es_interval, contribution = _aggregate_list(
        rows, policy, prior, n, staleness
    )
    late = (RejectionReason.MISMATCHED, RejectionReason.STALE)
    keyring.commit(admitted, [r for r in rejected.values() if r.reason in late])
    return Consensus(
        alpha=target[1],
        horizon=target[2],
        var=var,
        es=es,
        var_interval=var_interval,
        es_interval=es_interval,
        method=policy.method,
        used=tuple(a for a, w in zip(agents, contribution, strict=True) if w > 0),
        trimmed=tuple(a for a, w in zip(agents, contribution, strict=True) if w <= 0),
        rejected={a: str(r) for a, r in sorted(rejected.items())},
        weights={a: float(w) for a, w in zip(agents, contribution, strict=True) if w > 0},
        available=m,
        total=n,
        staleness=staleness,
        degraded=degraded or m < math.ceil(policy.min_available * n_total),
        as_of=max(e.as_of for e in used_in),
    )


def _quorum_seq(candidates: Sequence[Estimate], f: int) -> int:
    """The newest seq at least ``f + 1`` candidates have reached: the (f+1)-th highest.

    With at most ``f`` Byzantine agents, one honest agent is at or above it, so
    no Byzantine seq (say 10^12) can make the honest quorum look stale.
    """
    seqs = sorted((e.seq for e in candidates), reverse=True)
    return seqs[min(f, len(seqs) - 1)] if seqs else 0


def _choose(
    candidates: list[Estimate],
    policy: Policy,
    n_total: int,
    latest: int,
    ages: dict[str, float],
    rejected: dict[str, Rejection],
) -> tuple[list[Estimate], bool]:
    """Fresh estimates if enough; else all (degraded) or an error, as the policy says.

    Stale estimates left out are added to ``rejected``.
    """
    need = policy.aggregator.min_agents(policy.f)
    fresh = [
        e for e in candidates if not policy.staleness.is_stale(latest - e.seq, ages[e.agent_id])
    ]
    floor = math.ceil(policy.min_available * n_total)
    if len(fresh) >= max(need, floor):
        used_in, degraded = fresh, False
    elif policy.on_bound is BoundMode.DEGRADE and len(candidates) >= need:
        used_in, degraded = candidates, True
    elif len(candidates) > len(fresh) and len(candidates) >= need:
        raise StaleConsensus(
            f"only {len(fresh)} of {len(candidates)} estimates are within the staleness bound "
            f"({policy.staleness}); need {max(need, floor)}. "
            "Refresh the agents or use on_bound=DEGRADE"
        )
    else:
        check_tolerance(policy.aggregator, len(fresh), policy.f)
        raise NotEnoughAgents(
            f"{len(fresh)} of {n_total} agents available, below min_available="
            f"{policy.min_available:g} ({floor} agents); use on_bound=DEGRADE to serve anyway"
        )
    chosen = {id(e) for e in used_in}
    for e in candidates:
        if id(e) not in chosen:
            rejected[e.agent_id] = Rejection(
                e.agent_id,
                RejectionReason.STALE,
                f"{latest - e.seq} versions behind, data {ages[e.agent_id]:.0f} s old",
            )
    return used_in, degraded


def aggregate_rows(
    rows: FloatArray,
    policy: Policy,
    weights: FloatArray | None = None,
    *,
    total: int | None = None,
    staleness: float = 0.0,
) -> tuple[float, float, tuple[float, float], tuple[float, float], FloatArray]:
    """Steps 5-6 of :func:`combine` on admitted rows: the robust rule, then the intervals.

    ``rows`` is ``(m, 6)``: each used agent's ``(VaR, ES, VaR lo, VaR hi, ES
    lo, ES hi)``; ``weights`` the prior weights ``(m,)`` (equal if None);
    ``total`` the agents expected (``m`` if None); ``staleness`` the data age
    in seconds of the oldest row. Returns ``(var, es, var_interval,
    es_interval, contribution)`` where ``contribution (m,)`` is each row's
    weight in the VaR (0 for trimmed rows). :func:`consensus_series` uses
    this too, so a backtest's consensus row is the same rule as a live one
    (``combine`` runs the same numbers on Python floats: tested bit for bit).
    """
    m = rows.shape[0]
    prior = np.full(m, 1.0 / m) if weights is None else weights
    agg = robust_aggregate(
        rows, policy.aggregator, policy.f_for(m), prior, multi_krum_m=policy.multi_krum_m
    )
    n = m if total is None else max(total, m)
    var, es, var_interval, es_interval = _intervals(
        [float(v) for v in agg.value], rows.tolist(), prior.tolist(), n, staleness, policy)
    return var, es, var_interval, es_interval, agg.weights[:, 0]


def _intervals(
    value: Sequence[float],
    rows: Sequence[Sequence[float]],
    weights: list[float],
    n: int,
    staleness: float,
    policy: Policy,
) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    """Step 6 after the rule's ``value`` ``(VaR, ES, VaR lo, VaR hi, ES lo, ES hi)``: ES kept
    >= VaR, the agents' disagreement added to the intervals (total variance, with the
    rule's prior ``weights``), then the widening for missing agents and staleness."""
    var, es, var_lo, var_hi, es_lo, es_hi = value
    es = max(es, var)
    z = z_value(policy.interval_mass)
    f = policy.f_for(len(rows))
    var_lo, var_hi = disagreement_bounds(var, var_lo, var_hi, [r[0] for r in rows], weights,
                                         f, z)
    es_lo, es_hi = disagreement_bounds(es, es_lo, es_hi, [r[1] for r in rows], weights, f, z)
    var_interval = _widened(var, var_lo, var_hi, [(r[0], r[2], r[3]) for r in rows], n,
                            staleness, policy, z)
    es_interval = _widened(es, es_lo, es_hi, [(r[1], r[4], r[5]) for r in rows], n,
                           staleness, policy, z)
    return var, es, var_interval, es_interval


def _aggregate_list(
    rows: list[tuple[float, float, float, float, float, float]],
    policy: Policy,
    weights: list[float],
    total: int,
    staleness: float,
) -> tuple[float, float, tuple[float, float], tuple[float, float], list[float]]:
    """:func:`aggregate_rows` on rows of admitted estimates, as Python floats.

    A live beat has a few agents: for the trimmed mean and the mean the rule
    runs on floats (:func:`_trimmed_rows`, the same bits as the numpy rule);
    other rules go through :func:`aggregate_rows`. ``rows`` are finite (every
    admitted estimate is) and ``weights`` finite and ``>= 0``.
    """
    m = len(rows)
    if policy.aggregator not in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN) or m > _SMALL:
        var, es, vi, ei, share = aggregate_rows(np.array(rows, dtype=np.float64), policy,
                                                np.array(weights, dtype=np.float64),
                                                total=total, staleness=staleness)
        return var, es, vi, ei, share.tolist()
    check_tolerance(policy.aggregator, m, policy.f_for(m))
    trim = policy.f_for(m) if policy.aggregator is Aggregator.TRIMMED_MEAN else 0
    value, contribution = _trimmed_rows(rows, trim, weights)
    var, es, var_interval, es_interval = _intervals(value, rows, weights, max(total, m),
                                                    staleness, policy)
    return var, es, var_interval, es_interval, contribution


def _trimmed_rows(
    rows: Sequence[tuple[float, ...]], trim: int, weights: list[float]
) -> tuple[list[float], list[float]]:
    """The weighted trimmed mean of each column, and each row's share in column 0.

    Per column: drop the ``trim`` lowest and highest (stable order), average
    the rest with their weights renormalized (equal if they all underflow),
    clip to the survivors' range. The same sums in the same (row) order as
    :func:`~.robust.robust_aggregate`'s rule, so the same bits (tested); the
    renormalized weights are computed once per distinct set of survivors.
    """
    n = len(rows)
    index = range(n)
    values: list[float] = []
    first: list[tuple[int, float]] = []
    kept_before: list[int] | None = None
    shares: list[tuple[int, float]] = []
    for j, col in enumerate(zip(*rows, strict=True)):
        kept = sorted(sorted(index, key=col.__getitem__)[trim:n - trim]) if trim else list(index)
        if kept != kept_before:
            mass = 0.0
            for i in kept:
                mass += weights[i]
            if mass <= 0:  # all surviving weights underflowed: equal among survivors
                shares = [(i, 1.0 / len(kept)) for i in kept]
            else:
                shares = [(i, weights[i] / mass) for i in kept]
            kept_before = kept
        total, low, high = 0.0, math.inf, -math.inf
        for i, w in shares:
            if w > 0:
                x = col[i]
                total += w * x
                low, high = min(low, x), max(high, x)
        values.append(min(max(total, low), high))
        if j == 0:
            first = shares
    contribution = [0.0] * n
    for i, w in first:
        contribution[i] = w
    return values, contribution


def _given_weights(
    weights: Mapping[str, float] | ArrayLike,
    keyring: KeyRing,
    track_record: TrackRecord | Sequence[TrackRecord] | None,
) -> dict[str, float]:
    """``combine``'s ``weights=`` checked: agent id -> finite weight ``>= 0``."""
    if track_record is not None:
        raise InvalidParameter("give combine weights= or track_record=, not both")
    if isinstance(weights, Mapping):
        names, values = list(weights.keys()), list(weights.values())
        bad = [a for a in names if not isinstance(a, str) or a not in keyring]
        if bad:
            raise InvalidParameter(f"weights name agents without a registered key: "
                                   f"{bad[:5]!r}; use the agents' ids")
    else:
        names = list(keyring.agents)
        try:
            array = np.asarray(weights)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(f"weights must be a mapping or an array: {exc}") from None
        if array.shape != (len(names),):
            raise InvalidParameter(f"weights as an array must be ({len(names)},), one per "
                                   f"registered agent in keyring.agents order, got shape "
                                   f"{array.shape}")
        values = array.tolist()
    out: dict[str, float] = {}
    for a, v in zip(names, values, strict=True):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InvalidParameter(f"weight of {a!r} must be a number, got {v!r}")
        if not (math.isfinite(v) and v >= 0):
            raise InvalidParameter(f"weight of {a!r} must be finite and >= 0, got {v!r}")
        out[a] = float(v)
    if not out:
        raise InvalidParameter("weights is empty; give one weight per agent or none")
    return out


def _renormalized(agents: Sequence[str], given: Mapping[str, float]) -> list[float]:
    """The used agents' weights from ``given`` as :func:`agent_weights` maps them."""
    known = np.array(list(given.values()), dtype=np.float64)
    mean = float(np.mean(known))
    w = np.array([given.get(a, mean) for a in agents], dtype=np.float64)
    total = w.sum()
    if not total > 0:
        return [1.0 / len(agents)] * len(agents)
    return cast(list[float], (w / total).tolist())


def aggregate_many(
    rows: FloatArray, policy: Policy, weights: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`aggregate_rows` for many days of every agent's rows at once (a backtest path).

    ``rows`` is ``(T, m, 6)``, ``weights`` ``(T, m)`` (equal if None); every
    agent is used every day and the data are fresh (``total = m``,
    ``staleness = 0``: no widening, so the intervals are each day's own
    after the rule, plus the agents' disagreement). Returns ``var``, ``es``
    ``(T,)``, ``var_interval``, ``es_interval`` ``(T, 2)`` and
    ``contribution`` ``(T, m)``: the same numbers as :func:`aggregate_rows`
    day by day (points and contributions bit for bit, intervals to rounding;
    tested), for the median, trimmed mean and mean; other rules are computed
    day by day.
    """
    days, m, _ = rows.shape
    prior = np.full((days, m), 1.0 / m) if weights is None else weights
    if policy.aggregator not in MANY_DAY_RULES:
        out = [aggregate_rows(rows[t], policy, prior[t]) for t in range(days)]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]),
                np.array([o[2] for o in out]), np.array([o[3] for o in out]),
                np.array([o[4] for o in out]))
    f = policy.f_for(m)
    check_tolerance(policy.aggregator, m, f)
    value, contribution = aggregate_days(rows, policy.aggregator, f, prior)
    var, es = value[:, 0], np.maximum(value[:, 1], value[:, 0])
    z = z_value(policy.interval_mass)
    var_b = disagreement_bounds_days(var, value[:, 2], value[:, 3], rows[:, :, 0], prior, f, z)
    es_b = disagreement_bounds_days(es, value[:, 4], value[:, 5], rows[:, :, 1], prior, f, z)
    return (var, es, _fresh_interval(var, *var_b), _fresh_interval(es, *es_b),
            contribution[:, :, 0])


def _fresh_interval(point: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """:func:`_widened` with every agent present and fresh data (nothing to widen), ``(T, 2)``."""
    low, high = np.minimum(lower, point), np.maximum(upper, point)
    new_lower = point - np.maximum(point - low, 0.0)  # sqrt(side^2 + 0): no square to overflow
    new_upper = point + np.maximum(high - point, 0.0)
    return np.stack([np.where(low >= 0, np.maximum(new_lower, 0.0), new_lower), new_upper],
                    axis=1)


def _widened(
    point: float,
    lower: float,
    upper: float,
    columns: Sequence[tuple[float, float, float]],
    n: int,
    staleness: float,
    policy: Policy,
    z: float,
) -> tuple[float, float]:
    """Credible interval around ``point``, widened for missing agents and staleness.

    ``columns`` holds each used agent's (point, lower, upper); ``z`` is
    ``z_value(policy.interval_mass)``.
    """
    points = [c[0] for c in columns]
    spread = _spread(points, [(c[2] - c[1]) / 2 for c in columns], z)
    return _widen(point, (min(lower, point), max(upper, point)), len(columns), n, spread,
                  staleness / SECONDS_PER_DAY, policy.drift, z)
