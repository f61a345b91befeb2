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

Where the parts are: this module holds :func:`combine` and steps 1-3 (the
signed, screened candidates: ``_target``, ``_quorum_seq``, ``_choose``); it
reads and writes only the :class:`~.signing.KeyRing` it is given (refusals
counted at once, admitted seqs recorded once a consensus exists).
:mod:`.policy` holds :class:`Policy`, :class:`Weighting`, :data:`DEFAULT_POLICY`
and :class:`TrackRecord`; :mod:`.prior_weights` step 4 (:func:`agent_weights`,
the given ``weights=``); :mod:`.rows` step 5 (:func:`aggregate_rows`,
:func:`aggregate_many`, the float fast path ``_aggregate_list``/``_trimmed_rows``);
:mod:`.intervals` step 6 (``ES >= VaR``, disagreement, widening). Every name is
still importable from here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from numpy.typing import ArrayLike

from ..errors import InvalidEstimate, InvalidParameter, NotEnoughAgents, StaleConsensus
from ..types import Consensus, Estimate
from .intervals import MAD_TO_SD as MAD_TO_SD
from .partition import BoundMode
from .policy import DEFAULT_POLICY as DEFAULT_POLICY
from .policy import Policy as Policy
from .policy import TrackRecord as TrackRecord
from .policy import Weighting as Weighting
from .prior_weights import _given_weights, _renormalized
from .prior_weights import agent_weights as agent_weights
from .robust import check_tolerance
from .rows import _aggregate_list as _aggregate_list
from .rows import _trimmed_rows as _trimmed_rows
from .rows import aggregate_many as aggregate_many
from .rows import aggregate_rows as aggregate_rows
from .signing import KeyRing, OwnSignatures, Rejection, RejectionReason


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
