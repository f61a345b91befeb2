"""A canary's evidence made inside a sandbox: a variant is fitted and validated behind walls.

Where it sits: the runtime composes three engines here - the sandbox
(:mod:`swarmvar.sandbox`), the variant lifecycle (:mod:`swarmvar.evolution`)
and the ledger - which never import each other. :func:`validate_variant`
runs a canary variant's backtest row (the ``forecast_path`` task: fit on the
first ``window`` returns, then forecast-then-update each later day, refitting
every ``refit_every`` days) inside a sandbox, with the variant's agent class
and constructor parameters, and then:

* **clean run** - the forecasts become the performance records a backtest
  feeds (:func:`swarmvar.swarm.variants.backtest_records`: breach rate,
  Kupiec POF p-value, mean pinball loss per level, from
  :mod:`swarmvar.validation`'s own evaluation), stored as canary evidence; the
  breaker records a success. ``variants canary check`` then judges them.
* **sandbox violation** (network, write outside, a limit exceeded, wall-clock
  timeout, a malformed result) - a typed violation is the variant's doing,
  not bad luck: its circuit breaker is **tripped at once** (OPEN, whatever
  ``failure_threshold`` says), a failed canary check is recorded (the
  ``max_failed_checks``-th rolls the release back), a record with success 0
  is stored, and the ledger gets a VARIANT entry naming the violation.
* **the task's own error** (``TaskFailed``: the agent raised while fitting or
  forecasting) - counted as one ordinary breaker failure (the breaker opens
  after ``failure_threshold`` consecutive ones), a failed check, a record with
  success 0 and a ledger entry, as for a violation.

The failed check that rolls the release back is noted in the ledger inside the variant
store's transaction (``event: rollback``, ``by: canary-violation`` or
``canary-task-failure``), by the rule of a rollback by hand
(:func:`swarmvar.evolution.noted.noted_change`): a note whose change the store did not
keep is voided.

A sandbox of backend ``none`` (no walls, only when asked) leaves a warning
entry in the ledger before the task runs. Inputs are checked before anything
runs or is stored, so a failure inside the sandbox is the variant's; the task
is told so (``judged``), and its fits do not judge the windows of returns
again (returns worked out from prices pass the entry check on purpose).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .. import data
from ..errors import (
    InvalidParameter,
    InvalidVariant,
    SandboxViolation,
    TaskFailed,
    Violation,
)
from ..evolution import (
    BreakerSnapshot,
    BreakerState,
    CheckOutcome,
    EvolutionHome,
    MetricRecord,
    Variant,
    VariantStatus,
    record_check,
)
from ..evolution.canary import BY_TASK_FAILURE, BY_VIOLATION, check_note
from ..evolution.noted import (
    Report,
    as_kept,
    may_have_been_made,
    noted_change,
    variant_held,
)
from ..ledger import EntryKind, Ledger
from ..sandbox import Sandbox, Task
from .variant_notes import LedgerNotes
from .variants import Role, VariantChoice, backtest_records

_log = logging.getLogger("swarmvar.swarm")

#: The task a canary runs: a backtest row of one agent (``swarmvar.models.task``).
ENTRY = "swarmvar.models.task:forecast_path"
#: Simulations of the ES tests in the evaluation (as ``swarmvar backtest``).
N_SIM = 1000


class CanaryVerdict(Enum):
    """What a sandboxed canary run found."""

    EVIDENCE = "evidence"  # ran clean: performance records stored for the health check
    VIOLATION = "violation"  # broke its sandbox: breaker tripped, check failed
    TASK_FAILED = "task_failed"  # the agent's own error: breaker failure, check failed


@dataclass(frozen=True)
class CanaryEvidence:
    """The outcome of one sandboxed canary run of one variant.

    Attributes
    ----------
    variant_id : str
    backend : str
        Sandbox backend that ran it (``bwrap``, ``e2b``, ``none``).
    profile : str
        Name of the sandbox profile.
    verdict : CanaryVerdict
    records : tuple of MetricRecord
        What was stored in the metrics (one per level on a clean run, one
        with success 0 on a failure).
    days : int
        Out-of-sample forecast days of the row (0 on a failure).
    seconds : float
        Seconds the task took inside the sandbox (host wall seconds on a failure).
    violation : Violation or None
        The violation's kind, on a violation.
    detail : str
        What the sandbox (or the task's error) said.
    breaker : BreakerState
        The variant's breaker after the run.
    check : CheckOutcome or None
        The canary check recorded on a failure (FAILED or ROLLED_BACK).
    ledger_entries : tuple of int
        Indices of the ledger entries written, in order (a ``none`` warning, a rollback's
        note, the result). A note is voided only when its check failed: then no evidence
        is returned (:func:`validate_variant` raises), and the result entry names the
        note's and its void's indices (``notes``).
    """

    variant_id: str
    backend: str
    profile: str
    verdict: CanaryVerdict
    records: tuple[MetricRecord, ...]
    days: int
    seconds: float
    violation: Violation | None = None
    detail: str = ""
    breaker: BreakerState = BreakerState.CLOSED
    check: CheckOutcome | None = None
    ledger_entries: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the row ran clean (its records still face ``canary check``)."""
        return self.verdict is CanaryVerdict.EVIDENCE


def _alphas(alphas: Sequence[float]) -> tuple[float, ...]:
    try:
        out = tuple(float(a) for a in alphas)
    except (TypeError, ValueError):
        raise InvalidParameter(f"alphas must be numbers in [0.5, 1), got {alphas!r}") from None
    if not out or len(out) > 16 or not all(0.5 <= a < 1.0 for a in out):
        raise InvalidParameter(f"alphas must be 1 to 16 levels in [0.5, 1), got {alphas!r}")
    if len(set(out)) != len(out):
        raise InvalidParameter(f"alphas must not repeat a level, got {alphas!r}")
    return out


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= int(value) <= high:
        raise InvalidParameter(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    return int(value)


def _canary(home: EvolutionHome, variant: str | Variant) -> Variant:
    vid = variant.id if isinstance(variant, Variant) else variant
    if not isinstance(vid, str):
        raise InvalidVariant(f"a variant id is text, got {vid!r}")
    v = home.variants.get(vid)  # UnknownVariant if it is not stored
    if v.status is not VariantStatus.CANARY or v.canary is None:
        raise InvalidVariant(
            f"variant {v.id} is {v.status.value}, not in a canary release; start one first "
            f"(swarmvar variants canary start {v.id})")
    return v


def _plain(value: Any) -> Any:
    return [_plain(x) for x in value] if isinstance(value, (tuple, list)) else value


def _profile_json(box: Sandbox) -> dict[str, Any]:
    p = box.profile
    return {"name": p.name, "cpu_seconds": p.cpu_seconds, "wall_seconds": p.wall_seconds,
            "memory_bytes": p.memory_bytes, "processes": p.processes,
            "file_bytes": p.file_bytes, "network": p.network.value}


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def validate_variant(
    variant: str | Variant,
    returns: ArrayLike | pd.Series,
    *,
    home: EvolutionHome,
    ledger: Ledger,
    box: Sandbox,
    clock: Callable[[], float],
    alphas: Sequence[float] = (0.99, 0.975),
    window: int = 1000,
    refit_every: int = 20,
    seed: int = 0,
    source: str = "",
    report: Report | None = None,
) -> CanaryEvidence:
    """Fit and validate a canary variant in ``box``; store its evidence or its failure.

    Parameters
    ----------
    variant : str or Variant
        The variant (or its id); it must be in a canary release.
    returns : array or pandas.Series ``(n,)``
        Daily log returns; the row fits on the first ``window`` and forecasts
        the ``n - window`` days after, one day ahead.
    home : EvolutionHome
        The lifecycle stores (variants, metrics, breakers).
    ledger : Ledger
        Where the run's result (and a ``none`` warning) is recorded.
    box : Sandbox
        The sandbox to run in (``swarmvar.sandbox.create(backend, "validation")``).
    clock : callable
        Wall seconds since the epoch (``time.time`` at the edge).
    alphas : sequence of float
        VaR confidence levels, each in [0.5, 1).
    window, refit_every, seed : int
        As for ``swarmvar backtest``.
    source : str
        What the returns are (recorded in the ledger).
    report : callable or None
        Where a rollback note's warnings and errors go (``report(level, line)``, as
        :func:`~swarmvar.evolution.noted.noted_change` says them: a void that could not
        be appended, a note that may have landed); default: the log (logger
        ``swarmvar.swarm``). The command line passes its stderr.

    Returns
    -------
    CanaryEvidence

    Raises
    ------
    UnknownVariant, InvalidVariant
        No such variant, or it is not in a canary release.
    InvalidReturns, InvalidParameter
        Bad returns or settings (nothing is run or stored).
    CircuitOpen
        The variant's breaker is open (nothing is run).
    SandboxError
        The sandbox itself cannot run (not the variant's doing: nothing is counted).
    SwarmVarError
        A violation's or failed task's check could not be recorded: the variant store's
        or the rollback note's error (as :func:`~swarmvar.evolution.noted.noted_change`
        raises it; the check and its rollback were not made, or, said so, may have
        been), or the store's error at the breaker's trip or failure or the success-0
        metric (the store lost during the run). What was stored of those stands, and
        the run's ``canary_validation`` entry is still appended, even when the variant
        store is out of reach (``check: not recorded``, or ``not known`` when the change
        may have been made; ``breaker``: its state as set before the check, ``not
        known`` if it could not be set; ``error``; ``notes``: the indices of the note
        and its void, if appended).
    """
    levels = _alphas(alphas)
    win = _whole("window", window, 2, 10**6)
    every = _whole("refit_every", refit_every, 1, 10**6)
    s = _whole("seed", seed, 0, 2**31 - 1)
    x = data.as_array(returns, min_obs=win + 1, who=f"a canary row with window={win}")
    v = _canary(home, variant)
    breaker = home.breaker(v.id, clock)
    breaker.allow()  # CircuitOpen while its breaker is open
    entries: list[int] = []
    base = {"variant_id": v.id, "agent_class": v.agent_class,
            "parameters": {k: _plain(p) for k, p in v.parameters.items()},
            "backend": box.backend, "profile": _profile_json(box), "source": source}
    if box.backend == "none":
        entries.append(ledger.add_entry(EntryKind.VARIANT, {
            **base, "event": "sandbox_warning",
            "warning": "the canary ran without isolation (--sandbox none): its code could "
                       "read the data home and reach the network"}).index)
    # judged: x passed as_array's entry check above (returns worked out from prices, marked,
    # are let through there); the mark does not travel into the sandbox, so the task's fits
    # do not judge its windows again (models.task.forecast_path)
    task = Task(ENTRY, {"agent": v.agent_class, "options": base["parameters"],
                        "alphas": list(levels), "window": win, "refit_every": every,
                        "judged": True},
                {"returns": x}, seed=s)
    started = clock()
    try:
        result = box.run(task)
        var, es = _checked(result.arrays, x.size - win, len(levels))
    except SandboxViolation as exc:
        return _failed(home, ledger, v, box, base, entries, clock, started,
                       CanaryVerdict.VIOLATION, exc.violation, exc.detail, report or _report)
    except TaskFailed as exc:
        return _failed(home, ledger, v, box, base, entries, clock, started,
                       CanaryVerdict.TASK_FAILED, None, str(exc), report or _report)
    now = clock()
    records = tuple(backtest_records(
        {v.agent_class: VariantChoice(v.agent_class, Role.CANARY, v.id, dict(v.parameters))},
        _result(v.agent_class, returns, x, win, every, levels, var, es, result.seconds, s),
        now))
    home.metrics.record(records)
    breaker.record_success()
    entries.append(ledger.add_entry(EntryKind.VARIANT, {
        **base, "event": "canary_validation", "outcome": CanaryVerdict.EVIDENCE.value,
        "days": int(var.shape[0]), "window": win, "refit_every": every, "seed": s,
        "seconds": float(result.seconds),
        "levels": [{"alpha": a, "breach_rate": r.breach_rate, "kupiec_p": _num(r.kupiec_p),
                    "pinball_loss": _num(r.pinball_loss)} for a, r in zip(levels, records,
                                                                          strict=True)],
    }).index)
    return CanaryEvidence(v.id, box.backend, box.profile.name, CanaryVerdict.EVIDENCE, records,
                          int(var.shape[0]), float(result.seconds), breaker=breaker.state,
                          ledger_entries=tuple(entries))


def _checked(arrays: Any, days: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """The row's VaR and ES ``(days, levels)``, or a MALFORMED_RESULT violation."""
    out = []
    for name in ("var", "es"):
        a = arrays.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 \
                or a.shape != (days, n_levels):
            raise SandboxViolation(Violation.MALFORMED_RESULT,
                                   f"the row's {name!r} is not float64 of shape "
                                   f"({days}, {n_levels})")
        if not np.all(np.isfinite(a)):
            raise SandboxViolation(Violation.MALFORMED_RESULT,
                                   f"the row's {name!r} holds a non-finite number")
        out.append(a)
    var, es = out
    if np.any(es < var - 1e-12 * np.maximum(1.0, np.abs(var))):
        raise SandboxViolation(Violation.MALFORMED_RESULT, "the row's ES lies below its VaR")
    return var, es


def _result(name: str, returns: ArrayLike | pd.Series, x: np.ndarray, window: int,
            refit_every: int, levels: tuple[float, ...], var: np.ndarray, es: np.ndarray,
            seconds: float, seed: int) -> Any:
    """The row as a one-row :class:`~swarmvar.validation.BacktestResult`, evaluated by
    :mod:`swarmvar.validation` exactly as a backtest evaluates its rows."""
    from ..validation.evaluate import evaluate_row, finish_rows
    from ..validation.result import BacktestResult, LevelSeries, Timing

    losses = -x[window:]
    series = {a: LevelSeries(a, var[:, j], es[:, j], var[:, j], var[:, j], es[:, j], es[:, j],
                             np.asarray(losses > var[:, j]))
              for j, a in enumerate(levels)}  # no credible intervals cross: bands collapse
    raw = evaluate_row(losses, series, None, seed=seed, row=0, n_sim=N_SIM)
    dates = returns.index[window:] if isinstance(returns, pd.Series) \
        else pd.RangeIndex(window, x.size)
    fits = 1 + (losses.size - 1) // refit_every
    return BacktestResult(
        dates=dates, returns=x[window:], alphas=levels, horizon=1, window=window,
        refit_every=refit_every, baseline=None, series={name: series}, logscore={},
        evaluation=finish_rows({name: raw}, baseline=None),
        timings={name: Timing(float(seconds), 0.0, 0.0, fits)}, agents=(name,))


def _failed(home: EvolutionHome, ledger: Ledger, v: Variant, box: Sandbox,
            base: dict[str, Any], entries: list[int], clock: Callable[[], float],
            started: float, verdict: CanaryVerdict, violation: Violation | None,
            detail: str, report: Report) -> CanaryEvidence:
    """A violation or failed task: breaker, failed check, a success-0 record, the ledger.

    The breaker, the record and the check each need the variant store: when any of them
    fails (a server lost during the sandbox's run fails the first), the run's
    ``canary_validation`` entry is still appended (:func:`_unrecorded`), its ``breaker``
    ``not known`` unless it was set, and the store's error raised.

    Raises
    ------
    SwarmVarError
        The variant store's or the ledger's error (the check not recorded, or, said so,
        perhaps recorded).
    """
    now = clock()
    elapsed = max(0.0, now - started) if math.isfinite(now - started) else 0.0
    record = MetricRecord(v.id, now, 0.0, elapsed)
    by = BY_TASK_FAILURE if violation is None else BY_VIOLATION
    url = str(home.db.path)  # the store's location: its parts never reach the ledger

    def change() -> tuple[tuple[Variant, CheckOutcome], Variant, dict[str, Any] | None]:
        before = home.variants.get(v.id)  # under the check's transaction: no other writer
        checked, outcome = record_check(home.variants, before, False, home.config.canary, now)
        return (checked, outcome), checked, check_note(checked, outcome, by)

    notes = LedgerNotes(ledger)
    run = {**base, "event": "canary_validation", "outcome": verdict.value,
           "violation": None if violation is None else violation.value,
           "detail": detail[:2000]}
    tripped = "not known"  # the breaker's state as set here, once it is
    try:
        if violation is not None:  # the variant broke its walls: trip at once
            def trip(s: BreakerSnapshot) -> BreakerSnapshot:
                return replace(s, state=BreakerState.OPEN, failures=s.failures + 1,
                               opened_at=now)
            tripped = home.breakers.update(v.id, trip)[1].state.value
        else:
            breaker = home.breaker(v.id, clock)
            breaker.record_failure()
            tripped = breaker.state.value  # read now: the store may be out of reach later
        home.metrics.record([record])
        checked, outcome = noted_change(home.db.transaction, change, notes,
                                        variant_held(home.variants.get), report,
                                        f"rollback of {v.id} after its failed canary check",
                                        url)
    except Exception as exc:  # the check is not recorded; the run still is, with why
        _unrecorded(ledger, v, {**run, "breaker": tripped}, notes.written, exc, report, url)
        raise
    entries.extend(notes.written)
    state = home.breakers.load(v.id).state
    entries.append(ledger.add_entry(EntryKind.VARIANT, {
        **run, "breaker": state.value, "check": outcome.value,
        "status": checked.status.value,
    }).index)
    return CanaryEvidence(v.id, box.backend, box.profile.name, verdict, (record,), 0, elapsed,
                          violation=violation, detail=detail, breaker=state, check=outcome,
                          ledger_entries=tuple(entries))


def _unrecorded(ledger: Ledger, v: Variant, run: dict[str, Any], written: list[int],
                exc: Exception, report: Report, url: str = "") -> None:
    """The run's ``canary_validation`` entry when its failed check could not be recorded
    (``exc``, raised by the caller after): ``check: not recorded`` (``not known`` when
    ``exc`` says the change may have been made:
    :func:`~swarmvar.evolution.noted.may_have_been_made`), the error
    (:func:`~swarmvar.evolution.noted.as_kept`) and ``notes``, the indices of the check's
    note and void if any were appended; one try (reported at error level if it fails).
    ``run`` carries the breaker's state as the caller set it before the check (``not
    known`` if it could not be set): the variant store that failed is not read again
    here; ``url``: the store's location, whose parts the error's text loses."""
    # a store's COMMIT that may have landed; a ledger's ``landed`` is the note's (voided)
    check = "not known" if may_have_been_made(exc) else "not recorded"
    try:
        ledger.add_entry(EntryKind.VARIANT, {
            **run, "check": check, "error": as_kept(exc, url), "notes": list(written)})
    except Exception as second:
        report(logging.ERROR, f"the canary run of {v.id} failed ({run['outcome']}) and its "
                              f"check was not recorded ({as_kept(exc, url)}); its "
                              "canary_validation entry could not be appended either: "
                              f"{as_kept(second, url)}")


def _report(level: int, line: str) -> None:
    _log.log(level, "%s", line)
