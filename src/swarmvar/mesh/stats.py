"""Conjugate statistics across the mesh: signed CRDT contributions and serving in a partition.

Each node owns one replica of :class:`swarmvar.consensus.partition.StatsCRDT`
(its own data's Normal sufficient statistics, versioned). Contributions are
gossiped signed by their owner, so a relaying node cannot alter another's;
a receiver verifies the owner's signature and joins them with
:meth:`StatsCRDT.merge`. After a partition heals every node holds the same
contributions and :meth:`StatsCRDT.read` — hence the Normal-Inverse-Gamma
posterior — is bit for bit the one of a run with no partition.

A signature proves who sent a contribution, not that it is true: a
Byzantine node can sign inflated statistics of its own.
:func:`swarmvar.consensus.robust_stats.robust_read` (the statistics live in
the consensus engine; re-exported here) bounds every replica's contribution
by the others' before they are summed, and is the exact read with no liar.

Serving (:func:`serve`): the posterior predictive VaR of the robustly
merged statistics, with an interval widened by the consensus's partition
rule (:func:`swarmvar.consensus.partition.widen_interval`) for the replicas
that are unavailable (owner dead, or not refreshed within the staleness
bound).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..canonical import canonical_json
from ..consensus.partition import (
    SECONDS_PER_DAY,
    Contribution,
    NormalInverseGamma,
    NormalStats,
    StalenessBound,
    StatsCRDT,
    widen_interval,
)
from ..consensus.robust_stats import (
    COUNT_SLACK,
    MAX_COUNT,
    MEAN_SLACK,
    SD_SLACK,
    RobustRead,
    robust_read,
)
from .wire import NodeKeyRing, Refusal, refuse

#: A weak prior on daily returns (mean 0, variance around 1e-4).
DEFAULT_PRIOR = NormalInverseGamma(loc=0.0, kappa=1.0, shape=2.0, rate=1e-4)


def _contribution_bytes(replica: str, c: Contribution) -> bytes:
    return canonical_json({"replica": replica, "version": c.version, "count": c.stats.count,
                           "total": c.stats.total, "total_sq": c.stats.total_sq})


def sign_contribution(key: Ed25519PrivateKey, replica: str, c: Contribution) -> dict[str, Any]:
    """The wire form of one contribution, signed by its owner."""
    return {"replica": replica, "version": c.version, "count": c.stats.count,
            "total": c.stats.total, "total_sq": c.stats.total_sq,
            "signature": key.sign(_contribution_bytes(replica, c)).hex()}


def check_contribution(ring: NodeKeyRing, d: Mapping[str, Any]) -> tuple[str, Contribution]:
    """Parse and verify one wire contribution; RefusedMessage if malformed or forged."""
    try:
        replica, version, count = d["replica"], d["version"], d["count"]
        total, total_sq = float(d["total"]), float(d["total_sq"])
        signature = bytes.fromhex(d["signature"])
    except (KeyError, TypeError, ValueError):
        raise refuse(Refusal.MALFORMED, "a contribution needs replica, version, count, total, "
                     "total_sq, signature") from None
    if (not isinstance(replica, str) or not isinstance(version, int)
            or not isinstance(count, int) or not 0 <= count <= MAX_COUNT or version < 0
            or not math.isfinite(total) or not math.isfinite(total_sq) or total_sq < 0
            or (count == 0 and (total != 0.0 or total_sq != 0.0))):
        # no data, no sums: robust_read bounds only replicas holding data (count > 0), so
        # a count-0 contribution with sums would be summed verbatim, unbounded
        raise refuse(Refusal.MALFORMED, "bad contribution fields")
    key = ring.nodes.get(replica)
    if key is None:
        raise refuse(Refusal.UNKNOWN_SENDER, f"contribution of unknown replica {replica!r:.40}")
    c = Contribution(version, NormalStats(count, total, total_sq))
    try:
        key.verify(signature, _contribution_bytes(replica, c))
    except _BadSignature:
        raise refuse(Refusal.FORGED, f"contribution of {replica} does not verify") from None
    return replica, c


@dataclass(frozen=True)
class Served:
    """What a node serves: predictive VaR of the merged statistics under the partition rule.

    Attributes
    ----------
    point : float
        Posterior predictive VaR at ``alpha`` (a positive loss, return units).
    interval : (float, float)
        Its interval, widened for unavailable replicas and staleness.
    available, total : int
        Replicas fresh and reachable (``m``) out of all (``n``).
    degraded : bool
        ``m < n``: the interval was widened.
    count : int
        Observations in the merged statistics.
    """

    point: float
    interval: tuple[float, float]
    available: int
    total: int
    degraded: bool
    count: int


def replica_var(stats: NormalStats, alpha: float, prior: NormalInverseGamma) -> float:
    return prior.update(stats).predictive_loss().ppf(alpha)


def serve(crdt: StatsCRDT, replicas: list[str], fresh: set[str], *, alpha: float = 0.99,
          prior: NormalInverseGamma = DEFAULT_PRIOR, staleness_days: float = 0.0,
          drift: float = 0.05, mass: float = 0.90, f: int = 0) -> Served:
    """Serve the merged posterior's VaR; widen for replicas not in ``fresh``.

    The statistics are :func:`robust_read`'s against ``f`` Byzantine
    replicas (``f = 0``: the exact read). ``tau`` (the between-replica
    spread of the rule) is the standard deviation of the replicas' own
    predictive VaRs from their bounded contributions (0 with fewer than two).
    """
    read = robust_read(crdt, f)
    merged = read.stats
    point = replica_var(merged, alpha, prior)
    own = [replica_var(s, alpha, prior) for s in read.contributions.values() if s.count > 0]
    tau = float(np.std(own, ddof=1)) if len(own) > 1 else 0.0
    total = len(replicas)
    available = max(1, sum(1 for r in replicas if r in fresh))
    interval = widen_interval(point, (point, point), available=available, total=total,
                              spread=tau, staleness_days=staleness_days, drift=drift, mass=mass)
    return Served(point, interval, available, total, available < total, merged.count)


def is_fresh(bound: StalenessBound, age_seconds: float) -> bool:
    """Whether a replica heard ``age_seconds`` ago is within the staleness bound."""
    return not bound.is_stale(0, age_seconds)


__all__ = ["COUNT_SLACK", "DEFAULT_PRIOR", "MAX_COUNT", "MEAN_SLACK", "SD_SLACK",
           "SECONDS_PER_DAY", "RobustRead", "Served", "check_contribution", "is_fresh",
           "replica_var", "robust_read", "serve", "sign_contribution"]
