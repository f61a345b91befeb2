"""What each peer's own ledger says its statistics are: signed contributions held to it.

A node's CRDT contribution at version ``v`` is, for an honest node, exactly
the Normal statistics of the returns in its first ``v`` ``mesh.observe`` and
``mesh.inject_data`` entries (each such entry raises its version by one).
Those entries reach every peer signed and proved (:mod:`.imports`). So once
a peer has imported ``v`` of them it can recompute the contribution —
exactly: running Shewchuk partial sums give the same exactly rounded totals
as ``NormalStats.of`` — and a signed contribution that differs from its
owner's own signed ledger is a proven lie: the node drops it from what it
serves and records both as evidence. A contribution not yet covered by the
imports is judged later; until then :func:`.stats.robust_read`'s bounds
apply. (A liar that ledgers fake returns to match its lie is only bounded.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..consensus.partition import Contribution, NormalStats

#: The return each injected anomaly adds (as ``node.ANOMALY_RETURN``).
_ANOMALY = -0.10


def _add(partials: list[float], x: float) -> None:
    """Shewchuk's exact running sum: ``partials`` (non-overlapping) sum exactly, with ``x``."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


class LedgeredStats:
    """Per peer, the statistics its imported entries justify at each version."""

    def __init__(self, anomaly: float = _ANOMALY) -> None:
        self._anomaly = anomaly
        self._by_version: dict[str, list[NormalStats]] = {}
        self._partials: dict[str, tuple[list[float], list[float], int]] = {}
        self._broken: set[str] = set()

    def _values(self, data: Mapping[str, Any]) -> list[float] | None:
        details = data.get("details")
        if not isinstance(details, dict):
            return None
        if data.get("type") == "mesh.observe":
            values = details.get("values")
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                return None
            return [float(v) for v in values]
        anoms = details.get("anoms")
        if isinstance(anoms, bool) or not isinstance(anoms, int) or not 0 <= anoms <= 10**6:
            return None
        return [self._anomaly] * anoms

    def add(self, peer: str, items: Iterable[Mapping[str, Any]],
            skipped: Iterable[Mapping[str, Any]] = ()) -> None:
        """One checked import batch of ``peer`` (items in ledger order).

        An entry skipped as too large, or one whose values cannot be read,
        ends the judging of ``peer`` from there on (versions would no longer line up).
        """
        if peer in self._broken:
            return
        first_skip = min((int(s["index"]) for s in skipped), default=None)
        total, total_sq, count = self._partials.get(peer, ([], [], 0))
        versions = self._by_version.setdefault(peer, [])
        for item in items:
            entry = item["entry"]
            data = entry["data"]
            if data.get("type") not in ("mesh.observe", "mesh.inject_data"):
                continue
            values = None if first_skip is not None and entry["index"] > first_skip \
                else self._values(data)
            if values is None:
                self._broken.add(peer)
                break
            for x in values:
                _add(total, x)
                _add(total_sq, x * x)
            count += len(values)
            s, s2 = math.fsum(total), math.fsum(total_sq)
            if not (math.isfinite(s) and math.isfinite(s2)):
                self._broken.add(peer)
                break
            versions.append(NormalStats(count, s, s2))
        if first_skip is not None:
            self._broken.add(peer)
        self._partials[peer] = (total, total_sq, count)

    def judge(self, peer: str, c: Contribution) -> bool | None:
        """True: ``c`` is what ``peer``'s ledger says; False: it contradicts it; None: not
        (yet) known."""
        versions = self._by_version.get(peer, [])
        if c.version < 1 or c.version > len(versions):
            return None
        return versions[c.version - 1] == c.stats

    def justified(self, peer: str, version: int) -> NormalStats:
        """The statistics ``peer``'s ledger justifies at ``version`` (``1 <= version <=
        covered(peer)``)."""
        return self._by_version[peer][version - 1]

    def covered(self, peer: str) -> int:
        """Versions of ``peer`` its imported entries justify so far."""
        return len(self._by_version.get(peer, []))


__all__ = ["LedgeredStats"]
