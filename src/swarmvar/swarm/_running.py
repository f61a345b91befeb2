"""The run loop: ticks from a source, beaten until it ends, a beat budget, or a stop.

Methods of :class:`~.runtime.Swarm`, written as functions of ``self: Swarm`` and
bound in its class body: ``run`` seeks the source to the cursor (the recorded one,
or on a resume given its source the place of the ledger's last beats in it),
drives :meth:`~.runtime.Swarm.beat` tick by tick (skipping ticks recorded
before a restart, refusing bad lines, waiting for a lost host when its queue
is full, pacing on the pacer's pulse), settles lost hosts at the end and
returns a :class:`RunSummary`.

Reads ``specs``, ``seq``, ``cursor``, ``rejected``, ``refusals``,
``_started``, ``_rereads``; writes ``_pace`` and ``_again`` (for the run's duration),
``_read_cursor`` and ``_resume_as_of`` (marks passed are dropped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter, InvalidTick, RestoreQueueFull
from ..types import BeatReport, Tick
from ._restoring import _is_served
from .observers import Pacer
from .sources import BadLine
from .ticks import dated_route

if TYPE_CHECKING:
    from .runtime import Swarm

log = logging.getLogger("swarmvar.swarm")


@dataclass(frozen=True)
class RunSummary:
    """What a :meth:`Swarm.run` did.

    ``beats`` per portfolio; ``rejected`` ticks refused (reason -> count);
    ``skipped`` ticks already recorded before a restart; ``cursor`` where
    the source stands (give it to ``seek`` to resume); ``stopped`` why the
    loop ended (``"source"``, ``"beats"``, ``"interrupted"``); ``late`` the
    beats that overran the pacer's budget (0 when not paced); ``refusals`` the
    refused ticks grouped by reason: the message with its specifics (names, dates,
    numbers) blanked -> (count, the first such message).
    """

    beats: Mapping[str, int]
    rejected: Mapping[str, int]
    skipped: int
    cursor: Any
    seconds: float
    stopped: str
    last_seq: Mapping[str, int] = field(default_factory=dict)
    late: int = 0
    refusals: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def total_beats(self) -> int:
        return sum(self.beats.values())


def _since(now: Mapping[str, tuple[int, str]], before: Mapping[str, tuple[int, str]]
           ) -> dict[str, tuple[int, str]]:
    """The refusals counted since ``before`` (first messages kept from their first time)."""
    return {k: (n - before.get(k, (0, ""))[0], first) for k, (n, first) in now.items()
            if n > before.get(k, (0, ""))[0]}


def run(self: Swarm, source: Iterable[Tick | BadLine], *, beats: int | None = None,
        on_beat: Callable[[BeatReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        pace: Pacer | None = None) -> RunSummary:
    """Beat every tick of ``source`` until it ends, ``beats`` beats ran, or ``should_stop()``.

    Ticks for a date the swarm already recorded before a restart are
    skipped (counted in ``skipped``); a source with ``seek`` is first
    moved to the cursor: the last recorded tick's, or on a resume whose
    ``start`` was given this source, the place in it of the ledger's last
    beats. Bad ticks are refused and the loop goes on.

    With ``pace`` (the arbiter's ``Cadence``) each beat starts on a pulse
    boundary: the pacer measures the beat up to its observers (their
    ``beat_seconds``, recorded in the beat's ledger record), marks it late
    past the budget, and after the beat waits until the next boundary
    still ahead (not a fixed sleep). Give the source no ``rate`` then.
    """
    if not self._started:
        raise InvalidParameter("call start(history) before run(source)")
    seek = getattr(source, "seek", None)
    if self.cursor is not None and callable(seek):
        seek(self.cursor)
    # where the source stands before its first tick (a fresh run's too): what a beat
    # recorded while a host is restored says, so a resume compares it (None: a source
    # without a cursor)
    self._read_cursor = getattr(source, "cursor", self.cursor)
    began = time.perf_counter()
    done: dict[str, int] = dict.fromkeys(self.specs, 0)
    rejected_before = dict(self.rejected)
    refusals_before = dict(self.refusals)
    late_before = pace.late if pace is not None else 0
    self._pace = pace
    # the source a resume's check handed the ledger's refusals: the ticks of it the beat
    # refuses again are matched with them too (Swarm._refuse), not ledgered twice
    rereads = self._rereads
    self._again = rereads[1] if rereads is not None and rereads[0] is source else None
    try:
        stopped, skipped = self._loop(source, beats, on_beat, should_stop, done)
    finally:
        self._pace = None
        self._again = None
    if stopped != "interrupted":  # lost hosts back, their queued ticks beaten
        self._count(self.settle(), done, on_beat)
    if beats is not None and sum(done.values()) >= beats and stopped == "source":
        stopped = "beats"
    self.flush()
    late = pace.late - late_before if pace is not None else 0
    return RunSummary(done, {k: v - rejected_before.get(k, 0) for k, v in self.rejected.items()
                             if v - rejected_before.get(k, 0)}, skipped, self.cursor,
                      time.perf_counter() - began, stopped, dict(self.seq), late,
                      _since(self.refusals, refusals_before))


def _loop(self: Swarm, source: Iterable[Tick | BadLine], beats: int | None,
          on_beat: Callable[[BeatReport], None] | None,
          should_stop: Callable[[], bool] | None, done: dict[str, int]
          ) -> tuple[str, int]:
    """The loop of :meth:`run`; returns why it stopped and the ticks skipped."""
    skipped = 0
    stopped = "source"
    pace = self._pace
    for item in source:
        if beats is not None and sum(done.values()) >= beats:
            stopped = "beats"
            break
        if should_stop is not None and should_stop():
            stopped = "interrupted"
            break
        cursor = getattr(source, "cursor", None)
        if isinstance(item, BadLine):
            self._refuse(InvalidTick(item.reason), item.raw)
            continue
        if self._already(item):
            skipped += 1
            continue
        if pace is not None:
            pace.begin()
        beaten = sum(self.seq.values())
        try:
            try:
                reports = self.beat([item], cursor=cursor)
            except RestoreQueueFull as full:  # wait for the lost host, then the tick
                log.warning("%s: waiting for the restore", full)
                self._count(getattr(full, "caught_up", ()), done, on_beat)
                self._count(self.settle(), done, on_beat)
                reports = self.beat([item], cursor=cursor)
        except InvalidTick as refused:  # the queued ticks beaten first still count
            self._count(getattr(refused, "caught_up", ()), done, on_beat)
            continue
        finally:
            # a tick refused before any portfolio beat is no paced beat: not counted
            # (nor late), and the next tick need not wait for a pulse
            if pace is not None and sum(self.seq.values()) > beaten:
                pace.end()  # wait for the next pulse boundary
        self._count(reports, done, on_beat)
    return stopped, skipped


def _count(reports: Sequence[BeatReport], done: dict[str, int],
           on_beat: Callable[[BeatReport], None] | None) -> None:
    """Count and hand on the beats that ran (not the stale reports served meanwhile)."""
    for rep in reports:
        if _is_served(rep):
            continue
        done[rep.portfolio] += 1
        if on_beat is not None:
            on_beat(rep)


def _already(self: Swarm, tick: Any) -> bool:
    """A tick at or before the resume point of its portfolio(s): recorded before a restart."""
    if not self._resume_as_of or not isinstance(tick, Tick):
        return False
    routed = dated_route(tick, self.specs)
    if routed is None:
        return False  # refused by the beat as usual
    when, names = routed
    marks = [self._resume_as_of.get(n) for n in names]
    if all(m is not None and when <= m for m in marks):
        return True
    for n, m in zip(names, marks, strict=True):
        if m is None or when > m:  # past its resume point: refused as usual from now on
            self._resume_as_of.pop(n, None)
    return False
