"""``swarmvar var``: every agent's VaR/ES with credible intervals, and the swarm's consensus."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..consensus import TrackRecord
from ..errors import SwarmVarError
from ..ledger import Ledger
from ..models import DEFAULT_AGENTS, canonical_name
from ..models.risk import check_alphas
from ..swarm import AgentRun, run_agents
from ..swarm.consensus import SWARM_POLICY, TRACK_DAYS, agent_keys, swarm_consensus, track_records
from ..swarm.record import record_beat
from ..types import Consensus
from ._common import fail, load_series, make_console, parse_alphas, persist_compilations


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _interval(lo: float, hi: float) -> str:
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"


def _measure_columns(table: Table, notional: float | None) -> None:
    """alpha, VaR and ES with their intervals, and VaR in currency if a notional is given."""
    table.add_column("alpha", justify="right")
    table.add_column("VaR  [90% CI]", justify="right", no_wrap=True)
    table.add_column("ES  [90% CI]", justify="right", no_wrap=True)
    if notional is not None:
        table.add_column("VaR (ccy)", justify="right", no_wrap=True)


def render(runs: list[AgentRun], title: str, notional: float | None) -> Table:
    """The rich table of each agent's view."""
    table = Table(title=title, title_justify="left")
    table.add_column("agent", no_wrap=True)
    _measure_columns(table, notional)
    table.add_column("fit", justify="right", no_wrap=True)
    table.add_column("diagnostics")
    for run in runs:
        if not run.ok or run.forecast is None:
            table.add_row(run.name, "", "", "", *([""] if notional is not None else []),
                          f"{run.fit_seconds:.2f}s", f"[red]failed: {run.error}[/red]")
            continue
        for i, m in enumerate(run.forecast.levels):
            diag = run.diagnostics.summary() if (i == 0 and run.diagnostics) else ""
            if i == 0 and run.warnings:
                diag += " [yellow]⚠ " + "; ".join(run.warnings) + "[/yellow]"
            table.add_row(
                run.name if i == 0 else "",
                f"{m.alpha:g}",
                f"{_pct(m.var)}  {_interval(*m.var_interval)}",
                f"{_pct(m.es)}  {_interval(*m.es_interval)}",
                *([f"{notional * m.var:,.0f}"] if notional is not None else []),
                f"{run.fit_seconds:.2f}s" if i == 0 else "",
                diag,
            )
    return table


def render_consensus(consensus: list[Consensus], notional: float | None) -> Table:
    """The rich table of the swarm's consensus: one row per level, then who counted how much."""
    rule = consensus[0].method if consensus else ""
    table = Table(title=f"swarm consensus: {rule} over signed estimates", title_justify="left")
    _measure_columns(table, notional)
    table.add_column("m/n", justify="right", no_wrap=True)
    table.add_column("weights of the agents used; trimmed; rejected", ratio=1)
    for c in consensus:
        parts = [", ".join(f"{a} {w:.2f}" for a, w in sorted(c.weights.items(),
                                                             key=lambda kv: -kv[1]))]
        if c.trimmed:
            parts.append("trimmed " + ", ".join(c.trimmed))
        parts += [f"[red]rejected {a}: {why}[/red]" for a, why in c.rejected.items()]
        table.add_row(
            f"{c.alpha:g}",
            f"[bold]{_pct(c.var)}[/bold]  {_interval(*c.var_interval)}",
            f"{_pct(c.es)}  {_interval(*c.es_interval)}",
            *([f"{notional * c.var:,.0f}"] if notional is not None else []),
            f"{c.available}/{c.total}" + (" [yellow]degraded[/yellow]" if c.degraded else ""),
            "; ".join(parts),
        )
    return table


def var(
    data: Annotated[
        str, typer.Option("--data", help="sp500, nasdaq, or a CSV/Parquet path")
    ] = "sp500",
    column: Annotated[str | None, typer.Option(help="value column of a file")] = None,
    kind: Annotated[str, typer.Option(help="file holds 'price' or 'return' values")] = "price",
    alpha: Annotated[list[str] | None, typer.Option(
        "--alpha", help="confidence level(s): --alpha 0.99 --alpha 0.975 or 0.99,0.975")] = None,
    horizon: Annotated[int, typer.Option(help="horizon in days")] = 1,
    agents: Annotated[list[str] | None, typer.Option(
        "--agents", help="agent names (repeat or comma-separate); default: all")] = None,
    last: Annotated[int | None, typer.Option(help="use only the last N returns")] = 2500,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    notional: Annotated[
        float | None, typer.Option(help="portfolio value, for VaR in currency")
    ] = None,
    home: Annotated[Path, typer.Option(help="data directory")] = Path(".swarmvar"),
    consensus: Annotated[bool, typer.Option(help="combine the agents into a consensus")] = True,
    track_days: Annotated[int, typer.Option(
        "--track-days", help="days of out-of-sample track record behind the consensus "
        "weights (0: equal weights)")] = TRACK_DAYS,
    workers: Annotated[int, typer.Option(
        help="processes sharing the agents' track record (default: CPUs)")] = os.cpu_count() or 1,
) -> None:
    """Fit every agent, print VaR/ES with 90% credible intervals and the swarm's consensus."""
    console = make_console()
    persist_compilations(home)
    try:
        alphas = check_alphas(parse_alphas(alpha))
        names = [canonical_name(n) for a in (agents or list(DEFAULT_AGENTS))
                 for n in a.replace(",", " ").split()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # one agent, one key, one vote
            raise typer.BadParameter(f"agent(s) given more than once: {', '.join(twice)}")
        series = load_series(data, column, kind, last)
    except SwarmVarError as exc:
        raise fail(exc) from exc
    first, end = series.index[0].date(), series.index[-1].date()
    console.print(f"[bold]{series.name}[/bold]: {len(series)} daily log returns {first} → {end}; "
                  f"forecast for the next {horizon} day(s)")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(name: str, event: str) -> None:
            if event == "start":
                tasks[name] = bar.add_task(f"fitting {name}", total=1)
            else:
                bar.update(tasks[name], completed=1, description=f"fitted {name}")

        try:
            runs = run_agents(series.to_numpy(), names, alphas=alphas, horizon=horizon,
                              seed=seed, progress=progress)
        except SwarmVarError as exc:
            raise fail(exc) from exc
    title = f"{horizon}-day VaR and ES as of {end} (losses in % of value)"
    console.print(render(runs, title, notional))
    as_of = series.index[-1].to_pydatetime().replace(tzinfo=UTC)
    good = [r.name for r in runs if r.ok]
    track: dict[float, TrackRecord] | None = None
    if consensus and track_days > 0 and len(good) >= SWARM_POLICY.aggregator.min_agents(
            SWARM_POLICY.f):
        window = min(1000, len(series) - track_days - horizon + 1)
        if window < 250:
            console.print(f"[yellow]{len(series)} returns are too few for a {track_days}-day "
                          "track record; the consensus uses equal weights[/yellow]")
        else:
            with Progress(TextColumn("track record"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("days"), TimeElapsedColumn(), console=console,
                          transient=True) as bar:
                task = bar.add_task("track", total=track_days)
                try:
                    track = track_records(
                        series.to_numpy(), good, alphas, days=track_days, window=window,
                        horizon=horizon, seed=seed, workers=workers,
                        progress=lambda done, total: bar.update(task, completed=done,
                                                                total=total),
                    )
                except SwarmVarError as exc:
                    console.print(f"[yellow]no track record ({exc}); the consensus uses "
                                  "equal weights[/yellow]")
    try:
        with Ledger.open(home) as ledger:
            agreed: list[Consensus] = []
            if consensus:
                try:
                    agreed = swarm_consensus(
                        runs, agent_keys(home, good), as_of=as_of, seq=ledger.size,
                        portfolio=str(series.name), horizon=horizon, track=track)
                except SwarmVarError as exc:
                    console.print(f"[red]no consensus: {exc}[/red]")
            if agreed:
                console.print(render_consensus(agreed, notional))
                if track is not None:
                    console.print(f"weights: each agent's realized FZ0 loss over its last "
                                  f"{track_days} out-of-sample forecasts")
            indices = record_beat(ledger, runs, source=str(series.name), as_of=as_of,
                                  consensus=agreed)
            root = ledger.compute_merkle_root().hex()
    except SwarmVarError as exc:
        raise fail(exc) from exc
    console.print(f"recorded entries {indices.start}-{indices.stop - 1} in the ledger at "
                  f"{ledger.path} (Merkle root {root[:16]}…)")
    if not all(r.ok for r in runs):
        raise typer.Exit(code=1)
