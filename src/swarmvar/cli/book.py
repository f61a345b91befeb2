"""``swarmvar var --book`` / ``--positions`` and ``swarmvar backtest --book``: books on the CLI.

``var.py`` and ``backtest.py`` hand over here when a book is given; this
module parses the book, calls :func:`swarmvar.book_api.book_var` /
:func:`~swarmvar.book_api.book_backtest` and renders the tables (rich, or
``--json`` / ``--csv``). It owns no statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._common import (
    check_csv_folder,
    check_home,
    check_home_folders,
    check_horizon,
    check_kind,
    check_ledger,
    check_seed,
    check_whole,
    from_setting,
    home_words,
    make_console,
    parse_alphas,
    print_notes,
    str_list,
    usage_errors,
    write_csv_tables,
    write_json,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..book_api import BookResult
    from ..config import Setting
    from ..types import Book

#: What the numbers of the book tables are.
UNITS = {
    "var, es, var_lo, var_hi, es_lo, es_hi": "loss of the book over the horizon in its "
    "currency; _lo/_hi: 90% credible interval",
    "component_*": "Euler contribution to VaR/ES (currency; sums to the book's); _se: Monte "
    "Carlo standard error; _lo/_hi: 90% credible interval",
    "marginal_*": "d VaR / d position (loss per unit of currency added)",
    "incremental_*": "VaR/ES after the --trade minus before (currency)",
}

#: The bundled multi-asset data set used when --data is not given with a book.
DEFAULT_BOOK_DATA = "sp500-stocks"


def refuse_single_series_flags(given: dict[str, object]) -> None:
    """A usage error naming the single-series flags given with a book (they would be ignored).

    ``given`` maps each flag to its value (``None``: not given). A book's
    positions are already amounts in currency, so ``--notional`` has nothing
    to scale; the book paths have no ``--policy``, ``--column``, ``--report``,
    ``--plot`` or ``--horizon`` of their own. Refusing (exit 2, before any
    work) rather than noting it: a silently ignored number would leave the
    user reading a result they did not ask for.
    """
    extra = [flag for flag, value in given.items() if value is not None]
    if not extra:
        return
    why = ("a book's positions are already amounts in currency (a book of weights takes its "
           "notional in the book file); " if "--notional" in extra else "")
    raise typer.BadParameter(
        f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to a book "
        f"(--book/--positions): {why}drop {'it' if len(extra) == 1 else 'them'}, or leave out "
        "the book for a single series", param_hint=extra[0])


def book_settings(path: str, flags: dict[str, object]) -> dict[str, Setting]:
    """The settings book path ``path`` (``"var --book"``, ``"backtest --book"``) reads from
    the config file (:data:`swarmvar.config.BOOK_APPLIES`): a flag given wins over the file
    over the built-in default, as on the single-series paths. ``flags`` maps each of those
    keys to its flag's value (``None``: not given).

    Raises
    ------
    typer.Exit
        Code 2, the file's error (:class:`~swarmvar.errors.InvalidConfig`) naming the file
        and its key.
    TypeError
        ``flags`` not exactly the keys ``path`` reads (a caller's mistake).
    """
    from ..config import BOOK_APPLIES, load_config

    keys = BOOK_APPLIES[path]
    if set(flags) != set(keys):  # the path reads these, no other (not an assert: python -O)
        raise TypeError(f"book_settings({path!r}) was given the flags {sorted(flags)}; "
                               f"that path reads exactly {sorted(keys)}")
    with usage_errors():
        everything = load_config().effective(flags)
    return {key: everything[key] for key in keys}


def load_book(book: Path | None, positions: str | None) -> Book:
    """The book from ``--book FILE`` or ``--positions A=..,B=..`` (exactly one)."""
    from .. import books

    if (book is None) == (positions is None):
        raise typer.BadParameter("give either --book FILE or --positions A=600000,B=-400000",
                                 param_hint="--book")
    with usage_errors():
        return books.read_book(book) if book is not None else books.parse_positions(
            str(positions))


def parse_trade(trade: str | None) -> dict[str, float] | None:
    """``--trade AAPL=1000000`` -> ``{"AAPL": 1e6}``."""
    if trade is None:
        return None
    from .. import books

    with usage_errors():
        return books.parse_positions(trade).as_dict()


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:,.0f}, {hi:,.0f}]"


def render_book(result: BookResult) -> Table:
    """Every row's VaR and ES in currency, with credible intervals."""
    from rich.markup import escape
    from rich.table import Table

    days = result.horizon
    table = Table(title=f"{days}-day VaR and ES of the book (currency) as of "
                  f"{result.as_of.date() if result.as_of else '-'}", title_justify="left")
    for col in ("model", "alpha", "VaR  [90% CI]", "ES  [90% CI]", "seconds"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for row in result.rows():
        for i, alpha in enumerate(result.alphas):
            m = result.measure(row, alpha)
            label = f"[bold]{row}[/bold]" if row == "consensus" else row
            table.add_row(label if i == 0 else "", f"{alpha:g}",
                          f"{_money(m.var)}  {_ci(*m.var_interval)}",
                          f"{_money(m.es)}  {_ci(*m.es_interval)}",
                          f"{result.seconds.get(row, 0.0):.2f}" if i == 0 and row in
                          result.seconds else "")
    for row, why in result.errors.items():
        table.add_row(row, "", "", f"[red]failed: {escape(why)}[/red]", "")
    return table


def render_contributions(result: BookResult, row: str, alpha: float, top: int) -> Table:
    """Top contributors: component VaR/ES with errors and intervals, marginal risk."""
    from rich.table import Table

    frame = result.contributions(row, alpha).sort_values("component_es", ascending=False)
    table = Table(title=f"contributions to the {row} VaR/ES at {alpha:g} (Euler allocation; "
                  f"top {min(top, len(frame))} of {len(frame)} by ES)", title_justify="left")
    for col in ("asset", "position", "comp. VaR ± se  [90% CI]", "comp. ES ± se  [90% CI]",
                "% of ES", "marg. ES (per unit of ccy)"):
        table.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    for asset, r in frame.head(top).iterrows():
        table.add_row(str(asset), _money(r["position"]),
                      f"{_money(r['component_var'])} ± {_money(r['component_var_se'])}  "
                      f"{_ci(r['component_var_lo'], r['component_var_hi'])}",
                      f"{_money(r['component_es'])} ± {_money(r['component_es_se'])}  "
                      f"{_ci(r['component_es_lo'], r['component_es_hi'])}",
                      f"{100 * r['share_es']:.1f}%", f"{r['marginal_es']:.4f}")
    return table


def _tables(result: BookResult) -> dict[str, Any]:
    import pandas as pd

    forecasts = result.to_frame()
    contributions = pd.concat([
        result.contributions(row, a.alpha).reset_index().assign(model=row, alpha=a.alpha)
        for row, atts in result.attributions.items() for a in atts], ignore_index=True)
    incremental = pd.DataFrame([
        {"model": row, "alpha": i.alpha, "incremental_var": i.var, "incremental_es": i.es,
         "incremental_var_se": i.var_se, "incremental_es_se": i.es_se,
         "incremental_var_lo": i.var_interval[0], "incremental_var_hi": i.var_interval[1],
         "incremental_es_lo": i.es_interval[0], "incremental_es_hi": i.es_interval[1]}
        for row, incs in result.incremental.items() for i in incs])
    return {"forecasts": forecasts, "contributions": contributions, "incremental": incremental}


def book_var_command(*, data: str | None, kind: str, dropna: bool, book: Path | None,
                     positions: str | None, trade: str | None, alphas: list[str] | None,
                     horizon: int | None, agents: list[str] | None, last: int | None,
                     seed: int, home: Path | None, consensus: bool | None, as_json: bool,
                     csv: Path | None, quiet: bool, top: int = 10,
                     track_days: int | None = None) -> None:
    """``swarmvar var --book/--positions``: the book's VaR/ES, attribution and consensus.

    ``--track-days N`` backtests the agents on the book's last N days first and
    weights the consensus by their realized FZ0 loss (default 0 for a book:
    equal weights, as a backtest of the joint agents takes minutes).

    A config file gives ``home``, ``alphas``, ``horizon`` and ``consensus`` here
    (:func:`book_settings`); its other keys are the single series' (``agents``
    names single-series agents, not joint ones) and are left aside.
    """
    the_book = load_book(book, positions)
    wanted = parse_trade(trade)
    kind = check_kind(kind)
    settings = book_settings("var --book", {
        "alphas": alphas, "horizon": horizon, "consensus": consensus,
        "home": None if home is None else str(home)})
    levels = from_setting(settings["alphas"], lambda v: parse_alphas(str_list(v)))
    h = from_setting(settings["horizon"], check_horizon)
    window = check_whole(1000 if last is None else last, "--last", 30)
    seed = check_seed(seed)
    days = check_whole(0 if track_days is None else track_days, "--track-days", 0)
    folder = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    with_consensus = bool(settings["consensus"].value)
    check_csv_folder(csv)
    # an emptied or damaged ledger: refused before the fit, named as where the home came from
    check_ledger(folder, home_words(settings["home"]))
    # a file where the agents' keys go (<home>/keys): refused before the fit, not after it
    check_home_folders(folder, home_words(settings["home"]))
    source = data if data is not None else DEFAULT_BOOK_DATA
    console = make_console(quiet=quiet or as_json, stderr=as_json)
    from ..book_api import book_var
    from ..models.registry import book_agent_class

    with usage_errors():
        names = None if not agents else [book_agent_class(n).name for a in agents
                                         for n in a.replace(",", " ").split()]
        frame = _load(source, kind, dropna)
        result = book_var(frame, the_book, kind="return", agents=names, alphas=levels,
                          horizon=h, window=window, seed=seed, trade=wanted,
                          consensus=with_consensus, home=folder, track_days=days)
    console.print(render_book(result))
    lead = "consensus" if "consensus" in result.attributions else next(iter(result.attributions))
    for alpha in levels:
        console.print(render_contributions(result, lead, alpha, top))
    for row, incs in result.incremental.items():
        if row == lead:
            for i in incs:
                console.print(f"trade {trade}: incremental VaR {i.var:+,.0f} ± {i.var_se:,.0f} "
                              f"[{i.var_interval[0]:+,.0f}, {i.var_interval[1]:+,.0f}], ES "
                              f"{i.es:+,.0f} ± {i.es_se:,.0f} at {i.alpha:g} ({row})")
    if result.note:
        console.print(result.note, markup=False)
    ledgered: dict[str, Any] | None = None
    if result.ledger_entries is not None and as_json:
        from ..ledger import Ledger

        first, last = result.ledger_entries
        # the root of the ledger up to this run's last entry (as var --json names it): another
        # writer's entries appended since book_var closed it are not in it
        with usage_errors(), Ledger.open(folder) as ledger:
            ledgered = {"path": str(ledger.path), "first_entry": first, "last_entry": last,
                        "merkle_root": ledger.compute_merkle_root(size=last + 1).hex()}
    if result.ledger_entries is not None:
        console.print(f"recorded entries {result.ledger_entries[0]}-{result.ledger_entries[1]} "
                      f"in the ledger under {folder}")
    if as_json or csv is not None:
        tables = _tables(result)
        if as_json:
            shown = {k: v for k, v in tables.items() if len(v)}
            write_json({"command": "var", "book": the_book.as_dict(), "units": UNITS,
                        "as_of": result.as_of, "horizon": h, "alphas": list(levels),
                        "seed": seed, "note": result.note, "errors": dict(result.errors),
                        "ledger": ledgered,
                        **{k: v.to_dict(orient="records") for k, v in shown.items()}})
        if csv is not None:
            written = write_csv_tables(csv, {
                "forecasts": (tables["forecasts"], UNITS["var, es, var_lo, var_hi, es_lo, "
                                                         "es_hi"]),
                "contributions": (tables["contributions"], UNITS["component_*"] + "; "
                                  + UNITS["marginal_*"]),
                **({"incremental": (tables["incremental"], UNITS["incremental_*"])}
                   if len(tables["incremental"]) else {}),
            })
            console.print(f"tables written to {', '.join(str(p) for p in written)}")
    if result.errors:
        raise typer.Exit(code=1)


def _load(source: str, kind: str, dropna: bool) -> Any:
    from .. import books
    from ._common import is_stock_dataset

    if is_stock_dataset(source):  # the one rule of every command (any case, a file wins)
        return books.load_stocks(source.lower())
    if not Path(source).exists():
        raise typer.BadParameter(f"no such file {source!r} (bundled multi-asset data: "
                                 f"{', '.join(books.STOCK_DATASETS)})", param_hint="--data")
    return books.read_assets(source, kind=kind, dropna=dropna)  # type: ignore[arg-type]


def book_backtest_command(*, data: str | None, kind: str, dropna: bool, book: Path | None,
                          positions: str | None, alphas: list[str] | None, last: int | None,
                          window: int | None, refit_every: int | None,
                          agents: list[str] | None, seed: int, workers: int,
                          progress: bool, consensus: bool | None, baseline: bool,
                          home: Path | None, record: bool, as_json: bool, csv: Path | None,
                          quiet: bool) -> None:
    """``swarmvar backtest --book/--positions``: the joint agents out of sample on the book.

    A config file gives ``home``, ``alphas``, ``window``, ``refit_every`` and
    ``consensus`` here (:func:`book_settings`), each held to the book flag's bounds
    (``window`` >= 100); its other keys are the single series' and are left aside.
    """
    the_book = load_book(book, positions)
    kind = check_kind(kind)
    settings = book_settings("backtest --book", {
        "alphas": alphas, "window": window, "refit_every": refit_every,
        "consensus": consensus, "home": None if home is None else str(home)})
    levels = from_setting(settings["alphas"],
                          lambda v: parse_alphas(str_list(v), default=(0.99, 0.975)))
    n_last = check_whole(1000 if last is None else last, "--last", 1)
    n_window = from_setting(settings["window"], lambda v: check_whole(v, "--window", 100))
    every = from_setting(settings["refit_every"],
                         lambda v: check_whole(v, "--refit-every", 1))
    seed = check_seed(seed)
    folder = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    with_consensus = bool(settings["consensus"].value)
    check_csv_folder(csv)
    if record:  # an emptied or damaged ledger: refused before the backtest, not after it
        check_ledger(folder, home_words(settings["home"]))
    source = data if data is not None else DEFAULT_BOOK_DATA
    console = make_console(quiet=quiet or as_json, stderr=as_json)
    from ..book_api import book_backtest
    from ..models.registry import book_agent_class
    from .backtest import render

    with usage_errors():
        names = None if not agents else [book_agent_class(n).name for a in agents
                                         for n in a.replace(",", " ").split()]
        frame = _load(source, kind, dropna)
        result = book_backtest(frame, the_book, kind="return", agents=names, last=n_last,
                               window=n_window, refit_every=every, alphas=levels, seed=seed,
                               consensus=with_consensus, baselines=baseline,
                               workers=workers, progress=progress and not (quiet or as_json))
    console.print(render(result))
    console.print(f"losses per unit of the book's gross exposure ({the_book.gross:,.0f}); "
                  "multiply by it for currency")
    print_notes(console, result.notes)  # as the single-series backtest shows them
    ledgered: dict[str, Any] | None = None
    if record:
        from ..ledger import Ledger
        from ..swarm.record import record_backtest

        with usage_errors(), Ledger.open(folder) as ledger:
            indices = record_backtest(ledger, result, source="book", config={
                "seed": seed, "book": the_book.as_dict()})
            root = ledger.compute_merkle_root(size=indices.stop).hex()
            where = ledger.path
        ledgered = {"path": str(where), "first_entry": indices.start,
                    "last_entry": indices.stop - 1, "merkle_root": root}
        console.print(f"recorded entries {indices.start}-{indices.stop - 1} (daily forecasts, "
                      f"tests, summary) in the ledger at {where} (Merkle root {root})",
                      markup=False)
    if as_json or csv is not None:
        import pandas as pd

        rows = pd.DataFrame([
            {"model": row, "alpha": alpha, "hits": int(result.series[row][alpha].hits.sum()),
             "days": len(result.dates), **{f"{t.value}_pvalue": r.pvalue
                                           for t, r in ev.tests.items()}, "fz0": ev.fz0}
            for row, evs in result.evaluation.items() for alpha, ev in evs.items()])
        if as_json:
            write_json({"command": "backtest", "book": the_book.as_dict(),
                        "gross": the_book.gross, "rows": rows.to_dict(orient="records"),
                        "notes": {k: list(v) for k, v in result.notes.items()},
                        "ledger": ledgered})
        if csv is not None:
            write_csv_tables(csv, {"tests": (rows, "hits counts; p-values of each test")})
