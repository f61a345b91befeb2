"""Byzantine-robust read of the conjugate-statistics CRDT (:class:`~.partition.StatsCRDT`).

A signature proves who sent a contribution, not that it is true: a Byzantine
replica can sign inflated statistics of its own. :func:`robust_read` bounds
every replica's contribution by the others' before they are summed (count,
per-observation mean and standard deviation, each against bounds set by
order statistics that at most ``f`` liars cannot move outside the honest
range); a contribution inside the bounds is summed verbatim, so with no liar
the robust read is :meth:`StatsCRDT.read` bit for bit. Transport-free: the
mesh (``swarmvar.mesh.stats``) calls it on what its peers gossiped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameter
from .partition import Contribution, NormalStats, StatsCRDT

#: Largest count a contribution may claim (a node holds at most a million observations).
MAX_COUNT = 10**12
#: A contribution's count is bounded by this multiple of the (f+1)-th largest count.
COUNT_SLACK = 1.5
#: Its standard deviation by this factor beyond the (f+1)-th smallest and largest.
SD_SLACK = 1.35
#: Its mean by the trimmed range of means, widened by this many standard errors
#: (median standard deviation over the square root of the median count).
MEAN_SLACK = 4.0


@dataclass(frozen=True)
class RobustRead:
    """The merged statistics with every replica's contribution bounded by the others'.

    Attributes
    ----------
    stats : NormalStats
        Sum of the bounded contributions (exactly rounded, as ``StatsCRDT.read``).
    contributions : mapping of str to NormalStats
        Each replica's contribution as summed (bounded or verbatim).
    bounded : tuple of str
        Replicas whose contribution was pulled into the bounds.
    f : int
        Byzantine replicas tolerated.
    guaranteed : bool
        At least ``2f + 1`` replicas hold data (with ``f = 0``: always), so
        the bounds lie inside the honest replicas' range; with fewer the
        read is the exact one, unbounded.
    """

    stats: NormalStats
    contributions: Mapping[str, NormalStats]
    bounded: tuple[str, ...]
    f: int
    guaranteed: bool


def _moments(s: NormalStats) -> tuple[float, float]:
    """Per-observation mean and (population) standard deviation of ``count >= 1`` data."""
    mean = s.total / s.count
    return mean, math.sqrt(max(s.total_sq / s.count - mean * mean, 0.0))


def robust_read(crdt: StatsCRDT, f: int) -> RobustRead:
    """The CRDT's read with each replica bounded against ``f`` Byzantine replicas.

    Among the ``k`` replicas holding data, sorted values' ``(f+1)``-th from
    each end lie within the honest replicas' range whatever ``f`` liars
    claim. Bounds: count <= ``COUNT_SLACK`` x the ``(f+1)``-th largest count;
    standard deviation within [``(f+1)``-th smallest / ``SD_SLACK``,
    ``(f+1)``-th largest x ``SD_SLACK``]; mean within the trimmed range of
    means widened by ``max(its width, MEAN_SLACK`` standard errors). A
    contribution outside is rebuilt from its values clamped into the bounds;
    one inside is kept verbatim; a contribution of no observations but
    nonzero sums (no honest replica sends one) is read as empty and listed
    as bounded. So a liar moves the merged mean at most to the honest range
    plus the widening, its spread at most ``SD_SLACK``
    times the honest one, and its weight at most ``COUNT_SLACK`` honest
    nodes' — while honest replicas alike enough to fall inside the bounds
    give exactly :meth:`StatsCRDT.read`.

    Parameters
    ----------
    crdt : StatsCRDT
    f : int
        Byzantine replicas tolerated (``>= 0``).

    Returns
    -------
    RobustRead
    """
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise InvalidParameter(f"f must be an int >= 0, got {f!r}")
    verbatim = {r: c.stats for r, c in crdt.contributions.items()}
    # no data has no sums: a count-0 contribution with sums is a lie the bounds below
    # (which look only at replicas holding data) would otherwise add unchecked
    empty = tuple(sorted(r for r, s in verbatim.items()
                         if s.count <= 0 and (s.total != 0 or s.total_sq != 0)))
    if empty:
        verbatim = {r: NormalStats(0, 0.0, 0.0) if r in empty else s
                    for r, s in verbatim.items()}
        crdt = StatsCRDT({r: Contribution(crdt.contributions[r].version, s)
                          for r, s in verbatim.items()})
    holders = {r: s for r, s in verbatim.items() if s.count > 0}
    k = len(holders)
    if f == 0 or k < 2 * f + 1:
        return RobustRead(crdt.read(), verbatim, empty, f, f == 0)
    moments = {r: _moments(s) for r, s in holders.items()}
    counts = sorted(s.count for s in holders.values())
    means = sorted(m for m, _ in moments.values())
    sds = sorted(sd for _, sd in moments.values())
    count_cap = max(1, int(COUNT_SLACK * counts[k - 1 - f]))
    sd_low, sd_high = sds[f] / SD_SLACK, sds[k - 1 - f] * SD_SLACK
    width = max(means[k - 1 - f] - means[f],
                MEAN_SLACK * float(np.median(sds)) / math.sqrt(float(np.median(counts))))
    mean_low, mean_high = means[f] - width, means[k - 1 - f] + width
    out = dict(verbatim)
    bounded = []
    for r, s in holders.items():
        mean, sd = moments[r]
        if s.count <= count_cap and mean_low <= mean <= mean_high and sd_low <= sd <= sd_high:
            continue
        c = min(s.count, count_cap)
        m = min(max(mean, mean_low), mean_high)
        v = min(max(sd, sd_low), sd_high)
        out[r] = NormalStats(c, c * m, c * (v * v + m * m))
        bounded.append(r)
    merged = StatsCRDT({r: Contribution(crdt.contributions[r].version, s)
                        for r, s in out.items()}).read()
    return RobustRead(merged, out, tuple(sorted({*bounded, *empty})), f, True)


__all__ = ["COUNT_SLACK", "MAX_COUNT", "MEAN_SLACK", "SD_SLACK", "RobustRead", "robust_read"]
