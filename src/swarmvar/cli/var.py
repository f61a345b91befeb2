"""``swarmvar var``: every agent's VaR/ES with credible intervals, and the swarm's consensus.

Module level imports stay light (typer and the CLI's checks) so ``swarmvar var
--help`` is fast; the models, consensus and ledger load inside the command.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    agents_help,
    check_csv_folder,
    check_data,
    check_home,
    check_home_folders,
    check_horizon,
    check_kind,
    check_ledger,
    check_notional,
    check_policy,
    check_processes,
    check_seed,
    check_whole,
    from_setting,
    home_words,
    load_series,
    make_console,
    parse_alphas,
    persist_compilations,
    resolve_agents,
    str_list,
    swarm_policy,
    usage_errors,
    write_csv_tables,
    write_json,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..api import VarResult
    from ..consensus import Policy
    from ..swarm import AgentRun
    from ..types import Consensus

#: What the numbers in ``--json`` and ``--csv`` are.
UNITS = {
    "var, es, var_lo, var_hi, es_lo, es_hi": "loss over the horizon as a fraction of portfolio "
    "value (0.01 = 1%); _lo/_hi: 90% credible interval",
    "var_ccy, es_ccy": "loss in the currency of --notional, notional * (1 - exp(-loss)): exact "
    "for var_ccy; es_ccy an upper bound (Jensen; ~0.4% above for a daily Student-t(4) return)",
    "weight": "the agent's consensus weight at that level (used agents sum to 1)",
    "alpha": "confidence level",
    "horizon": "days",
    "fit_seconds": "seconds",
}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _interval(lo: float, hi: float) -> str:
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"


def _measure_columns(table: Table, notional: float | None) -> None:
    """alpha, VaR and ES with their intervals, and both in currency if a notional is given."""
    table.add_column("alpha", justify="right")
    table.add_column("VaR  [90% CI]", justify="right", no_wrap=True)
    table.add_column("ES  [90% CI]", justify="right", no_wrap=True)
    if notional is not None:  # notional * (1 - exp(-loss)): VaR exact, ES an upper bound
        table.add_column("VaR (ccy)", justify="right", no_wrap=True)
        table.add_column("ES (ccy)", justify="right", no_wrap=True)


def _ccy(notional: float, var: float, es: float) -> list[str]:
    """VaR and ES of a long notional in currency, ``notional * (1 - exp(-loss))``.

    Exact for the VaR (a quantile goes through the increasing map); for the
    ES, a tail mean, an upper bound (Jensen), within ~0.4% of the exact tail
    mean for a daily Student-t(4) return (:func:`swarmvar.books.currency_loss`).
    """
    from ..books import currency_loss

    return [f"{currency_loss(notional, var):,.0f}", f"{currency_loss(notional, es):,.0f}"]


def render(runs: list[AgentRun], title: str, notional: float | None) -> Table:
    """The rich table of each agent's view."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("agent", no_wrap=True)
    _measure_columns(table, notional)
    table.add_column("fit", justify="right", no_wrap=True)
    table.add_column("diagnostics")
    for run in runs:
        if not run.ok or run.forecast is None:
            table.add_row(run.name, "", "", "", *(["", ""] if notional is not None else []),
                          f"{run.fit_seconds:.2f}s", f"[red]failed: {escape(str(run.error))}[/red]")
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
                *(_ccy(notional, m.var, m.es) if notional is not None else []),
                f"{run.fit_seconds:.2f}s" if i == 0 else "",
                diag,
            )
    return table


def _effective(weights: Mapping[str, float]) -> str:
    """The effective number of agents behind a consensus, 1 / sum w^2 (1 = one agent)."""
    values = [w for w in weights.values() if w > 0]
    if not values:
        return "-"
    from ..consensus import effective_agents
    return f"{float(effective_agents(values)):.2f}"


def rule_words(c: Consensus, policy: Policy | None) -> str:
    """The rule the consensus ``c`` used, in words (``Policy.describe`` over its ``m``
    agents, without the weights: the note says those once, ``Policy.weights_note``);
    ``c.method``, the ledger's name, without a policy."""
    if policy is None:
        return c.method
    words = policy.describe(c.available, weights=False)
    extra = c.method[len(policy.method):] if c.method.startswith(policy.method) else ""
    return words + extra  # e.g. ", rearranged across levels"


#: Said when the rule's figures are one agent's whatever the weights (the trimmed mean or
#: median's middle agent, Krum's pick), beside track-record weights.
NO_WEIGHT = "; weights cannot change it"

#: Put before :func:`kept_words`' line when a level was rearranged: the line says what the
#: rule did at each level, and the figures shown are no longer all that level's.
BEFORE_REARRANGING = "before the levels were rearranged: "

#: Below this effective number of agents (1 / sum w^2), one agent reads as the consensus.
ONE_AGENT = 1.5

#: A level whose VaR weight on one agent reaches this took that agent's numbers (Krum's
#: pick, the geometric median on an agent's point).
WHOLE = 1.0 - 1e-9


def kept_words(consensus: list[Consensus], policy: Policy | None, *,
               record: int | None = None) -> str:
    """A line under the consensus table when its weights column reads as one agent: what
    the rule kept and why the consensus is (or leans on) that agent's numbers; ``""`` when
    that adds nothing (weights spread, one agent combined, an even median, no consensus
    or no policy).

    One line per rule, e.g.

    * trimmed mean: ``"the trimmed mean keeps 2 of 6 agents for each figure; of the VaR's,
      GarchT carries the weight (the lowest FZ0 loss of them in the track record)"``, or
      ``"the trimmed mean keeps 1 of 3 agents for each figure, the middle one (shown: the
      VaR's); weights cannot change it"``;
    * median of an odd count: ``"the median of 5 agents is the middle one of each figure
      (shown: the VaR's)"``;
    * Krum: ``"Krum takes one agent's VaR and ES, the one closest to the others:
      StudentT"``;
    * multi-Krum: ``"multi-Krum keeps the 4 of 5 agents closest to the others; of them,
      GarchT carries the weight (...)"``, or keeping one (``Policy.multi_krum_kept``):
      ``"multi-Krum keeps 1 of 5 agents, the one closest to the others: GarchT"``;
    * geometric median on an agent's point: ``"the geometric median of 3 agents falls on
      one agent's VaR and ES, StudentT's (the others' pull is weaker than its weight)"``;
    * mean (Python's ``Policy`` only: no ``--policy`` is the plain mean): ``"the mean of 4
      agents (nothing trimmed); GarchT carries the weight (...)"``.

    The clause ``"; weights cannot change it"`` is said only beside track-record weights,
    where a rule that ignores them (the median and Krum pick agents; a trimmed mean keeping
    one) would otherwise seem to overrule them. Levels that differ are named (``"StudentT
    at 0.99; GarchT at 0.975"``).

    When a level's method ends with ``", rearranged across levels"``
    (:func:`~swarmvar.swarm.consensus.uncrossed` swapped VaR/ES between levels and kept
    each level's weights), the line starts ``"before the levels were rearranged: "``: the
    agent it names at a level made that level's figures before the swap, not necessarily
    the figures shown there.

    ``record`` is ``VarResult.record`` (``None``: the weights were equal, so no agent leads
    by its track record). The table's weights are the VaR's survivors' (the ES's may be
    others); track-record weights are joint over the levels, so the same agent leads at
    every level where it survives, while the median and Krum may pick another agent at
    each level.
    """
    from ..swarm.consensus import REARRANGED  # here: var --help stays light

    line = _rule_line(consensus, policy, record)
    if line and any(c.method.endswith(REARRANGED) for c in consensus):
        return BEFORE_REARRANGING + line
    return line


def _rule_line(consensus: list[Consensus], policy: Policy | None, record: int | None) -> str:
    """:func:`kept_words`' line, said of each level as the rule combined it; ``""`` for
    fewer than 2 agents, whatever the rule (one agent's numbers are its own: no middle one,
    no pick, no one to lean on)."""
    from ..consensus import Aggregator

    if policy is None or not consensus:
        return ""
    m = consensus[0].available
    if m < 2:
        return ""
    why = "" if record is None else policy.lead_words()
    rule = policy.aggregator
    if rule is Aggregator.TRIMMED_MEAN and policy.f_for(m) > 0:
        return _trimmed_words(consensus, m, m - 2 * policy.f_for(m), why)
    if rule in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN):  # nothing trimmed
        return _lead_line(f"the mean of {m} agents (nothing trimmed); ", consensus, why)
    if rule is Aggregator.MEDIAN:
        if m % 2 == 0:  # the mean of the two middle ones: no one agent
            return ""
        return (f"the median of {m} agents is the middle one of each figure (shown: the "
                f"VaR's){NO_WEIGHT * bool(why)}")
    if rule is Aggregator.KRUM:
        who = _picks(consensus)
        return (f"Krum takes one agent's VaR and ES, the one closest to the others: "
                f"{who}{NO_WEIGHT * bool(why)}") if who else ""
    if rule is Aggregator.MULTI_KRUM:
        kept = policy.multi_krum_kept(m)
        if kept == 1:
            who = _picks(consensus)
            return (f"multi-Krum keeps 1 of {m} agents, the one closest to the others: "
                    f"{who}{NO_WEIGHT * bool(why)}") if who else ""
        return _lead_line(f"multi-Krum keeps the {kept} of {m} agents closest to the others; "
                          "of them, ", consensus, why)
    # the geometric median: a level on an agent's point is that agent's VaR and ES
    on = _picks(consensus, possessive=True)
    if not on:
        return ""
    return (f"the geometric median of {m} agents falls on one agent's VaR and ES, {on} "
            "(the others' pull is weaker than its weight)")


def _trimmed_words(consensus: list[Consensus], m: int, kept: int, why: str) -> str:
    """:func:`kept_words` for a trimmed mean keeping ``kept`` of ``m`` agents (``f > 0``:
    fewer than ``m``)."""
    if kept < 1:
        return ""
    head = f"the trimmed mean keeps {kept} of {m} agents for each figure"
    if kept == 1:  # each figure is its middle agent's: weights cannot move it
        return f"{head}, the middle one (shown: the VaR's){NO_WEIGHT * bool(why)}"
    return _lead_line(f"{head}; of the VaR's, ", consensus, why)


def _lead_line(head: str, consensus: list[Consensus], why: str) -> str:
    """``head`` then who carries (most of) the weight and why, when the weights read as
    one agent at some level and a track record made them; else ``""`` (also at a level
    of fewer than 2 agents: no other agent to lead). A weights column of one agent among
    several is said: the others' weights were 0."""
    from ..consensus import effective_agents

    leads: dict[str, list[str]] = {}  # who carries the weight -> at which levels
    for c in consensus:
        values = [w for w in c.weights.values() if w > 0]
        if c.available < 2 or not values or float(effective_agents(values)) >= ONE_AGENT:
            continue
        top, w = max(c.weights.items(), key=lambda kv: kv[1])
        said = f"{top} carries {'the' if w >= 0.995 else 'most of the'} weight"
        leads.setdefault(said, []).append(f"{c.alpha:g}")
    if not leads or not why:
        return ""
    return f"{head}{_at_levels(leads, len(consensus))} (the {why} of them in the track record)"


def _picks(consensus: list[Consensus], *, possessive: bool = False) -> str:
    """The agent whose numbers each level took whole (its VaR weight ``>= WHOLE``), e.g.
    ``"StudentT"``, ``"StudentT at 0.99; GarchT at 0.975"``, or with ``possessive``
    ``"StudentT's"``; levels that took no one agent's are left out (``""``: none did)."""
    picks: dict[str, list[str]] = {}
    for c in consensus:
        top = max(c.weights.items(), key=lambda kv: kv[1], default=None)
        if top is not None and top[1] >= WHOLE:
            picks.setdefault(top[0] + "'s" * possessive, []).append(f"{c.alpha:g}")
    return _at_levels(picks, len(consensus)) if picks else ""


def _at_levels(said: dict[str, list[str]], levels: int) -> str:
    """One phrase alone when it holds at every one of ``levels``; else each with its
    levels (``"A at 0.99; B at 0.975"``)."""
    if len(said) == 1 and len(next(iter(said.values()))) == levels:
        return next(iter(said))
    return "; ".join(f"{who} at {' and '.join(at)}" for who, at in said.items())


def render_consensus(consensus: list[Consensus], notional: float | None,
                     policy: Policy | None = None) -> Table:
    """The rich table of the swarm's consensus: one row per level, then who counted how much.

    Its title says the rule in words (see :func:`rule_words`); the weights are said once,
    in ``VarResult.note`` under it."""
    from rich.markup import escape
    from rich.table import Table

    rule = escape(rule_words(consensus[0], policy)) if consensus else ""
    table = Table(title=f"swarm consensus (signed estimates): {rule}", title_justify="left")
    _measure_columns(table, notional)
    table.add_column("m/n", justify="right", no_wrap=True)
    table.add_column("n eff", justify="right", no_wrap=True)
    table.add_column("weights of the agents used; trimmed; rejected", ratio=1)
    for c in consensus:
        parts = [", ".join(f"{a} {w:.2f}" for a, w in sorted(c.weights.items(),
                                                             key=lambda kv: -kv[1]))]
        if c.trimmed:
            parts.append("trimmed " + ", ".join(c.trimmed))
        parts += [f"[red]rejected {escape(a)}: {escape(why)}[/red]"
                  for a, why in c.rejected.items()]
        table.add_row(
            f"{c.alpha:g}",
            f"[bold]{_pct(c.var)}[/bold]  {_interval(*c.var_interval)}",
            f"{_pct(c.es)}  {_interval(*c.es_interval)}",
            *(_ccy(notional, c.var, c.es) if notional is not None else []),
            f"{c.available}/{c.total}" + (" [yellow]degraded[/yellow]" if c.degraded else ""),
            _effective(c.weights),
            "; ".join(parts),
        )
    return table


def _tables(result: VarResult, notional: float | None) -> dict[str, Any]:
    """The command's tables as tidy frames (what --json and --csv carry)."""
    import numpy as np
    import pandas as pd

    from ..swarm.record import consensus_record

    forecasts = result.to_frame()
    forecasts["as_of"] = forecasts["as_of"].map(lambda d: d.isoformat() if d is not None
                                                else None)
    if notional is not None:  # a long notional's currency loss: VaR exact, ES an upper bound
        forecasts["var_ccy"] = -notional * np.expm1(-forecasts["var"])
        forecasts["es_ccy"] = -notional * np.expm1(-forecasts["es"])
    agents = pd.DataFrame([{
        "agent": r.name, "ok": r.ok, "error": r.error, "fit_seconds": r.fit_seconds,
        "diagnostics": r.diagnostics.summary() if r.diagnostics is not None else None,
        "warnings": "; ".join(r.warnings)} for r in result.runs])
    consensus = [consensus_record(c) for c in result.agreed]
    return {"forecasts": forecasts, "agents": agents, "consensus": consensus}


def var(
    data: Annotated[str | None, typer.Option(
        "--data", help="bundled data set (sp500, nasdaq) or a CSV/Parquet path",
        show_default="sp500")] = None,
    column: Annotated[str | None, typer.Option(help="value column of a file")] = None,
    kind: Annotated[str, typer.Option(help="the file holds 'price' or 'return' values")
                    ] = "price",
    dropna: Annotated[bool, typer.Option(
        "--dropna", help="drop rows with missing values (files with gaps)")] = False,
    alpha: Annotated[list[str] | None, typer.Option(
        "--alpha", help="confidence level(s): --alpha 0.99 --alpha 0.975 or 0.99,0.975",
        show_default="0.99")] = None,
    horizon: Annotated[int | None, typer.Option(
        help="horizon in days (1 to 250)", show_default="1")] = None,
    agents: Annotated[list[str] | None, typer.Option("--agents", help=agents_help())] = None,
    last: Annotated[int | None, typer.Option(
        help="use only the last N returns", show_default="2500")] = None,
    seed: Annotated[int, typer.Option(help="random seed (0 or more)")] = 0,
    notional: Annotated[
        float | None, typer.Option(help="value of a long holding: VaR in currency (exact) "
                                   "and ES in currency (an upper bound, by Jensen's "
                                   "inequality)")
    ] = None,
    home: Annotated[Path | None, typer.Option(
        help="data directory (ledger, keys)", show_default=".swarmvar")] = None,
    consensus: Annotated[bool | None, typer.Option(
        "--consensus/--no-consensus", help="combine the agents into a consensus",
        show_default="on")] = None,
    track_days: Annotated[int | None, typer.Option(
        "--track-days", help="days of out-of-sample track record behind the consensus "
        "weights (0: equal weights). A book (--book/--positions) uses equal weights unless "
        "this is given: its joint agents' backtest takes minutes",
        show_default="1000; with a book 0")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="the consensus's robust rule: trimmed_mean, median, "
        "geometric_median, krum, multi_krum", show_default="trimmed_mean")] = None,
    workers: Annotated[int, typer.Option(
        help="processes sharing the agents' track record (default: CPUs)")] = os.cpu_count() or 1,
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
        "--book", help="a book CSV (asset,position or asset,weight + notional): the joint "
        "agents' VaR/ES of the book in currency and its contributions")] = None,
    positions: Annotated[str | None, typer.Option(
        "--positions", help="a book inline: ASSET=AMOUNT,... (e.g. AAPL=600000,MSFT=-400000)")
                         ] = None,
    trade: Annotated[str | None, typer.Option(
        "--trade", help="with a book: a what-if trade ASSET=AMOUNT,... (incremental VaR/ES)")
                     ] = None,
    # --- end books ---
) -> None:
    """Fit every agent, print VaR/ES with 90% credible intervals and the swarm's consensus."""
    # the process cap of every command that starts workers (run and serve too); first,
    # so that a book's command gets a checked count as well
    workers = check_processes(workers)
    # --- books (multi-asset portfolios): --book / --positions go to cli/book.py ---
    if book is not None or positions is not None or trade is not None:
        from .book import book_var_command, refuse_single_series_flags

        refuse_single_series_flags({"--notional": notional, "--policy": policy,
                                    "--column": column})
        book_var_command(data=data, kind=kind, dropna=dropna, book=book, positions=positions,
                         trade=trade, alphas=alpha, horizon=horizon, agents=agents, last=last,
                         seed=seed, home=home, consensus=consensus, as_json=as_json, csv=csv,
                         quiet=quiet, track_days=track_days)
        return
    # --- end books ---
    # --- every flag (and the config file) checked before any work or ledger write ---
    from ..config import load_config

    with usage_errors():
        settings = load_config().effective({
            "data": data, "alphas": alpha, "horizon": horizon, "agents": agents, "last": last,
            "home": None if home is None else str(home), "consensus": consensus,
            "track_days": track_days, "policy": policy})
    source = from_setting(settings["data"], lambda v: check_data(str(v)))
    kind = check_kind(kind)
    alphas = from_setting(settings["alphas"], lambda v: parse_alphas(str_list(v)))
    h = from_setting(settings["horizon"], check_horizon)
    names = from_setting(settings["agents"], lambda v: resolve_agents(str_list(v)))
    n_last = from_setting(settings["last"], lambda v: check_whole(v, "--last", 2))
    seed = check_seed(seed)
    notional = check_notional(notional)
    folder = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    days = from_setting(settings["track_days"], lambda v: check_whole(v, "--track-days", 0))
    with_consensus = bool(settings["consensus"].value)
    rule = from_setting(settings["policy"], check_policy)
    check_csv_folder(csv)
    # an emptied or damaged ledger: refused before the fit, not after; a file-given home is
    # named by the file's key, not as a --home that was not given
    check_ledger(folder, home_words(settings["home"]))
    # a file where the agents' keys go (``keys``, ``keys/agents``): refused before the fit,
    # as run and serve do, not a raw NotADirectoryError after it
    check_home_folders(folder, home_words(settings["home"]))
    console = make_console(quiet=quiet or as_json, stderr=as_json)
    persist_compilations(folder)

    # --- the work -----------------------------------------------------------------
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..api import var as run_swarm
    from ..ledger import Ledger
    from ..swarm.consensus import agent_keys
    from ..swarm.record import record_beat

    with usage_errors():
        series = load_series(source, column, kind, n_last, dropna=dropna)
    first, end = series.index[0].date(), series.index[-1].date()
    console.print(f"[bold]{escape(str(series.name))}[/bold]: {len(series)} daily log returns "
                  f"{first} → {end}; "
                  f"forecast for the next {h} day(s)")
    # --- variants: each agent's champion, or its canary for this portfolio (swarm/variants) ---
    from ..swarm.variants import build_roster, choose_variants, describe, record_metrics
    from ..swarm.variants import run_records as variant_records

    with usage_errors():
        chosen = choose_variants(folder, names, portfolio=str(series.name))
        roster = build_roster(chosen)
    if describe(chosen):
        console.print(f"variants: {describe(chosen)}")
    # --- end variants ---
    with usage_errors():
        with Ledger.open(folder) as ledger:
            seq = ledger.size
        keys = agent_keys(folder, names) if with_consensus else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=quiet or as_json) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "fitting agents" if stage == "fit" else "track record (days)"
                tasks[stage] = bar.add_task(label, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        the_policy = swarm_policy(rule)
        with usage_errors():
            result = run_swarm(series, roster, alphas=alphas, horizon=h, seed=seed,
                               consensus=with_consensus, track_days=days, workers=workers,
                               keys=keys, seq=seq, portfolio=str(series.name),
                               progress=progress, policy=the_policy,
                               track_cache=folder / "cache" / "track")
    runs = list(result.runs)
    console.print(render(runs, f"{h}-day VaR and ES as of {end} (losses in % of value)",
                         notional))
    agreed = list(result.agreed)
    kept = kept_words(agreed, the_policy, record=result.record) if agreed else ""
    if agreed:
        console.print(render_consensus(agreed, notional, the_policy))
        if kept:
            console.print(kept, markup=False)
    if notional is not None:
        console.print(f"in currency of {notional:,.0f} held long: VaR exact, N (1 - exp(-VaR)); "
                      "ES an upper bound, N (1 - exp(-ES)) (Jensen's inequality)", markup=False)
    if result.note:
        note = escape(result.note)
        console.print(note if agreed else f"[yellow]{note}[/yellow]")
    as_of = result.as_of
    assert as_of is not None  # a loaded series is dated
    with usage_errors():
        with Ledger.open(folder) as ledger:
            indices = record_beat(ledger, runs, source=str(series.name), as_of=as_of,
                                  consensus=agreed)
            root = ledger.compute_merkle_root(size=indices.stop).hex()
            where = ledger.path
        record_metrics(folder, variant_records(chosen, runs, time.time()))  # canary evidence
    console.print(f"recorded entries {indices.start}-{indices.stop - 1} in the ledger at "
                  f"{where} (Merkle root {root[:16]}…)", markup=False)
    if as_json or csv is not None:
        tables = _tables(result, notional)
        if as_json:
            write_json({
                "command": "var", "units": UNITS,
                "data": {"name": str(series.name), "first": str(first), "last": str(end),
                         "returns": len(series)},
                "as_of": as_of, "horizon": h, "seed": seed, "alphas": list(alphas),
                "forecasts": tables["forecasts"].to_dict(orient="records"),
                "agents": tables["agents"].to_dict(orient="records"),
                "consensus": tables["consensus"], "note": result.note,
                # each record's "method" is the ledger's name; this, the rule in words
                # (the weights: "note"), and the line saying why the consensus is (or
                # leans on) one agent's numbers, under any rule (kept_words)
                "consensus_rule": rule_words(agreed[0], the_policy) if agreed else None,
                "consensus_kept": kept or None,
                "ledger": {"path": str(where), "first_entry": indices.start,
                           "last_entry": indices.stop - 1, "merkle_root": root},
            })
        if csv is not None:
            import pandas as pd

            unit = UNITS["var, es, var_lo, var_hi, es_lo, es_hi"]
            written = write_csv_tables(csv, {
                "forecasts": (tables["forecasts"], f"var..es_hi {unit}; alpha confidence level; "
                              "weight consensus weight"),
                "agents": (tables["agents"], "fit_seconds seconds"),
                "consensus": (pd.DataFrame(tables["consensus"]), f"var, es, intervals {unit}"),
            })
            console.print(f"tables written to {', '.join(str(p) for p in written)}", markup=False)
    if not all(r.ok for r in runs):
        raise typer.Exit(code=1)
