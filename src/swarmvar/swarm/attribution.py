"""A streamed book's attribution: which positions drive its VaR, every N beats, off the beat.

A book portfolio (weights or currency positions over asset columns) beats on its own
return only; this role says what drives that return's VaR. The swarm keeps, per book, a
bounded ring of its last ``window`` asset-return rows (:class:`AssetRing`, in the swarm,
not per agent). Every ``attribute_every`` beats (:class:`~.roles.RoleConfig`; default the
refit rhythm, 0 off; single-series portfolios have none), once the ring is full, the
ring's rows go to :func:`swarmvar.book_var` (handed to the swarm, ``Swarm(book_var=)``:
the runtime does not import a face; without it there is no attribution), with
``kind="return"``, the default joint agents, ``consensus=True``, ``baseline=False``,
seed :func:`attribution_seed` of the portfolio's seed and the beat, on a worker
thread: the beat does not wait for it (unless :data:`MAX_QUEUED` of the book's, or more,
are queued or running: then for the book's oldest, up to ``restore_timeout``; past that it
is queued anyway, a WARNING names the attribution the one worker is stuck on (it ran all
through the wait), maybe another book's, or says the worker is behind (others ended during
the wait), and no beat of any book waits again until the one running ends: meanwhile each
due one is queued, so the queue grows; after it, each due one waits for one, so the queue
grows no more, but shrinks only as the worker outpaces the beats). A failed one (``book_var``
raised) is a WARNING as it lands, the book's next failures in a row at INFO. Its
result
(:class:`BookAttribution`: per level the consensus VaR/ES in currency and each asset's
Euler contribution to both, the agents used) lands at a later beat (or at ``close``) as a
role record in the ledger (``flow: attribution``, action ``attributed``), dated with the
beat it was computed for (``seq``, ``as_of``).

Exactly once: every beat of a book records its asset returns (``assets`` in the beat's
ledger record); a checkpoint stores the ring and the attributions still running (their
windows); a resume restores both, replays the ledger's beats into the ring, and submits
again every due attribution the ledger does not hold (one that was running at the kill):
the same window and seed, so the same numbers. A due one met while the ring is not full
(a start history shorter than ``window`` or without asset returns, or a checkpoint or
ledger written before attribution existed or while it was off, on this resume or an
earlier one) is ledgered as ``attribution-skipped`` with the reason, and logged once until
the ring is full.
A weights book is attributed per unit of value (positions ``weight * 1``); a positions
book in its currency.

Methods of :class:`~.runtime.Swarm` (``_attr_*``, ``attribution``) written as functions
of ``self: Swarm``; they read ``specs``, ``configs``, ``roles``, ``restore_timeout``,
``ledger``, ``states``; write ``_book_var``, ``_rings``, ``_asset_rows``, ``_attr_running``,
``_attr_recorded``, ``_attributions``, ``_attr_lost``, ``_attr_pool``, ``_attr_stuck``, and
append their ledger entries to ``_batch``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import NDArray

from ..canonical import canonical_json
from ..ledger import EntryKind
from ._records import role_entry
from .roles import RoleRecord

if TYPE_CHECKING:
    from .runtime import Swarm

log = logging.getLogger("swarmvar.swarm")

FloatArray = NDArray[np.float64]

#: The largest ``attribute_every`` (beats between attributions) the runtime takes.
MAX_ATTRIBUTE_EVERY = 100_000

#: The most attributions of one book queued or running at once: a beat that would queue
#: one more waits for the oldest (a replay faster than they run), so the queue, its memory
#: and the checkpoints that store it stay bounded, except while the worker is stuck (a wait
#: timed out): then each due one is queued without waiting (never skipped: exactly once)
#: and the queue grows until the stuck one ends; after it, a due one waits for the book's
#: oldest only, so the queue grows no more and shrinks as the worker outpaces the beats.
MAX_QUEUED = 4

#: The role records' names in the ledger (``flow``) and their actions.
ROLE = "attribution"
ATTRIBUTED = "attributed"
SKIPPED = "attribution-skipped"


def attribution_seed(seed: int, seq: int) -> int:
    """The root seed of beat ``seq``'s attribution, from the portfolio's seed (as
    :func:`~.roles.fit_seed` keys a refit by the seed and the day)."""
    return int(np.random.SeedSequence([int(seed), int(seq), 7]).generate_state(1)[0])


def _utc(when: datetime) -> datetime:
    """``when`` in UTC (a naive one taken as UTC): a ring's dates share one zone, so that
    ticks with offsets, a zone's DST change or a ring read back from ISO strings still
    make one index."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dates(values: Sequence[datetime | str]) -> tuple[datetime, ...]:
    """Dates, or ISO strings (what the role's first version checkpointed), in UTC."""
    return tuple(_utc(datetime.fromisoformat(d) if isinstance(d, str) else d) for d in values)


def dates_blob(dates: Sequence[datetime]) -> bytes:
    """``dates`` as int64 microseconds since the epoch (UTC): what a checkpoint stores."""
    return np.array([(_utc(d) - _EPOCH) // timedelta(microseconds=1) for d in dates],
                    dtype=np.int64).tobytes()


def blob_dates(blob: bytes) -> tuple[datetime, ...]:
    """The dates of :func:`dates_blob` back (UTC)."""
    return tuple(_EPOCH + timedelta(microseconds=int(x))
                 for x in np.frombuffer(blob, dtype=np.int64))


class AssetRing:
    """A book's last ``keep`` asset-return rows with their dates (in UTC), oldest first."""

    def __init__(self, keep: int, width: int) -> None:
        self.keep = int(keep)
        self.width = int(width)
        self._rows: deque[tuple[datetime, FloatArray]] = deque(maxlen=self.keep)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def full(self) -> bool:
        return len(self._rows) == self.keep

    def push(self, as_of: datetime, row: Sequence[float] | FloatArray) -> None:
        self._rows.append((_utc(as_of), np.asarray(row, dtype=np.float64).reshape(self.width)))

    def clear(self) -> None:
        self._rows.clear()

    def window(self) -> tuple[tuple[datetime, ...], FloatArray]:
        """The dates and the ``(rows, assets)`` returns held now (a copy)."""
        if not self._rows:
            return (), np.zeros((0, self.width))
        return (tuple(d for d, _ in self._rows), np.stack([r for _, r in self._rows]))

    def dump(self) -> tuple[bytes, bytes]:
        """The dates' bytes (:func:`dates_blob`) and the rows' bytes: what a checkpoint
        stores."""
        dates, rows = self.window()
        return dates_blob(dates), rows.tobytes()

    def load(self, dates: Sequence[datetime | str], blob: bytes) -> None:
        """The rows of :meth:`dump` back, with their dates (or ISO strings: a checkpoint
        written by the first version of this role)."""
        rows = np.frombuffer(blob, dtype=np.float64).reshape(len(dates), self.width)
        self._rows.clear()
        for when, r in zip(_dates(dates), rows, strict=True):
            self._rows.append((when, r.copy()))


@dataclass(frozen=True)
class AttributionJob:
    """One due attribution: the book, the window it reads and the seed it draws with."""

    portfolio: str
    seq: int
    as_of: datetime
    assets: tuple[str, ...]
    positions: tuple[float, ...]
    dates: tuple[datetime, ...]
    rows: FloatArray
    alphas: tuple[float, ...]
    horizon: int
    seed: int


@dataclass(frozen=True)
class LevelAttribution:
    """The consensus at one level, in currency, and each asset's Euler contribution."""

    alpha: float
    var: float
    es: float
    component_var: tuple[float, ...]
    component_es: tuple[float, ...]


@dataclass(frozen=True)
class BookAttribution:
    """What a book's attribution found at beat ``seq`` (``levels`` empty: no consensus,
    ``note``/``errors`` say why); ``failed``: ``book_var`` raised, ``note`` its error (not
    ledgered: one read back from the ledger says False)."""

    portfolio: str
    seq: int
    as_of: datetime
    assets: tuple[str, ...]
    agents: tuple[str, ...]
    levels: tuple[LevelAttribution, ...]
    seconds: float = 0.0
    note: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)
    failed: bool = False

    def level(self, alpha: float | None = None) -> LevelAttribution | None:
        """The level ``alpha`` (default the first), None without a consensus."""
        for lv in self.levels:
            if alpha is None or abs(lv.alpha - alpha) < 1e-12:
                return lv
        return None

    def top(self, k: int = 3, alpha: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` assets with the largest share of the consensus VaR (share: component
        VaR / VaR), largest first; [] without a consensus."""
        lv = self.level(alpha)
        if lv is None or not lv.var:
            return []
        comp = np.asarray(lv.component_var)
        order = np.argsort(-comp, kind="stable")[:k]
        return [(self.assets[i], float(comp[i] / lv.var)) for i in order]

    def detail(self) -> dict[str, Any]:
        """The role record's detail (plain JSON)."""
        return {"as_of": self.as_of.isoformat(), "assets": list(self.assets),
                "levels": [{"alpha": lv.alpha, "var": lv.var, "es": lv.es,
                            "component_var": list(lv.component_var),
                            "component_es": list(lv.component_es)} for lv in self.levels],
                "seconds": self.seconds, "note": self.note[:300],
                "errors": {k: str(v)[:300] for k, v in self.errors.items()}}

    def record(self) -> RoleRecord:
        return RoleRecord(ROLE, ATTRIBUTED, self.agents, self.detail())

    @classmethod
    def from_record(cls, portfolio: str, seq: int, rec: Mapping[str, Any]) -> BookAttribution:
        """Back from a ledgered role record (``RoleRecord.to_dict``)."""
        d = rec["detail"]
        levels = tuple(LevelAttribution(float(x["alpha"]), float(x["var"]), float(x["es"]),
                                        tuple(float(v) for v in x["component_var"]),
                                        tuple(float(v) for v in x["component_es"]))
                       for x in d.get("levels", []))
        return cls(portfolio, int(seq), datetime.fromisoformat(d["as_of"]),
                   tuple(d["assets"]), tuple(rec.get("agents", ())), levels,
                   float(d.get("seconds", 0.0)), str(d.get("note", "")),
                   dict(d.get("errors", {})))


def job_frame(job: AttributionJob) -> Any:
    """The job's window as the asset-returns frame ``book_var`` reads."""
    import pandas as pd

    return pd.DataFrame(job.rows, index=pd.to_datetime(list(job.dates), utc=True),
                        columns=list(job.assets))


def job_book(job: AttributionJob) -> Any:
    from ..types import Book

    return Book(job.assets, job.positions)


def _failed(job: AttributionJob, exc: BaseException, seconds: float = 0.0) -> BookAttribution:
    """The record of an attribution that raised: no levels, the error as its note (the same
    error on the same window after a resume: the same note, no levels; its seconds
    differ)."""
    return BookAttribution(job.portfolio, job.seq, job.as_of, job.assets, (), (), seconds,
                           f"{type(exc).__name__}: {exc}", failed=True)


def run_attribution(job: AttributionJob, book_var: Callable[..., Any]) -> BookAttribution:
    """Attribute the job's window with ``book_var`` (:func:`swarmvar.book_var`: the runtime
    may not import a face, so the caller hands it in): the joint agents' consensus. One
    that raises (a refusal or a bug) gives a record without levels, its note the error
    (``failed``: said when it lands, :func:`_say_failed`, on the caller's thread)."""
    begin = time.perf_counter()
    try:
        result = book_var(job_frame(job), job_book(job), kind="return", alphas=job.alphas,
                          horizon=job.horizon, window=len(job.dates), seed=job.seed,
                          consensus=True, baseline=False)
    except Exception as exc:  # noqa: BLE001 - a refusal, or a bug: ledgered, saying it
        return _failed(job, exc, time.perf_counter() - begin)
    levels = []
    for agreed, att in zip(result.agreed, result.attributions.get("consensus", ()), strict=False):
        levels.append(LevelAttribution(float(att.alpha), float(agreed.var), float(agreed.es),
                                       tuple(float(v) for v in att.component_var),
                                       tuple(float(v) for v in att.component_es)))
    return BookAttribution(job.portfolio, job.seq, job.as_of, job.assets,
                           tuple(result.forecasts), tuple(levels),
                           time.perf_counter() - begin, result.note, dict(result.errors))


# --- the swarm's side ------------------------------------------------------------


def _every(self: Swarm, name: str) -> int:
    """Beats between ``name``'s attributions (0: none: a single series, or off)."""
    if not self.specs[name].assets or self._book_var is None:
        return 0
    every = self.roles.attribute_every
    return self.configs[name].refit_every if every is None else int(every)


def _attr_setup(self: Swarm, book_var: Callable[..., Any] | None) -> None:
    """The rings and the bookkeeping (called by ``Swarm.__init__``)."""
    if book_var is not None and not callable(book_var):
        from ..errors import InvalidParameter

        raise InvalidParameter(f"book_var must be swarmvar.book_var (or a function like it) "
                               f"or None (no attribution), not {book_var!r}")
    self._book_var = book_var
    self._rings = {p: AssetRing(self.configs[p].window, len(s.assets))
                   for p, s in self.specs.items() if _every(self, p) > 0}
    self._attr_running = {}
    self._attr_recorded = set()
    self._attributions = {}
    #: books whose ring is not full and whose skipped attributions were logged (once per
    #: stretch: a due attribution before it is full again is ledgered as skipped)
    self._attr_lost = set()
    self._attr_pool = None
    self._attr_stuck = None
    #: (portfolio, as_of) -> the tick's asset returns, until its beat is recorded
    self._asset_rows = {}


def attribution(self: Swarm, portfolio: str) -> BookAttribution | None:
    """The latest attribution of ``portfolio`` landed (None before the first, and for a
    single series).

    Raises
    ------
    UnknownPortfolio
        ``portfolio`` is not one of this swarm's.
    """
    self.latest(portfolio)  # names an unknown portfolio
    return self._attributions.get(portfolio)


def _attr_fill(self: Swarm, name: str, history: Any) -> None:
    """A fresh start: the ring from the start history's asset rows (an asset-returns
    DataFrame; a mapping of the book's own returns leaves it empty until it fills)."""
    import pandas as pd

    ring = self._rings.get(name)
    if ring is None or not isinstance(history, pd.DataFrame):
        return
    assets = list(self.specs[name].assets)
    if not set(assets) <= set(map(str, history.columns)):
        return
    from .ticks import as_utc

    tail = history[assets].iloc[-ring.keep:]
    for when, row in zip(tail.index, tail.to_numpy(dtype=np.float64), strict=True):
        ring.push(as_utc(when), row)


def _attr_take(self: Swarm, name: str, tick: Any) -> None:
    """Keep a checked tick's asset returns for its beat (a book's only)."""
    if name in self._rings and tick.assets is not None:
        from .ticks import as_utc

        self._asset_rows[name, as_utc(tick.as_of)] = np.array(
            [float(tick.assets[a]) for a in self.specs[name].assets])


def _attr_beat(self: Swarm, name: str, seq: int, as_of: datetime
               ) -> tuple[list[float] | None, list[RoleRecord]]:
    """After ``name``'s beat ``seq``: its asset row into the ring (returned for the beat's
    record), and the attribution submitted if due. Returns the row and records to ledger
    with the beat (a skipped one)."""
    ring = self._rings.get(name)
    if ring is None:
        return None, []
    row = self._asset_rows.pop((name, as_of), None)
    for key in [k for k in self._asset_rows if k[0] == name and k[1] < as_of]:
        del self._asset_rows[key]  # a tick taken, then refused or not beaten: never beaten
    if row is None:  # (not expected: every book tick carries assets) the window breaks
        ring.clear()
        return None, []
    ring.push(as_of, row)
    return [float(x) for x in row], _attr_due(self, name, seq, as_of)


def _attr_due(self: Swarm, name: str, seq: int, as_of: datetime) -> list[RoleRecord]:
    """The due attribution of ``name`` at ``seq`` submitted; one due before the ring is full
    returned as a skipped record (always: the ring a resume rebuilds is the one an
    uninterrupted run holds, so both ledger the same; logged once per stretch)."""
    ring = self._rings[name]
    if ring.full:
        self._attr_lost.discard(name)
    every = _every(self, name)
    if every <= 0 or seq % every or (name, seq) in self._attr_recorded \
            or (name, seq) in self._attr_running:
        return []
    if not ring.full:
        reason = (f"the asset ring holds {len(ring)} of {ring.keep} rows (a start history "
                  "shorter than the window or without asset returns, a beat without them, "
                  "or a checkpoint or beats recorded before attribution existed or while "
                  "it was off)")
        if name not in self._attr_lost:
            log.warning("attribution of %s at beat %d skipped (and each due one until "
                        "the ring is full): %s", name, seq, reason)
            self._attr_lost.add(name)
        self._attr_recorded.add((name, seq))
        return [RoleRecord(ROLE, SKIPPED, (), {"as_of": as_of.isoformat(),
                                               "reason": reason})]
    _attr_submit(self, _job(self, name, seq, as_of, *ring.window()))
    return []


def _positions(self: Swarm, name: str) -> tuple[float, ...]:
    """The book's positions over its assets (a weights book: its weights)."""
    spec = self.specs[name]
    if spec.positions is not None:
        return tuple(float(spec.positions[a]) for a in spec.assets)
    assert spec.weights is not None
    return tuple(float(spec.weights[a]) for a in spec.assets)


def _job(self: Swarm, name: str, seq: int, as_of: datetime, dates: tuple[datetime, ...],
         rows: FloatArray) -> AttributionJob:
    """Beat ``seq``'s attribution of ``name`` on the window ``dates``, ``rows``."""
    spec, cfg = self.specs[name], self.configs[name]
    return AttributionJob(name, seq, as_of, spec.assets, _positions(self, name), dates, rows,
                          cfg.alphas, cfg.horizon, attribution_seed(cfg.seed, seq))


def _attr_submit(self: Swarm, job: AttributionJob) -> None:
    """Queue ``job`` on the worker thread; with :data:`MAX_QUEUED` (or more: a queue grown
    while the worker was stuck) of its book's still queued or running, first wait for the
    book's oldest (one, up to ``restore_timeout``: the queue grows no more, but shrinks
    only as the worker outpaces the beats), unless a wait already timed out on the
    attribution the worker still runs (one worker for every book: while it is stuck, no
    beat waits)."""
    if self._attr_stuck is not None and self._attr_stuck.done():
        self._attr_stuck = None
    mine = sorted((s, f) for (p, s), (_, f) in self._attr_running.items()
                  if p == job.portfolio and f is not None and not f.done())
    if len(mine) >= MAX_QUEUED and self._attr_stuck is None:
        log.info("attribution of %s at beat %d waits for the oldest of %d still queued (a "
                 "replay faster than they run)", job.portfolio, job.seq, len(mine))
        before = _attr_now(self)
        _, pending = wait_futures([mine[0][1]], timeout=self.restore_timeout)
        if pending:  # said once; no beat waits again until the one running now is done
            key, future = _attr_blocking(self, pending)
            if before is not None and before[0] == key:  # it ran all through the wait
                log.warning("attribution of %s at beat %d still running after %g s: the "
                            "beats queue theirs without waiting until it ends", key[0],
                            key[1], self.restore_timeout)
            else:  # others ended meanwhile: behind, not stuck on one
                log.warning("attribution of %s at beat %d not done after %g s: the worker "
                            "is behind (others ended during the wait; it runs %s's beat %d "
                            "now): the beats queue theirs without waiting until that one "
                            "ends", job.portfolio, mine[0][0], self.restore_timeout, key[0],
                            key[1])
            self._attr_stuck = future
    if self._attr_pool is None:
        self._attr_pool = ThreadPoolExecutor(max_workers=1,
                                             thread_name_prefix="swarmvar-attribution")
    assert self._book_var is not None
    self._attr_running[job.portfolio, job.seq] = (job, self._attr_pool.submit(
        _attr_run, job, self._book_var))


def _attr_now(self: Swarm) -> tuple[tuple[str, int], Future[BookAttribution]] | None:
    """The attribution the worker runs now (any book's), None when it runs none."""
    return next(((k, f) for k, (_, f) in self._attr_running.items()
                 if f is not None and f.running()), None)


def _attr_blocking(self: Swarm, pending: set[Future[BookAttribution]]
                   ) -> tuple[tuple[str, int], Future[BookAttribution]]:
    """The attribution the worker runs now (any book's: the one ``pending`` sits behind),
    else the first of ``pending`` (it ended in between: the next submit clears it)."""
    running = _attr_now(self)
    if running is not None:
        return running
    return min(((k, f) for k, (_, f) in self._attr_running.items() if f in pending),
               key=lambda kf: kf[0])


def _attr_run(job: AttributionJob, book_var: Callable[..., Any]) -> BookAttribution:
    """The worker's call (a module-level name, so that a test can slow it down)."""
    return run_attribution(job, book_var)


@overload
def _attr_landed(self: Swarm, *, wait: float | None = None, into: None = None
                 ) -> list[tuple[EntryKind, Any]]: ...


@overload
def _attr_landed(self: Swarm, *, wait: float | None = None,
                 into: list[tuple[EntryKind, Any]]) -> None: ...


def _attr_landed(self: Swarm, *, wait: float | None = None,
                 into: list[tuple[EntryKind, Any]] | None = None
                 ) -> list[tuple[EntryKind, Any]] | None:
    """The finished attributions as ledger entries (each (portfolio, seq) once), in the
    order they were due; ``wait``: seconds to wait for the running ones (``close``);
    ``into``: the list appended to as each lands (kept when the wait is interrupted; then
    None is returned). A failed one is said here (:func:`_say_failed`)."""
    out: list[tuple[EntryKind, Any]] = [] if into is None else into
    deadline = None if wait is None else time.monotonic() + wait
    for key in sorted(self._attr_running, key=lambda k: (k[1], k[0])):
        job, future = self._attr_running[key]
        if future is None:
            continue
        if not future.done():
            if deadline is None:
                continue
            wait_futures([future], timeout=max(0.0, deadline - time.monotonic()))
            if not future.done():
                continue
        del self._attr_running[key]
        exc = future.exception()
        # done: the worker's result; what it raised outside run_attribution's catch (even
        # SystemExit) recorded as failed, not raised
        result = future.result() if exc is None else _failed(job, exc)
        if key in self._attr_recorded:
            continue
        self._attr_recorded.add(key)
        _say_failed(self, result)
        self._attributions[job.portfolio] = result
        out.append(role_entry(job.portfolio, job.seq, result.record()))
    if not self._attr_running and self._attr_pool is not None:
        # idle: its thread stops, so that a process forked later (foragers, a restored
        # worker) may still fork; the next due one starts another
        self._attr_pool.shutdown(wait=False)
        self._attr_pool = None
    return out if into is None else None


def _say_failed(self: Swarm, result: BookAttribution) -> None:
    """A failed attribution as it lands, on the thread that lands it (the beat's or
    ``close``'s, not the worker's: ``swarmvar run``'s live display): a WARNING for a book's
    first failure in a row; the ones after it, until one succeeds, at INFO (a broken
    ``book_var`` does not repeat its warning every ``attribute_every`` beats)."""
    if not result.failed:
        return
    before = self._attributions.get(result.portfolio)
    if before is not None and before.failed:
        log.info("attribution of %s at beat %d failed again: %s", result.portfolio,
                 result.seq, result.note)
        return
    log.warning("attribution of %s at beat %d failed: %s (ledgered without levels; its "
                "failures after it are logged at INFO until one succeeds)", result.portfolio,
                result.seq, result.note)


def pending_attributions(swarm: Swarm) -> int:
    """How many of ``swarm``'s attributions are queued or running (what ``close`` waits
    for; ``swarmvar run`` says so before it closes)."""
    return sum(1 for _, f in swarm._attr_running.values() if f is not None and not f.done())


def closing_words(timeout: float, waiting: int) -> str:
    """What ``close`` is about to wait for, in words (its log line; ``swarmvar run`` says
    it on stderr)."""
    return (f"closing: waiting up to {timeout:g} s for {waiting} attribution"
            f"{'' if waiting == 1 else 's'} still running (Ctrl-C stops the wait; a resume "
            "submits them again)")


def _attr_close(self: Swarm, timeout: float) -> None:
    """Land what is running (up to ``timeout`` s) into the batch; stop the worker (also
    when the wait is interrupted: the queued ones are cancelled, a resume submits them).
    A failure is a WARNING (closing goes on; a resume submits the unlanded ones again)."""
    try:
        waiting = pending_attributions(self)
        if waiting:
            log.info("%s", closing_words(timeout, waiting))
        if self._attr_running:
            _attr_landed(self, wait=timeout, into=self._batch)
    except Exception as exc:  # noqa: BLE001 - closing anyway; a resume submits them again
        log.warning("closing with attributions still running (%s)", exc)
    finally:
        if self._attr_pool is not None:
            self._attr_pool.shutdown(wait=False, cancel_futures=True)
            self._attr_pool = None


# --- checkpoints and resume ----------------------------------------------------------


def _attr_checkpoint(self: Swarm, name: str) -> tuple[dict[str, Any] | None, dict[str, bytes]]:
    """``name``'s ring and running attributions: its checkpoint mark's ``attribution``
    and the state-store blobs (``swarm-attribution:<p>``, ``swarm-attribution-job:<p>:<i>``)."""
    ring = self._rings.get(name)
    if ring is None:
        return None, {}
    dates, blob = ring.dump()
    states = {f"swarm-attribution:{name}": blob, f"swarm-attribution-dates:{name}": dates}
    running = []
    for i, (job, _) in enumerate(j for (p, _s), j in sorted(self._attr_running.items())
                                 if p == name):
        running.append({"seq": job.seq, "as_of": job.as_of.isoformat(),
                        "rows": len(job.dates)})
        states[f"swarm-attribution-job:{name}:{i}"] = job.rows.tobytes()
        states[f"swarm-attribution-job-dates:{name}:{i}"] = dates_blob(job.dates)
    mark: dict[str, Any] = {"rows": len(ring), "running": running}
    latest = self._attributions.get(name)
    if latest is not None:  # what attribution() gives after a resume (a blob: its size)
        mark["latest"] = latest.seq
        states[f"swarm-attribution-latest:{name}"] = canonical_json(
            latest.record().to_dict())
    return mark, states


def _attr_restore(self: Swarm, name: str, mark: Mapping[str, Any]) -> None:
    """A resume: the ring and the running attributions of ``name``'s checkpoint (one
    written before attribution, or while it was off: the ring refills from the beats,
    said in the log)."""
    ring = self._rings.get(name)
    if ring is None:
        return
    ring.clear()
    saved = mark.get("attribution")
    if not isinstance(saved, Mapping):
        log.info("the checkpoint of %s holds no asset ring (written before attribution "
                 "or while it was off): its attributions resume once %d beats have filled "
                 "it", name, ring.keep)
        return
    if "dates" in saved:  # the first version of this role: the dates as ISO strings
        ring.load(saved["dates"], self.states.get(f"swarm-attribution:{name}"))
    else:
        ring.load(blob_dates(self.states.get(f"swarm-attribution-dates:{name}")),
                  self.states.get(f"swarm-attribution:{name}"))
    if "latest" in saved:  # the latest landed before the checkpoint; the ledger's after it
        rec = json.loads(self.states.get(f"swarm-attribution-latest:{name}").decode())
        self._attributions[name] = BookAttribution.from_record(name, int(saved["latest"]),
                                                               rec)
    spec = self.specs[name]
    for i, r in enumerate(saved.get("running", [])):
        blob = self.states.get(f"swarm-attribution-job:{name}:{i}")
        if "dates" in r:  # the first version of this role: ISO strings
            dates = _dates(r["dates"])
        else:
            dates = blob_dates(self.states.get(f"swarm-attribution-job-dates:{name}:{i}"))
        rows = np.frombuffer(blob, dtype=np.float64).reshape(len(dates), len(spec.assets))
        seq = int(r["seq"])
        job = _job(self, name, seq, datetime.fromisoformat(r["as_of"]), dates, rows.copy())
        self._attr_running[name, seq] = (job, None)  # submitted after the ledger is read


def _attr_read_ledger(self: Swarm, start: int) -> None:
    """The attributions the ledger holds from ``start`` on (recorded: never again), the
    latest of each portfolio as its :meth:`attribution`; then the running ones it lacks
    are submitted again."""
    if not self._rings:
        return
    for entry in self.ledger.entries(start):
        d = entry.data
        if entry.kind != EntryKind.FLOW.value or d.get("flow") != ROLE:
            continue
        r = d.get("result", {})
        key = (str(r.get("portfolio")), int(r.get("seq", -1)))
        self._attr_recorded.add(key)
        if r.get("action") == ATTRIBUTED and key[0] in self._rings:
            try:
                self._attributions[key[0]] = BookAttribution.from_record(key[0], key[1], r)
            except (KeyError, TypeError, ValueError):
                pass
    for key, (job, future) in list(self._attr_running.items()):
        del self._attr_running[key]
        if future is None and key not in self._attr_recorded:
            _attr_submit(self, job)


def _attr_replay(self: Swarm, name: str, beat: Mapping[str, Any]) -> None:
    """A replayed beat of a book: its recorded asset returns into the ring (a beat recorded
    without them breaks the window), and its attribution submitted again if it was due and
    the ledger lacks it (a skipped one recorded now, once)."""
    ring = self._rings.get(name)
    if ring is None:
        return
    # the ones finished since, as a live beat lands them: not each window held to the end
    _attr_landed(self, into=self._batch)
    as_of = datetime.fromisoformat(beat["as_of"])
    row = beat.get("assets")
    if not isinstance(row, list) or len(row) != ring.width:
        ring.clear()  # a beat recorded before attribution existed
    else:
        ring.push(as_of, row)
    skipped = _attr_due(self, name, int(beat["seq"]), as_of)
    for r in skipped:
        self._batch.append(role_entry(name, int(beat["seq"]), r))
