"""The agents' prior weights: step 4 of :func:`~.combine.combine`, before the robust rule.

Either computed from the evidence — :func:`agent_weights` maps a
:class:`~.policy.Policy`'s :class:`~.policy.Weighting` and a
:class:`~.policy.TrackRecord` (one level's or every level's) to weights
(equal, track record, BMA, or tempered via :func:`_tempered`) — or given by the
caller (``combine``'s ``weights=``, e.g. the runtime's online
:class:`~.tempered.TemperedWeights`): :func:`_given_weights` checks them and
:func:`_renormalized` maps them onto the agents used, as ``agent_weights``
does. Called by ``combine`` and by the runtime's beat (``swarm.beat``).

Pure functions: they read their arguments (and the key ring's registered
agents) and write nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .policy import Policy, TrackRecord, Weighting
from .signing import KeyRing
from .tempered import TEMPERED_ETA, joint_losses, tempered_weights
from .weights import Loss, bma_weights, joint_weights, track_record_weights

FloatArray = NDArray[np.float64]


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
