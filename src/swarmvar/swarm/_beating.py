"""The beat: steps 1-3 of :mod:`.runtime` — check the ticks, build the inputs, beat, observe.

Methods of :class:`~.runtime.Swarm`, written as functions of ``self: Swarm`` and
bound in its class body. ``step`` and ``beat`` check each tick (``_check``;
refused ones go to ``Swarm._refuse``), build each portfolio's beat input
(``_input``: the observers' quarantine and weight factors, the sandbox
breakers' holds, due refit swaps, requests), run them through ``_run_beats``
(:mod:`._restoring`), compose spread portfolios from their groups
(``_composed``) and hand each outcome to ``_after``: observers, decisions,
optional-refit credit, and the beat's ledger records (:mod:`._records`).

Reads the configuration (``specs``, ``configs``, ``roles``, ``sandbox``,
``_groups``, ``_hosted``, ``_owner``, ``restore_queue``, ``catch_up``),
``executor``, ``breakers``, ``_attached`` (and ``observers``), ``_pace``,
``_queues``, ``_started`` (no beat before ``start``) and ``_resume_as_of``
(a ``"*"`` tick skips the portfolios that recorded it before a restart).
Writes the beat state (``seq``, ``last_as_of``, ``cursor``, ``_read_cursor``,
``_pending``, ``_requests``, ``_optional_credit``, ``_latest``, ``_beaten``,
``timings``), the sandbox breakers, and ``_shells``: ``_composed`` calls
``self._shells[name].compose``, which updates the spread portfolio's
consensus shell in place (its absorbed returns, forecasts and consensus; its
``vet`` of each group counts refusals in the shell's key ring).
Through the other groups' methods ``_beat`` also refuses bad ticks
(``_refuse``: ``rejected``, ``refusals``, a ledger record), polls and queues
ticks for restoring hosts (``_poll``, ``_enqueue``, ``_enqueue_group``:
:mod:`._restoring`'s state), appends the beat's records (``_append``:
:mod:`._records`) and checkpoints the portfolios due (``checkpoint``:
:mod:`._recovery`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import CircuitOpen, InvalidParameter, InvalidTick, RestoreQueueFull
from ..evolution import BreakerConfig, BreakerState, CircuitBreaker
from ..types import Action, BeatReport, Decision, Tick
from ._restoring import _with_caught_up
from .attribution import _attr_beat, _attr_landed, _attr_take
from .beat import BeatInput, BeatOutcome
from .observers import beat_seconds, observer_instructions
from .roles import RefitResult, run_refit
from .spread import routed
from .ticks import route, tick_value

if TYPE_CHECKING:
    from .runtime import Swarm

log = logging.getLogger("swarmvar.swarm")
#: The log line of an arbiter's alert (portfolio, beat, reason): a face that says the alert
#: in its own words holds this line back by its format (``record.msg == ALERT_LOG``: compared
#: by value, so an equal copy of the format string is held back too).
ALERT_LOG = "alert on %s at beat %d: %s"


#: Sandbox-violation breakers: one violation opens it; after five days of data time
#: the agent gets one trial beat (clean: back in; another violation: out again).
SANDBOX_BREAKER = BreakerConfig(failure_threshold=1, reset_timeout_s=5 * 86_400.0,
                                max_reset_attempts=1_000_000)


def _take_result(self: Swarm, portfolio: str, agent: str, launched: int, *, wait: bool
                 ) -> RefitResult:
    job, future = self._pending.pop((portfolio, agent, launched))
    if future is None:
        return run_refit(job)
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a forager lost (killed, pool broken)
        log.warning("refit of %s for %s lost (%s); it is redone here", agent, portfolio,
                    exc)
        return run_refit(job)


def _composed(self: Swarm, name: str, tick: BeatInput, parts: Mapping[str, BeatOutcome]
              ) -> BeatOutcome:
    """A spread portfolio's beat from the groups that answered (the others' agents out)."""
    lost = [a for g in self._groups[name] if g not in parts for a in self._hosted[g].agents]
    return self._shells[name].compose(tick, parts, lost)


def step(self: Swarm, tick: Tick, *, cursor: Any = None) -> BeatReport:
    """One beat for the tick's portfolio (for a ``"*"`` tick, the first portfolio's report).

    Raises
    ------
    InvalidTick
        The tick is refused (after it was counted and ledgered as a rejection).
    """
    reports, caught_up = self._beat([tick], cursor)
    if not reports:  # a "*" tick every portfolio recorded before the restart
        from .ticks import as_utc

        refused = InvalidTick(
            f"tick for {tick.portfolio!r} dated {as_utc(tick.as_of).isoformat()} was "
            "recorded for every portfolio before the restart (at or before its resume "
            "point); ticks must move forward")
        self._refuse(refused, tick)
        raise _with_caught_up(refused, caught_up)
    return reports[0]


def beat(self: Swarm, ticks: Sequence[Tick], *, cursor: Any = None) -> list[BeatReport]:
    """Beats for several ticks at once (each portfolio at most once; hosts run in parallel).

    Bad ticks are refused and ledgered; if any was, :class:`InvalidTick`
    is raised after the good ones have beaten.

    A portfolio whose host died is restored in the background: its tick
    is queued and the report returned for it is the stale one served
    meanwhile (first event :data:`RESTORING`; it is not ledgered, and no
    observer sees it). Once the host is back, the next call first beats
    the queued ticks, in order; their reports follow this call's own.

    Raises
    ------
    RestoreQueueFull
        A restoring portfolio has ``restore_queue`` ticks waiting already
        (raised before anything of this call is beaten or queued).
    """
    reports, caught_up = self._beat(ticks, cursor)
    return reports + caught_up


def _beat(self: Swarm, ticks: Sequence[Tick], cursor: Any
          ) -> tuple[list[BeatReport], list[BeatReport]]:
    """:meth:`beat`: the reports for ``ticks``, and those of the queued ticks beaten first."""
    if not self._started:
        raise InvalidParameter("call start(history) before the first beat")
    caught_up = self._poll(rounds=self.catch_up)
    before = self._read_cursor
    planned: list[tuple[str, float, datetime]] = []
    refused: InvalidTick | None = None
    seen: set[str] = set()
    for tick in ticks:
        try:
            checked = self._check(tick, seen)
        except InvalidTick as exc:
            self._refuse(exc, tick)
            refused = exc
            continue
        planned.extend(checked)
        seen.update(name for name, _, _ in checked)
        for name, _, _ in checked:  # a book's asset returns, for its attribution's ring
            _attr_take(self, name, tick)
    for name, _, _ in planned:
        for unit in self._groups.get(name, (name,)):
            if self._waits(unit) and len(self._queues[unit]) >= self.restore_queue:
                raise _with_caught_up(RestoreQueueFull(
                    f"portfolio {unit!r} has {len(self._queues[unit])} ticks queued while "
                    f"its host is restored (restore_queue={self.restore_queue}); wait for "
                    "it (Swarm.settle) or raise restore_queue"), caught_up)
    inputs: list[tuple[str, BeatInput]] = []
    served: dict[str, BeatReport] = {}
    spread: dict[str, BeatInput] = {}  # spread portfolios beaten from their groups
    for name, value, as_of in planned:
        if self._waits(name):
            served[name] = self._enqueue(name, value, as_of, cursor, before)
        elif name in self._groups:
            spread[name] = inp = self._input(name, value, as_of)
            for g in self._groups[name]:
                if self._waits(g):  # restoring: it beats the tick later (late estimates)
                    self._enqueue_group(g, routed(inp, self._hosted[g]), cursor, before)
                else:
                    inputs.append((g, routed(inp, self._hosted[g])))
        else:
            inputs.append((name, self._input(name, value, as_of)))
    outcomes = self._run_beats(inputs) if inputs else []
    # paced: the beat's time is the pacer's measure, up to the observers (every host's
    # work is done by now), the same for each portfolio of the beat
    paced = self._pace.mark() if self._pace is not None and inputs else None
    parts: dict[str, dict[str, BeatOutcome]] = {p: {} for p in spread}
    for (name, inp), outcome in zip(inputs, outcomes, strict=True):
        if name in self._owner:
            if outcome is None:  # its host died in this beat: the group beats it later
                self._enqueue_group(name, inp, cursor, before)
            else:
                parts[self._owner[name]][name] = outcome
        elif outcome is None:  # its host died in this beat: the tick waits for it
            served[name] = self._enqueue(name, inp.value, inp.as_of, cursor, before,
                                         built=inp)
    safe = self._safe_cursor(cursor)
    beaten = {name: self._after(name, inp, outcome, safe, paced)
              for (name, inp), outcome in zip(inputs, outcomes, strict=True)
              if outcome is not None and name not in self._owner}
    for name, inp in spread.items():
        beaten[name] = self._after(name, inp, self._composed(name, inp, parts[name]),
                                   safe, paced, groups=sorted(parts[name]))
    reports = [beaten[name] if name in beaten else served[name] for name, _, _ in planned]
    due = [name for name in beaten if self._due(name)]
    if due:
        self.checkpoint(due)
    if cursor is not None:
        self._read_cursor = cursor
    if refused is not None:
        raise _with_caught_up(refused, caught_up)
    return reports, caught_up


def _check(self: Swarm, tick: Tick, seen: set[str]) -> list[tuple[str, float, datetime]]:
    from .ticks import as_utc

    specs = route(tick, self.specs)
    as_of = as_utc(tick.as_of)
    out = []
    for spec in specs:
        value = tick_value(spec, tick)
        mark = self._resume_as_of.get(spec.name)
        if len(specs) > 1 and mark is not None and as_of <= mark:
            continue  # recorded for this one before a restart, not for all of them
        queue = self._queues.get(spec.name)
        last = queue[-1].as_of if queue else self.last_as_of[spec.name]
        if spec.name in seen:
            raise InvalidTick(f"two ticks for {spec.name!r} in one beat")
        if last is not None and as_of <= last:
            word = "duplicates" if as_of == last else "is before"
            raise InvalidTick(f"tick for {spec.name!r} dated {as_of.isoformat()} {word} "
                              f"its last beat ({last.isoformat()}); ticks must move forward")
        out.append((spec.name, value, as_of))
    return out


def _input(self: Swarm, name: str, value: float, as_of: datetime) -> BeatInput:
    seq = self.seq[name] + 1
    held, factors = observer_instructions(self.observers, name)
    excluded = set(held) | self._sandbox_held(name, as_of)
    absorbed_after = self._absorbed(name) + 1
    swaps = []
    for _key, (job, future) in list(self._pending.items()):
        if job.portfolio != name or job.swap_at > absorbed_after:
            continue
        if future is not None and not future.done() and not self.roles.refit_wait:
            continue  # swapped at a later boundary: the beat does not wait
        swaps.append(self._take_result(name, job.agent, job.launched, wait=True))
    requests = tuple(self._requests[name])
    self._requests[name] = []
    return BeatInput(seq, as_of, value, frozenset(excluded), factors, tuple(swaps), requests)


def _absorbed(self: Swarm, name: str) -> int:
    return self.seq[name]


def _after(self: Swarm, name: str, tick: BeatInput, outcome: BeatOutcome, cursor: Any,
           paced: tuple[float, bool] | None = None, groups: Sequence[str] | None = None
           ) -> BeatReport:
    for job in outcome.jobs:
        self._pending[job.key] = (job, self.executor.submit_refit(job))
    report = outcome.report
    self._sandbox_verdicts(name, tick, outcome)
    decisions: list[Decision] = []
    # the beat's time: the pacer's measure when paced, else its compute time
    seconds = paced[0] if paced is not None else beat_seconds(outcome.seconds)
    if paced is not None and paced[1]:
        report = dataclasses.replace(report, late=True)
    timed = False
    for att in self._attached:  # the arbiter's PID wants the beat's time
        timed = timed or att.observe_seconds
        decisions.extend(att(report, seconds, again=False))
    optimize: list[list[str]] = []
    deferred: list[list[str]] = []
    credit = self._optional_credit_after(name)
    for d in decisions:
        if d.action is Action.APPLY_OPTIMIZE:
            agents = [a for a in d.agents if a in self.configs[name].agents] or ["*"]
            if credit < 1.0:  # the PID has cut optional work: this refit waits
                deferred.append(agents)
                continue
            credit -= 1.0
            self._requests[name].extend((a, "arbiter") for a in agents)
            optimize.append(agents)
        elif d.action is Action.ALERT:
            log.warning(ALERT_LOG, name, tick.seq, d.reason)
    self._optional_credit[name] = credit
    report = dataclasses.replace(report, decisions=tuple(decisions))
    self.seq[name] = tick.seq
    self.last_as_of[name] = tick.as_of
    if cursor is not None:
        self.cursor = cursor
    self._latest[name] = self._beaten[name] = report
    self.timings[name] = dict(outcome.seconds)
    timing: dict[str, Any] = (
        {"beat_seconds": seconds, **({"late": True} if report.late else {})}
        if timed or paced is not None else {})
    if groups is not None:  # a spread portfolio: the groups whose agents answered
        timing = {**timing, "groups": list(groups)}
    # attributions finished since the last beat, then this beat's row (and a due one sent)
    self._batch.extend(_attr_landed(self))
    row, attributed = _attr_beat(self, name, tick.seq, tick.as_of)
    self._append(self._entries(name, tick, outcome, decisions, optimize, cursor,
                               deferred, timing, assets=row, more_roles=attributed), beats=1)
    return report


def _sandbox_breaker(self: Swarm, name: str, agent: str, when: datetime) -> CircuitBreaker:
    stamp = when.timestamp()
    return CircuitBreaker(f"sandbox:{name}:{agent}", self.breakers, lambda: stamp,
                          SANDBOX_BREAKER)


def _sandbox_held(self: Swarm, name: str, as_of: datetime) -> set[str]:
    """Agents whose sandbox breaker is open at ``as_of`` (a half-open one is tried)."""
    if self.sandbox is None:
        return set()
    held = set()
    for agent in self.configs[name].agents:
        breaker = self._sandbox_breaker(name, agent, as_of)
        if breaker.state is BreakerState.CLOSED:
            continue
        try:
            breaker.allow()
        except CircuitOpen:
            held.add(agent)
    return held


def _sandbox_verdicts(self: Swarm, name: str, tick: BeatInput, outcome: BeatOutcome) -> None:
    """A violation is a failure of the agent's breaker; a clean trial beat closes it.

    A trial is clean only when the agent ran in it (it forecast at this beat): one that
    is gone (its refits refused, e.g. a plug-in whose files changed since the start) saw
    no violation but proved nothing, and its breaker stays half-open."""
    if self.sandbox is None:
        return
    violated = {a for r in outcome.roles if r.role == "sandbox" for a in r.agents}
    ran = outcome.report.forecasts
    for agent in self.configs[name].agents:
        breaker = self._sandbox_breaker(name, agent, tick.as_of)
        if agent in violated:
            breaker.record_failure()
        elif (agent not in tick.excluded and agent in ran
              and breaker.state is BreakerState.HALF_OPEN):
            breaker.record_success()


def _optional_credit_after(self: Swarm, name: str) -> float:
    """This beat's credit of optional refits: the observers' ``optional_work`` (the
    arbiter's O weight, which its PID lowers when beats overrun the pulse) is
    added each beat, capped at one refit; without such an observer every
    APPLY_OPTIMIZE is honoured (credit 1)."""
    works = [float(w(name)) for obs in self.observers
             if callable(w := getattr(obs, "optional_work", None))]
    if not works:
        return 1.0
    return min(1.0, self._optional_credit.get(name, 0.0) + min(works))
