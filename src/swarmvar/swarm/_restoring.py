"""Lost hosts: restored in the background while the other portfolios keep beating.

Methods of :class:`~.runtime.Swarm`, written as functions of ``self: Swarm`` and
bound in its class body. ``_run_beats`` is where every beat meets the
executor: a host that dies in the call has its portfolios handed to ``_lose``,
which restores them (last checkpoint + the beats logged since) in a thread
(:func:`_restore_host`); their ticks are queued (``_enqueue``), a stale,
widened consensus is served meanwhile (``_served``), and ``_poll`` / ``settle``
beat the queued ticks in order once the host is back.

Reads ``executor``, ``states``, ``configs``, ``_hosted``, ``_owner``,
``restore_timeout``, ``_read_cursor``, ``_beaten``, ``seq`` (a unit's last beat,
with ``_gseq``: ``_seq_of``; and the served report's seq). Writes the restore state
(``_recoveries``, ``_queues``, ``_enqueued``, ``_losses``), the per-unit beat
log (``_log``, ``_gseq``) and the served reports (``_latest``); the catch-up
beats themselves go through :mod:`._beating` (``_input``, ``_after``) and
:mod:`._recovery` (``checkpoint``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import SwarmVarError, WorkerFailed
from ..types import BeatReport, Consensus
from . import _records  # its constants read where defined: a patch reaches here
from .beat import BeatInput, BeatOutcome, PortfolioConfig
from .executors import Executor

if TYPE_CHECKING:
    from .runtime import Swarm

log = logging.getLogger("swarmvar.swarm")


#: The first event of a report served for a portfolio whose host is being restored.
RESTORING = "restoring"


#: Attempts at restoring a lost host before the swarm gives up (each on a fresh host).
RESTORE_ATTEMPTS = 3


@dataclass(frozen=True)
class Restoring:
    """A portfolio whose host died, restored in the background (:meth:`Swarm.restoring`).

    ``since_seq`` is its last beat recorded before the host was lost;
    ``queued`` the ticks waiting for the host; ``attempt`` 1 for the first
    restore, more if the fresh host died too, 0 once the host is back and
    the portfolio still catches up (``Swarm(catch_up=)``); ``seconds`` since
    the loss.
    """

    portfolio: str
    since_seq: int
    queued: int
    attempt: int
    seconds: float


@dataclass(frozen=True)
class _Queued:
    """A tick waiting for its portfolio's host: beaten, in order, once the host is back.

    ``before`` is the source's cursor before the tick was read (where a
    resume must start while the tick is unrecorded); ``built`` the beat's
    input when it was already made (the tick whose beat was lost with the
    host: its swaps and requests were taken from the swarm then).
    """

    value: float
    as_of: datetime
    cursor: Any
    before: Any
    order: int
    built: BeatInput | None = None


@dataclass
class _Recovery:
    """One lost host's portfolios being restored by a background thread."""

    names: tuple[str, ...]
    future: Future[None]
    thread: threading.Thread
    attempt: int
    began: float
    since: dict[str, int]


_Refusal = TypeVar("_Refusal", bound=SwarmVarError)


def _with_caught_up(exc: _Refusal, caught_up: list[BeatReport]) -> _Refusal:
    """``exc`` carrying ``caught_up``: the queued ticks :meth:`Swarm.beat` beat (and
    ledgered) before it raised; a caller counts them as beats that ran."""
    exc.caught_up = caught_up  # type: ignore[attr-defined]
    return exc


def _is_served(report: BeatReport) -> bool:
    """Whether a report is the stale one served for a restoring portfolio (not a beat)."""
    return bool(report.events) and report.events[0].startswith(RESTORING)


def _restore_host(executor: Executor, configs: Sequence[PortfolioConfig],
                  blobs: Mapping[str, bytes], logged: Mapping[str, Sequence[BeatInput | None]],
                  future: Future[None]) -> None:
    """A restoring thread: open the fresh host, restore the checkpoints, replay the log.

    Only this thread talks to the lost portfolios' host until ``future`` is
    done (the swarm sends them nothing meanwhile), so the executor is used
    from two threads on disjoint hosts. A ``None`` in a log is a checkpoint's
    rebase the original run took without storing it (a kill inside its write).
    """
    try:
        executor.open(configs)
        executor.restore(blobs)
        for name, items in logged.items():
            batch: list[tuple[str, BeatInput]] = []
            for item in items:
                if item is None:
                    if batch:
                        executor.beats(batch)
                        batch = []
                    executor.states([name])
                else:
                    batch.append((name, item))
            if batch:
                executor.beats(batch)
        future.set_result(None)
    except BaseException as exc:  # noqa: BLE001 - handed to the swarm's thread
        future.set_exception(exc)


def _run_beats(self: Swarm, inputs: Sequence[tuple[str, BeatInput]]
               ) -> list[BeatOutcome | None]:
    """The executor's beats; None for a portfolio whose host died in the call.

    A dead host's portfolios go to a background restore (:meth:`_lose`);
    the beats of the hosts that answered ran and are kept (never run twice).
    Each beat that ran is logged (what a restored host replays).
    """
    try:
        done: list[BeatOutcome | None] = list(self.executor.beats(inputs))
    except WorkerFailed as exc:
        lost = tuple(getattr(exc, "portfolios", ())) or tuple(self._hosted)
        outcomes: Mapping[int, BeatOutcome] = getattr(exc, "outcomes", {})
        # a portfolio of a host that answered with an error has no outcome either, and
        # that host may have beaten others of its batch first: restored too (exactly once)
        lost += tuple(name for i, (name, _) in enumerate(inputs)
                      if name not in lost and i not in outcomes)
        log.warning("swarm host died (%s); restoring %s from the last checkpoint in the "
                    "background", exc, ", ".join(lost))
        for name in lost:
            self._losses[name] = self._losses.get(name, 0) + 1
        self._lose(lost, max(self._losses[name] for name in lost))
        done = [outcomes.get(i) if name not in lost else None
                for i, (name, _) in enumerate(inputs)]
    for (name, tick), outcome in zip(inputs, done, strict=True):
        if outcome is not None:
            self._log[name].append(tick)
            self._losses.pop(name, None)
            if name in self._owner:
                self._gseq[name] = tick.seq
    return done


def _beat_now(self: Swarm, name: str, tick: BeatInput) -> BeatOutcome:
    """One beat that waits for its host when it is lost (replaying the ledger)."""
    for _ in range(RESTORE_ATTEMPTS + 1):
        if name in self._recoveries:
            self._wait_restored()
        outcome = self._run_beats([(name, tick)])[0]
        if outcome is not None:
            return outcome
    raise WorkerFailed(f"the host of {name!r} kept dying; see the log")


def restoring(self: Swarm) -> dict[str, Restoring]:
    """The portfolios whose host died and is being restored, or that still catch up on
    their queued ticks (``attempt`` 0); empty when all are up and caught up."""
    now = time.monotonic()
    out = {p: Restoring(p, r.since[p], len(self._queues.get(p, ())), r.attempt,
                        now - r.began) for p, r in self._recoveries.items()}
    for p, q in self._queues.items():
        if q and p not in out:
            out[p] = Restoring(p, self._seq_of(p), len(q), 0, 0.0)
    return out


def _lose(self: Swarm, names: Sequence[str], attempt: int = 1) -> None:
    """Start restoring the portfolios of a dead host in a background thread.

    A fresh host is started here (quick); the thread opens it, restores
    the portfolios from their last stored checkpoint and replays the beats
    logged since (redoing an unstored checkpoint's rebase where the log
    says so). The swarm does not wait: other hosts keep beating, and
    these portfolios' ticks are queued until :meth:`_poll` sees it done.
    """
    names = tuple(n for n in names if n not in self._recoveries)
    if not names:
        return
    if attempt > RESTORE_ATTEMPTS:  # the same tick kills every fresh host: given up
        gone: Future[None] = Future()
        gone.set_exception(WorkerFailed(
            f"the host of {', '.join(names)} died {attempt} times in a row on the tick "
            f"after beat {', '.join(str(self._seq_of(p)) for p in names)}"))
        rec = _Recovery(names, gone, threading.Thread(target=gone.result), attempt,
                        time.monotonic(), {p: self._seq_of(p) for p in names})
        for p in names:
            self._recoveries[p] = rec
            self._queues.setdefault(p, deque())
        return
    self.executor.reset(names)
    blobs = {p: self.states.get(_records.STATE_PREFIX + p) for p in names}
    logged = {p: list(self._log[p]) for p in names}
    future: Future[None] = Future()
    thread = threading.Thread(
        target=_restore_host, name=f"swarmvar-restore-{names[0]}", daemon=True,
        args=(self.executor, [self._hosted[p] for p in names], blobs, logged, future))
    rec = _Recovery(names, future, thread, attempt, time.monotonic(),
                    {p: self._seq_of(p) for p in names})
    for p in names:
        self._recoveries[p] = rec
        self._queues.setdefault(p, deque())
    thread.start()


def _wait_restored(self: Swarm, timeout: float | None = None) -> None:
    """Block until no host is restoring (or ``timeout`` seconds passed: WorkerFailed)."""
    limit = self.restore_timeout if timeout is None else timeout
    deadline = time.monotonic() + limit
    while self._recoveries:
        pending = {r.future for r in self._recoveries.values() if not r.future.done()}
        if pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(
                    f"restoring {', '.join(sorted(self._recoveries))} did not finish in "
                    f"{limit:g} s; their ticks stay queued (a resume reads them again)")
            wait(pending, timeout=left, return_when=FIRST_COMPLETED)
        self._collect()


def _collect(self: Swarm) -> None:
    """Take finished restores: their portfolios are back, or restored again on a fresh host.

    Raises WorkerFailed for a host given up after :data:`RESTORE_ATTEMPTS`
    (its portfolios stay restoring: served stale, their ticks queued).
    """
    failed: list[WorkerFailed] = []
    for rec in {id(r): r for r in self._recoveries.values()}.values():
        if not rec.future.done():
            continue
        for p in rec.names:
            del self._recoveries[p]
        exc = rec.future.exception()
        if exc is None:
            log.info("host of %s restored after %.2f s", ", ".join(rec.names),
                     time.monotonic() - rec.began)
            continue
        if isinstance(exc, WorkerFailed) and rec.attempt < RESTORE_ATTEMPTS:
            log.warning("the restored host of %s died too (%s); trying again",
                        ", ".join(rec.names), exc)
            self._lose(rec.names, rec.attempt + 1)
            continue
        for p in rec.names:  # given up: they stay out, and every beat says why
            self._recoveries[p] = rec
        gone = WorkerFailed(f"the host of {', '.join(rec.names)} could not be restored "
                            f"({type(exc).__name__}: {exc}); stop the swarm and resume "
                            "it from its home")
        gone.__cause__ = exc
        failed.append(gone)
    if failed:
        raise failed[0]


def _poll(self: Swarm, *, block: bool = False, timeout: float | None = None,
          rounds: int | None = None) -> list[BeatReport]:
    """Catch up every portfolio whose host is back: its queued ticks, in order.

    Non-blocking unless ``block`` (then waits for every restore). The
    queued beats go through the observers and into the ledger as any
    beat; several portfolios' queues are beaten together, one tick each
    per round, so each keeps its order; at most ``rounds`` rounds (None:
    until the queues are empty). Returns their reports.
    """
    if block:
        self._wait_restored(timeout)
    self._collect()
    names = [p for p, q in self._queues.items() if q and p not in self._recoveries]
    for p in list(self._queues):
        if not self._queues[p] and p not in self._recoveries:
            del self._queues[p]
    out: list[BeatReport] = []
    left = rounds
    while names and (left is None or left > 0):
        left = None if left is None else left - 1
        inputs: list[tuple[str, BeatInput]] = []
        heads: list[_Queued] = []
        for p in names:
            q = self._queues[p][0]
            inputs.append((p, q.built if q.built is not None
                           else self._input(p, q.value, q.as_of)))
            heads.append(q)
        outcomes = self._run_beats(inputs)
        for (p, tick), q, outcome in zip(inputs, heads, outcomes, strict=True):
            if outcome is None:  # lost again: the tick waits, its input made
                self._queues[p][0] = dataclasses.replace(q, built=tick)
                continue
            self._queues[p].popleft()
            if p in self._owner:  # a group catching up: its entries, late, once
                self._append(self._late_entries(p, tick.seq, tick.as_of, outcome), beats=1)
                continue
            out.append(self._after(p, tick, outcome, self._safe_cursor(
                q.cursor if self._read_cursor is None else self._read_cursor)))
            if self._due(p):
                self.checkpoint([p])
        names = [p for p in names if self._queues.get(p) and p not in self._recoveries]
    for p in list(self._queues):
        if not self._queues[p] and p not in self._recoveries:
            del self._queues[p]
    return out


def settle(self: Swarm, timeout: float | None = None) -> list[BeatReport]:
    """Wait until every lost host is back and its portfolios have beaten their queued ticks.

    Returns the reports of those catch-up beats (already ledgered).
    Raises :class:`~swarmvar.errors.WorkerFailed` after ``timeout``
    seconds (default ``restore_timeout``) or when a host cannot be restored.
    """
    limit = self.restore_timeout if timeout is None else timeout
    deadline = time.monotonic() + limit  # one deadline for all (a restore may repeat)
    out: list[BeatReport] = []
    try:
        while self._recoveries or self._queues:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(
                    f"settling {', '.join(sorted({*self._recoveries, *self._queues}))} "
                    f"did not finish in {limit:g} s; their ticks stay queued (a resume "
                    "reads them again)")
            out.extend(self._poll(block=True, timeout=left))
    except WorkerFailed as exc:  # the catch-up beats that ran go with it
        _with_caught_up(exc, out)
        raise
    return out


def _safe_cursor(self: Swarm, cursor: Any) -> Any:
    """The cursor a resume may start from: before the first tick still queued, if any."""
    first: _Queued | None = None
    for p, q in self._queues.items():
        if p in self._owner:  # a group's ticks are in its portfolio's beats (replayed)
            continue
        if q and (first is None or q[0].order < first.order):
            first = q[0]
    return cursor if first is None else first.before


def _enqueue_group(self: Swarm, group: str, built: BeatInput, cursor: Any, before: Any) -> None:
    """Queue a tick for a restoring group (its portfolio beat it with the other groups)."""
    self._enqueued += 1
    self._queues.setdefault(group, deque()).append(
        _Queued(built.value, built.as_of, cursor, before, self._enqueued, built))


def _waits(self: Swarm, name: str) -> bool:
    """Whether a tick for ``name`` must queue (host restoring, or earlier ticks queued)."""
    return name in self._recoveries or bool(self._queues.get(name))


def _enqueue(self: Swarm, name: str, value: float, as_of: datetime, cursor: Any, before: Any,
             built: BeatInput | None = None) -> BeatReport:
    """Queue a tick for a restoring portfolio; what the swarm serves for it meanwhile."""
    queue = self._queues.setdefault(name, deque())
    self._enqueued += 1
    item = _Queued(value, as_of, cursor, before, self._enqueued, built)
    if built is not None:
        queue.appendleft(item)  # the lost beat comes before anything queued after it
    else:
        queue.append(item)
    served = self._served(name, value, as_of)
    self._latest[name] = served
    return served


def _served(self: Swarm, name: str, value: float, as_of: datetime) -> BeatReport:
    """The last consensus of a restoring portfolio, marked stale and widened.

    Availability 0/n (no agent of the portfolio answers), ``degraded``,
    ``staleness`` grown by the data time since that consensus, and each
    interval widened by the partition rule's staleness term
    (:func:`~swarmvar.consensus.widen_interval`: ``h' = sqrt(h^2 + z^2
    (kappa * point)^2 d)`` with the policy's drift and interval mass).
    ``consensus`` is empty if the portfolio never beat before the loss.
    """
    from ..consensus import widen_interval

    rec = self._recoveries.get(name)
    base = self._beaten.get(name)
    policy = self.configs[name].policy
    queued = len(self._queues.get(name, ()))
    consensus: list[Consensus] = []
    for c in base.consensus if base is not None else ():
        made = c.as_of or base.as_of  # type: ignore[union-attr]
        days = max(0.0, (as_of - made).total_seconds() / 86_400.0)

        def widen(point: float, interval: tuple[float, float], days: float = days
                  ) -> tuple[float, float]:
            return widen_interval(point, interval, available=1, total=1, spread=0.0,
                                  staleness_days=days, drift=policy.drift,
                                  mass=policy.interval_mass)

        consensus.append(dataclasses.replace(
            c, var_interval=widen(c.var, c.var_interval),
            es_interval=widen(c.es, c.es_interval),
            method=f"{c.method}; stale: host restoring", available=0,
            staleness=c.staleness + days * 86_400.0, degraded=True))
    agents = self.configs[name].agents
    return BeatReport(
        name, self.seq[name] + queued, as_of, value, {}, {}, {}, tuple(consensus),
        rejected=dict.fromkeys(agents, "host restoring"),
        events=(f"{RESTORING}: host lost after beat {rec.since[name]} (attempt "
                f"{rec.attempt}); {queued} ticks queued" if rec is not None else
                f"{RESTORING}: host back, catching up; {queued} ticks queued",))
