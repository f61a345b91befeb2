"""Where the portfolio swarms live: the :class:`Executor` interface and the local executor.

An executor hosts portfolio swarms in *shards* (a shard holds several
portfolios; each portfolio lives in exactly one shard) and runs their beats:
``beats`` sends every shard its share of a batch of ticks and collects the
outcomes, so different shards beat in parallel while each portfolio's ticks
stay in order. Foragers' refits go to ``submit_refit`` and come back as
futures. The same code (:class:`Shard`) runs inside every kind of host, so a
portfolio's numbers do not depend on the executor.

* :class:`LocalExecutor` — ``workers=0``: every shard in this process;
  ``workers=k``: ``k`` worker processes (forked when safe, else spawned),
  foragers in a process pool beside them.
* :class:`~swarmvar.swarm.ray_executor.RayExecutor` — shards as Ray actors,
  foragers as Ray tasks (``pip install swarmvar[ray]``).

A host that dies raises :class:`HostLost` (a
:class:`~swarmvar.errors.WorkerFailed`) naming the shard's portfolios and
carrying the outcomes of the hosts that did answer (their beats happened and
must not run twice); :meth:`Executor.reset` starts a fresh, empty host in
its place (quickly, in the caller's thread) and the runtime opens and
restores it from the last checkpoint and replays what it missed in a
background thread, while the other hosts keep beating.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from ..errors import InvalidParameter, WorkerFailed
from .beat import BeatInput, BeatOutcome, PortfolioConfig, PortfolioSwarm
from .roles import RefitJob, RefitResult, run_refit

#: (portfolio, history (n,), as of the last history return)
StartRequest = tuple[str, np.ndarray, datetime | None]


class HostLost(WorkerFailed):
    """Hosts died during a call: their ``portfolios`` are lost until restored.

    ``answers`` maps each shard that did answer to its answer; for a batch of
    beats, ``outcomes`` maps the index of each input whose host answered to
    its outcome (those beats ran: the runtime keeps them, and beats only the
    lost portfolios' ticks again once their host is back). ``errors`` are
    what live hosts raised in the same call: such a host is counted lost too
    (its ``portfolios`` are among these), since it may have beaten part of its
    batch before it raised; restoring it from its checkpoint keeps every beat
    exactly once.
    """

    def __init__(self, message: str, portfolios: Sequence[str],
                 answers: Mapping[int, Any] | None = None,
                 outcomes: Mapping[int, BeatOutcome] | None = None,
                 errors: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.portfolios = tuple(portfolios)
        self.answers = dict(answers or {})
        self.outcomes = dict(outcomes or {})
        self.errors = tuple(errors)


class Shard:
    """The portfolio swarms of one host, and the operations an executor forwards to it."""

    def __init__(self) -> None:
        self.configs: dict[str, PortfolioConfig] = {}
        self.swarms: dict[str, PortfolioSwarm] = {}

    def open(self, configs: Sequence[PortfolioConfig]) -> None:
        for c in configs:
            self.configs[c.portfolio] = c

    def start(self, requests: Sequence[StartRequest]) -> None:
        for name, history, as_of in requests:
            swarm = PortfolioSwarm(self.configs[name])
            swarm.start(history, as_of)
            self.swarms[name] = swarm

    def restore(self, blobs: Mapping[str, bytes]) -> None:
        for name, blob in blobs.items():
            old = self.swarms.pop(name, None)
            if old is not None:
                old.close()  # its sandboxes (a fresh swarm makes its own)
            self.swarms[name] = PortfolioSwarm.restore(self.configs[name], blob)

    def beat(self, inputs: Sequence[tuple[str, BeatInput]]) -> list[BeatOutcome]:
        return [self.swarms[name].beat(tick) for name, tick in inputs]

    def states(self, names: Sequence[str]) -> dict[str, bytes]:
        return {n: self.swarms[n].state() for n in names if n in self.swarms}

    def close(self, _arg: Any = None) -> None:
        """Kill the portfolios' sandboxes (their agents' workers)."""
        for swarm in self.swarms.values():
            swarm.close()

    def call(self, op: str, arg: Any) -> Any:
        """Dispatch by operation name (what worker processes and actors receive)."""
        if op == "pid":
            import os

            return os.getpid()
        method: Callable[[Any], Any] = getattr(self, op)
        return method(arg)


class Executor(Protocol):
    """Hosts of portfolio swarms and foragers (see the module docstring)."""

    name: str

    def open(self, configs: Sequence[PortfolioConfig]) -> None:
        """Place each portfolio in a shard (no agent is fitted yet)."""

    def start(self, requests: Sequence[StartRequest]) -> None:
        """Fit each portfolio's agents from its history."""

    def restore(self, blobs: Mapping[str, bytes]) -> None:
        """Restore portfolios from :meth:`PortfolioSwarm.state` bytes."""

    def beats(self, inputs: Sequence[tuple[str, BeatInput]]) -> list[BeatOutcome]:
        """One outcome per input, in order; raises WorkerFailed if a host died."""

    def states(self, names: Sequence[str]) -> dict[str, bytes]:
        """The current state bytes of the named portfolios."""

    def submit_refit(self, job: RefitJob) -> Future[RefitResult]:
        """Run a forager's refit off the beat path."""

    def reset(self, names: Sequence[str]) -> None:
        """Start a fresh, empty host for each shard of ``names`` after a host died.

        Quick (no call waits for the new host); the runtime then calls
        ``open`` and ``restore`` for those portfolios and replays their
        missed beats from a background thread, while other shards beat.
        """

    def close(self) -> None:
        """Stop every host and forager."""


def shard_of(name: str, shards: int) -> int:
    """The shard of a portfolio: a stable hash of its name (the same in every process)."""
    import zlib

    return zlib.crc32(name.encode()) % shards


def place(config: PortfolioConfig, shards: int) -> int:
    """The shard of a hosted portfolio: :func:`shard_of` its name; group ``g`` of a spread
    portfolio (agents of rows ``g, g + K, ...``) ``g`` shards past its portfolio's, so the
    ``K <= shards`` groups of a portfolio live on different hosts."""
    if config.group_of is None:
        return shard_of(config.portfolio, shards)
    return (shard_of(config.group_of, shards) + config.rows[0] % config.spread) % shards


def _serve(conn: Any, parent: int) -> None:
    """A worker process: a shard answering (op, arg) messages until told to stop.

    It also stops when its parent (pid ``parent``, given by the parent: read
    here, a parent killed while this process still started would already be
    gone) is no longer its parent (a runtime killed with SIGKILL): a sibling
    forked later holds the parent's end of this pipe, so the end of the pipe
    alone would never come and the worker would outlive the run.
    """
    shard = Shard()
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent:  # orphaned: the run is gone
                    shard.close()
                    return
            op, arg = conn.recv()
        except (EOFError, OSError):
            return
        if op == "stop":
            shard.close()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", shard.call(op, arg)))
        except BaseException as exc:  # sent back and re-raised in the runtime
            conn.send(("error", exc))


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """A forager process's initializer: a daemon thread ends the process once its parent
    (pid ``parent``, given by the parent) is gone (a runtime killed with SIGKILL).

    A process pool's workers wait on their call queue and never learn that the run died,
    so without this they would outlive it, one per forager.
    """
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="swarmvar-parent-watch", daemon=True).start()


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=True)
        self.process.start()
        child.close()

    def send(self, op: str, arg: Any) -> None:
        try:
            self.conn.send((op, arg))
        except (BrokenPipeError, OSError) as exc:
            raise WorkerFailed(f"worker process {self.process.pid} is gone: {exc}") from exc

    def receive(self) -> Any:
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError, ConnectionResetError) as exc:
            self.process.join(timeout=1)
            raise WorkerFailed(f"worker process {self.process.pid} died "
                               f"(exit code {self.process.exitcode})") from exc
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        try:
            self.conn.send(("stop", None))
            self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class ShardedFanOut:
    """What a sharded executor does once each portfolio has its shard (``_placement``):
    split a call's items by shard, send each shard its part (``_fan``, the executor's
    transport: worker pipes or Ray actors) and put the answers back in order.
    """

    _placement: dict[str, int]

    def _fan(self, calls: Mapping[int, tuple[str, Any]]) -> dict[int, Any]:
        raise NotImplementedError

    def _split(self, items: Sequence[Any], name_of: Callable[[Any], str]
               ) -> dict[int, list[Any]]:
        groups: dict[int, list[Any]] = {}
        for item in items:
            groups.setdefault(self._placement[name_of(item)], []).append(item)
        return groups

    def _fan_start(self, requests: Sequence[StartRequest]) -> None:
        groups = self._split(requests, lambda r: r[0])
        self._fan({k: ("start", v) for k, v in groups.items()})

    def _fan_restore(self, blobs: Mapping[str, bytes]) -> None:
        groups = self._split(list(blobs.items()), lambda kv: kv[0])
        self._fan({k: ("restore", dict(v)) for k, v in groups.items()})

    def _fan_beats(self, inputs: Sequence[tuple[str, BeatInput]]) -> list[BeatOutcome]:
        order = list(range(len(inputs)))
        groups = self._split(order, lambda i: inputs[i][0])
        try:
            answers = self._fan({k: ("beat", [inputs[i] for i in idx])
                                 for k, idx in groups.items()})
        except HostLost as lost:  # the answering hosts' beats ran: hand their outcomes back
            outcomes = {i: o for k, part in lost.answers.items()
                        for i, o in zip(groups[k], part, strict=True)}
            raise HostLost(str(lost), lost.portfolios, lost.answers, outcomes,
                           lost.errors) from lost
        out: list[BeatOutcome | None] = [None] * len(inputs)
        for k, idx in groups.items():
            for i, outcome in zip(idx, answers[k], strict=True):
                out[i] = outcome
        return [o for o in out if o is not None]

    def _lost(self, dead: Mapping[int, str], answers: Mapping[int, Any],
              errors: Mapping[int, BaseException] | None = None) -> HostLost:
        """The error for shards ``dead`` (shard -> what happened), with the others' answers.

        A shard that raised ``errors[k]`` in the same call is lost with them: it
        may have beaten part of its batch before raising (restored, it beats
        each tick once).
        """
        errors = dict(errors or {})
        gone = {**dead, **{k: f"shard {k} raised {type(e).__name__}: {e}"
                           for k, e in errors.items()}}
        names = sorted(n for n, s in self._placement.items() if s in gone)
        what = "; ".join(gone[k] for k in sorted(gone))
        return HostLost(f"{what}; its portfolios: {', '.join(names)}", names, answers,
                        errors=[errors[k] for k in sorted(errors)])

    def _fan_states(self, names: Sequence[str]) -> dict[str, bytes]:
        groups = self._split(list(names), lambda n: n)
        out: dict[str, bytes] = {}
        for part in self._fan({k: ("states", v) for k, v in groups.items()}).values():
            out.update(part)
        return out


class LocalExecutor(ShardedFanOut):
    """Portfolio swarms in this process (``workers=0``) or in ``workers`` processes.

    Parameters
    ----------
    workers : int
        Worker processes hosting the shards (0: this process).
    foragers : int
        Processes for refits off the beat path (``refit_lag >= 1``); started
        on the first refit.
    refit : callable
        The foragers' work (a picklable function of a :class:`RefitJob`);
        :func:`run_refit` unless a test wants a deliberately slow one.
    """

    name = "local"

    def __init__(self, workers: int = 0, *, foragers: int = 1,
                 refit: Callable[[RefitJob], RefitResult] = run_refit) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise InvalidParameter(f"workers must be a whole number >= 0, not {workers!r}")
        if isinstance(foragers, bool) or not isinstance(foragers, int) or foragers < 1:
            raise InvalidParameter(f"foragers must be a whole number >= 1, not {foragers!r}")
        self.workers = workers
        self.forager_count = foragers
        self._refit = refit
        self._inline = Shard() if workers == 0 else None
        self._procs: list[_Worker] = []
        self._placement: dict[str, int] = {}
        self._configs: dict[str, PortfolioConfig] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._ctx: Any = None

    def _context(self) -> Any:
        if self._ctx is None:
            from ..validation.backtest import _pool_context

            self._ctx = _pool_context()
        return self._ctx

    # --- placement -----------------------------------------------------------------

    def open(self, configs: Sequence[PortfolioConfig]) -> None:
        for c in configs:
            self._configs[c.portfolio] = c
        if self._inline is not None:
            self._inline.open(configs)
            return
        while len(self._procs) < self.workers:
            self._procs.append(_Worker(self._context()))
        groups: dict[int, list[PortfolioConfig]] = {}
        for c in configs:
            k = place(c, self.workers)
            self._placement[c.portfolio] = k
            groups.setdefault(k, []).append(c)
        self._fan({k: ("open", v) for k, v in groups.items()})

    def _fan(self, calls: Mapping[int, tuple[str, Any]]) -> dict[int, Any]:
        """Send each worker its call, then collect every answer (they run in parallel).

        Every live worker's answer is read even when another died or raised
        (a pipe left unread would hand its answer to the next call); then a
        dead worker raises :class:`HostLost`, else the first error raised.
        """
        dead: dict[int, str] = {}
        for k, (op, arg) in calls.items():
            try:
                self._procs[k].send(op, arg)
            except WorkerFailed as exc:
                dead[k] = str(exc)
        out: dict[int, Any] = {}
        errors: dict[int, BaseException] = {}
        for k in calls:
            if k in dead:
                continue
            try:
                out[k] = self._procs[k].receive()
            except WorkerFailed as exc:
                dead[k] = str(exc)
            except BaseException as exc:  # noqa: BLE001 - raised after every answer is read
                errors[k] = exc
        if dead:
            raise self._lost(dead, out, errors)
        if errors:
            raise next(iter(errors.values()))
        return out

    # --- operations ----------------------------------------------------------------

    def start(self, requests: Sequence[StartRequest]) -> None:
        if self._inline is not None:
            self._inline.start(requests)
            return
        self._fan_start(requests)

    def restore(self, blobs: Mapping[str, bytes]) -> None:
        if self._inline is not None:
            self._inline.restore(blobs)
            return
        self._fan_restore(blobs)

    def beats(self, inputs: Sequence[tuple[str, BeatInput]]) -> list[BeatOutcome]:
        if self._inline is not None:
            return self._inline.beat(inputs)
        return self._fan_beats(inputs)

    def states(self, names: Sequence[str]) -> dict[str, bytes]:
        if self._inline is not None:
            return self._inline.states(names)
        return self._fan_states(names)

    def local(self, name: str) -> PortfolioSwarm:
        """The portfolio swarm itself, when it lives in this process (``workers=0``)."""
        if self._inline is None:
            raise InvalidParameter("the portfolio swarms live in worker processes "
                                   "(workers > 0); use states() to read them")
        return self._inline.swarms[name]

    def pids(self) -> list[int]:
        """Process ids of the worker processes (for tests that kill one)."""
        return [w.process.pid for w in self._procs]

    def reset(self, names: Sequence[str]) -> None:
        """A fresh worker process for each shard of ``names`` (started, not yet opened).

        Quick and in the caller's thread (a fork happens where the executor
        chose its start method); the runtime opens and restores the shard
        from a background thread.
        """
        if self._inline is not None:
            return
        dead = {self._placement[n] for n in names}
        from ..validation.backtest import _pool_context

        self._ctx = _pool_context()  # no fork while restoring threads run (they may now)
        for k in dead:
            old = self._procs[k]
            old.process.kill()
            old.process.join(timeout=5)
            old.conn.close()
            self._procs[k] = _Worker(self._context())

    def submit_refit(self, job: RefitJob) -> Future[RefitResult]:
        from concurrent.futures.process import BrokenProcessPool

        with self._lock:
            for _ in range(2):
                if self._pool is None:  # fork only if still safe now (threads may run)
                    from ..validation.backtest import _pool_context

                    self._pool = ProcessPoolExecutor(self.forager_count,
                                                     mp_context=_pool_context(),
                                                     initializer=_watch_parent,
                                                     initargs=(os.getpid(),))
                try:
                    return self._pool.submit(self._refit, job)
                except BrokenProcessPool:  # a forager was killed: start a fresh pool
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
            raise WorkerFailed("the forager pool cannot be started")

    def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        for w in self._procs:
            w.stop()
        self._procs = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
