"""Start, checkpoints and resume: the swarm's state on disk, and back from it.

Methods of :class:`~.runtime.Swarm`, written as functions of ``self: Swarm`` and
bound in its class body. ``start`` fits every portfolio from history or
resumes: ``_resume`` restores the last checkpoint (executor states, spread
consensus shells, pending refits, requests, observers' states) and
``_replay_ledger`` re-runs, without recording, the beats the ledger holds after
it. ``checkpoint`` (step 5 of the beat) flushes the ledger, then writes the
checkpoint in one atomic step; a host lost during it goes to
:mod:`._restoring` (``_lose``), one lost before any checkpoint is fitted again
(``_fit_again``).

Reads the configuration (``specs``, ``configs``, ``_hosted``, ``_groups``,
``_owner``, ``checkpoint_every``, ``sandbox``), ``executor``, ``ledger``,
``states``, ``_attached`` / ``observers`` (their states are checkpointed and
re-fed the replayed beats) and ``_recoveries`` (a restoring host keeps its
last checkpoint). Appends the start's records to the ledger (and the replayed
groups' late entries through ``_record_late``). Writes the beat state
(``seq``, ``last_as_of``, ``cursor``, ``_pending``, ``_requests``,
``_optional_credit``, ``_latest``, ``_beaten``, ``_gseq``, ``_shells``), the
checkpoint bookkeeping (``_marks``, ``_log``, ``_fresh``, ``_unbegun``,
``_resume_as_of``), ``_started`` and ``_plugin_digests`` (given to the hosts in
``configs`` and ``_hosted``: ``_stamp_plugins``). A resume first takes the
variants its checkpoint records (``_adopt_variants``: ``configs`` and what is hosted,
again), then refuses other portfolios than the run's, some of them only, or another spread
(``_check_portfolios``), settings beyond the fingerprint that differ
(``_check_settings``: ``checkpoint_every``, roles, policy) and a portfolio whose book is
not the checkpoint's (``_check_books``), and puts a book's assets in the order its
checkpoint records (``specs``); a plug-in agent whose source digest is not its
checkpoint's (``_check_plugins``); then an observer's checkpoint it cannot restore (its
``check_state``: the arbiter's options). Given the source it will beat, a resume then
checks its data (``check_source``: the source's ticks at the dates of the ledger's beats,
a stream's recorded ticks as they arrive; ``_check_start``: the start history against the
digest a fresh start stored under :data:`._records.START_KEY`). These checks
(``_check_resume``) run before the executor opens, so a refusal leaves nothing open or
restored. The run record is read once per start (``_run_record``); the plug-ins' source
digests are taken once per start too, before any host imports a plug-in
(``_plugins_of``), and every checkpoint records those.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..canonical import canonical_json
from ..errors import InvalidParameter, WorkerFailed
from ..ledger import EntryKind
from . import _records, _restoring  # constants read where defined: a patch reaches here
from . import attribution as _attribution
from ._records import _job_dict, _job_from
from .beat import BeatInput, BeatOutcome
from .observers import stateful_observers
from .sandboxing import plugin_digest as _plugin_digest  # (a test patches it here)
from .sandboxing import plugin_files
from .spread import SpreadConsensus, routed

if TYPE_CHECKING:
    from .runtime import Swarm
    from .ticks import PortfolioSpec

log = logging.getLogger("swarmvar.swarm")


def _forecasts_in(blobs: Sequence[tuple[bytes, Sequence[str]]]) -> dict[str, Any]:
    """The last forecasts held in groups' state blobs (a spread portfolio's first consensus),
    each group's of its own agents only."""
    from . import state as packing
    from .beat import _forecast_from

    out: dict[str, Any] = {}
    for blob, agents in blobs:
        header, _ = packing.unpack(blob)
        out.update({a: _forecast_from(d) for a, d in header["forecasts"].items() if a in agents})
    return out


def start(self: Swarm, history: Mapping[str, pd.Series] | pd.DataFrame | pd.Series, *,
          source: Any = None) -> None:
    """Resume from the home's checkpoint and ledger, or fit every portfolio from history.

    ``history`` gives each portfolio's returns up to now: a mapping
    name -> Series, an asset-returns DataFrame (portfolios over assets,
    or columns named like single-series portfolios), or one Series
    (single-series portfolios). It is read only when there is nothing to
    resume (and on a resume given a ``source``, for a portfolio it holds a series
    of: :func:`_check_start`).

    ``source``, the source :meth:`run` will beat (a :class:`.sources.Replay`,
    :class:`.sources.FollowedFile` or :class:`.sources.JsonLines`), is checked on a
    resume against the ledger's beats before anything is opened or written
    (:func:`check_source`): a resume on other data than the run beat is refused. The
    resume then starts that source at its own place of the ledger's last beats (not the
    cursor the run recorded, a place in the data the run read: rows dropped since, a
    stream's line count), its ticks at or before those dates skipped by date. A
    plug-in agent whose source changed since the checkpoint is refused too
    (:func:`_check_plugins`).

    The plug-in agents' source digests are taken here, once, before the executor opens
    (its hosts import the plug-ins): what every checkpoint of this swarm records
    (:func:`_plugins_of`), so a file edited while the swarm runs is not recorded beside
    state fitted by the code it runs.

    Raises
    ------
    InvalidBook
        A book's start history, made from its assets' returns, holds a day its agents
        cannot take (:func:`check_start_history`).
    InvalidParameter
        A fresh start whose ``history`` holds no series for a portfolio (``None``, a
        mapping without it).
    InvalidReturns
        A start history with a missing value, too short, or refused by the data layer.
    ResumeMismatch
        A resume of another run than the home's (:func:`_check_resume`, :func:`_resume`);
        ``ResumeDataMismatch`` for a source that is not the data the run beat,
        ``PluginChanged`` for a plug-in agent whose code changed.
    """
    # the plug-ins' code as this swarm starts, before any host imports it
    self._plugin_digests = plugin_sources(self.sandbox)
    run = _run_record(self)  # None: nothing to resume
    resume_at: int | None = None
    if run is not None:
        self._adopt_variants(run)  # its checkpoint's variants, not the registry's choice now
        _check_resume(self, run)  # before the executor opens: a refusal leaves nothing open
        if source is not None:
            _check_start(self, history)
            resume_at = check_source(self, source)
    _stamp_plugins(self)  # the hosts' sandboxes run a plug-in only while it is this code
    self.executor.open(list(self._hosted.values()))
    if run is not None:
        self._resume(run)
        if resume_at is not None:  # the resume point as a place in the source given now
            self.cursor = resume_at
    else:
        requests = []
        fitted: dict[str, dict[str, Any]] = {}
        check_start_history(self.specs, history)
        for name, spec in self.specs.items():
            given = _start_series(spec, history)
            if given is None:
                what = ("holds no series for it" if history is None
                        or isinstance(history, Mapping) else
                        "is not a Series, an asset-returns DataFrame or a mapping")
                raise InvalidParameter(
                    f"portfolio {name!r}: there is nothing to resume in {self.home} and the "
                    f"start history ({type(history).__name__}) {what}; give "
                    "its returns (a Series, an asset-returns DataFrame, or a mapping with "
                    f"{name!r})")
            series = given
            from ..data import validate
            from ..errors import InvalidReturns

            raw = series.to_numpy()
            if raw.dtype.kind == "f" and not np.isfinite(raw).all():  # no dropna here
                i = int(np.argmax(~np.isfinite(raw)))
                value = "missing (NaN)" if np.isnan(raw[i]) else f"{float(raw[i])!r}"
                raise InvalidReturns(
                    f"portfolio {name!r}: its start history's return at {series.index[i]} "
                    f"is {value}; the start history (the first --window rows on the command "
                    "line, history in Python) needs every value: fill or remove that row")
            if spec.assets and not (isinstance(history, Mapping) and name in history):
                # a book's return, computed (data.portfolio held it to the book's rules):
                # with leverage it may pass the percent rules, as its agents take it
                from ..data._returns import MAX_BOOK_RETURN

                series = validate(series, min_obs=self.configs[name].window,
                                  max_abs=MAX_BOOK_RETURN, max_sd=math.inf)
            else:
                series = validate(series, min_obs=self.configs[name].window)
            as_of = series.index[-1] if isinstance(series.index, pd.DatetimeIndex) else None
            from .ticks import as_utc

            when = None if as_of is None else as_utc(as_of)
            values = series.to_numpy(dtype=np.float64)
            fitted[name] = _start_digest(series)
            for unit in self._groups.get(name, (name,)):
                requests.append((unit, values, when))
                self._fresh[unit] = (values, when)
            if name in self._groups:  # its consensus begins from the groups' forecasts
                self._unbegun[name] = (values, when)
            self.last_as_of[name] = when
            _attribution._attr_fill(self, name, history)  # a book's ring of asset returns
        self.executor.start(requests)
        begun = {"type": "swarm-start", "details": {
            "portfolios": [s.to_dict() for s in self.specs.values()],
            "config": self.configs[next(iter(self.specs))].fingerprint() | {
                "portfolio": None}}}
        if not self._start_recorded(begun):  # (a start killed before its checkpoint)
            self.ledger.add_entry(EntryKind.ACTION, begun)
        # what the agents were fitted on, which a resume's start history must be: stored
        # with the first checkpoint, in its one atomic step (never one without the other)
        self.checkpoint(also={_records.START_KEY: json.dumps(fitted).encode()})
    if self.sandbox is not None:
        details: dict[str, Any] = self.sandbox.to_dict()
        warning = self.sandbox.warning()
        if warning is not None:
            log.warning("%s", warning)
            details["warning"] = warning
        self.ledger.add_entry(EntryKind.ACTION, {
            "type": "sandbox-warning" if warning else "sandbox", "details": details})
    self._started = True


def check_start_history(specs: Mapping[str, PortfolioSpec], history: Any) -> None:
    """Refuse a book whose start history holds a day its agents cannot take.

    A book's return is computed from its assets' returns, which the data layer
    checked (finite, not percent: ``|r| <= 1``). With leverage (positions or weights
    whose gross exceeds the net value) the book's log return can pass ``|r| <= 1``
    legitimately: a long AAPL 100k, short CVX 20k book lost 65% of its net value on
    2000-09-29 (AAPL -52%), a log return of -1.05. A book's agents are widened for it
    (:meth:`~swarmvar.models.Agent.take_book_returns`: ``|r| <=``
    :data:`~swarmvar.data._returns.MAX_BOOK_RETURN`, a one-day loss up to 99.3% or a
    gain up to 147 times), so such a day starts; a day the book would lose all its
    value, or move beyond that, is refused, naming the day and the loss, by
    :func:`start` and by :meth:`~.runtime.Swarm.check_start_history`, which a caller
    (the command line) asks before it creates a home (``data.portfolio`` refuses it
    too, at the start, after the home is made). Only books over the columns of an
    asset-returns DataFrame whose returns pass the door's checks (the data layer names
    any other problem, by its asset, at the start).

    Parameters
    ----------
    specs : mapping of name to PortfolioSpec
        The portfolios (:meth:`~.runtime.Swarm.check_start_history` takes them in any
        form the swarm does).
    history : DataFrame, Series or mapping
        The start history as :meth:`~.runtime.Swarm.start` takes it.

    Raises
    ------
    InvalidBook
        Naming the portfolio, the first such day, its log return and the loss or gain
        it is, the book's gross exposure, and the bound its agents take.
    """
    from ..data import MAX_ABS_RETURN, position_fractions
    from ..data._dates import when
    from ..data._returns import MAX_BOOK_RETURN
    from ..errors import InvalidBook, SwarmVarError

    if not isinstance(history, pd.DataFrame):
        return
    columns = {str(c): c for c in history.columns}
    for name, spec in specs.items():
        if not spec.assets or not set(spec.assets) <= set(columns):
            continue
        try:
            x = history[[columns[a] for a in spec.assets]].to_numpy(dtype=np.float64)
            given = spec.weights if spec.weights is not None else spec.positions
            assert given is not None  # (a spec with assets)
            w = position_fractions([float(given[a]) for a in spec.assets],
                                   positions=spec.positions is not None)[0]
        except (TypeError, ValueError, SwarmVarError):  # the data layer names it
            continue
        if x.size == 0 or not (np.isfinite(x).all() and (np.abs(x) <= MAX_ABS_RETURN).all()):
            continue
        with np.errstate(all="ignore"):
            simple = np.expm1(x) @ w  # as data.portfolio makes it, in the same order
            r = np.log1p(np.maximum(simple, -1.0))
        if not np.isfinite(simple).all():
            continue  # an overflow: the data layer names it
        beyond = (simple <= -1) | (np.abs(r) > MAX_BOOK_RETURN)
        if not beyond.any():
            continue
        i = int(np.argmax(beyond))
        of = "net value" if spec.positions is not None else "value"
        if simple[i] <= -1:
            what = f"would be a one-day loss of {-simple[i]:.1%} of its {of}, a book wiped out"
        else:
            move = (f"a one-day loss of {-simple[i]:.2%} of" if simple[i] < 0
                    else f"a one-day gain of {simple[i]:.3g} times")
            what = f"is {float(r[i]):.4f}, {move} its {of}"
        raise InvalidBook(
            f"portfolio {name!r}: its return on {when(history.index[i])}, made from its "
            f"assets' returns, {what} (its gross exposure is "
            f"{float(np.abs(w).sum()):.3g} times its {of}); a book's agents take log returns "
            f"within |r| <= {MAX_BOOK_RETURN:g} only, a one-day loss up to "
            f"{-math.expm1(-MAX_BOOK_RETURN):.1%} or a gain up to "
            f"{math.expm1(MAX_BOOK_RETURN):.0f} times, so they cannot be fitted on this "
            "book's history. Start it from a history after that day (--last on the command "
            "line, a later history in Python), or with less leverage")


def _start_recorded(self: Swarm, begun: Mapping[str, Any]) -> bool:
    """Whether the ledger's last entry is this very start (``begun``), recorded by a
    start killed before its checkpoint was stored.

    A start writes its ``swarm-start`` entry, then its checkpoint at seq 0
    (which may fit lost hosts again, :meth:`_fit_again`). Killed between
    the two, the home holds the entry and no checkpoint, so the next start
    fits from history again; it takes that entry up as its own instead of
    writing a second one, so each checkpointed start has exactly one. Only
    when the entry is the ledger's last (nothing was recorded after it)
    and says the same portfolios and configuration; a start of other
    portfolios or another configuration writes its own entry (the one
    before it then stands for a start that never ran a beat).
    """
    last = self.ledger.entry(-1)
    return (last.kind is EntryKind.ACTION and last.data.get("type") == "swarm-start"
            and canonical_json(last.data) == canonical_json(dict(begun)))


def checkpoint(self: Swarm, names: Sequence[str] | None = None, *,
               also: Mapping[str, bytes] | None = None) -> None:
    """Flush the ledger, then store the named portfolios' states (default: all) atomically.

    The swarm checkpoints a portfolio when its sequence number reaches a
    multiple of ``checkpoint_every`` (and at seq 0): a schedule fixed by
    the ticks alone, so a resumed run takes (and replays) the same
    checkpoints as an uninterrupted one. Each portfolio's mark records its
    seq, its date, the ledger size, its pending refits and requests.

    ``also``: more state-store entries written in the same atomic step (a fresh start's
    :data:`._records.START_KEY`, with its first checkpoint).
    """
    self.flush()
    names = [p for p in (list(self.specs) if names is None else list(names))
             if p not in self._recoveries]  # a restoring host keeps its last checkpoint
    # a spread portfolio's groups that are up and caught up (one still restoring or
    # catching up keeps its last checkpoint)
    units = [u for p in names for u in self._groups.get(p, (p,)) if not self._waits(u)
             or u not in self._owner]
    try:
        blobs = self.executor.states(units)
    except WorkerFailed as exc:  # a host died since its beat: the others checkpoint
        lost = tuple(getattr(exc, "portfolios", ()))
        if not lost:
            raise
        # the hosts that answered rebased their agents: their blobs, not another call
        blobs = {p: b for part in getattr(exc, "answers", {}).values() for p, b in part.items()}
        fresh = tuple(u for u in lost if u in self._fresh)
        if fresh:  # lost before any checkpoint of theirs: nothing to restore from
            blobs.update(self._fit_again(fresh))
            lost = tuple(u for u in lost if u not in self._fresh)
        for p in units:
            if p in lost:  # the restore redoes this checkpoint's rebase at this point
                self._log[p].append(None)
        if lost:
            log.warning("swarm host died before its checkpoint (%s); restoring %s in "
                        "the background", exc, ", ".join(lost))
            self._lose(lost)
            names = [p for p in names if p not in lost]
            units = [u for u in units if u not in lost]
    for u in blobs:
        self._fresh.pop(u, None)
    for p, (values, when) in list(self._unbegun.items()):
        self._shells[p].begin(values, when, _forecasts_in(  # (a group lost here: without)
            [(blobs[g], self._hosted[g].agents) for g in self._groups[p] if g in blobs]))
        del self._unbegun[p]
    marks = dict(self._marks)
    states: dict[str, bytes] = {_records.STATE_PREFIX + p: b for p, b in blobs.items()}
    size = self.ledger.size
    for g in units:
        if g in self._owner:
            marks[g] = {"seq": self._gseq[g], "ledger_size": size}
            self._log[g] = []
    for p in names:
        if p in self._shells:
            states[_records.STATE_PREFIX + p] = self._shells[p].state()
        jobs = [job for job, _ in self._pending.values() if job.portfolio == p]
        for i, job in enumerate(jobs):
            states[f"swarm-job:{p}:{i}"] = job.state + job.returns.tobytes()
        last = self.last_as_of[p]
        marks[p] = {"seq": self.seq[p], "ledger_size": size,
                    "last_as_of": None if last is None else last.isoformat(),
                    "pending": [_job_dict(job) for job in jobs],
                    "requests": [list(x) for x in self._requests[p]],
                    "credit": self._optional_credit.get(p, 0.0)}
        for key, obs in self._stateful():
            states[f"{_records.OBSERVER_PREFIX}{key}:{p}"] = obs.checkpoint_state(p)
        ring, ring_states = _attribution._attr_checkpoint(self, p)
        if ring is not None:  # a book's asset ring and its attributions still running
            marks[p]["attribution"] = ring
            states.update(ring_states)
    from .ticks import RETURNS_RULE

    # the books (what the returns are made from) and their rule: what a resume must match
    run = {"marks": marks, "cursor": self.cursor, "returns_rule": RETURNS_RULE,
           "books": {p: s.book() for p, s in self.specs.items()},
           # where the replay redoes the checkpoints' swaps (_due): a resume keeps it
           "checkpoint_every": self.checkpoint_every, "settings": _settings(self),
           # the plug-ins' source digests as the swarm started (a resume refuses code
           # that changed; a file edited since is not the code these states were fitted by)
           "plugins": _plugins_of(self),
           # the variants the agents run (chosen at the start; a resume keeps them)
           "variants": {p: {"variants": dict(c.variants),
                            "params": {a: dict(x) for a, x in c.params.items()}}
                        for p, c in self.configs.items()}}
    states[_records.RUN_KEY] = json.dumps(run).encode()
    states.update(also or {})
    self.states.put_many(states, now=time.time())
    for key in states:
        self.states.prune(key, keep=2)
    self._marks = marks
    for p in names:
        self._log[p] = []


def _due(self: Swarm, name: str) -> bool:
    """Whether ``name``'s checkpoint falls at its current seq (the fixed schedule); a
    group of a spread portfolio is checkpointed with its portfolio."""
    return name not in self._owner and self.seq[name] % self.checkpoint_every == 0


def _seq_of(self: Swarm, unit: str) -> int:
    """The last beat of a hosted unit: a portfolio's seq, or a group's."""
    return self._gseq[unit] if unit in self._owner else self.seq[unit]


def _fit_again(self: Swarm, units: Sequence[str]) -> dict[str, bytes]:
    """Fit units lost before their first checkpoint again, on a fresh host, and
    return their checkpoint blobs.

    Only the start's checkpoint meets such units (every later loss has a
    stored state to restore from). The start is blocking anyway, and a fit
    is a function of the history and the seeds, so the fresh host holds
    the agents the lost one fitted; the checkpoint at seq 0 stays complete
    (a resume needs every unit in it). Up to :data:`~._restoring.RESTORE_ATTEMPTS`
    fresh hosts, then ``WorkerFailed``.
    """
    last: WorkerFailed | None = None
    for attempt in range(1, _restoring.RESTORE_ATTEMPTS + 1):
        log.warning("swarm host of %s died before the start's checkpoint; fitting them "
                    "again on a fresh host (attempt %d)", ", ".join(units), attempt)
        self.executor.reset(units)
        try:
            self.executor.open([self._hosted[u] for u in units])
            self.executor.start([(u, *self._fresh[u]) for u in units])
            return dict(self.executor.states(list(units)))
        except WorkerFailed as exc:
            last = exc
    raise WorkerFailed(f"the host of {', '.join(units)} died "
                       f"{_restoring.RESTORE_ATTEMPTS} times "
                       "while fitting at the start") from last


def _run_record(self: Swarm) -> dict[str, Any] | None:
    """The home's run record (:data:`~._records.RUN_KEY`: marks, cursor, books, settings,
    variants), read once per start, or None when the home holds no checkpoint."""
    from ..evolution import UnknownState

    try:
        run: dict[str, Any] = json.loads(self.states.get(_records.RUN_KEY).decode())
    except UnknownState:
        return None
    return run


def _check_resume(self: Swarm, run: Mapping[str, Any]) -> None:
    """Everything a resume of ``run`` (the home's run record) must match, checked before
    the executor is opened or anything restored, so a refusal changes nothing stored and
    leaves nothing open: the portfolios and their spread (:func:`_check_portfolios`), the
    settings beyond the fingerprint (:func:`_check_settings`), the books
    (:func:`_check_books`), the plug-ins' code (:func:`_check_plugins`), the observers'
    checkpoints (their ``check_state``: the arbiter's options). The fingerprint itself is
    checked as each state is restored. The source is checked next (:func:`check_source`).

    Raises
    ------
    ResumeMismatch
        Any of those differs from the home's run (``ArbiterOptionsMismatch`` for the
        arbiter's options, ``PluginChanged`` for a plug-in's code).
    InvalidState
        An observer's checkpoint is not its state (cut or altered).
    """
    from ..evolution import UnknownState

    _check_portfolios(self, run["marks"])
    _check_settings(self, run)
    self._check_books(run)
    _check_plugins(self, run)
    for p in self.specs:
        for key, obs in self._stateful():
            check = getattr(obs, "check_state", None)
            if check is None:
                continue
            try:
                blob = self.states.get(f"{_records.OBSERVER_PREFIX}{key}:{p}")
            except UnknownState:  # checkpointed without this observer: it starts fresh
                continue
            check(p, blob)


def _resume(self: Swarm, run: Mapping[str, Any]) -> None:
    """Restore the home's last checkpoint (``run``: its run record, :func:`_run_record`,
    checked by :func:`_check_resume` before the executor opened) and replay the ledger
    after it.

    Raises
    ------
    ResumeMismatch
        The fingerprint of a state differs from this swarm's.
    """
    from ..evolution import UnknownState

    marks = run["marks"]
    self._marks = {p: marks[p] for p in (*self.specs, *self._owner)}
    self.executor.restore({u: self.states.get(_records.STATE_PREFIX + u)
                           for u in self._hosted})
    for p, shell in list(self._shells.items()):
        restored = SpreadConsensus.restore(shell.config,
                                           self.states.get(_records.STATE_PREFIX + p))
        assert isinstance(restored, SpreadConsensus)
        self._shells[p] = restored
    for g in self._owner:
        self._gseq[g] = int(marks[g]["seq"])
    self._pending = {}
    for p in self.specs:
        m = marks[p]
        self.seq[p] = int(m["seq"])
        self.last_as_of[p] = (None if m["last_as_of"] is None
                              else datetime.fromisoformat(m["last_as_of"]))
        self._requests[p] = [(str(x[0]), str(x[1])) for x in m["requests"]]
        self._optional_credit[p] = float(m.get("credit", 0.0))
        for key, obs in self._stateful():
            try:
                blob = self.states.get(f"{_records.OBSERVER_PREFIX}{key}:{p}")
            except UnknownState:  # the run was checkpointed without this observer
                log.info("no %s state in the checkpoint of %s: it starts fresh", key, p)
                continue
            obs.restore_state(p, blob, agents=self.configs[p].agents)
        for i, d in enumerate(m["pending"]):
            job = _job_from(d, self.states.get(f"swarm-job:{p}:{i}"))
            self._pending[job.key] = (job, None)
        _attribution._attr_restore(self, p, m)  # a book's ring and running attributions
    self.cursor = run["cursor"]
    first = min(int(self._marks[p]["ledger_size"]) for p in self._marks)
    _attribution._attr_read_ledger(self, first)  # those recorded since: never again
    self._replay_ledger(first)
    self._resume_as_of = dict(self.last_as_of)


def _adopt_variants(self: Swarm, run: Mapping[str, Any]) -> None:
    """Run each portfolio's agents with the variants its checkpoint (``run``, the home's
    run record) records, if any.

    Variants are chosen from the registry when a swarm starts from history
    (:func:`.runtime._variants`); the registry moves on (a promotion, a canary's
    share), so a resume that chose again would sign with another variant id than
    the one whose parameters its restored agents carry (and build any agent anew,
    one that failed or a sandboxed one, with other parameters). A checkpoint
    written before variants were recorded leaves the registry's choice (as before).
    """
    saved = run.get("variants")
    if not isinstance(saved, Mapping):
        return
    changed = False
    for p, cfg in list(self.configs.items()):
        rec = saved.get(p)
        if not isinstance(rec, Mapping):
            continue
        variants = {str(a): str(v) for a, v in rec.get("variants", {}).items()}
        params = {str(a): dict(x) for a, x in rec.get("params", {}).items()}
        now = json.loads(json.dumps({"variants": dict(cfg.variants), "params": {
            a: dict(x) for a, x in cfg.params.items()}}))  # as a checkpoint holds them
        if now != {"variants": variants, "params": params}:
            log.info("portfolio %r resumes with the variants of its checkpoint (%s), not "
                     "the registry's choice now (%s)", p, variants or "defaults",
                     dict(cfg.variants) or "defaults")
            self.configs[p] = dataclasses.replace(cfg, variants=variants, params=params)
            changed = True
    if changed:
        self._place()


#: A spread portfolio's group as its mark is keyed (:func:`.spread.group_name`).
_GROUP = re.compile(r"(.+)#g(\d+)")


def _check_portfolios(self: Swarm, marks: Mapping[str, Any]) -> None:
    """Refuse to resume other portfolios than the home's run beats, or another spread.

    The run's marks hold every portfolio it beats (a mark with its date) and
    every group of a spread one (``name#gK``: a seq and a ledger size). A
    resume of some of them only would lose the others: its checkpoints keep
    the marks of the portfolios it runs, so the next one drops theirs (a
    later resume of all of them is refused), and the source's cursor, shared
    by all, moves past the ticks they miss meanwhile. Each group of a spread
    portfolio is restored and checkpointed on its own likewise: a resume
    spread over other groups (another ``spread``, or none) is refused too.

    Raises
    ------
    ResumeMismatch
        A portfolio the run does not hold; one it holds left out (naming all
        of them); a portfolio spread over other groups than the run's.
    """
    from ..errors import ResumeMismatch

    ran = [p for p, m in marks.items() if isinstance(m, Mapping) and "last_as_of" in m]
    elsewhere = "start afresh in another home (--home on the command line, home= in Python)"
    missing = [p for p in self.specs if p not in ran]
    left = [p for p in ran if p not in self.specs]
    if missing or left:
        said = (f"it has no checkpoint of {', '.join(missing)}: resume with the portfolios "
                "it was started with" if missing
                else f"{', '.join(left)} left out would be lost (the next checkpoint would "
                "not hold them, and the source's cursor, shared by all of them, would move "
                "past the ticks they miss): resume with all of them")
        raise ResumeMismatch(f"this home's run beats {', '.join(ran)}; {said}, or {elsewhere}")
    saved: dict[str, list[str]] = {}
    for u in marks:
        hit = _GROUP.fullmatch(u)
        if hit is not None and u not in ran:
            saved.setdefault(hit.group(1), []).append(u)
    for p in self.specs:
        was, now = saved.get(p, []), self._groups.get(p, ())
        if set(was) != set(now):
            k, n = len(was) or 1, len(now) or 1
            raise ResumeMismatch(
                f"portfolio {p!r} was {_spread_words(k)} in this home's run, and is "
                f"{_spread_words(n)} here (spread: saved {k}, now {n}); each group is "
                f"checkpointed on its own: resume with the spread it was started with "
                f"(--spread {k} on the command line, spread={k} in Python), or {elsewhere}")


def _spread_words(k: int) -> str:
    return "not spread" if k == 1 else f"spread over {k} groups of agents"


#: The policy's fields the fingerprint holds already (``policy``: the method in force).
_IN_FINGERPRINT = frozenset({"aggregator", "f", "weighting", "f_steps"})
#: The roles' fields the fingerprint holds already (a change is refused as the fingerprint's).
_ROLES_IN_FINGERPRINT = frozenset({"refit_lag"})


def _settings(self: Swarm) -> dict[str, Any]:
    """The swarm's settings that change its numbers but are not in the fingerprint: the
    roles (scouts, builders, guards and the refits they ask; not ``refit_lag``, which the
    fingerprint holds) and the consensus policy's other fields (its loss, track window,
    eta, interval mass, ...), as plain JSON. A book's attribution rhythm is compared as
    it acts (``attribution.every``: beats between attributions per book, 0 without a
    ``book_var``; ``roles.attribute_every`` None means the refit rhythm), not as written
    (:func:`_attribution_turned_on`: off to on resumes)."""
    from enum import Enum

    from .attribution import _every

    policy = {k: v for k, v in dataclasses.asdict(
        self.configs[next(iter(self.specs))].policy).items() if k not in _IN_FINGERPRINT}
    roles = {k: v for k, v in dataclasses.asdict(self.roles).items()
             if k not in _ROLES_IN_FINGERPRINT and k != "attribute_every"}
    every = {name: _every(self, name) for name, spec in self.specs.items() if spec.assets}
    plain = {"roles": roles, "policy": policy, "attribution": {"every": every}}
    out: dict[str, Any] = json.loads(json.dumps(
        plain, default=lambda o: o.value if isinstance(o, Enum) else str(o)))
    return out


def _check_settings(self: Swarm, run: Mapping[str, Any]) -> None:
    """Refuse to resume under another ``checkpoint_every``, other roles or another
    consensus policy than the run's.

    ``checkpoint_every`` places the checkpoints' agent swaps, which a replay
    redoes where the run took them (:func:`_due`): another value would swap at
    other beats and move StudentT's and the bootstrap's numbers by ~1 ulp. The
    roles and the policy are compared on the settings both sides have (a field
    added to them later is not a difference). A checkpoint written before these
    were recorded (without ``checkpoint_every``, or ``settings``) is not checked
    on them. The settings the fingerprint holds (``refit_lag``, the policy's
    method) are left to it, even where a checkpoint of an earlier version recorded
    them here too.

    Raises
    ------
    ResumeMismatch
        A setting differs, each named as ``checkpoint_every: saved X, now Y`` or
        ``roles.scout_refits: saved X, now Y`` (values written as the fingerprint's
        differences write them: lists as ``[a, b]``, strings unquoted); a book's
        attribution rhythm as ``attribution.every of <book>: saved X, now Y``.
    """
    from ._portfolio_state import _shown

    diffs: list[str] = []
    every = run.get("checkpoint_every")
    if every is not None and every != self.checkpoint_every:
        diffs.append(f"checkpoint_every: saved {_shown(every)}, now "
                     f"{_shown(self.checkpoint_every)}")
    saved = run.get("settings")
    if isinstance(saved, Mapping):
        now = _settings(self)
        saved = _attribution_turned_on(_attribution_saved(self, saved, now), now)
        for part, new in now.items():
            if not isinstance(old := saved.get(part), Mapping):
                continue
            for k in new:
                if k not in old or old[k] == new[k]:
                    continue
                if part == "attribution" and isinstance(old[k], Mapping):  # one per book
                    diffs += [f"{part}.{k} of {name}: saved {_shown(old[k][name])}, now "
                              f"{_shown(n)}" for name, n in new[k].items()
                              if name in old[k] and old[k][name] != n]
                else:
                    diffs.append(f"{part}.{k}: saved {_shown(old[k])}, now {_shown(new[k])}")
    if diffs:
        from ..errors import ResumeMismatch

        raise ResumeMismatch(f"this home's run was started with other settings "
                             f"({'; '.join(diffs)}); resume with the saved settings, or start "
                             "afresh in another home (--home on the command line, home= in "
                             "Python)")


def _attribution_saved(self: Swarm, saved: Mapping[str, Any], now: Mapping[str, Any]
                       ) -> Mapping[str, Any]:
    """``saved`` with the ``attribution`` part a run record of the role's first version
    lacks, derived from its ``roles.attribute_every`` (None: each book's refit rhythm): its
    rhythm is checked too. That version did not record whether a ``book_var`` was given, so
    a book off now (0) is not compared with it."""
    roles = saved.get("roles")
    if ("attribution" in saved or not isinstance(roles, Mapping)
            or "attribute_every" not in roles):
        return saved
    every = roles["attribute_every"]
    derived = {name: (self.configs[name].refit_every if every is None else every)
               for name, n in now["attribution"]["every"].items() if n != 0}
    return {**saved, "attribution": {"every": derived}}


def _attribution_turned_on(saved: Mapping[str, Any], now: Mapping[str, Any]
                           ) -> Mapping[str, Any]:
    """``saved`` with each book whose attribution was off (0) taking ``now``'s rhythm:
    turning attribution on is a resume like one of a home from before the role (each due
    one skipped, and ledgered so, until the ring is full); changing a rhythm, or turning it
    off (its running attributions would be dropped unrecorded), is not."""
    old = saved.get("attribution")
    if not isinstance(old, Mapping) or not isinstance(old.get("every"), Mapping):
        return saved
    every = dict(old["every"])
    for name, n in now["attribution"]["every"].items():
        if every.get(name) == 0:
            every[name] = n
    return {**saved, "attribution": {**old, "every": every}}


#: Ledger entries an old home's resume reads, at most, looking for its run's ``swarm-start``.
START_SCAN = 10_000


def _check_books(self: Swarm, run: Mapping[str, Any]) -> None:
    """Refuse to resume portfolios whose book or returns rule is not the checkpoint's.

    The checkpoint's run record holds each portfolio's book
    (:meth:`~.ticks.PortfolioSpec.book`) and the :data:`~.ticks.RETURNS_RULE` its
    returns were made under. A home checkpointed before they were recorded (no
    ``returns_rule``: the old rule) is checked against the books of its ledger's
    ``swarm-start`` entry (:func:`_started_books`); found in neither, a portfolio
    resumes as before, with a log line. A book equal but for the order of its assets
    resumes in the checkpoint's order (the order its returns were summed in); an old
    home's in the order given, as it always did (the ledger's entry is canonical JSON,
    its keys sorted: its order is not the run's).

    Raises
    ------
    ResumeMismatch
        A portfolio's book differs (asset added or removed, a weight or position
        changed, weights for positions or a series); a net-short positions book
        whose checkpoint does not record the returns rule (written before this
        version: it cannot be shown to use rule 2); a rule this version does not know.
    """
    from ..errors import ResumeMismatch
    from .ticks import RETURNS_RULE, book_differences

    rule = run.get("returns_rule")
    if rule is not None and rule != RETURNS_RULE:
        raise ResumeMismatch(f"this home's run made its returns under rule {rule!r}, which "
                             f"this version of swarmvar (rule {RETURNS_RULE}) does not know; "
                             "resume it with the version that made it, or start afresh in "
                             "another home (--home on the command line, home= in Python)")
    books = run.get("books")
    where = "checkpoint"
    if not isinstance(books, Mapping):
        books, where = _started_books(self), "ledger's swarm-start entry"
    for name, spec in list(self.specs.items()):
        saved = books.get(name) if books is not None else None
        if not isinstance(saved, Mapping):
            if rule is None and spec.net_short:
                saved = spec.book()  # unrecorded: taken as given, refused below
            else:
                log.info("portfolio %r: this home's checkpoint does not record its book "
                         "(checkpointed by an older version), nor does its ledger's "
                         "swarm-start entry (searched in its first %d entries); resumed "
                         "as given", name, START_SCAN)
                continue
        diffs = book_differences(saved, spec)
        if diffs:
            raise ResumeMismatch(
                f"portfolio {name!r} is not the book this home's run was started with (its "
                f"{where} records it): {'; '.join(diffs)}. Its agents were fitted on that "
                "book's returns: resume with the same book, or start this one afresh in "
                "another home (--home on the command line, home= in Python)")
        if rule is None and spec.net_short:  # (the same book as saved's: no differences)
            raise ResumeMismatch(
                f"portfolio {name!r} is a net-short positions book, and this home's "
                "checkpoint was written before this version of swarmvar, without the rule "
                f"its returns were made by: it cannot be shown to use rule {RETURNS_RULE} "
                "(returns as fractions of the absolute net value). Under the rule before "
                "it, a net-short book's returns were divided by the negative net value, "
                "so every one had the wrong sign and its agents were fitted on its gains "
                "as if they were losses. Start it afresh in another home (--home on the "
                "command line, home= in Python)")
        if where == "checkpoint":  # (an old home's entry sorts its keys: not the run's order)
            self.specs[name] = spec.in_order_of(saved)


def _started_books(self: Swarm) -> dict[str, Any] | None:
    """The books of the run this home was started with, from its ledger (an old home's
    checkpoint does not record them), or None.

    The run's ``swarm-start`` entry is the last one before the ledger's first beat (a
    start refused or killed before its checkpoint may have written an earlier one; a
    resume writes none). Read from the ledger's first :data:`START_SCAN` entries only.
    """
    found: dict[str, Any] | None = None
    for entry in self.ledger.entries(0, min(self.ledger.size, START_SCAN)):
        d = entry.data
        if entry.kind == EntryKind.CONSENSUS.value and "beat" in d:
            return found
        details = d.get("details")
        if (entry.kind == EntryKind.ACTION.value and d.get("type") == "swarm-start"
                and isinstance(details, Mapping)
                and isinstance(details.get("portfolios"), list)):
            found = {str(b["name"]): b for b in details["portfolios"]
                     if isinstance(b, Mapping) and "name" in b}
    return found if self.ledger.size <= START_SCAN else None


def _replay_ledger(self: Swarm, start: int) -> None:
    """Re-run, without recording, the beats the ledger holds after each checkpoint.

    At each beat where the original run checkpointed the portfolio, its
    agents are swapped for their restored copies again (as a checkpoint
    does), so the replay continues exactly as the original did. A spread
    portfolio's beats are composed from the groups recorded as up at each
    beat; a group's beats of ticks it missed (its host lost) whose late
    estimates the ledger lacks are recorded now, once.
    """
    late: dict[tuple[str, int], tuple[datetime, BeatOutcome] | None] = {}
    if self._groups:
        for entry in self.ledger.entries(start):
            d = entry.data
            if entry.kind == EntryKind.ESTIMATE.value and d.get("late") and "group" in d:
                late[str(d["group"]), int(d["seq"])] = None  # recorded already
    for entry in self.ledger.entries(start):
        if entry.kind == EntryKind.ACTION.value and isinstance(entry.data.get(
                "details"), Mapping) and entry.data["details"].get("by") == "operator":
            owner = entry.data["details"].get("portfolio")
            if owner in self.specs and entry.index >= int(
                    self._marks[owner]["ledger_size"]):  # after its checkpoint
                for obs in self.observers:  # an operator's quarantine or release, again
                    again = getattr(obs, "replay_action", None)
                    if callable(again):
                        again(entry.data)
            continue
        if entry.kind != EntryKind.CONSENSUS.value or "beat" not in entry.data:
            continue
        b = entry.data["beat"]
        name = b["portfolio"]
        if name in self._groups:  # its groups catch up (a restored one from further back)
            outcome_or_none = self._replay_spread(name, b, late)
            if outcome_or_none is None:
                continue
            tick, outcome = outcome_or_none
        else:
            if name not in self.specs or int(b["seq"]) != self.seq[name] + 1:
                continue
            swaps = tuple(self._take_result(name, s["agent"], int(s["launched"]),
                                            wait=True) for s in b.get("swaps", []))
            tick = BeatInput(int(b["seq"]), datetime.fromisoformat(b["as_of"]),
                             float(b["realized"]), frozenset(b.get("excluded", [])),
                             dict(b.get("factors", {})), swaps,
                             tuple((a, r) for a, r in b.get("requests", [])))
            outcome = self._beat_now(name, tick)
        for job in outcome.jobs:
            self._pending[job.key] = (job, None)
        report = outcome.report
        if b.get("late"):
            report = dataclasses.replace(report, late=True)
        seconds = b.get("beat_seconds")
        for att in self._attached:  # the arbiter moves as it did, recording nothing
            if att.replays:
                att(report, None if seconds is None else float(seconds), again=True)
        self._optional_credit[name] = (self._optional_credit_after(name)
                                       - len(b.get("optimize", [])))
        self.seq[name] = tick.seq
        self.last_as_of[name] = tick.as_of
        self._requests[name] = [(a, "arbiter") for d in b.get("optimize", []) for a in d]
        self._latest[name] = self._beaten[name] = report
        _attribution._attr_replay(self, name, b)  # its asset row; a due one it lacks, again
        if b.get("cursor") is not None:
            self.cursor = b["cursor"]
        if self._due(name):
            if name not in self._groups:  # (a spread portfolio's groups: at their beat)
                self.executor.states([name])  # the checkpoint's rebase, nothing written
                self._log[name].append(None)  # (a restored host redoes it at this point)
    self._record_late(late)


def _replay_spread(self: Swarm, name: str, b: Mapping[str, Any],
                   late: dict[tuple[str, int], tuple[datetime, BeatOutcome] | None]
                   ) -> tuple[BeatInput, BeatOutcome] | None:
    """A recorded beat of a spread portfolio again: each group that is one tick behind
    beats it; the portfolio's consensus is composed (if it is its next beat) from the
    groups recorded as up. A group's beat of a tick it had missed is kept in ``late``
    unless the ledger holds its late estimates."""
    t = int(b["seq"])
    base = BeatInput(t, datetime.fromisoformat(b["as_of"]), float(b["realized"]),
                     frozenset(b.get("excluded", [])), dict(b.get("factors", {})), (),
                     tuple((a, r) for a, r in b.get("requests", [])))
    up = set(b.get("groups", self._groups[name]))
    parts: dict[str, BeatOutcome] = {}
    for g in self._groups[name]:
        if self._gseq[g] != t - 1:
            continue
        out = self._beat_now(g, routed(base, self._hosted[g]))
        if g in up:
            parts[g] = out
            if t % self.checkpoint_every == 0:  # its checkpoint's rebase, not stored
                self.executor.states([g])  # here (a restored host redoes it too)
                self._log[g].append(None)
        elif (g, t) not in late:
            late[g, t] = (base.as_of, out)
    if t != self.seq[name] + 1:
        return None
    lost = [a for g in self._groups[name] if g not in up for a in self._hosted[g].agents]
    return base, self._shells[name].compose(base, parts, lost)


def _stateful(self: Swarm) -> list[tuple[str, Any]]:
    """Observers whose state goes into checkpoints, by their key (see
    :func:`stateful_observers`)."""
    return [(key, obs) for _, key, obs in stateful_observers(self.observers)]


def _start_series(spec: PortfolioSpec, history: Any) -> pd.Series | None:
    """A portfolio's start history from :func:`start`'s ``history``: a mapping's series
    under its name, else made from a DataFrame or Series (:meth:`.ticks.PortfolioSpec.history`);
    None when ``history`` holds none for it (``None``, a mapping without its name)."""
    if isinstance(history, Mapping):
        got = history.get(spec.name)
        return None if got is None else pd.Series(got)
    if isinstance(history, pd.DataFrame | pd.Series):
        return spec.history(history)
    return None


def _start_digest(series: pd.Series) -> dict[str, Any]:
    """What a resume compares of a portfolio's start history: its rows, first and last
    dates, and the sha256 of its values as float64."""
    import hashlib

    index = series.index
    dated = isinstance(index, pd.DatetimeIndex) and len(index) > 0
    from .ticks import as_utc

    return {"rows": len(series),
            "from": as_utc(index[0]).isoformat() if dated else None,
            "to": as_utc(index[-1]).isoformat() if dated else None,
            "sha256": hashlib.sha256(np.ascontiguousarray(
                series.to_numpy(dtype=np.float64)).tobytes()).hexdigest()}


def _check_start(self: Swarm, history: Any) -> None:
    """Refuse a resume whose start history (``history``, as :func:`start` takes it) covers
    the days the run's agents were fitted on with other returns.

    A fresh start stores each portfolio's start-history digest
    (:data:`._records.START_KEY`); a resume given a source (the command line's) compares
    the start history it is given: over the same days (rows, first and last date) its
    values must be the same. Over other days (a ``--last`` on data that grew) it is not
    compared: the ledger's beats are (:func:`check_source`). A portfolio ``history``
    holds no series of (``None``, a mapping without it: :func:`_start_series`), or a
    home started before the digest was stored, is not checked. This is the one check of
    the run's first ``--window`` rows, which no beat holds: a run stopped before its
    first beat has nothing else to check. A history no series of the portfolio can be
    made from (what the data layer refuses, pandas' ``TypeError`` or ``ValueError``) is
    not compared; the stored digest not JSON is taken as none.

    Raises
    ------
    ResumeDataMismatch
        Naming the portfolio, the days, and how to proceed.
    """
    from ..errors import ResumeDataMismatch, SwarmVarError
    from ..evolution import UnknownState

    saved: Any = None
    for key in (_records.START_KEY, _records.OLD_START_KEY):  # (an early home: the old key)
        try:
            saved = json.loads(self.states.get(key).decode())
            break
        except (UnknownState, ValueError):
            continue
    if not isinstance(saved, Mapping):
        return
    for name, spec in self.specs.items():
        was = saved.get(name)
        if not isinstance(was, Mapping):
            continue
        try:
            series = _start_series(spec, history)
            if series is None:
                continue  # nothing given for it: a resume reads no start history
            now = _start_digest(series)
        except (SwarmVarError, TypeError, ValueError):
            # not a start history of it (the data layer's refusal of a book's frame,
            # pandas' of values that are no numbers, a label that is no date): nothing to
            # compare; any other error is no such thing and propagates
            continue
        same_days = all(now[k] == was.get(k) for k in ("rows", "from", "to"))
        if same_days and now["sha256"] != was.get("sha256"):
            days = (f"{_day(datetime.fromisoformat(now['from']))}.."
                    f"{_day(datetime.fromisoformat(now['to']))}"
                    if now["from"] is not None else f"{now['rows']} rows")
            raise ResumeDataMismatch(
                f"portfolio {name!r}: its start history ({now['rows']} rows, {days}: the "
                "first --window rows on the command line, the history given in Python) "
                "holds other returns "
                "than the ones this home's run fitted its agents on (their digests differ): "
                f"it is not the data this run beat. Resume with that data, or {_AFRESH}")


#: Relative tolerance of a resume's comparison of a source's return with the ledgered one
#: (both are made by the same code from the same numbers: equal but for a Parquet or CSV
#: copy's last digit; another series differs by far more).
DATA_RTOL = 1e-9
#: Absolute tolerance of that comparison (returns near zero).
DATA_ATOL = 1e-12

#: A ledgered beat as a resume's data check reads it: ``(seq, as_of, realized, cursor)``.
_Beat = tuple[int, datetime, float, Any]


def _ledgered_beats(self: Swarm) -> tuple[dict[str, list[_Beat]], _Beat | None]:
    """Each running portfolio's beats in the ledger that :meth:`~.runtime.Swarm.run` read
    from a source (a cursor recorded; not ``beat()``'s from Python or the service), in
    order: ``(seq, as_of, realized, cursor)`` (a beat's record, :func:`._records._entries`),
    the last record of a seq kept; and the last such beat in the ledger (whose cursor a
    resume's replay leaves as the swarm's). The cursor is where a resume may start, not
    always the beat's own place (a beat while another portfolio's host was restored
    records the place before the first queued tick; a catch-up beat the place read by
    then) (:func:`_read_ledger`).

    Raises
    ------
    LedgerCorrupted
        A consensus entry's beat that is not readable (:func:`_read_ledger`).
    """
    beats, last, _ = _read_ledger(self)
    return beats, last


#: How a consensus entry's canonical JSON begins when it records a beat: its keys are
#: sorted, and ``"beat"`` sorts before the others (``"breaches"``, ``"levels"``, ...).
_BEAT_OPENS = '{"beat":'


def _not_canonical(token: str) -> Any:
    """Refuse NaN and Infinity, as :func:`~swarmvar.canonical.loads` does (no canonical
    JSON holds them): the beat is then read as the ledger reads it, which names the damage."""
    raise ValueError(f"JSON constant {token} is not canonical")


_DECODER = json.JSONDecoder(parse_constant=_not_canonical)


def _beat_of(row: Sequence[Any]) -> Any:
    """The ``beat`` object of a stored consensus row (``LedgerStore.rows``: index,
    timestamp, kind, data JSON, ...), None when it holds none: only that object is decoded
    when the data opens with it (canonical JSON, its keys sorted), the rest of the entry
    (its levels, breaches, scores) not at all (damage there is the ledger verification's
    to find); else the whole entry, as the ledger reads it. The beat object is decoded as
    strictly as the ledger decodes (NaN, Infinity refused: then the whole entry is read,
    which raises).

    Raises
    ------
    LedgerCorrupted
        The entry's data is not readable (:func:`~swarmvar.ledger.entry.make_entry`).
    """
    from ..ledger.entry import make_entry

    text = row[3]
    if isinstance(text, str) and text.startswith(_BEAT_OPENS):
        try:
            return _DECODER.raw_decode(text, len(_BEAT_OPENS))[0]
        except (ValueError, RecursionError):
            pass  # the ledger's own reading names the damage
    return make_entry(*row[:6]).data.get("beat")


def _read_ledger(self: Swarm) -> tuple[dict[str, list[_Beat]], _Beat | None,
                                       Counter[tuple[str, str]]]:
    """What a resume's data check reads of the ledger, in one pass: the beats of
    :func:`_ledgered_beats` and the last of them, and the refusals of bad input the run
    ledgered (``tick-rejected`` actions: their message and the input as recorded,
    :func:`._records._tick_repr`), counted.

    Only the consensus rows and refusals are decoded, and of a consensus row only its beat
    (:func:`_beat_of`): the estimate entries, each beat's largest, and the consensus
    records' levels are read as stored text and passed over. The ledger still grows
    with the home's age and is read from its start (every ledgered beat is compared), at
    about a third of the cost of decoding every entry (0.010 s against 0.030 s for 1,500
    beats, 0.032 s against 0.090-0.095 s for 4,680; ``resume_check_cost`` in
    ``benchmarks/bench_recovery.py`` on this code, load average 2.8-3.2: docs/runtime.md).

    Raises
    ------
    LedgerCorrupted
        A consensus entry's beat (:func:`_beat_of`: damage after it is not read) or a
        ``tick-rejected`` action entry that is not readable.
    """
    from ..ledger.entry import make_entry

    out: dict[str, dict[int, _Beat]] = {}
    last: _Beat | None = None
    refused: Counter[tuple[str, str]] = Counter()
    consensus, action = EntryKind.CONSENSUS.value, EntryKind.ACTION.value
    for row in self.ledger.store.rows(0, self.ledger.size):
        kind = row[2]
        if kind == action:
            if '"tick-rejected"' not in str(row[3]):
                continue  # (a start's, an operator's, a sandbox's record)
            d = make_entry(*row[:6]).data
            details = d.get("details")
            if d.get("type") == "tick-rejected" and isinstance(details, Mapping):
                refused[str(details.get("message")), _tick_key(details.get("tick"))] += 1
            continue
        if kind != consensus:
            continue
        b = _beat_of(row)
        if not isinstance(b, Mapping) or b.get("portfolio") not in self.specs:
            continue
        if b.get("cursor") is None:
            continue
        try:
            beat = (int(b["seq"]), datetime.fromisoformat(str(b["as_of"])),
                    float(b["realized"]), b.get("cursor"))
        except (KeyError, TypeError, ValueError):
            continue
        out.setdefault(str(b["portfolio"]), {})[beat[0]] = beat
        last = beat
    return {p: [rows[s] for s in sorted(rows)] for p, rows in out.items()}, last, refused


def _tick_key(recorded: Any) -> str:
    """A refused input as recorded (:func:`._records._tick_repr`: a tick's dict, a bad
    line's repr) as a key: its canonical JSON, the same whether made from the input or read
    back from the ledger (whose decoded dict has its keys in another order)."""
    return canonical_json(recorded).decode()


class _RefusedAgain:
    """The refusals of bad input the ledger holds (:func:`_read_ledger`), matched one for
    one with the input a resume reads again: a bad line a source gives (called with its
    :class:`.sources.BadLine`: ``FollowedFile.skip_refused``) and a parsed tick the beat
    refuses (:meth:`tick`, from ``Swarm._refuse`` during a run on that source) draw from
    the same count. The key is the refusal's message and the input as recorded: a line
    refused when read names its data line; a tick refused at the beat (``|r| > 1``, a NaN
    cell, a date not after the last, a book losing all its value) is known by its date and
    values."""

    def __init__(self, refused: Counter[tuple[str, str]]) -> None:
        self._left = Counter(refused)
        #: how many lines the source now holds before the ones the run read (older rows
        #: prepended since: :func:`_line_shift`); a re-read line's number less this is
        #: the number its ledgered refusal names
        self.shift = 0

    def __call__(self, bad: Any) -> bool:
        """Whether the bad line ``bad`` was refused and ledgered by the run already (its
        message naming its data line as now, or as it was before ``shift`` lines came
        before it)."""
        from ..errors import InvalidTick

        message = str(InvalidTick(bad.reason))
        numbered = _DATA_LINE.match(message)
        if self.shift and numbered is not None and int(numbered[1]) > self.shift:
            # the name it had first: a line named as now may be another identical line
            # ``shift`` lines on, whose refusal a read of it would use up
            was = f"data line {int(numbered[1]) - self.shift}{message[numbered.end():]}"
            if self._take(was, bad.raw):
                return True
        return self._take(message, bad.raw)

    def tick(self, exc: Exception, tick: Any) -> bool:
        """Whether ``tick``, refused at the beat for ``exc``, was refused and ledgered by the
        run already (the same message and tick)."""
        return self._take(str(exc), tick)

    def _take(self, message: str, raw: Any) -> bool:
        from ._records import _tick_repr

        key = (message[:500], _tick_key(_tick_repr(raw)))
        if self._left[key] <= 0:
            return False
        self._left[key] -= 1
        return True


#: How a followed file's refusal of a line names it (``FollowedFile._parse``).
_DATA_LINE = re.compile(r"data line (\d+)")


def _line_shift(beats: Mapping[str, Sequence[_Beat]],
                found: Mapping[datetime, Sequence[tuple[int, Any]]]) -> int:
    """How far the source's places lie from the cursors the run recorded: the most common
    difference (place of a ledgered date now, that beat's cursor) over the beats whose date
    is at one place (older rows prepended since: their count; else 0). A beat's cursor is
    not always its own place (one recorded while a host was restored, a catch-up beat's):
    such beats differ each by another amount, and the beats at their own place outnumber
    them in a run that was not restoring for most of its beats."""
    shifts: Counter[int] = Counter()
    for rows in beats.values():
        for _, when, _, cursor in rows:
            places = found.get(when, ())
            if isinstance(cursor, int) and len(places) == 1:
                shifts[int(places[0][0]) - cursor] += 1
    return shifts.most_common(1)[0][0] if shifts else 0


def _day(when: datetime) -> str:
    """A date as the data says it: the day alone at midnight, else the time too."""
    return when.date().isoformat() if when.time() == datetime.min.time() else when.isoformat()


def _num(x: float, other: float) -> str:
    """``x`` with as few digits as tell it from ``other``."""
    for digits in (4, 6, 9, 12):
        if f"{x:.{digits}g}" != f"{other:.{digits}g}":
            return f"{x:.{digits}g}"
    return repr(x)


_AFRESH = "start afresh in another home (--home on the command line, home= in Python)"


def check_source(self: Swarm, source: Any) -> int | None:
    """Refuse to resume on a source that is not the data this home's run beat; where in
    it the resume starts.

    The ledger's beats read from a source hold each tick's date and its return
    (``realized``): what the run consumed, checked against what the source gives at
    those dates now (:func:`_ledgered_beats`; a beat's ``cursor`` records where a resume
    of the data the run read may start, not taken as its row here). A source with ``ticks_on``
    (:class:`.sources.Replay`, :class:`.sources.FollowedFile`) is read before anything is
    opened or written: another series with the same columns, an edited, shortened or
    replaced file is refused; a file that grew (rows after its last beaten date, or
    older rows before its first) is not, nor a file given after a run that read a
    stream of the same ticks. A stream (:class:`.sources.JsonLines`) cannot be read
    ahead: its ticks the ledger recorded (the ones a resume skips by date) are checked
    as they arrive (``watch``), until a tick passes the portfolio's last ledgered beat.
    A source with neither is not checked, nor is a portfolio without ledgered beats (a
    run stopped before its first beat: its start history is not in the ledger).

    A source that reads lines again on a resume (:class:`.sources.FollowedFile` from a
    place before the run's, e.g. 0 below) is given the refusals the ledger holds
    (``skip_refused``, :class:`_RefusedAgain`): a bad line the run refused and ledgered
    already is passed over, not refused and ledgered a second time; so is a tick of it
    the beat refuses again (``|r| > 1``, a NaN cell: ``Swarm._refuse`` during the run on
    that source, from the same count), from any source read ahead
    (:class:`.sources.Replay` too: a plain restart gives again the ticks after the last
    beat). A refusal names the data line as the run counted it: older rows prepended
    since are allowed for (:func:`_line_shift`).

    Returns
    -------
    int or None
        For a source read ahead, the resume point as a place in it (its ``seek``). The
        cursor the run recorded is a place in the data it read, which need not be this
        source's (its oldest rows dropped, a refused line deleted, a stream's line
        count): seeking there would skip unbeaten ticks. It stands when this source
        holds the ledger's last beat at that place (numbered as the data the run read);
        otherwise the earliest, over the portfolios, of the place of the first tick at
        a portfolio's last ledgered date (the ticks from there at or before a
        portfolio's last ledgered date are skipped by date); 0 (the source read from its
        start, skipped by date) when a running portfolio has no such beat (its host lost
        at a fresh run's first tick and never restored: its rows were beaten nowhere).
        None for a stream, a source not checked, or a home without such beats.

    Raises
    ------
    ResumeDataMismatch
        Naming the portfolio, the source, the beats and dates compared, the first
        difference (its date, its place in the source, the ledgered and the present
        return) and how many differ; or a ledgered date the source lacks; and how to
        proceed. From a stream: at its first tick that differs, during
        :meth:`~.runtime.Swarm.run`.
    InvalidSource
        A followed file that cannot be read.
    LedgerCorrupted
        A consensus entry's beat (the object its data opens with; damage after it is
        not read here, but by ``swarmvar ledger verify``) or a ``tick-rejected`` action
        entry of the ledger that is not readable.
    """
    on = getattr(source, "ticks_on", None)
    watch = getattr(source, "watch", None)
    skip = getattr(source, "skip_refused", None)
    if not callable(on) and not callable(watch) and not callable(skip):
        return None
    beats, last, refused = _read_ledger(self)
    again: _RefusedAgain | None = None
    if refused and (callable(skip) or callable(on)):  # read again: not ledgered twice
        again = _RefusedAgain(refused)
        if callable(skip):
            skip(again)  # its bad lines; the ticks the beat refuses: Swarm._refuse, in run
        self._rereads = (source, again)
    if not beats or last is None or not (callable(on) or callable(watch)):
        return None
    name = str(getattr(source, "name", "the source"))
    if callable(on):
        wanted: dict[datetime, Any] = {}  # each ledgered date (its first cursor)
        for rows in beats.values():
            for _, when, _, cursor in rows:
                wanted.setdefault(when, cursor)
        found = on(wanted)
        for p, rows in beats.items():
            _compare_rows(self.specs[p], rows, found, name, str(getattr(source, "unit", "rows")))
        if again is not None:  # older rows prepended: its refusals name other lines
            again.shift = _line_shift(beats, found)
        if any(p not in beats for p in self.specs):
            # a portfolio with no beat read from a source (its host lost at a fresh run's
            # first tick, never restored): its rows from its start history on are queued
            # nowhere; the source is read from its start, ticks skipped by date
            return 0
        _, when, _, cursor = last
        if isinstance(cursor, int) and any(n == cursor for n, _ in found[when]):
            # the ledger's last beat is at its cursor's place here: this source numbers
            # its ticks as the data the run read, up to there; its cursor stands. It is
            # the place after that beat's own line, so the lines the run read after it
            # (the ones it refused; a tick whose beat a kill cut short) are read again:
            # the plain restart's case of skip_refused above
            return cursor
        # every ledgered date is found (else refused): a place of each last one
        return min(int(found[rows[-1][1]][0][0]) for rows in beats.values() if rows)
    assert callable(watch)
    watch(_stream_check(self, beats, name))
    return None


def _differs(spec: PortfolioSpec, tick: Any, realized: float) -> tuple[str, bool] | None:
    """How a source's tick at a ledgered beat's date differs from it (and whether that is
    its return), None when it gives the ledgered return."""
    from ..errors import SwarmVarError
    from .sources import BadLine
    from .ticks import tick_value

    if isinstance(tick, BadLine):
        return f"is refused now ({tick.reason})", False
    try:
        value = tick_value(spec, tick)
    except SwarmVarError as exc:
        return f"gives no return now ({exc})", False
    if math.isclose(value, realized, rel_tol=DATA_RTOL, abs_tol=DATA_ATOL):
        return None
    return f"ledgered {_num(realized, value)}, now {_num(value, realized)}", True


def _compare_rows(spec: PortfolioSpec, rows: Sequence[_Beat],
                  found: Mapping[datetime, Sequence[tuple[int, Any]]], name: str,
                  unit: str) -> None:
    """Refuse ``rows`` (a portfolio's ledgered beats) when a date of theirs is not in
    ``found`` (the source's ticks by date, :func:`check_source`) or its ticks there all
    give otherwise (a date the run read twice beat the first tick it took)."""
    from ..errors import ResumeDataMismatch

    if not rows:
        return
    one = unit[:-1] if unit.endswith("s") else unit
    span = (f"beats {rows[0][0]}..{rows[-1][0]} ({_day(rows[0][1])}..{_day(rows[-1][1])}) "
            "in this home's ledger")
    first: str | None = None
    differ = 0
    for seq, when, realized, _ in rows:
        ticks = found.get(when)
        if not ticks:
            raise ResumeDataMismatch(
                f"portfolio {spec.name!r}: {name} is not the data this home's run beat: it "
                f"has no {one} dated {_day(when)}, which the run beat (beat {seq}; its "
                f"{span}): was it truncated or replaced? Resume with the data the run "
                f"beat, or {_AFRESH}")
        whys = [_differs(spec, tick, realized) for _, tick in ticks]
        if any(w is None for w in whys):
            continue
        differ += 1
        said = whys[0]
        if first is None and said is not None:
            n, (why, valued) = ticks[0][0], said
            first = (f"at {_day(when)} ({one} {n}, beat {seq}): {why}" if valued
                     else f"at {one} {n} (beat {seq}, {_day(when)}): it {why}")
    if first is None:
        return
    raise ResumeDataMismatch(
        f"portfolio {spec.name!r}: the returns of {span} do not match {name}'s {unit} at "
        f"those dates (first difference {first}; {differ} of {len(rows)} beats differ): it "
        f"is not the data this run beat. Resume with that data (it may have grown: {unit} "
        f"after {_day(rows[-1][1])} or before {_day(rows[0][1])} added, none of those dates "
        f"changed), or {_AFRESH}")


def _stream_check(self: Swarm, beats: Mapping[str, Sequence[_Beat]], name: str) -> Any:
    """The check a stream's ticks go through on a resume (:func:`check_source`): a tick at
    a date a portfolio's ledger recorded must carry the recorded return; from its first
    tick after the portfolio's last ledgered beat, the portfolio's ticks are new (and its
    ledgered beats are let go)."""
    from ..errors import ResumeDataMismatch
    from ..types import Tick
    from .ticks import dated_route

    recorded = {p: {when: (seq, realized) for seq, when, realized, _ in rows}
                for p, rows in beats.items() if rows}
    last = {p: rows[-1][1] for p, rows in beats.items() if rows}
    specs = self.specs

    def check(tick: Tick, line: int) -> None:
        if not recorded:
            return  # every portfolio past its last ledgered beat
        routed = dated_route(tick, specs)
        if routed is None:
            return  # the run refuses it as usual
        when, names = routed
        for p in names:
            if p not in recorded:
                continue
            if when > last[p]:  # past the resume point: new ticks from here
                del recorded[p]
                continue
            rec = recorded[p].get(when)
            if rec is None:  # (a tick the run refused, or never saw: skipped by date)
                continue
            seq, realized = rec
            differs = _differs(specs[p], tick, realized)  # (as a source read ahead is)
            if differs is None:
                continue
            why, valued = differs  # (no return now: the ledgered one said beside it)
            said = why if valued else f"it {why}; ledgered {_num(realized, math.nan)}"
            raise ResumeDataMismatch(
                f"portfolio {p!r}: line {line} of {name} is not the tick this home's run "
                f"beat at {_day(when)} (beat {seq}): {said}. Resume with the ticks the run "
                f"read (or send only those after {_day(last[p])}, its last beat), or "
                f"{_AFRESH}")

    return check


def _stamp_plugins(self: Swarm) -> None:
    """Give the hosts the plug-ins' digests this swarm started with (``digests`` of the
    :class:`.sandboxing.SandboxSetup` in each config, ``configs`` and what is hosted): a
    sandbox worker started later (recycled after its task quota, a crash, a timeout or a
    violation) imports the plug-in from its files then, and runs it only while they hash
    to these (:class:`.sandboxed.SandboxedAgent`)."""
    setup = self.sandbox
    if setup is None or not setup.plugins:
        return
    stamped = dataclasses.replace(setup, digests={
        cls: d["source"] for cls, d in _plugins_of(self).items()})
    for held in (self.configs, self._hosted):
        for unit, cfg in list(held.items()):
            if cfg.sandbox is not None:
                held[unit] = dataclasses.replace(cfg, sandbox=stamped)


def _plugins_of(self: Swarm) -> dict[str, dict[str, Any]]:
    """The plug-ins' source digests this swarm took as it started (:func:`plugin_sources`,
    before any host imported a plug-in): what each checkpoint records and a resume
    compares, not the files as they are now (one edited while the swarm runs is not
    the code its hosts run)."""
    got = self._plugin_digests
    if got is None:  # (a checkpoint before start: none is taken, but never unrecorded)
        got = self._plugin_digests = plugin_sources(self.sandbox)
    return got


def plugin_sources(sandbox: Any) -> dict[str, dict[str, Any]]:
    """Each plug-in agent's source digest, by class name: ``{"plugin": "pkg.mod:Class",
    "source": :func:`.sandboxing.plugin_digest` (the sha256 of its files, path and bytes:
    the very digest a sandboxed worker compares before it runs the plug-in), "files": how
    many (:func:`.sandboxing.plugin_files`)}``, ``source`` None when its files are not
    found or cannot be read (``files`` 0 then); ``{}`` without plug-ins."""
    if sandbox is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    paths = tuple(sandbox.plugin_paths)
    for cls, spec in sandbox.plugin_agents.items():
        digest = _plugin_digest(str(spec), paths)
        found = None if digest is None else plugin_files(str(spec).partition(":")[0], paths)
        count = 0 if found is None else len(found[1])
        out[str(cls)] = {"plugin": str(spec), "source": digest, "files": count}
    return out


def _check_plugins(self: Swarm, run: Mapping[str, Any]) -> None:
    """Refuse to resume a plug-in agent whose code is not the code of its checkpoint.

    A plug-in (``run --plugin package.module:Class``) is in the fingerprint by its class
    name only; its checkpoint's state was made by its code then. The run record holds
    each plug-in's source digest (:func:`plugin_sources`), compared with the digest this
    swarm took as it started (:func:`_plugins_of`); a home checkpointed before
    it did (no ``plugins``), or a plug-in whose files are found neither then nor now,
    resumes as before.

    Raises
    ------
    PluginChanged
        Naming the class, its module then and now or its files' digests then and now,
        and how to proceed.
    """
    from ..errors import PluginChanged

    saved = run.get("plugins")
    if not isinstance(saved, Mapping):
        return
    for cls, now in _plugins_of(self).items():
        was = saved.get(cls)
        if not isinstance(was, Mapping):
            continue
        if was.get("plugin") != now["plugin"]:
            raise PluginChanged(
                f"plug-in agent {cls!r} was {was.get('plugin')} in this home's run, and is "
                f"{now['plugin']} here: its checkpointed state was made by the other module's "
                f"code. Resume with --plugin {was.get('plugin')}, or {_AFRESH}")
        old, new = was.get("source"), now["source"]
        if old is None or new is None or old == new:
            continue
        raise PluginChanged(
            f"plug-in agent {cls!r} ({now['plugin']}) has changed since this home's run "
            f"checkpointed it: its source ({now['files']} file(s)) hashes to {new[:12]}, the "
            f"code its checkpointed state was fitted by to {str(old)[:12]}. Resume with the "
            f"plug-in's code as it was (e.g. from version control), or {_AFRESH}, where the "
            "changed plug-in is fitted from the start")
