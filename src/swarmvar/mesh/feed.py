"""A running swarm's beats carried into its mesh node.

:class:`BeatFeed` is a bounded, thread-safe queue: the swarm's thread
pushes each :class:`~swarmvar.types.BeatReport` (pass :meth:`BeatFeed.push`
as ``Swarm.run(on_beat=...)``), the node's loop drains it. For each beat the
node adds the realized return to its conjugate statistics (its CRDT
contribution, gossiped to its peers) and keeps the swarm's consensus VaR as
its estimate: the value it brings to an agreement run started without one.
"""

from __future__ import annotations

import queue

from ..types import BeatReport


class BeatFeed:
    """Bounded queue of beat reports from a swarm thread to a node loop."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queue: queue.Queue[BeatReport] = queue.Queue(maxsize)
        self.dropped = 0

    def push(self, report: BeatReport) -> None:
        """Hand over one beat (never blocks the swarm: when full, the oldest is dropped)."""
        while True:
            try:
                self._queue.put_nowait(report)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def drain(self, limit: int = 1000) -> list[BeatReport]:
        out = []
        for _ in range(limit):
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return out
