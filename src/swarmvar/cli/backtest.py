"""``swarmvar backtest``: rolling out-of-sample backtest of the agents beside arch's GARCH-t."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import SwarmVarError
from ..ledger import Ledger
from ..models import DEFAULT_AGENTS, agent_class, canonical_name
from ..models.risk import check_alphas
from ..swarm.consensus import SWARM_POLICY
from ..swarm.record import record_backtest
from ..validation import BacktestResult, Test, backtest
from ._common import fail, load_series, parse_alphas, persist_compilations

app = typer.Typer(
    name="backtest",
    help="Backtest the agents out of sample, beside arch's GARCH(1,1)-t.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SHOWN = (Test.KUPIEC, Test.CHRISTOFFERSEN, Test.CONDITIONAL_COVERAGE, Test.Z2, Test.MCNEIL_FREY)
_LABEL = {
    Test.KUPIEC: "Kupiec", Test.CHRISTOFFERSEN: "Christoffersen",
    Test.CONDITIONAL_COVERAGE: "cond. coverage", Test.Z2: "AS Z2", Test.MCNEIL_FREY: "McNeil-Frey",
}


def _cell(pvalue: float) -> str:
    if math.isnan(pvalue):
        return "[dim]n/a[/dim]"
    if pvalue > 0.05:
        return f"[green]pass[/green] {pvalue:.3f}"
    return f"[red]FAIL[/red] {pvalue:.3f}"


def render(result: BacktestResult) -> Table:
    """Summary table: hits and each test's p-value, marked pass/fail at 5%."""
    days = len(result.dates)
    first, end = (str(getattr(d, "date", lambda d=d: d)()) for d in (result.dates[0],
                                                                       result.dates[-1]))
    table = Table(title=f"{days} out-of-sample days, {first} → {end} (pass: p > 0.05)",
                  title_justify="left")
    for name in ("model", "alpha", "hits", "rate"):
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for test in _SHOWN:
        table.add_column(_LABEL[test], justify="right", no_wrap=True)
    for name in ("zone", "FZ0", "seconds"):
        table.add_column(name, justify="right", no_wrap=True)
    for row, levels in result.evaluation.items():
        for i, (alpha, ev) in enumerate(levels.items()):
            s = result.series[row][alpha]
            light = ev.traffic_light
            table.add_row(
                row if i == 0 else "",
                f"{alpha:g}",
                str(int(s.hits.sum())),
                f"{100 * s.hits.mean():.2f}%",
                *(_cell(ev.tests[t].pvalue) for t in _SHOWN),
                light.zone.value if light is not None else "",
                f"{ev.fz0:.3f}",
                f"{result.timings[row].total:.1f}" if i == 0 else "",
            )
    return table


@app.callback(invoke_without_command=True)
def backtest_command(
    data: Annotated[str, typer.Option("--data", help="sp500, nasdaq, or a CSV/Parquet path")
                    ] = "sp500",
    column: Annotated[str | None, typer.Option(help="value column of a file")] = None,
    kind: Annotated[str, typer.Option(help="file holds 'price' or 'return' values")] = "price",
    last: Annotated[int, typer.Option(help="number of out-of-sample forecast days")] = 2500,
    window: Annotated[int, typer.Option(help="trailing returns each fit uses")] = 1000,
    refit_every: Annotated[int, typer.Option("--refit-every", help="days between refits")] = 20,
    alpha: Annotated[list[str] | None, typer.Option(
        "--alpha", help="confidence level(s): --alpha 0.99 --alpha 0.975")] = None,
    horizon: Annotated[int, typer.Option(help="horizon in days")] = 1,
    agents: Annotated[list[str] | None, typer.Option(
        "--agents", help="agent names (repeat or comma-separate); default: all")] = None,
    baseline: Annotated[bool, typer.Option(help="add arch's GARCH(1,1)-t row")] = True,
    report: Annotated[Path | None, typer.Option(help="write a self-contained HTML report")
                      ] = None,
    plot: Annotated[Path | None, typer.Option(
        help="save a PNG of the returns with each VaR line and its breaches (first level)")
                    ] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    consensus: Annotated[bool, typer.Option(
        help="add the swarm's consensus row (needs 3 or more agents)")] = True,
    home: Annotated[Path, typer.Option(help="data directory (the ledger records the run)")
                    ] = Path(".swarmvar"),
    record: Annotated[bool, typer.Option(help="record forecasts and tests in the ledger")
                      ] = True,
    workers: Annotated[int, typer.Option(help="processes sharing the rows (default: CPUs)")
                       ] = os.cpu_count() or 1,
) -> None:
    """Backtest agents on the last LAST days (each fitted on the WINDOW days before)."""
    console = Console(width=max(Console().width, 160))  # the test table is wide
    persist_compilations(home)
    try:
        alphas = check_alphas(parse_alphas(alpha, default=(0.99, 0.975)))
        names = [canonical_name(n) for a in (agents or list(DEFAULT_AGENTS))
                 for n in a.replace(",", " ").split()]
        if last < 1 or window < 2:
            raise typer.BadParameter("--last must be >= 1 and --window >= 2")
        series = load_series(data, column, kind, last + window + horizon - 1)
        roster = [agent_class(n)() for n in names]
    except SwarmVarError as exc:
        raise fail(exc) from exc
    console.print(f"[bold]{series.name}[/bold]: {len(series)} daily log returns, "
                  f"{series.index[0].date()} → {series.index[-1].date()}; agents: "
                  f"{', '.join(names)}")
    rows = {}
    if consensus and len(roster) >= SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f):
        rows["consensus"] = SWARM_POLICY
    elif consensus:
        console.print(f"[yellow]no consensus row: {SWARM_POLICY.method} needs at least "
                      f"{SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f)} agents[/yellow]")
    try:
        result = backtest(series, roster, window=window, refit_every=refit_every, alphas=alphas,
                          horizon=horizon, baseline="arch" if baseline else None, seed=seed,
                          progress=progress, consensus=rows, workers=workers)
        console.print(render(result))
        if rows:
            console.print(f"consensus: {SWARM_POLICY.method}, weights from each agent's "
                          f"FZ0 loss over the previous {SWARM_POLICY.window} days")
        if report is not None:
            console.print(f"report written to {result.to_html(report)}")
        if plot is not None:
            figure = result.plot(alphas[0])
            plot.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(plot, dpi=110)
            console.print(f"plot written to {plot}")
        if record:
            with Ledger.open(home) as ledger:
                indices = record_backtest(ledger, result, source=str(series.name), config={
                    "seed": seed, "consensus": SWARM_POLICY.method if rows else None})
                root = ledger.compute_merkle_root().hex()
            console.print(f"recorded entries {indices.start}-{indices.stop - 1} (daily "
                          f"forecasts, tests, summary) in the ledger at {ledger.path} "
                          f"(Merkle root {root[:16]}…)")
    except SwarmVarError as exc:
        raise fail(exc) from exc
