"""``swarmvar backtest``: rolling out-of-sample backtest of the agents beside arch's GARCH-t.

Module level imports stay light so ``--help`` is fast; the engines load inside
the command, after every flag has been checked.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    PLOT_SUFFIXES,
    REPORT_SUFFIXES,
    agents_help,
    check_csv_folder,
    check_data,
    check_home,
    check_horizon,
    check_kind,
    check_ledger,
    check_output,
    check_policy,
    check_processes,
    check_seed,
    check_whole,
    emergence_section,
    from_setting,
    home_words,
    load_series,
    make_console,
    parse_alphas,
    persist_compilations,
    print_notes,
    resolve_agents,
    str_list,
    swarm_policy,
    usage_errors,
    write_csv_tables,
    write_json,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..validation import BacktestResult

app = typer.Typer(
    name="backtest",
    help="Backtest the agents out of sample, beside arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t.",
    add_completion=False,
    rich_markup_mode=None,  # plain help and one-line errors, as the root app
    pretty_exceptions_enable=False,
)

_LABEL = {
    "kupiec": "Kupiec", "christoffersen": "Christoffersen",
    "conditional_coverage": "cond. coverage", "acerbi_szekely_z2": "AS Z2",
    "mcneil_frey": "McNeil-Frey",
}

#: What the numbers in ``--json`` and ``--csv`` are.
UNITS = {
    "var, es, loss, var_lo, var_hi, es_lo, es_hi": "loss over the horizon as a fraction of "
    "portfolio value (0.01 = 1%); _lo/_hi: 90% credible interval",
    "hit_rate, expected_rate, share_green, share_yellow, share_red": "fractions of days or "
    "windows",
    "p_*, pvalue, dm_pvalue": "p-values (pass: p > 0.05)",
    "pinball, fz0": "mean scores per day (lower is better)",
    "seconds, fit_s, update_s, forecast_s, total_s": "seconds",
    "alpha": "confidence level",
}


def _cell(pvalue: float) -> str:
    if math.isnan(pvalue):
        return "[dim]n/a[/dim]"
    if pvalue > 0.05:
        return f"[green]pass[/green] {pvalue:.3f}"
    return f"[red]FAIL[/red] {pvalue:.3f}"


def render(result: BacktestResult) -> Table:
    """Summary table: hits and each test's p-value, marked pass/fail at 5%."""
    from rich.table import Table

    from ..validation import Test

    shown = (Test.KUPIEC, Test.CHRISTOFFERSEN, Test.CONDITIONAL_COVERAGE, Test.Z2,
             Test.MCNEIL_FREY)
    days = len(result.dates)
    first, end = (str(getattr(d, "date", lambda d=d: d)()) for d in (result.dates[0],
                                                                       result.dates[-1]))
    table = Table(title=f"{days} out-of-sample days, {first} → {end} (pass: p > 0.05)",
                  title_justify="left")
    for name in ("model", "alpha", "hits", "rate"):
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for test in shown:
        table.add_column(_LABEL[test.value], justify="right", no_wrap=True)
    for name in ("zone (last 250 d)", "FZ0", "seconds"):
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
                *(_cell(ev.tests[t].pvalue) for t in shown),
                light.zone.value if light is not None else "",
                f"{ev.fz0:.3f}",
                f"{result.timings[row].total:.1f}" if i == 0 else "",
            )
    return table


def _tables(result: BacktestResult) -> dict[str, Any]:
    """Every table of the backtest as a tidy frame (what --json and --csv carry)."""
    import pandas as pd

    timings = pd.DataFrame([
        {"model": n, "fits": t.fits, "fit_s": t.fit, "update_s": t.update,
         "forecast_s": t.forecast, "total_s": t.total} for n, t in result.timings.items()])
    forecasts = result.to_frame()
    forecasts["date"] = [str(getattr(d, "date", lambda d=d: d)()) for d in forecasts["date"]]
    breaches = result.breaches()
    breaches["date"] = [str(getattr(d, "date", lambda d=d: d)()) for d in breaches["date"]]
    return {
        "summary": result.summary(), "tests": result.test_table(),
        "zones": result.traffic_light_shares(), "breaches": breaches, "timings": timings,
        "forecasts": forecasts,
    }


@app.callback(invoke_without_command=True)
def backtest_command(
    data: Annotated[str | None, typer.Option(
        "--data", help="bundled data set (sp500, nasdaq) or a CSV/Parquet path",
        show_default="sp500")] = None,
    column: Annotated[str | None, typer.Option(help="value column of a file")] = None,
    kind: Annotated[str, typer.Option(help="the file holds 'price' or 'return' values")
                    ] = "price",
    dropna: Annotated[bool, typer.Option(
        "--dropna", help="drop rows with missing values (files with gaps)")] = False,
    last: Annotated[int | None, typer.Option(
        help="number of out-of-sample forecast days", show_default="2500")] = None,
    window: Annotated[int | None, typer.Option(
        help="trailing returns each fit uses", show_default="1000")] = None,
    refit_every: Annotated[int | None, typer.Option(
        "--refit-every", help="days between refits", show_default="20")] = None,
    alpha: Annotated[list[str] | None, typer.Option(
        "--alpha", help="confidence level(s): --alpha 0.99 --alpha 0.975 or 0.99,0.975",
        show_default="0.99,0.975")] = None,
    horizon: Annotated[int | None, typer.Option(
        help="horizon in days (1 to 250)", show_default="1")] = None,
    agents: Annotated[list[str] | None, typer.Option("--agents", help=agents_help())] = None,
    baseline: Annotated[bool, typer.Option(
        help="add arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t rows")] = True,
    report: Annotated[Path | None, typer.Option(
        help="write a self-contained HTML report (folders are created)")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="save a figure: one panel per model and level, credible bands, breaches "
        f"({', '.join(s.lstrip('.') for s in PLOT_SUFFIXES[:3])}, ...)")] = None,
    seed: Annotated[int, typer.Option(help="random seed (0 or more)")] = 0,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    consensus: Annotated[bool | None, typer.Option(
        "--consensus/--no-consensus", help="add the swarm's consensus row (3 or more agents)",
        show_default="on")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="the consensus's robust rule: trimmed_mean, median, "
        "geometric_median, krum, multi_krum", show_default="trimmed_mean")] = None,
    home: Annotated[Path | None, typer.Option(
        help="data directory (the ledger records the run)", show_default=".swarmvar")] = None,
    record: Annotated[bool, typer.Option(help="record forecasts and tests in the ledger")
                      ] = True,
    workers: Annotated[int, typer.Option(help="processes sharing the rows (default: CPUs)")
                       ] = os.cpu_count() or 1,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print every table as one JSON document on stdout (units included)")
                       ] = False,
    csv: Annotated[Path | None, typer.Option(
        "--csv", help="write every table as DIR/<table>.csv (first line: units)",
        metavar="DIR")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print nothing but errors")
                     ] = False,
    # --- books (multi-asset portfolios): options; the logic is in cli/book.py ---
    book: Annotated[Path | None, typer.Option(
        "--book", help="backtest the joint agents on a book CSV (asset,position) beside "
        "RiskMetrics")] = None,
    positions: Annotated[str | None, typer.Option(
        "--positions", help="a book inline: ASSET=AMOUNT,...")] = None,
    # --- end books ---
) -> None:
    """Backtest agents on the last LAST days (each fitted on the WINDOW days before)."""
    # the process cap of every command that starts workers (run and serve too); first,
    # so that a book's command gets a checked count as well
    workers = check_processes(workers)
    # --- books (multi-asset portfolios): --book / --positions go to cli/book.py ---
    if book is not None or positions is not None:
        from .book import book_backtest_command, refuse_single_series_flags

        refuse_single_series_flags({"--column": column, "--horizon": horizon,
                                    "--policy": policy, "--report": report, "--plot": plot})
        book_backtest_command(data=data, kind=kind, dropna=dropna, book=book,
                              positions=positions, alphas=alpha, last=last, window=window,
                              refit_every=refit_every, agents=agents, seed=seed,
                              workers=workers, progress=progress, consensus=consensus,
                              baseline=baseline, home=home, record=record, as_json=as_json,
                              csv=csv, quiet=quiet)
        return
    # --- end books ---
    # --- every flag (and the config file) checked before any work or ledger write ---
    from ..config import load_config

    with usage_errors():
        settings = load_config().effective({
            "data": data, "alphas": alpha, "horizon": horizon, "agents": agents, "last": last,
            "window": window, "refit_every": refit_every, "consensus": consensus,
            "home": None if home is None else str(home), "policy": policy})
    source = from_setting(settings["data"], lambda v: check_data(str(v)))
    kind = check_kind(kind)
    alphas = from_setting(settings["alphas"], lambda v: parse_alphas(str_list(v),
                                                                    default=(0.99, 0.975)))
    h = from_setting(settings["horizon"], check_horizon)
    names = from_setting(settings["agents"], lambda v: resolve_agents(str_list(v)))
    n_last = from_setting(settings["last"], lambda v: check_whole(v, "--last", 1, 10**6))
    n_window = from_setting(settings["window"], lambda v: check_whole(v, "--window", 2, 10**6))
    every = from_setting(settings["refit_every"],
                         lambda v: check_whole(v, "--refit-every", 1, 10**6))
    seed = check_seed(seed)
    folder = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    check_output(report, "--report", REPORT_SUFFIXES)  # the report is HTML, whatever the name
    check_output(plot, "--plot", PLOT_SUFFIXES)
    check_csv_folder(csv)
    with_consensus = bool(settings["consensus"].value)
    rule = from_setting(settings["policy"], check_policy)
    if record:  # an emptied or damaged ledger: refused before the backtest, not after it
        check_ledger(folder, home_words(settings["home"]))
    console = make_console(quiet=quiet or as_json, stderr=as_json)
    persist_compilations(folder)

    # --- the work -----------------------------------------------------------------
    from rich.markup import escape

    from .. import __version__
    from ..ledger import Ledger
    from ..swarm.record import record_backtest
    from ..validation import backtest
    from ..validation.backtest import Baseline
    from ..validation.report import Provenance, write_html

    with usage_errors():
        series = load_series(source, column, kind, n_last + n_window + h - 1, dropna=dropna)
        # variants: each agent's champion, or its canary for this portfolio (swarm/variants)
        from ..swarm.variants import choose_variants, describe

        chosen = choose_variants(folder, names, portfolio=str(series.name))
        roster = [c.build() for c in chosen.values()]
        if describe(chosen):
            console.print(f"variants: {describe(chosen)}")
    console.print(f"[bold]{escape(str(series.name))}[/bold]: {len(series)} daily log returns, "
                  f"{series.index[0].date()} → {series.index[-1].date()}; agents: "
                  f"{', '.join(names)}")
    swarm_rule = swarm_policy(rule)  # the swarm's policy with the rule asked for
    rows = {}
    need = swarm_rule.aggregator.min_agents(swarm_rule.f)
    if with_consensus and len(roster) >= need:
        rows["consensus"] = swarm_rule
    elif with_consensus:
        console.print(f"[yellow]no consensus row: {len(roster)} agent"
                      f"{'s' if len(roster) != 1 else ''}, and "
                      f"{escape(swarm_rule.describe(len(roster)))}[/yellow]")
    with usage_errors():
        result = backtest(series, roster, window=n_window, refit_every=every, alphas=alphas,
                          horizon=h, seed=seed,
                          baseline=[Baseline.ARCH, Baseline.ARCH_GJR] if baseline else None,
                          progress=progress and not (quiet or as_json), consensus=rows,
                          workers=workers)
    console.print(render(result))
    if rows:
        console.print(f"consensus: {swarm_rule.describe(len(roster))} (in the ledger: "
                      f"{swarm_rule.method})", markup=False, soft_wrap=True)
    if any(c.variant_id for c in chosen.values()):  # realized evidence for canary checks
        import time

        from ..swarm.variants import backtest_records, record_metrics

        with usage_errors():
            record_metrics(folder, backtest_records(chosen, result, time.time()))
    print_notes(console, result.notes)
    entries: range | None = None
    root: str | None = None
    where: Path | None = None
    if record:
        with usage_errors():
            with Ledger.open(folder) as ledger:
                entries = record_backtest(ledger, result, source=str(series.name), config={
                    "seed": seed, "consensus": swarm_rule.method if rows else None})
                root = ledger.compute_merkle_root(size=entries.stop).hex()
                where = Path(str(ledger.path))
        console.print(f"recorded entries {entries.start}-{entries.stop - 1} (daily "
                      f"forecasts, tests, summary) in the ledger at {where} "
                      f"(Merkle root {root[:16]}…)", markup=False)
    provenance = Provenance(
        data=str(series.name), first=str(series.index[0].date()),
        last=str(series.index[-1].date()),
        command=shlex.join(["swarmvar", *sys.argv[1:]]) if sys.argv[1:2] == ["backtest"]
        else "swarmvar backtest (called from Python)",
        seed=seed, version=__version__,
        ledger=None if entries is None else (entries.start, entries.stop - 1),
        merkle_root=root, ledger_path=None if where is None else str(where))
    with usage_errors():
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            section = emergence_section(result, seed=seed)
            page = write_html(result, report, provenance=provenance,
                              sections=[section] if section is not None else [])
            console.print(f"report written to {page}", markup=False)
        if plot is not None:
            figure = result.plot()
            plot.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(plot, dpi=110)
            console.print(f"plot written to {plot}", markup=False)
    if as_json or csv is not None:
        tables = _tables(result)
        if as_json:
            write_json({
                "command": "backtest", "units": UNITS,
                "data": {"name": provenance.data, "first": provenance.first,
                         "last": provenance.last},
                "days": len(result.dates), "window": n_window, "refit_every": every,
                "horizon": h, "seed": seed, "alphas": list(alphas),
                "rows": list(result.rows), "baselines": list(result.baselines),
                # the rule alone, as var --json's; the weights in their own key
                "consensus_rule": (swarm_rule.describe(len(roster), weights=False) if rows
                                   else None),
                "consensus_weights": swarm_rule.weights_words() if rows else None,
                "notes": {k: list(v) for k, v in result.notes.items()},
                **{name: frame.to_dict(orient="records") for name, frame in tables.items()
                   if name != "forecasts"},
                "ledger": None if entries is None else {
                    "path": str(where), "first_entry": entries.start,
                    "last_entry": entries.stop - 1, "merkle_root": root},
            })
        if csv is not None:
            unit = "; ".join(f"{k}: {v}" for k, v in UNITS.items())
            written = write_csv_tables(csv, {name: (frame, unit) for name, frame in tables.items()})
            console.print(f"tables written to {', '.join(str(p) for p in written)}", markup=False)
