"""``swarmvar arbiter``: the arbiter's decisions replayed on a backtest's beats."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..types import Action, Decision
from . import PlainGroup
from ._common import (
    BUNDLED,
    check_home,
    check_processes,
    default_agents,
    make_console,
    resolve_agents,
    usage_error,
    usage_errors,
)

if TYPE_CHECKING:
    from ..ledger import EntryKind, Ledger

app = typer.Typer(name="arbiter", help="The arbiter: beat decisions, replayed on backtests.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # plain help and one-line errors, as the root app
                  cls=PlainGroup)  # each subcommand listed by its whole first sentence


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{'pass' if p > 0.05 else 'FAIL'} {p:.3f}"


def _drift_options(agent: str | None, start: int | None, scale: float | None, frozen: bool,
                   last: int) -> tuple[str, int, float | None, bool] | None:
    """The drift flags checked (usage errors) -> ``Drift``'s arguments, or None without --drift.

    The values (start >= 1, one of scale / frozen) are ``Drift``'s to check; here only the
    flags' combination and what is known before the backtest runs: the replayed swarm is
    the default one over ``last`` days, so a bad agent or start is refused before any work."""
    if agent is None:
        if start is not None or scale is not None or frozen:
            raise typer.BadParameter("--drift-start, --drift-scale and --drift-frozen go with "
                                     "--drift AGENT", param_hint="--drift")
        return None
    name = resolve_agents([agent], flag="--drift")
    if len(name) != 1:
        raise typer.BadParameter(f"--drift takes one agent, not {agent!r}", param_hint="--drift")
    if start is None:
        raise typer.BadParameter("--drift needs --drift-start DAY (a day index >= 1)",
                                 param_hint="--drift-start")
    agents = default_agents()
    if name[0] not in agents:
        raise typer.BadParameter(f"{name[0]} is not in the replayed swarm ({', '.join(agents)})",
                                 param_hint="--drift")
    if start >= last:
        raise typer.BadParameter(f"--drift-start {start} is past the history's last day "
                                 f"{last - 1}", param_hint="--drift-start")
    return name[0], start, scale, frozen


class _FirstEntry:
    """The ledger as the arbiter's entry sink, noting the index of the first entry it
    wrote: the replay's range starts there, not at the ledger's size before it began
    (another writer's entries appended in between are not the replay's)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.first: int | None = None

    def add_entries(self, batch: Sequence[tuple[EntryKind, Mapping[str, Any]]]) -> range:
        done = self.ledger.add_entries(batch)
        if self.first is None and len(done):
            self.first = done.start
        return done


def _beats(n: int | None) -> str:
    return "never" if n is None else f"{n} beat{'s' if n != 1 else ''}"


@app.command("replay")
def replay_command(
    data: Annotated[str, typer.Option("--data", help="bundled series: sp500 or nasdaq")
                    ] = "sp500",
    last: Annotated[int, typer.Option(help="out-of-sample days of the backtest")] = 2500,
    window: Annotated[int, typer.Option(
        help="trailing returns each fit uses (at least what the replayed swarm's most "
        "demanding agent needs)")] = 1000,
    seed: Annotated[int, typer.Option(help="the backtest's random seed")] = 0,
    k_flows: Annotated[float, typer.Option("--k-flows", help="pulse: parallel flows k")] = 4,
    p_nodes: Annotated[float, typer.Option("--p-nodes", help="pulse: nodes P (k P > 1)")] = 5,
    t_threshold: Annotated[float, typer.Option(
        "--t-threshold", help="the design's threshold the pulse is held against (s)")] = 0.02,
    seed_thresholds: Annotated[bool, typer.Option(
        "--seed-thresholds", help="the design's thresholds (quarantine at 0.85)")] = False,
    retrain: Annotated[bool, typer.Option(
        help="retrain and version the threat model every 250 beats")] = False,
    workers: Annotated[int, typer.Option(help="backtest processes (first run only)")] = 1,
    home: Annotated[Path, typer.Option(
        help="data directory (the ledger records the replay's decisions and a summary)")
                    ] = Path(".swarmvar"),
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="folder of cached backtests", show_default="HOME/cache/arbiter",
        metavar="DIR")] = None,
    drift_agent: Annotated[str | None, typer.Option(
        "--drift", metavar="AGENT", help="drift drill: the agent that drifts (name or alias); "
        "with --drift-start and one of --drift-scale / --drift-frozen")] = None,
    drift_start: Annotated[int | None, typer.Option(
        "--drift-start", metavar="DAY", help="drift drill: the day index (>= 1) it starts")
                           ] = None,
    drift_scale: Annotated[float | None, typer.Option(
        "--drift-scale", metavar="S", help="drift drill: its VaR, ES and intervals times S "
        "(below 1: it under-reports risk)")] = None,
    drift_frozen: Annotated[bool, typer.Option(
        "--drift-frozen", help="drift drill: its forecasts stuck at the start day's")] = False,
) -> None:
    """Replay a backtest's days as beats through the arbiter; compare the consensus with
    and without its actions. The backtest is cached under HOME/cache/arbiter (keyed on
    every setting, the swarmvar version and the code's hash); the arbiter's per-beat
    entries and a summary go to the ledger under HOME. With --drift the replay is the drift
    drill: one agent's forecasts scaled or frozen from --drift-start on (the consensus
    recomputed), and the beats to its first ALERT and its QUARANTINE are printed. An ALERT
    says the swarm's state changed and which agents are behind it, not that the portfolio
    will breach: its precision for a consensus breach within 5 beats is the base rate
    (docs/arbiter.md, "Alert episodes")."""
    if data not in BUNDLED:
        raise typer.BadParameter(f"--data must be one of {', '.join(BUNDLED)}, not {data!r}")
    workers = check_processes(workers)  # before anything starts: a typo such as 99999
    if last < 50:
        raise typer.BadParameter(f"must be >= 50, got {last}", param_hint="--last")
    from ..arbiter.history import check_window

    with usage_errors():  # the window each agent needs, before the home or the cache is touched
        check_window(window)
    folder = check_home(home)
    if cache is not None and cache.exists() and not cache.is_dir():
        raise typer.BadParameter(f"{cache} is a file; give a folder for the cached "
                                 "backtests", param_hint="--cache")
    cache_dir = cache if cache is not None else folder / "cache" / "arbiter"
    drift_options = _drift_options(drift_agent, drift_start, drift_scale, drift_frozen, last)
    from rich.table import Table

    from .. import __version__
    from ..arbiter import SEED_THRESHOLDS, Arbiter, Drift, Retraining, Thresholds, cached_history
    from ..arbiter.drill import first_beats
    from ..arbiter.replay import replay_report
    from ..ledger import EntryKind, Ledger
    from ..swarm.consensus import SWARM_POLICY

    console = make_console()
    with usage_errors():
        # the options are checked before the ledger is opened: a bad flag writes nothing
        Arbiter.from_options(k_flows=k_flows, p_nodes=p_nodes, t_threshold=t_threshold).close()
        drift = None if drift_options is None else Drift(*drift_options)

        def announce(path: Path, hit: bool) -> None:
            console.print(f"backtest of the default swarm on {data} ({last} days; "
                          f"{'cached' if hit else 'computed once, then cached'} at {path}) ...",
                          markup=False)

        history = cached_history(data, last=last, window=window, seed=seed, workers=workers,
                                 cache=cache_dir, announce=announce)
        path = history.path
        if path is None:  # cached_history always names its file; not an assert (python -O)
            raise usage_error("internal error: the cached backtest history names no file "
                              f"(cache {cache_dir}); nothing was recorded; please report "
                              "this", code=1)
        if drift is not None and drift.start >= history.days:  # a series short of last+window
            raise typer.BadParameter(f"--drift-start {drift.start} is past the history's last "
                                     f"day {history.days - 1}", param_hint="--drift-start")
        ledger = Ledger.open(folder)
    decisions: list[Decision] = []
    arbiter: Arbiter | None = None
    try:
        with usage_errors():
            sink = _FirstEntry(ledger)
            arbiter = Arbiter.from_options(
                k_flows=k_flows, p_nodes=p_nodes, t_threshold=t_threshold, ledger=sink,
                thresholds=SEED_THRESHOLDS if seed_thresholds else Thresholds(),
                retraining=Retraining() if retrain else None)
            report = replay_report(history, arbiter, SWARM_POLICY, drift=drift,
                                   on_decision=decisions.append)
            alerts = [d for d in decisions if d.action is Action.ALERT]
            # the structured marks (decide's signals); none with release_beats=0
            episodes = arbiter.config.thresholds.release_beats > 0
            again = sum(d.signals.get("raised_again") == 1.0 for d in alerts)
            # the drill's record; {} without --drift (first_beats never returns None)
            drill: dict[str, Any] = {} if drift is None else {
                "agent": drift.agent, "start": drift.start, "scale": drift.scale,
                "frozen": drift.frozen, **dict(zip(("first_alert", "first_quarantine", "reason"),
                                                   first_beats(decisions, drift), strict=True))}
            # the replay's own first entry (None: it wrote none before its summary)
            start = sink.first
            summary = ledger.add_entries([(EntryKind.ACTION, {
                "type": "arbiter.replay", "details": {
                "data": data, "last": last, "window": window, "seed": seed,
                "agents": list(history.agents), "beats": report.days,
                "first_beat_entry": start, "cache": path.name, "version": __version__,
                "options": {"k_flows": k_flows, "p_nodes": p_nodes,
                            "t_threshold": t_threshold, "seed_thresholds": seed_thresholds,
                            "retrain": retrain},
                "decisions": {a.value: n for a, n in report.outcome.counts.items()},
                "alert_episodes": {"opened": len(alerts) - again, "raised_again": again}
                if episodes else None,
                "consensus": [{"alpha": a.alpha, "without": a.breaches,
                               "with": b.breaches, "expected": a.expected}
                              for a, b in zip(report.without, report.with_actions,
                                              strict=True)],
                **({"drift": drill} if drill else {})}})])
            # from the replay's own first entry up to its last, its summary: another
            # writer's entries appended before or after are outside the range, and those
            # after are not in the root
            entries = range(summary.start if start is None else start, summary.stop)
            root = ledger.compute_merkle_root(size=summary.stop).hex()
            where = ledger.path
    finally:
        if arbiter is not None:
            arbiter.close()
        ledger.close()
    out = report.outcome
    first, end = str(history.dates[1]), str(history.dates[-1])
    console.print(f"[bold]{data}[/bold]: {report.days} beats {first} → {end}; pulse "
                  f"{arbiter.config.pulse.budget:.6f} s; late beats (simulated load) {out.late}")
    counts = Table(title="decisions", title_justify="left")
    counts.add_column("action")
    counts.add_column("beats", justify="right")
    for action, n in sorted(out.counts.items(), key=lambda kv: -kv[1]):
        counts.add_row(action.value, str(n))
    console.print(counts)
    held = ", ".join(f"{a} {int(d)}" for a, d in zip(history.agents, out.excluded.sum(axis=0),
                                                     strict=True) if d)
    console.print(f"agent-days quarantined: {held or 'none'}; refits requested: {out.refits}")
    console.print(f"alerts: {len(alerts)} on {report.days} beats ("
                  + (f"{len(alerts) - again} alert episodes opened, {again} raised again "
                     "inside an open episode: an agent's kind of anomaly new to it, or the "
                     "quarantine level)" if episodes
                     else "every-beat alerts (no episodes))"), markup=False)
    if report.study is not None:
        s = report.study
        console.print(f"threat model, out of sample (trained on the first {s.train_beats} "
                      f"beats, tested on the last {s.test_beats}; label: {s.model.label}, "
                      f"base rate {s.positives:.3f}): AUC trained {s.auc_trained:.3f}, "
                      f"the design's fixed model {s.auc_seed:.3f}")
        se = "n/a" if math.isnan(s.difference_se) else f"{s.difference_se:.3f}"
        console.print(f"trained minus the design's model: {s.auc_trained - s.auc_seed:+.3f} "
                      f"(DeLong se {se}; it takes beats as independent, too small for "
                      "clustered breaches; swarmvar.arbiter.block_bootstrap_auc_difference gives a "
                      "block-bootstrap interval)")
    used = ("its threat model, retrained every 250 beats (last version "
            f"{arbiter.model.version[:8]})" if retrain else "the design's fixed model")
    console.print(f"threats the arbiter used ({used}): AUC {report.used_auc:.3f} on the "
                  "second half")
    table = Table(title="consensus backtest without / with the arbiter's actions",
                  title_justify="left")
    for col in ("alpha", "consensus", "breaches", "expected", "Kupiec", "Christoffersen",
                "FZ0 (mean)"):
        table.add_column(col, justify="left" if col == "consensus" else "right")
    for a, b in zip(report.without, report.with_actions, strict=True):
        for label, s2 in (("without", a), ("with", b)):
            table.add_row(f"{a.alpha:g}", label, str(s2.breaches), f"{s2.expected:.1f}",
                          _p(s2.kupiec_p), _p(s2.christoffersen_p), f"{s2.fz0:.6f}")
    console.print(table)
    if drift is not None:
        console.print(f"drift drill: {drift.agent} ({drift.label} from day {drift.start}, "
                      f"{history.dates[drift.start]}): first ALERT naming it after "
                      f"{_beats(drill['first_alert'])}, QUARANTINE after "
                      f"{_beats(drill['first_quarantine'])}", markup=False)
        if drill["reason"]:
            console.print(f"quarantine reason: {drill['reason']}", markup=False)
    console.print(f"recorded entries {entries.start}-{entries.stop - 1} (the arbiter's "
                  f"beats and a summary) in the ledger at {where} (Merkle root {root[:16]}…)",
                  markup=False)
