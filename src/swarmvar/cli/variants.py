"""``swarmvar variants``: model variants under canary, breaker and rollback safeguards.

A face (layer 4): it turns text into enums and objects once, calls
:mod:`swarmvar.evolution`, and prints. The wall clock is read here, at the
edge, and passed in.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import InvalidParameter
from ..evolution import (
    CheckOutcome,
    EvolutionHome,
    HealthPolicy,
    Variant,
    VariantStatus,
    assess,
    new_variant,
    open_home,
    promotion_blockers,
    record_check,
    start_canary,
)
from ..evolution.canary import BY_CHECK, BY_TASK_FAILURE, BY_VIOLATION, check_note
from ..evolution.noted import point_held, variant_held
from ..evolution.rollback import RollbackPoint
from . import PlainGroup
from ._common import bad_parameter, cli_words, usage_error, usage_errors

#: plain help and one-line errors, as the root app (no rich boxes, no markup)
_PLAIN: dict[str, Any] = {"no_args_is_help": True, "add_completion": False,
                          "pretty_exceptions_enable": False, "rich_markup_mode": None,
                          "cls": PlainGroup}
app = typer.Typer(name="variants", **_PLAIN,
                  help="Model variants: create, canary, promote, roll back, circuit breakers.")
canary_app = typer.Typer(**_PLAIN, help="Canary releases of a variant.")
rollback_app = typer.Typer(**_PLAIN, help="Roll a variant back, or restore a rollback point.")
breaker_app = typer.Typer(**_PLAIN, help="Per-variant circuit breakers.")
app.add_typer(canary_app, name="canary")
app.add_typer(rollback_app, name="rollback")
app.add_typer(breaker_app, name="breaker")

Home = Annotated[str, typer.Option("--home", help="Data directory (or SQLite file / URL).")]
DEFAULT_HOME = "./.swarmvar"
out = Console(highlight=False, soft_wrap=True, markup=False)  # user text: never markup
err = Console(stderr=True, highlight=False, soft_wrap=True)
_T = TypeVar("_T")
_W = TypeVar("_W")


class CheckResult(StrEnum):
    auto = "auto"
    passed = "pass"
    failed = "fail"


@contextmanager
def _open(home: str) -> Iterator[EvolutionHome]:
    """Open the stores; turn any SwarmVarError into a clear message and exit code 2."""
    with usage_errors():
        h = open_home(home)
        try:
            yield h
        finally:
            h.close()


def _describe(v: Variant) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in v.parameters.items())
    extra = f"  canary {v.canary.fraction:.0%}" if v.canary and v.status is VariantStatus.CANARY \
        else ""
    return f"{v.id}  {v.status.value:<11} {v.agent_class}({params}){extra}"


@app.command("list")
def list_variants(
    home: Home = DEFAULT_HOME,
    status: Annotated[VariantStatus | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List variants, oldest first."""
    with _open(home) as h:
        rows = h.variants.list(status)
    lines = [f"{_describe(v)}  v{v.version}" + (f"  {v.description}" if v.description else "")
             for v in rows]
    out.print("\n".join(lines) if rows else "no variants")


def _value(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise usage_error(f"{what} {item!r} is not NAME=VALUE")
        if name.strip() in pairs:  # the last one would silently win
            raise usage_error(f"{what} {name.strip()} is given twice "
                              f"({pairs[name.strip()]!r} and {value.strip()!r}); give it once")
        pairs[name.strip()] = value.strip()
    return pairs


def _constructors(agent_class: str) -> tuple[str, dict[str, Any]]:
    """The class's canonical name and ``{name: class}`` (the variant is built to check it)."""
    from ..models import registry  # a face may import the models; the engine may not

    try:
        cls = registry.agent_class(agent_class)
    except ImportError as exc:
        raise usage_error(f"agent class {agent_class!r} cannot be imported: {exc}") from None
    return cls.name, {cls.name: cls}


@app.command()
def create(
    agent_class: Annotated[str, typer.Argument(help="Agent class or alias, e.g. nig.")],
    set_: Annotated[list[str], typer.Option("--set", help="Parameter change NAME=VALUE.")],
    home: Home = DEFAULT_HOME,
    description: Annotated[str, typer.Option(help="What this variant tries.")] = "",
    require: Annotated[list[str] | None, typer.Option(
        help="Capability an agent needs, NAME=VERSION.")] = None,
) -> None:
    """Create a draft variant of an agent class with changed constructor parameters."""
    from ._common import resolve_agents

    try:  # the name first, with the closest known one, before the home is opened
        resolved = resolve_agents([agent_class], flag="AGENT_CLASS")
        if len(resolved) != 1:
            raise typer.BadParameter(f"{agent_class!r}: name one agent class",
                                     param_hint="AGENT_CLASS")
    except typer.BadParameter as exc:
        raise bad_parameter(exc) from None
    params = {k: _value(v) for k, v in _pairs(set_, "--set").items()}
    reqs = _pairs(require or [], "--require")
    with _open(home) as h:
        name, constructors = _constructors(resolved[0])
        v = h.variants.add(new_variant(name, params, constructors, now=time.time(),
                                       description=description, requirements=reqs))
    out.print(f"created {_describe(v)}")


@app.command()
def promote(
    variant_id: str,
    home: Home = DEFAULT_HOME,
    force: Annotated[bool, typer.Option(
        "--force", help="Promote although its canary has not passed (recorded in the ledger).")
                     ] = False,
) -> None:
    """Make a variant the active one of its class (the previous one is retired).

    Refused while the variant's canary has not passed its health checks,
    unless ``--force``; every promotion is recorded in the ledger, a forced
    one with the checks it skipped, inside the variant store's transaction (a
    record that cannot be written changes nothing; a commit that fails after
    it voids it in the ledger).
    """
    with _open(home) as h:
        before = h.variants.get(variant_id)
        blockers = promotion_blockers(before)
        if blockers and not force:
            raise usage_error(f"promotion of {variant_id} refused: {'; '.join(blockers)}. "
                              "Use --force to override (it is recorded).")

        def change() -> tuple[Variant, Variant, dict[str, Any]]:
            v = h.variants.promote(before, now=time.time())
            return v, v, {"variant_id": v.id, "agent_class": v.agent_class,
                          "parameters": {k: list(x) if isinstance(x, tuple) else x
                                         for k, x in v.parameters.items()},
                          "forced": bool(blockers), "skipped_checks": list(blockers)}

        v = _noted_change(home, h, "promote", f"promotion of {variant_id}", change,
                          variant_held(h.variants.get))
    out.print(f"promoted {_describe(v)}" + (" (forced)" if blockers else ""))


def _ledger_home(home: str) -> str:
    """The ledger beside the lifecycle database of ``home``."""
    if "://" in home and not home.startswith("sqlite://"):
        return home  # a server database holds the ledger too
    path = Path(home.removeprefix("sqlite:///"))
    return str(path.parent if path.suffix else path)


def _noted_change(home: str, h: EvolutionHome, event: str, what: str,
                  change: Callable[[], tuple[_T, _W, dict[str, Any] | None]],
                  held: Callable[[_W], bool], check: str | None = None) -> _T:
    """Make ``change`` in the variant store and record it in the ledger beside ``home``
    (a ``variant`` entry, ``event``) inside one transaction of the store: a record that
    cannot be written changes nothing. Return what ``change`` returned first.

    ``change()`` returns (result, what it wrote, the record's data, or None when what it
    did is not to be recorded: a canary check that neither promotes nor rolls back; then
    nothing is appended and the ledger is not opened); ``held(written)`` reads the store
    back; ``what`` names the change in messages; ``check``: what to do when the change
    may have been made or not (the rule's default: look at the variant's status). The
    ledger is opened (created if missing) once the change is made, so a refused change
    creates none. A
    record whose change the store did not keep is voided (a ``void``
    entry naming its index and hash); the rule, and what is said when it is not known:
    :func:`swarmvar.evolution.noted.noted_change` (warnings and errors on stderr).

    Raises
    ------
    SwarmVarError
        The ledger's, the change's or the COMMIT's error (nothing changed in the store;
        the store's error saying so when it may have been).
    """
    from ..evolution.noted import CHECK, noted_change
    from ..ledger import Ledger  # a face may use any engine
    from ..swarm.variant_notes import LedgerNotes

    with LedgerNotes(lambda: Ledger(_ledger_home(home)), event) as book:
        return noted_change(h.db.transaction, change, book, held, _report, what, home,
                            CHECK if check is None else check)


def _report(level: int, line: str) -> None:
    """A note rule's warning or error (:data:`swarmvar.evolution.noted.Report`), on stderr:
    the CLI's logging goes nowhere unless configured."""
    err.print(f"{'warning' if level < logging.ERROR else 'error'}: {escape(line)}")


@app.command()
def history(home: Home = DEFAULT_HOME) -> None:
    """List the promotions and rollbacks of variants the ledger records, oldest first.

    Both the command line's records (``variant`` entries) and the server's notes
    (``variant.promote``/``variant.rollback`` actions) are listed, the automatic ones
    with who made them (``by canary check``, ``by sandbox violation``, ``by sandbox task
    failure``); one whose variant store did not keep the change (its commit failed after
    the record) is shown VOIDED, with the entry that voids it and its error's class and
    cause. A home with no ledger has recorded none.
    """
    from ..ledger import Ledger, ledger_path

    where = _ledger_home(home)
    if "://" not in where and not ledger_path(where).exists():
        out.print("no promotions or rollbacks recorded")
        return
    with usage_errors(), Ledger(where, create=False) as ledger:
        changes = _changes(ledger.entries(1))
    lines = []
    for c in changes:
        line = f"#{c.index}  {c.timestamp}  {c.action:<11}  {c.variant}{c.extra}"
        if c.voided_by is not None:
            line += f"  VOIDED by #{c.voided_by} ({c.voided_why})"
        lines.append(line)
    out.print("\n".join(lines) if lines else "no promotions or rollbacks recorded")


class _Change:
    """One recorded promotion or rollback, and the entry that voids it, if one does."""

    def __init__(self, index: int, timestamp: str, hash_hex: str, action: str,
                 variant: str, extra: str) -> None:
        self.index, self.timestamp, self.hash_hex = index, timestamp, hash_hex
        self.action, self.variant, self.extra = action, variant, extra
        self.voided_by: int | None = None
        self.voided_why = ""


def _changes(entries: Iterator[Any]) -> list[_Change]:
    """The promotions and rollbacks among ``entries`` (the command line's ``variant``
    entries, the server's ``variant.*`` actions), each marked voided by the void that
    names its index and hash."""
    from ..evolution.noted import said_head
    from ..ledger import EntryKind

    changes: dict[int, _Change] = {}
    for e in entries:
        if e.kind is EntryKind.VARIANT:
            d, event = e.data, e.data.get("event")
            vid = d.get("variant_id")
        elif e.kind is EntryKind.ACTION and str(e.data.get("type", "")).startswith("variant."):
            d = e.data.get("details")
            d = d if isinstance(d, dict) else {}
            event = str(e.data["type"]).removeprefix("variant.")
            event = "void" if event.endswith(".void") else event
            vid = d.get("variant")
        else:
            continue
        if event in ("promote", "rollback", "rollback-to"):
            named = d.get("point_id") if event == "rollback-to" else vid
            changes[e.index] = _Change(e.index, e.timestamp, e.hash.hex(), event,
                                       str(named), _extra(d))
        elif event == "void":
            voids = d.get("voids")
            at = voids.get("index") if isinstance(voids, dict) else None
            target = changes.get(at) if isinstance(at, int) else None
            if target is not None and isinstance(voids, dict) \
                    and voids.get("hash") == target.hash_hex:
                target.voided_by = e.index
                target.voided_why = said_head(str(d.get("error", "")))
    return list(changes.values())


#: Who made an automatic change, as ``variants history`` says (a note without ``by`` was
#: made by hand: the command line's, or the service's with its admin key).
_BY = {BY_CHECK: "by canary check", BY_VIOLATION: "by sandbox violation",
       BY_TASK_FAILURE: "by sandbox task failure"}


def _extra(d: dict[str, Any]) -> str:
    """The class, who made an automatic change, a forced promotion, a re-instated variant
    and the admin key, as words."""
    words = [str(d["agent_class"])] if d.get("agent_class") else []
    if isinstance(d.get("assignments"), dict):
        n = len(d["assignments"])
        words.append(f"{n} agent{'' if n == 1 else 's'} assigned")
    if d.get("by") in _BY:
        words.append(_BY[str(d["by"])])
    if d.get("forced"):
        words.append("forced")
    if d.get("reinstated"):
        words.append(f"re-instated {d['reinstated']}")
    if d.get("key_id"):
        words.append(f"key {d['key_id']}")
    return "".join(f"  {w}" for w in words)


@canary_app.command("start")
def canary_start(variant_id: str, home: Home = DEFAULT_HOME) -> None:
    """Start a canary release of a draft variant at the configured initial share."""
    with _open(home) as h:
        v = start_canary(h.variants, h.variants.get(variant_id), h.config.canary, time.time())
    out.print(f"canary started: {_describe(v)}")


@canary_app.command("check")
def canary_check(
    variant_id: str,
    home: Home = DEFAULT_HOME,
    result: Annotated[CheckResult, typer.Option(
        help="auto: judge the metrics recorded since the last check.")] = CheckResult.auto,
    min_success_rate: Annotated[float, typer.Option(
        help="lowest acceptable mean success rate of the canary's runs (0 to 1)")] = 0.95,
    max_latency_s: Annotated[float, typer.Option(
        help="highest acceptable mean latency of its runs, seconds (inf: no limit)")
                             ] = float("inf"),
) -> None:
    """Record one health check: ramps, holds, promotes or rolls back the canary.

    A check that promotes or rolls back is noted in the ledger (``by: canary-check``)
    inside the variant store's transaction, as a change by hand is; a ramp is not.
    """
    # thresholds first: a nonsense one would record a failed check (and could roll back)
    try:
        policy = HealthPolicy(min_success_rate, max_latency_s)
    except InvalidParameter as exc:  # HealthPolicy's own rule, in the flags' words
        raise usage_error(cli_words(str(exc))) from None
    now = time.time()
    reasons: tuple[str, ...] = ()
    with _open(home) as h:
        v = h.variants.get(variant_id)
        if result is CheckResult.auto:
            since = v.canary.last_check_at if v.canary else now
            verdict = assess(h.metrics.summary(variant_id, since, now),
                             policy,
                             h.breakers.load(variant_id))
            passed = verdict.passed
            reasons = verdict.reasons
        else:
            passed = result is CheckResult.passed
        before = v

        def change() -> tuple[tuple[Variant, CheckOutcome], Variant, dict[str, Any] | None]:
            checked, outcome = record_check(h.variants, before, passed, h.config.canary, now)
            return (checked, outcome), checked, check_note(checked, outcome, BY_CHECK)

        v, outcome = _noted_change(home, h, "canary-check", f"canary check of {variant_id}",
                                   change, variant_held(h.variants.get))
    for reason in reasons:  # after the check is recorded: not before a refusal
        out.print(f"check failed: {reason}")
    note = {CheckOutcome.HELD: " (too soon after the last step; nothing changed)"}
    out.print(f"{outcome.value}: {_describe(v)}{note.get(outcome, '')}")


class SandboxBackend(StrEnum):
    bwrap = "bwrap"
    none = "none"
    e2b = "e2b"


@canary_app.command("run")
def canary_run(
    variant_id: str,
    home: Home = DEFAULT_HOME,
    data: Annotated[str, typer.Option("--data", help="Bundled data set (sp500, nasdaq) or a "
                                      "CSV/Parquet file of prices.")] = "sp500",
    sandbox: Annotated[SandboxBackend, typer.Option(
        "--sandbox", help="bwrap (bubblewrap, local), e2b (cloud, needs E2B_API_KEY) or none "
        "(no isolation: recorded as a warning in the ledger).")] = SandboxBackend.bwrap,
    last: Annotated[int, typer.Option(help="Out-of-sample forecast days.")] = 1000,
    window: Annotated[int, typer.Option(help="Trailing returns each fit uses.")] = 1000,
    refit_every: Annotated[int, typer.Option("--refit-every", help="Days between refits.")
                           ] = 20,
    alpha: Annotated[list[float] | None, typer.Option(
        "--alpha", help="Confidence level(s), default 0.99 and 0.975.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fits and the ES tests.")] = 0,
) -> None:
    """Fit and validate a canary variant inside a sandbox: its evidence, or its violation.

    A clean run stores breach rate, Kupiec p-value and pinball loss per level
    (judged by `variants canary check`). A sandbox violation trips the
    variant's breaker at once, records a failed check and a ledger entry
    (exit 1); the variant's own error counts one breaker failure (exit 1).
    """
    from ..errors import CircuitOpen, SandboxUnavailable
    from ..swarm.canary_sandbox import validate_variant
    from ._common import check_data, check_whole, load_series, parse_alphas

    try:
        alphas = parse_alphas(None if not alpha else [str(a) for a in alpha], (0.99, 0.975))
        check_data(data)
        n_last = check_whole(last, "--last", 1, 10**6)
        n_window = check_whole(window, "--window", 2, 10**6)
        check_whole(refit_every, "--refit-every", 1, 10**6)
        check_whole(seed, "--seed", 0, 2**31 - 1)
    except typer.BadParameter as exc:
        raise bad_parameter(exc) from None
    from .. import sandbox as sandboxes
    from ..ledger import Ledger

    with _open(home) as h:
        h.variants.get(variant_id)  # an unknown id is a usage error before anything runs
        # load_series marks again the last days it cuts from returns worked out from prices
        series = load_series(data, None, "price", n_last + n_window)
        box = None
        try:
            box = sandboxes.create(sandbox.value, "validation")
            with Ledger(_ledger_home(home)) as ledger:
                ev = validate_variant(variant_id, series, home=h, ledger=ledger, box=box,
                                      clock=time.time, alphas=alphas, window=n_window,
                                      refit_every=refit_every, seed=seed, source=data,
                                      report=_report)
        except CircuitOpen as exc:
            err.print(f"[red]refused:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
        except SandboxUnavailable as exc:  # no task ran (no VM, no worker): not the variant's
            # the worker's own error output: text, never markup
            err.print(f"[red]sandbox unavailable ({sandbox.value}):[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
        finally:
            if box is not None:
                box.kill()
        v = h.variants.get(variant_id)
    if sandbox is SandboxBackend.none:
        err.print("[yellow]warning:[/yellow] ran without a sandbox (--sandbox none); "
                  "recorded in the ledger")
    if ev.passed:
        for a, r in zip(alphas, ev.records, strict=True):
            out.print(f"alpha {a:g}: breach rate {r.breach_rate:.4f} (expected {1 - a:.4f}), "
                      f"Kupiec p {_show_p(r.kupiec_p)}, pinball {r.pinball_loss or 0:.6f}")
        out.print(f"evidence recorded: {ev.days} days in {ev.backend} sandbox "
                  f"({ev.seconds:.2f} s); judge it with `swarmvar variants canary check "
                  f"{variant_id}`")
        return
    what = f"sandbox violation ({ev.violation.value})" if ev.violation else "the task failed"
    out.print(f"canary failed: {what}: {ev.detail}")  # may end with the worker's stderr
    out.print(f"breaker {ev.breaker.value}; check {ev.check.value if ev.check else '-'}: "
              f"{_describe(v)}")
    raise typer.Exit(1)


def _show_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3f}"


@canary_app.command("status")
def canary_status(variant_id: str, home: Home = DEFAULT_HOME) -> None:
    """Show a canary's ramp and check counts."""
    with _open(home) as h:
        v = h.variants.get(variant_id)
    p = v.canary
    if p is None:
        out.print(f"{_describe(v)}\nno canary release")
        return
    out.print(f"{_describe(v)}\nstep {p.step}/{p.steps}, share {p.fraction:.0%}, "
              f"{p.passed_checks} passed / {p.failed_checks} failed checks")


@rollback_app.command("variant")
def rollback_variant(variant_id: str, home: Home = DEFAULT_HOME) -> None:
    """Roll a canary or active variant back (an active one's predecessor returns).

    Recorded in the ledger, as a promotion is.
    """
    with _open(home) as h:
        before = h.variants.get(variant_id)

        def change() -> tuple[tuple[Variant, Variant | None], Variant, dict[str, Any]]:
            rolled, back = h.variants.roll_back(before, now=time.time())
            return (rolled, back), rolled, {
                "variant_id": rolled.id, "agent_class": rolled.agent_class,
                "reinstated": None if back is None else back.id}

        rolled, back = _noted_change(home, h, "rollback", f"rollback of {variant_id}", change,
                                     variant_held(h.variants.get))
    out.print(f"rolled back {_describe(rolled)}")
    if back is not None:
        out.print(f"re-instated {_describe(back)}")


@rollback_app.command("snapshot")
def rollback_snapshot(home: Home = DEFAULT_HOME,
                      label: Annotated[str, typer.Option(help="A note.")] = "") -> None:
    """Create a rollback point of every agent's variant and state version."""
    with _open(home) as h:
        p = h.points.create(label, now=time.time())
    out.print(f"rollback point {p.id}: {len(p.assignments)} assignments, {len(p.states)} states")


@rollback_app.command("points")
def rollback_points(home: Home = DEFAULT_HOME) -> None:
    """List rollback points, oldest first."""
    with _open(home) as h:
        points = h.points.list()
    lines = [f"{p.id}  {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(p.created))} UTC  "
             f"{len(p.assignments)} agents  {p.label}" for p in points]
    out.print("\n".join(lines) if points else "no rollback points")


@rollback_app.command("to")
def rollback_to(point_id: str, home: Home = DEFAULT_HOME) -> None:
    """Restore a rollback point, atomically.

    Recorded in the ledger, as a promotion is (``event: rollback-to``, the point and the
    assignments it restores), voided likewise when the store's commit fails after it.
    """
    with _open(home) as h:
        def change() -> tuple[RollbackPoint, RollbackPoint, dict[str, Any]]:
            p = h.points.rollback(point_id)
            return p, p, {"point_id": p.id, "label": p.label,
                          "assignments": dict(sorted(p.assignments.items())),
                          "states": dict(sorted(p.states.items()))}

        p = _noted_change(home, h, "rollback-to", f"restore of rollback point {point_id}",
                          change, point_held(h.db),
                          f"run `swarmvar variants rollback to {point_id}` again (restoring "
                          "a point twice leaves what restoring it once does)")
    out.print(f"restored rollback point {p.id} ({len(p.assignments)} assignments, "
              f"{len(p.states)} states)")


def _breaker_line(h: EvolutionHome, name: str, clock: Callable[[], float]) -> str:
    b = h.breaker(name, clock)
    s = b.snapshot
    lock = "  (locked: operator reset needed)" if s.locked(b.config) else ""
    return (f"{name}  {s.state.value}  failures={s.failures}  "
            f"reset_attempts={s.reset_attempts}/{b.config.max_reset_attempts}{lock}")


@breaker_app.command("status")
def breaker_status(variant_id: Annotated[str | None, typer.Argument()] = None,
                   home: Home = DEFAULT_HOME) -> None:
    """Show one variant's breaker (or every breaker that has left CLOSED/0)."""
    with _open(home) as h:
        if variant_id is not None:
            h.variants.get(variant_id)
        names = [variant_id] if variant_id else h.breakers.names()
        lines = [_breaker_line(h, n, time.time) for n in names]
    out.print("\n".join(lines) if lines else "no breakers recorded")


@breaker_app.command("reset")
def breaker_reset(variant_id: str, home: Home = DEFAULT_HOME) -> None:
    """Operator reset: close a variant's breaker and clear its counts."""
    with _open(home) as h:
        h.variants.get(variant_id)
        h.breaker(variant_id, time.time).reset()
        line = _breaker_line(h, variant_id, time.time)
    out.print(f"reset {line}")
