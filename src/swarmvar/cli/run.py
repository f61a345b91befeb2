"""``swarmvar run``: the living swarm — beats for many portfolios, ledgered, resumable."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    agents_listing,
    check_data,
    check_home,
    check_home_folders,
    check_horizon,
    check_policy,
    check_positive,
    check_processes,
    check_whole,
    cli_words,
    default_agents,
    fail,
    from_file_line,
    from_setting,
    home_words,
    is_dataset,
    is_stock_dataset,
    make_console,
    parse_alphas,
    resolve_agents,
    str_list,
    swarm_policy,
    usage_error,
    usage_errors,
)

if TYPE_CHECKING:
    from ..config import Setting

#: ``--rate`` bounds, ticks a second: slower than one tick in ~11.6 days or faster than a
#: million a second is a typo (and 1/rate must stay a representable sleep).
MIN_RATE = 1e-6
MAX_RATE = 1e6
#: ``--checkpoint-every`` of a fresh start (a resume keeps the home's).
CHECKPOINT_EVERY = 250


def _portfolios(path: Path | None, data: Any) -> dict[str, Any]:
    """``{name: {"weights"|"positions": {...}}}`` from a JSON file, or one portfolio per series."""
    if path is None:
        if hasattr(data, "columns"):
            return {str(c): {} for c in data.columns}
        return {str(data.name or "portfolio"): {}}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {path} as JSON: {exc}",
                                 param_hint="--portfolios") from None
    if isinstance(doc, list):
        doc = {str(p.pop("name")): p for p in doc if isinstance(p, dict) and "name" in p}
    if not isinstance(doc, dict) or not doc:
        raise typer.BadParameter("expected {name: {\"weights\": {asset: w}} | "
                                 "{\"positions\": {asset: amount}}, ...}",
                                 param_hint="--portfolios")
    from ..errors import InvalidParameter
    from ..swarm.ticks import specs_from

    try:  # the swarm's own rule for a portfolio, checked before the home opens
        specs_from(doc)
    except InvalidParameter as exc:
        raise typer.BadParameter(cli_words(str(exc)), param_hint="--portfolios") from None
    return doc


def _data(source: str) -> Any:
    """A bundled series (sp500, nasdaq), the bundled stocks (sp500-stocks: daily log returns
    of 20 S&P 500 stocks from 2000, as ``var --positions`` reads them) or a CSV/Parquet
    file of returns: dates, then assets.

    A file goes through :func:`swarmvar.data.read_table` (the data layer's checks of the
    file, its dates and its cells); its rows (NaN, inf, percent, dates out of order) are
    left to the run, which refuses them tick by tick.
    """
    from .. import data as data_mod
    from ..errors import SwarmVarError

    if is_dataset(source):
        return data_mod.load(source.lower())
    if is_stock_dataset(source):
        from ..books import load_stocks

        return load_stocks(source.lower())
    try:
        return data_mod.read_table(Path(source))
    except SwarmVarError as exc:
        raise typer.BadParameter(f"{cli_words(str(exc))} (--data takes a table of returns: a "
                                 "date column, then one column per asset; CSV or Parquet)",
                                 param_hint="--data") from None


def _check_followed_dates(path: Path) -> None:
    """``--follow`` reads each new row's date as ISO (``swarm.FollowedFile``), not with the
    data layer's parser that read the file: a day-first or month-first file would load,
    then ledger every followed row as a refused tick. Refuse it here, before the home opens."""
    from ..errors import InvalidTick
    from ..swarm.ticks import as_utc

    try:
        with path.open(encoding="utf-8", newline="") as fh:
            fh.readline()  # the header
            first = fh.readline().split(",", 1)[0].strip()
    except (OSError, UnicodeDecodeError):
        return  # the data layer read it already; the follower says what it meets
    try:
        as_utc(first)
    except InvalidTick:
        raise typer.BadParameter(
            f"it reads ISO dates (YYYY-MM-DD) as rows arrive; {path.name}'s first date "
            f"is {first!r}: write the file's dates as YYYY-MM-DD to follow it (without "
            "--follow, the run replays it as read)", param_hint="--follow") from None


def _settings(flags: dict[str, object]) -> dict[str, Setting]:
    """The settings of ``run`` that a config file may give (``config.APPLIES``): a flag
    given wins over the file over the built-in default.

    Raises
    ------
    typer.Exit
        Code 2, the file's error (:class:`~swarmvar.errors.InvalidConfig`) naming the file
        and its key.
    """
    from ..config import load_config

    with usage_errors():
        everything = load_config().effective(flags)
    return {key: everything[key] for key in flags}


def _file_forms(key: str) -> str:
    """The forms in which the engines' messages name a setting ``key`` (a regex): a
    resume's fingerprint difference ``window: saved 60, now 70`` and, for ``refit_every``,
    the refit-rhythm check's ``refit_every 20`` (and its closing "at most refit_every").
    Only these: a key that merely appears as a word (``agents = ["nig"]`` in the file, a
    book's "agents") is not the setting, and a dotted key (``roles.refit_lag``,
    ``policy.window``) is the checkpoint's own name, never a flag."""
    import re

    word = rf"(?<![-\w.]){re.escape(key)}"
    if key == "refit_every":
        return rf"{word}(?=: saved| \d|$)"
    return rf"{word}(?=: saved)"


def _file_words(message: str, settings: dict[str, Setting]) -> str:
    """An engine's message in the words of where each setting came from: a key a config file
    gave stays the file's key in the forms the engines name settings (:func:`_file_forms`),
    and the message ends naming the file and its value; the others become flags
    (:func:`cli_words`); never a flag not given. A file-given home is named as
    :func:`home_words` does (``swarmvar.toml: home = "/srv/risk"``)."""
    import re

    from ._common import _toml

    home = settings.get("home")
    if home is not None and home.source not in ("flag", "default"):
        message = message.replace("(--home on the command line, home= in Python)",
                                  f"({home_words(home)})")
    # checkpoint_every has no config key: a resume keeps the home's, given as the flag
    message = re.sub(r"(?<![-\w.])checkpoint_every: saved", "--checkpoint-every: saved",
                     message)
    # nor a book's attribution rhythm (run always hands book_var: 0 is --attribute-every 0)
    message = re.sub(r"(?<![-\w.])attribution\.every of ", "--attribute-every of ", message)
    marks, named = {}, []
    for i, (key, s) in enumerate(settings.items()):
        if s.source == "flag":  # a resume's "window: saved 60, now 70" as --window's
            flag = "--alpha" if key == "alphas" else "--" + key.replace("_", "-")
            message = re.sub(_file_forms(key), flag, message)
        if s.source in ("flag", "default") or key == "home":
            continue
        mark = f"\x00{i}\x00"
        message, n = re.subn(_file_forms(key), mark, message)
        if n:
            marks[mark] = key
            named.append(f"{key} = {_toml(s.value)} in {s.source}")
    message = cli_words(message)
    for mark, key in marks.items():
        message = message.replace(mark, key)
    return message + (f" ({'; '.join(named)})" if named else "")


def _check_quorum(rule: str | None, names: list[str], settings: dict[str, Setting]
                  ) -> str | None:
    """The consensus rule's least number of agents (``Aggregator.min_agents`` of its ``f``,
    as ``backtest`` and ``api.var`` ask it) against the roster (``names``: the agents and
    the plug-in agents, as the runtime counts them), before any work: a run below
    it beats with no consensus at all. A rule that was chosen (``--policy krum``, or the
    config file's ``policy``) is refused; under the default rule a roster too small (one
    agent: its forecasts ledgered, no consensus) runs, and the warning to print is returned.

    Raises
    ------
    typer.Exit
        Code 2, naming the flag or the file's key, the rule in words (``Policy.describe``)
        and the agents given.
    """
    from ._common import _toml

    chosen = swarm_policy(rule)
    need = chosen.aggregator.min_agents(chosen.f)
    if len(names) >= need:
        return None
    pol = settings["policy"]
    given = (f"{len(names)} agent{'s' if len(names) != 1 else ''} "
             f"{'is' if len(names) == 1 else 'are'} given ({', '.join(names)})")
    said = f"{chosen.describe(len(names))}, and {given}"
    if pol.source == "default":
        return (f"warning: no consensus in this run: {said} (each agent's forecasts are "
                f"ledgered; give at least {need} --agents for a consensus)")
    who = (f"--policy {pol.value}" if pol.source == "flag" else
           f"{pol.source}: policy = {_toml(pol.value)}")
    raise usage_error(f"{who}: {said}; give more --agents or another --policy")


def _fail_run(exc: Exception, data: str, settings: dict[str, Setting] | None = None
              ) -> typer.Exit:
    """The run's error, one line; bad returns in a --data file name the file and say that
    ``run`` reads returns (a file of prices fails there, at its first row); a resume refused
    over a setting names the config file's key when the file gave it."""
    from ..errors import InvalidReturns, ResumeMismatch, SwarmVarError

    if isinstance(exc, ResumeMismatch) and settings is not None:
        return usage_error(_file_words(str(exc), settings))

    if isinstance(exc, InvalidReturns) and not is_dataset(data) \
            and not is_stock_dataset(data):
        name = Path(data).name
        message = cli_words(str(exc))
        if not message.startswith(f"{name}:"):
            message = f"{name}: {message}"
        return usage_error(f"--data {message} (swarmvar run reads returns: a date column, then "
                           "one column of log returns per asset; if the file holds prices, "
                           "convert them to returns first)")
    return fail(exc) if isinstance(exc, SwarmVarError) else usage_error(str(exc))


def _check_attribute_every(every: int | None) -> None:
    """``--attribute-every``: what :class:`~swarmvar.swarm.RoleConfig` takes, 0 (off) to
    ``MAX_ATTRIBUTE_EVERY`` beats; else a usage error (exit 2), before the home opens."""
    from ..errors import SwarmVarError
    from ..swarm import RoleConfig
    from ..swarm.attribution import MAX_ATTRIBUTE_EVERY

    try:
        RoleConfig(attribute_every=every)
    except SwarmVarError:
        raise typer.BadParameter(f"must be a number of beats from 0 (off) to "
                                 f"{MAX_ATTRIBUTE_EVERY:,}, got {every}",
                                 param_hint="--attribute-every") from None


def _book_var() -> Any:
    """:func:`swarmvar.book_var`, which the runtime's attribution calls (it may not import
    a face itself)."""
    from ..book_api import book_var

    return book_var


def _check_refits(refit_every: int, refit_lag: int, settings: dict[str, Setting]) -> None:
    """The runtime's own rules for a deferred refit (``RoleConfig``'s lag, and
    ``check_refit_rhythm``: a lag no longer than the refit rhythm), asked before the data is
    read, a worker, Ray or a mesh node started or the home created. Its message names the
    flags, or the config file's key when the file gave ``refit_every`` (exit 2)."""
    from ..errors import SwarmVarError
    from ..swarm import RoleConfig
    from ..swarm.beat import check_refit_rhythm

    try:
        RoleConfig(refit_lag=refit_lag)
        check_refit_rhythm(refit_lag, refit_every)
    except SwarmVarError as exc:
        raise usage_error(_file_words(str(exc), settings)) from None


def _check_spread(spread: int, workers: int, refit_lag: int, boxes: Any) -> None:
    """The runtime's rules for ``--spread`` (``swarm.spread.check_spread``), asked before any
    work; the executor's hosts: ``--workers`` processes (Ray shards), this process for 0."""
    from ..errors import InvalidParameter
    from ..swarm.spread import check_spread

    try:
        check_spread(spread, hosts=max(1, workers), refit_lag=refit_lag,
                     sandboxed=boxes is not None)
    except InvalidParameter as exc:
        raise typer.BadParameter(cli_words(str(exc)), param_hint="--spread") from None


def _home_run(home: Path) -> tuple[dict[str, Any] | None, bool]:
    """The home's run record (the swarm's last checkpoint: ``swarm/_recovery.py`` writes it
    under :data:`~swarmvar.swarm._records.RUN_KEY`), read without opening the swarm, and
    whether that checkpoint holds the arbiter's state (an observer key
    ``swarm-observer:arbiter:<portfolio>``: the run had ``--arbiter``). ``(None, False)``
    for a home with no checkpoint (a fresh start). Nothing is made in the home: one with no
    lifecycle database has no checkpoint; one with a database but no ``states`` folder
    (where the packs are, which the state store would make) has none unless its database
    lists the run's, whose packs are then gone: a usage error here, before the executor
    opens.

    Raises
    ------
    typer.Exit
        Code 2: the home's database is locked, damaged or unreadable.
    """
    import json

    from ..arbiter import Arbiter
    from ..evolution import Database, StateStore, UnknownState
    from ..evolution.db import DB_FILE
    from ..swarm._records import OBSERVER_PREFIX, RUN_KEY

    if not (home / DB_FILE).is_file():
        return None, False
    with usage_errors():
        db = Database(home)
        try:
            if not (home / "states").is_dir():  # the database alone says if there was a run
                listed = db.read_one("SELECT version FROM state_current WHERE agent_id=?",
                                     (RUN_KEY,))
                if listed is None:
                    return None, False
                raise usage_error(f"--home {home}: the database lists this home's run, but "
                                  f"its checkpoint packs ({home / 'states'}) are gone; "
                                  "restore them, or give another --home")
            states = StateStore(db)
            try:
                run: dict[str, Any] = json.loads(states.get(RUN_KEY).decode())
            except UnknownState:
                return None, False
            key = f"{OBSERVER_PREFIX}{Arbiter.state_key}:"
            judged = False
            for portfolio in run.get("marks", {}):
                try:
                    states.ref(key + str(portfolio))
                except UnknownState:
                    continue
                judged = True
                break
            return run, judged
        finally:
            db.close()


def _check_arbiter_resume(words: str, arbiter: bool, judged: bool) -> None:
    """A resume keeps the arbiter the home ran with: its quarantines are circuit breakers
    in the home and its state (alert episodes, PID) rides the checkpoints, so a resume
    without ``--arbiter`` would drop the quarantines while their breakers stay open. The
    evidence is the home's last checkpoint (``judged``, :func:`_home_run`): it holds the
    arbiter's state. Its options (``--k-flows/--p-nodes/--t1/--t-threshold``) and
    thresholds ride in that state and are checked by the arbiter's restore
    (``ArbiterOptionsMismatch``, a ``ResumeMismatch``: exit 2). Turning the arbiter on for a
    home that ran without it is allowed: it decides from the next beat.

    Raises
    ------
    typer.Exit
        Code 2 before any work, naming the home (``words``).
    """
    if judged and not arbiter:
        raise usage_error(
            f"{words}: this home's run has the arbiter on (its checkpoint holds the "
            "arbiter's state); without --arbiter the resume would drop its quarantines and "
            "alerts while their circuit breakers stay open in the home: resume with "
            "--arbiter (and the options it ran with), or give another home")


def _check_mesh_node(home: Path, mesh: bool, port: int | None, peers: list[str],
                     node_id: str | None, cluster: Path | None, key: Path | None,
                     agree_every: int) -> Any:
    """The mesh node's settings (``mesh.launch.check_swarm_node``: its port, cluster file,
    node id, key file and peers), checked before any work: a refusal reads no data and
    leaves no home; the node is bound only after the swarm is built. None without --mesh."""
    if not mesh:
        return None
    from ..mesh.launch import check_swarm_node

    with usage_errors():
        return check_swarm_node(home, port=port, peers=peers, node_id=node_id,
                                cluster=cluster, key=key, agree_every=agree_every)


def _sandbox_setup(sandbox: str | None, plugins: list[str], paths: list[Path]) -> Any:
    """The runtime's sandbox setup (``SandboxSetup``: its backend names, plug-ins and their
    rules, e.g. none to E2B), built before any work; its refusal a usage error."""
    from ..errors import InvalidParameter
    from ..swarm.sandboxing import SandboxSetup

    try:
        return SandboxSetup.from_options(sandbox, plugins, [str(f) for f in paths])
    except InvalidParameter as exc:
        raise typer.BadParameter(cli_words(str(exc)), param_hint=["--sandbox", "--plugin"]
                                 if plugins else "--sandbox") from None


def _close_started(swarm: Any, host: Any, node: Any) -> None:
    """Close what a refused start made: the swarm (it closes its executor), else the
    executor (a Ray session), and the mesh node (bound sockets)."""
    for part in (swarm if swarm is not None else host, node):
        if part is not None:
            try:
                part.close()
            except Exception:  # noqa: BLE001 - closing on the way out of a refusal
                pass


def _money(net: float, loss: float) -> str:
    """A loss in % of the net value as currency, ``net (1 - exp(-loss))`` (exact for a VaR,
    an upper bound for an ES: ``books.currency_loss``)."""
    from ..books import currency_loss

    return f"{currency_loss(net, loss):,.0f}"


#: At most this many positions portfolios get a closing line in currency.
CURRENCY_LINES = 10


def _currency_lines(swarm: Any) -> list[str]:
    """Each positions portfolio's last consensus in currency (the closing lines): the first
    ``CURRENCY_LINES`` with one, then how many more there are."""
    shown = []  # positions portfolios with a consensus, kept before the cap
    for name, spec in swarm.specs.items():
        net, rep = spec.net_value, swarm.latest(name)
        if net is not None and rep is not None and rep.consensus:
            shown.append((name, net, rep))
    lines = []
    for name, net, rep in shown[:CURRENCY_LINES]:
        levels = "; ".join(f"VaR {c.alpha:g} {100 * c.var:.2f}% = {_money(net, c.var)}, ES "
                           f"{100 * c.es:.2f}% = {_money(net, c.es)}" for c in rep.consensus)
        lines.append(f"{name} (positions, net value {net:,.0f}) as of {rep.as_of.date()}: "
                     f"{levels} (% of net value; ES in currency an upper bound)")
    if len(shown) > CURRENCY_LINES:
        more = len(shown) - CURRENCY_LINES
        lines.append(f"and {more} more positions portfolio{'s' if more != 1 else ''} "
                     "(the ledger holds every beat)")
    return lines


#: The live table's optional columns, the least important first: at a console too narrow
#: for the whole table they are dropped in this order until it fits (``_table``). The
#: decisions and role events are also said in the alert lines and the ledger, the beat
#: in the closing summary, m/n (agents available of the roster) in the ledger's consensus
#: entries; the consensus (portfolio, date, VaR and ES) stays.
DROPPED_FIRST = ("decisions", "event", "m/n", "beat", "ccy", "breaches", "interval")
#: The optional columns in the order they are dropped: :data:`DROPPED_FIRST` with a book's
#: top VaR drivers (its latest attribution's three largest shares of the consensus VaR at
#: the first level; shown once one has landed) after the decisions and the role event.
DROP_ORDER = (*DROPPED_FIRST[:2], "drivers", *DROPPED_FIRST[2:])
#: A book's drivers shown in the live table.
TOP_DRIVERS = 3
#: The portfolio column's least width in the live table (a longer name folds onto more
#: lines; a shorter column is as wide as the longest name).
PORTFOLIO_MIN = 12


def _table_rows(swarm: Any, breaches: dict[str, int], events: dict[str, str],
                arbiter: bool) -> tuple[list[float], bool, list[dict[str, Any]]]:
    """The live table's cells, each portfolio's (the first 40) by column key; the levels,
    and whether any portfolio holds positions (the currency columns)."""
    from rich.markup import escape

    nets = {name: spec.net_value for name, spec in swarm.specs.items()}
    money = any(v is not None for v in nets.values())
    alphas = list(next(iter(swarm.configs.values())).alphas)
    rows = []
    for name in list(swarm.portfolios())[:40]:
        rep = swarm.latest(name)
        net = nets.get(name)
        row: dict[str, Any] = {"label": escape(name) + (f" (net {net:,.0f})" if net is not None
                                                       else ""),
                               # the net figure's width: the portfolio column is kept at
                               # least this wide, so that the figure never folds
                               "net width": len(f"{net:,.0f})") if net is not None else 0}
        if rep is None:
            rows.append(row | {"beat": "-", "as of": "-"})
            continue
        row |= {"beat": str(rep.seq), "as of": rep.as_of.date().isoformat(),
                "m/n": (f"{rep.consensus[0].available}/{rep.consensus[0].total}"
                        if rep.consensus else "-"),
                "breaches": str(breaches.get(name, 0)),
                "event": escape(events.get(name, "")[:40])}
        said = _drivers(swarm, name)
        if said:
            row["drivers"] = escape(said)
        if arbiter:
            row["decisions"] = escape(", ".join(
                d.action.value + (f" {'+'.join(d.agents)}" if d.agents else "")
                for d in rep.decisions)[:40])
        for i in range(len(alphas)):
            c = rep.consensus[i] if i < len(rep.consensus) else None
            if c is None:
                row |= {f"var{i}": "n/a", f"es{i}": "n/a", f"ccy{i}": "n/a" if money else ""}
                continue
            row |= {f"var{i}": f"{100 * c.var:.2f}%", f"es{i}": f"{100 * c.es:.2f}%",
                    f"interval{i}": (f" [{100 * c.var_interval[0]:.2f}, "
                                     f"{100 * c.var_interval[1]:.2f}]"),
                    f"ccy{i}": _money(net, c.var) if net is not None else ""}
        rows.append(row)
    return alphas, money, rows


def _drivers(swarm: Any, name: str) -> str:
    """A book's top VaR drivers from its latest attribution, ``x 41%, y 30%, z 12%`` (the
    share of the consensus VaR, first level); "" before one has landed, or for a series."""
    latest = getattr(swarm, "attribution", None)
    found = latest(name) if callable(latest) else None
    if found is None:
        return ""
    top = found.top(TOP_DRIVERS)
    if not top:
        return f"beat {found.seq}: no consensus"
    return ", ".join(f"{asset[:12]} {100 * share:.0f}%" for asset, share in top)


def _columns(rows: list[dict[str, Any]], alphas: list[float], shown: set[str]
             ) -> list[tuple[str, list[str], str]]:
    """The live table's columns after the portfolio's, those of ``shown`` among the optional
    ones: (header, the rows' cells, justify)."""
    cols: list[tuple[str, list[str], str]] = []

    def add(header: str, key: str, justify: str = "right") -> None:
        cols.append((header, [r.get(key, "") for r in rows], justify))

    if "beat" in shown:
        add("beat", "beat")
    add("as of", "as of", "left")
    for i, a in enumerate(alphas):
        if "interval" in shown:
            cols.append((f"VaR {a:g} [interval]", [r.get(f"var{i}", "") + r.get(f"interval{i}",
                                                                                  "")
                                                   for r in rows], "right"))
        else:
            add(f"VaR {a:g}", f"var{i}")
        add(f"ES {a:g}", f"es{i}")
        if "ccy" in shown:
            add(f"VaR {a:g} (ccy)", f"ccy{i}")
    for key, header in (("m/n", "m/n"), ("breaches", "breaches"),
                        ("drivers", "top VaR drivers (share)"),
                        ("event", "last role event"), ("decisions", "last decisions")):
        if key in shown:
            add(header, key, "right" if key in ("m/n", "breaches") else "left")
    return cols


def _width(cols: list[tuple[str, list[str], str]], label: int,
           known: dict[str, int] | None = None) -> int:
    """The width of a table of these columns (each as wide as its widest cell or header)
    after a portfolio column ``label`` wide: rich's default box, an edge, a rule and one
    space of padding either side of each column. ``known``: the columns' widths by header,
    measured once per table (each try of a narrower table measures no column again)."""
    from rich.cells import cell_len

    known = {} if known is None else known
    for h, cells, _ in cols:
        if h not in known:
            known[h] = max(cell_len(h), *(cell_len(c) for c in cells), 0)
    return 1 + (label + 3) + sum(known[h] + 3 for h, _, _ in cols)


def _table(swarm: Any, breaches: dict[str, int], events: dict[str, str],
           arbiter: bool = False, width: int | None = None) -> Any:
    """The live table of the consensus per portfolio, fitted to ``width`` columns (the
    console's; None: every column): the optional columns go, :data:`DROPPED_FIRST` first,
    until it fits with the portfolio column at least :data:`PORTFOLIO_MIN` wide (a long
    name folds), so that no number is ever cut to ``…``. The widths are computed from the
    cells' lengths (one table built per draw, not one per try). When even the consensus
    alone does not fit, one row per portfolio and level (:func:`_long_table`)."""
    from rich.markup import escape
    from rich.table import Table

    alphas, money, rows = _table_rows(swarm, breaches, events, arbiter)
    drivers = any("drivers" in r for r in rows)
    optional = [k for k in DROP_ORDER if (k != "ccy" or money)
                and (k != "decisions" or arbiter) and (k != "drivers" or drivers)]
    title = ("swarmvar run — consensus per portfolio (VaR/ES: losses in % of value"
             + ("; a positions portfolio: % of its net value, and in currency)" if money
                else ")"))
    longest = max((len(r["label"]) for r in rows), default=0)
    label = max(len("portfolio"), min(PORTFOLIO_MIN, longest),
                *(r["net width"] for r in rows))
    shown = set(optional)
    cols = _columns(rows, alphas, shown)
    if width is not None:
        known: dict[str, int] = {}
        for key in optional:
            if _width(cols, label, known) <= width:
                break
            shown.discard(key)
            cols = _columns(rows, alphas, shown)
        if _width(cols, label, known) > width:
            return _long_table(rows, alphas, title, width)
    table = Table(title=title, title_justify="left")
    table.add_column("portfolio", overflow="fold", min_width=label)  # the one that may wrap
    for header, _, justify in cols:
        table.add_column(escape(header), no_wrap=True, justify=justify)  # type: ignore[arg-type]
    for i, r in enumerate(rows):
        table.add_row(r["label"], *(cells[i] for _, cells, _ in cols))
    return table


def _long_table(rows: list[dict[str, Any]], alphas: list[float], title: str,
                width: int) -> Any:
    """The live table for a console too narrow for one row per portfolio: one row per
    portfolio and level (its VaR and ES), the date when it fits."""
    from rich.table import Table

    levels = [f"{a:g}" for a in alphas]
    long_rows = [{"label": r["label"] if i == 0 else "", "level": lvl,
                  "var": r.get(f"var{i}", ""), "es": r.get(f"es{i}", ""),
                  "as of": r.get("as of", "") if i == 0 else ""}
                 for r in rows for i, lvl in enumerate(levels)]
    cols = [("level", [r["level"] for r in long_rows], "right"),
            ("VaR", [r["var"] for r in long_rows], "right"),
            ("ES", [r["es"] for r in long_rows], "right")]
    dated = [*cols, ("as of", [r["as of"] for r in long_rows], "left")]
    label = max(len("portfolio"), *(r["net width"] for r in rows))
    if _width(dated, label) <= width:
        cols = dated
    table = Table(title=title, title_justify="left")
    table.add_column("portfolio", overflow="fold", min_width=label)
    for header, _, justify in cols:
        table.add_column(header, no_wrap=True, justify=justify)  # type: ignore[arg-type]
    for i, r in enumerate(long_rows):
        table.add_row(r["label"], *(cells[i] for _, cells, _ in cols))
    return table


def decision_words(d: Any, as_of: Any = None) -> str | None:
    """An ALERT or QUARANTINE decision in words a risk user can act on: where and when, then
    the arbiter's reason, which says what the action means, names the agents with the kinds
    of anomaly behind each (``arbiter.decide.describe_agents``) and ends with the deciding
    numbers in brackets. An alert raised again inside an open episode names only the agents
    new to it. None for the other actions (the table's last column shows them)."""
    from ..arbiter.decide import QUARANTINED
    from ..types import Action

    when = f" ({as_of.date()})" if as_of is not None else ""
    where = f"{d.portfolio} at beat {d.seq}{when}"
    if d.action is Action.ALERT:
        again = _raised_again(d)
        if again is not None:  # an open episode naming another agent: not a fresh alert
            since, new = again
            return (f"alert on {d.portfolio}: the alert open since beat {since} now also "
                    f"names {new} (at beat {d.seq}{when}; its threat score {d.threat:.2f})")
        return f"alert on {where}: {d.reason}"
    if d.action is Action.QUARANTINE:  # what it means is said once, at the end, so the
        # reason's first words (``arbiter.decide.QUARANTINED``) are left out
        reason = d.reason.removeprefix(QUARANTINED)
        return (f"quarantine on {where}: {reason}; the consensus goes on without "
                f"{'it' if len(d.agents) == 1 else 'them'} until probation passes")
    return None


def closed_words(portfolio: str, closed: Any) -> str:
    """The end of a portfolio's alert episode in words (``Arbiter.alert_closed``: the beats
    it spanned and the agents it named)."""
    agents = list(closed.get("agents") or ())
    named = f"; it named {', '.join(map(str, agents))}" if agents else ""
    return (f"alert on {portfolio} closed at beat {closed['until']} (open since beat "
            f"{closed['since']}{named})")


def closed_on(judge: Any, rep: Any) -> Any:
    """The ``alert_closed`` event of ``rep``'s beat (``Arbiter.alert_closed``), None when its
    portfolio's alert episode did not close on that beat or there is no arbiter (``judge``
    None). Looked up by the beat's ``seq``: of several reports of one portfolio handed over
    at once (a catch-up), the one of the beat it closed on says it, once."""
    return None if judge is None else judge.alert_closed(rep.portfolio, rep.seq)


def _raised_again(d: Any) -> tuple[int, str] | None:
    """An ALERT raised inside an open alert episode: the beat the episode opened and the
    agents it names anew, in the arbiter's words (``describe_agents``: the kinds of
    anomaly behind each); else the reason's words there. None for a fresh alert, and for
    one raised inside an episode with no agent new (a quarantine-level alert: its full
    reason is said instead).

    The decision's structured signals say it when the arbiter writes them
    (``raised_again`` 1, ``episode_since``, ``episode_new:<agent>`` 1); else its reason
    (``arbiter.decide.RAISED_AGAIN``, the beat, then the agents' names, each compared
    whole: ``MarkovSwitching`` is not ``MarkovSwitchingGarch``).
    """
    import re

    from ..arbiter.decide import RAISED_AGAIN, describe_agents, short_name

    signals = d.signals
    if "raised_again" in signals and "episode_since" in signals:
        if not signals["raised_again"]:
            return None
        since = int(signals["episode_since"])
        new = [a for a in d.agents if signals.get(f"episode_new:{a}")]
        # none new: a quarantine-level alert inside the episode, said with its full reason
        return (since, describe_agents(new, signals)) if new else None
    at = d.reason.find(RAISED_AGAIN)
    if at < 0:
        return None
    tail = d.reason[at + len(RAISED_AGAIN):]
    found = re.search(r"\d+", tail)
    if found is None:
        return None
    listed = tail[found.end():].lstrip(" :").split("[")[0].strip(" ;.")
    names = {part.strip() for part in listed.split(", ")}
    new = [a for a in d.agents if a in names or short_name(a) in names]
    if not new:
        return int(found.group()), listed or "another agent"
    return int(found.group()), describe_agents(new, signals)


def no_consensus_words(rep: Any) -> str | None:
    """Why a beat has no consensus (the table then shows n/a), in words: the consensus's
    refusal (``BeatReport.rejected["consensus"]``, e.g. too few agents left after
    quarantines or failures), else the agents' own. None when the beat has one (or is a
    spread group's, combined elsewhere)."""
    if rep.consensus:
        return None
    from ..swarm._beat_types import CONSENSUS

    rejected = dict(rep.rejected)
    why = rejected.pop(CONSENSUS, None)
    agents = "; ".join(f"{a}: {r}" for a, r in list(rejected.items())[:5])
    if why is None and not agents:
        return None
    what = cli_words(why) if why is not None else "no agent gave a usable forecast"
    more = f" (agents out: {agents})" if agents else ""
    return (f"no consensus for {rep.portfolio} at beat {rep.seq} ({rep.as_of.date()}): "
            f"{what}{more}; its VaR shows n/a until the consensus returns (said once until "
            "then; the ledger records every beat's)")


def _consensus_lost(rep: Any, unagreed: set[str]) -> str | None:
    """Why a beat has no consensus (:func:`no_consensus_words`), said once per portfolio
    (not n/a in silence, not a line per beat): ``unagreed`` holds the portfolios it was
    said for; a beat with a consensus takes its portfolio out again, so that a later loss
    is said again. None: nothing to say."""
    if rep.consensus:
        unagreed.discard(rep.portfolio)
        return None
    why = no_consensus_words(rep)
    if why is None or rep.portfolio in unagreed:
        return None
    unagreed.add(rep.portfolio)
    return why


class _AttributionWarnings(logging.Handler):
    """The attribution role's WARNINGs (a skipped, failed or stuck attribution) on stderr:
    ``run`` sets no handler of its own, and the ``swarmvar`` logger has a NullHandler."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if record.module == "attribution":
            typer.echo(f"warning: {record.getMessage()}", err=True)


def _said_here(record: logging.LogRecord) -> bool:
    """The swarm's log line of an alert (``ALERT_LOG``), held back: ``run`` prints the
    alert in words."""
    from ..swarm._beating import ALERT_LOG

    return record.msg != ALERT_LOG


def _stop_words(stopped: str, beats: int | None, source: str) -> str:
    """Why the run ended, in words (``RunSummary.stopped`` is a keyword)."""
    if stopped == "beats":
        return f"stopped: --beats {beats} reached"
    if stopped == "interrupted":
        return "interrupted (Ctrl-C)"
    return {"stdin": "stopped: stdin ended",
            "follow": "stopped: no new row for --idle-timeout seconds"}.get(
                source, "stopped: the data ran out")


def _closing_lines(summary: Any, *, beats: int | None, source: str) -> list[str]:
    """The run's closing summary: beats, why it stopped, refusals by reason, where each stands."""
    rejected = sum(summary.rejected.values())
    seqs = ", ".join(f"{p} at beat {s}" for p, s in list(summary.last_seq.items())[:10])
    lines = [f"{summary.total_beats} beats in {summary.seconds:.1f} s, "
             f"{_stop_words(summary.stopped, beats, source)}; {rejected} ticks refused, "
             f"{summary.skipped} already recorded; {seqs}"]
    if beats is not None and summary.total_beats > beats:
        lines.append(f"--beats counts the beats of all portfolios, and a tick beats every "
                     f"portfolio it is for at once: the run ended with the tick that reached "
                     f"{beats}")
    if rejected:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.rejected.items(),
                                                               key=lambda kv: -kv[1]))
        lines.append(f"refused ticks, by reason ({kinds} in all; each is ledgered as "
                     "tick-rejected):")
        shown = sorted(summary.refusals.values(), key=lambda cf: -cf[0])
        for count, first in shown[:5]:
            lines.append(f"  {count} × {first[:300]}")
        if len(shown) > 5:
            lines.append(f"  {sum(c for c, _ in shown[5:])} × {len(shown) - 5} other reasons")
    return lines


def run(
    portfolios: Annotated[Path | None, typer.Option(
        "--portfolios", help="JSON file: {name: {weights|positions: {asset: number}}}")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help="sp500, nasdaq, sp500-stocks (20 stocks, one column each: for "
        "--portfolios of weights or positions), or a CSV/Parquet file of returns (date "
        "column, then one column per asset). Its first --window rows are the start "
        "history; the replay beats from the row after them (--last N: only the last N "
        "rows)", show_default="sp500")] = None,
    beats: Annotated[int | None, typer.Option("--beats", help="stop after N beats, counted over "
                                              "all portfolios (a tick beats every portfolio "
                                              "it is for, so the run ends with the tick that "
                                              "reaches N: 3 portfolios and --beats 40 give 14 "
                                              "ticks, 42 beats). A rerun on the same --home "
                                              "resumes where the ledger ends and runs N more. "
                                              "Left out: no limit, the run goes on until the "
                                              "data runs out (--follow: --idle-timeout without "
                                              "a row; --stdin: its end) or Ctrl-C")] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="ticks per second "
                                               "(default: as fast as possible)")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local or ray")] = "local",
    workers: Annotated[int, typer.Option("--workers", help="worker processes / Ray actors "
                                         "(0: in this process)")] = 0,
    spread: Annotated[int, typer.Option("--spread", help="agent groups per portfolio, each on "
                                        "its own worker (<= --workers): a lost worker leaves "
                                        "the portfolio serving from the other groups' agents "
                                        "(m/n); 1: each portfolio whole on one worker")] = 1,
    home: Annotated[Path | None, typer.Option(
        "--home", help="data home (ledger, checkpoints, keys)", show_default=".swarmvar")
                    ] = None,
    agents: Annotated[str | None, typer.Option(
        "--agents", help=f"comma-separated agents (default: the default swarm, "
        f"{', '.join(default_agents())}): {agents_listing()}")] = None,
    alpha: Annotated[list[str] | None, typer.Option(
        "--alpha", help="confidence level(s): --alpha 0.99 --alpha 0.975 or 0.99,0.975",
        show_default="0.99,0.975")] = None,
    window: Annotated[int | None, typer.Option(help="returns per (re)fit; the first WINDOW "
                                               "rows of --data are the start history, not "
                                               "beaten", show_default="1000")] = None,
    last: Annotated[int | None, typer.Option("--last", help="use only the last N rows of "
                                             "--data (more than --window: the first --window "
                                             "of them start the swarm, the replay beats the "
                                             "others up to the data's end; a rerun on the "
                                             "same --home goes on after its last beat). Left "
                                             "out: every row")] = None,
    refit_every: Annotated[int | None, typer.Option("--refit-every", help="beats between refits",
                                                    show_default="20")] = None,
    horizon: Annotated[int | None, typer.Option(
        help="horizon in days (1 to 250): each beat forecasts the next HORIZON days' loss",
        show_default="1")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="the consensus's robust rule: trimmed_mean, median, "
        "geometric_median, krum, multi_krum", show_default="trimmed_mean")] = None,
    refit_lag: Annotated[int, typer.Option("--refit-lag", help="0: refit at the beat boundary "
                                           "(the backtest's numbers); k: in a worker, swapped "
                                           "in k beats later")] = 0,
    seed: Annotated[int, typer.Option(help="root seed")] = 0,
    attribute_every: Annotated[int | None, typer.Option(
        "--attribute-every", help="a book's attribution (weights or positions portfolios): "
        "every N beats, off the beat, the joint agents' consensus VaR/ES of its last "
        "--window asset returns split over its assets (Euler), ledgered, its top drivers "
        "in the table; 0: off; single series have none. Left out: every --refit-every "
        "beats", show_default=False)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        "--checkpoint-every", help="checkpoint a portfolio's state when its beat number is a "
        "multiple of N (a restart resumes from the last checkpoint and replays the ledger "
        "after it). Left out: a resume keeps the home's, a fresh start takes 250; a resume "
        "given another N is refused", show_default=False)] = None,
    ledger_batch: Annotated[int, typer.Option("--ledger-batch", help="beats per ledger "
                                              "transaction")] = 1,
    follow: Annotated[bool, typer.Option("--follow", help="follow --data (a CSV) as it grows")
                      ] = False,
    stdin: Annotated[bool, typer.Option("--stdin", help="read ticks as JSON lines from stdin")
                     ] = False,
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", help="--follow: stop after "
                                                "this many seconds without a new row")] = 10.0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no live table (alerts, "
                                        "quarantines and the closing summary still "
                                        "print)")] = False,
    arbiter: Annotated[bool, typer.Option("--arbiter/--no-arbiter", help="decide after each "
                                          "beat (quarantine, alert, re-weight, refits); off by "
                                          "default: the forecasts then equal the backtest's")
                       ] = False,
    k_flows: Annotated[float, typer.Option("--k-flows", help="arbiter pulse: k (kP > 1)")] = 4.0,
    p_nodes: Annotated[float, typer.Option("--p-nodes", help="arbiter pulse: P (kP > 1)")] = 5.0,
    t_threshold: Annotated[float, typer.Option("--t-threshold", help="arbiter: the PID's "
                                               "threshold time T_threshold (s)")] = 0.02,
    t1: Annotated[float, typer.Option("--t1", help="arbiter pulse: base time T1 (s)")] = 0.001,
    pace: Annotated[str | None, typer.Option("--pace", help="none: as fast as possible; rate: "
                                             "--rate ticks a second; pulse: each beat starts "
                                             "on the arbiter's next T_Λ pulse, late beats "
                                             "counted (needs --arbiter). Default: rate with "
                                             "--rate, else none")] = None,
    sandbox: Annotated[str | None, typer.Option("--sandbox", help="none, bwrap or e2b: run "
                                                "every agent in a sandbox of the realtime "
                                                "profile (default: built-in agents in "
                                                "process, no sandbox)")] = None,
    plugin: Annotated[list[str] | None, typer.Option("--plugin", help="a plug-in agent class "
                                                     "package.module:Class (repeatable); runs "
                                                     "only in a sandbox")] = None,
    plugin_path: Annotated[list[Path] | None, typer.Option("--plugin-path", help="a folder "
                                                           "holding plug-in modules "
                                                           "(read-only in the sandbox)")] = None,
    # --- the mesh (docs/mesh.md): this swarm as one node of several ---
    mesh: Annotated[bool, typer.Option("--mesh", help="run as a mesh node: beats and consensus "
                                       "go to the peers over signed ZeroMQ; the node's ledger "
                                       "is HOME/mesh")] = False,
    mesh_port: Annotated[int | None, typer.Option("--mesh-port", help="--mesh: bind "
                                                  "tcp://*:PORT")] = None,
    peer: Annotated[list[str] | None, typer.Option("--peer", help="--mesh: a peer, "
                                                   "tcp://HOST:PORT or ID=tcp://HOST:PORT "
                                                   "(repeatable)")] = None,
    mesh_id: Annotated[str | None, typer.Option("--mesh-id", help="--mesh: this node's id "
                                                "(default: from --mesh-port)")] = None,
    mesh_cluster: Annotated[Path | None, typer.Option("--mesh-cluster", help="--mesh: cluster "
                                                      "file (default HOME/mesh/cluster.json)")
                            ] = None,
    mesh_key: Annotated[Path | None, typer.Option("--mesh-key", help="--mesh: node key file "
                                                  "(default HOME/mesh/node.key)")] = None,
    mesh_agree_every: Annotated[int, typer.Option("--mesh-agree-every", help="--mesh: agree "
                                                  "on the consensus VaR every N beats (0: "
                                                  "never)")] = 20,
) -> None:
    """Run the swarm: stream beats for many portfolios (replay, a followed file or stdin)."""
    from ..errors import SwarmVarError

    # the config file (swarmvar.toml): flag > file > default, a file's value checked
    # against its flag's bounds and named as the file's key
    settings = _settings({"data": data, "home": None if home is None else str(home),
                          "agents": agents, "alphas": alpha, "window": window,
                          "refit_every": refit_every, "horizon": horizon, "policy": policy})
    window = from_setting(settings["window"], lambda v: check_whole(v, "--window", 30))
    refit_every = from_setting(settings["refit_every"],
                               lambda v: check_whole(v, "--refit-every", 1))
    h = from_setting(settings["horizon"], check_horizon)
    rule = from_setting(settings["policy"], check_policy)
    if executor not in ("local", "ray"):
        raise typer.BadParameter("use local or ray", param_hint="--executor")
    check_processes(workers, low=0)
    for flag, value, low in (("--checkpoint-every", checkpoint_every, 1),
                             ("--ledger-batch", ledger_batch, 1), ("--seed", seed, 0)):
        if value is not None and value < low:
            raise typer.BadParameter(f"must be >= {low}, got {value}", param_hint=flag)
    if beats is not None and beats < 1:
        raise typer.BadParameter(f"must be >= 1, got {beats}", param_hint="--beats")
    _check_attribute_every(attribute_every)
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:  # 1/rate must be a time
        raise typer.BadParameter(f"{rate:g} ticks a second is out of range; give one between "
                                 f"{MIN_RATE:g} and {MAX_RATE:g} (or leave --rate out: as "
                                 "fast as possible)", param_hint="--rate")
    check_positive(idle_timeout, "--idle-timeout", "a time in seconds")
    if follow and stdin:
        raise typer.BadParameter("give it or --follow, not both", param_hint="--stdin")
    if last is not None and (follow or stdin):
        raise typer.BadParameter("it trims a replay of --data; --follow and --stdin beat "
                                 "every row that arrives", param_hint="--last")
    pace = pace or ("rate" if rate is not None else "none")
    if pace not in ("none", "rate", "pulse"):
        raise typer.BadParameter("use none, rate or pulse", param_hint="--pace")
    if pace == "pulse" and not arbiter:
        raise typer.BadParameter("pacing by the pulse needs --arbiter (the pulse is its "
                                 "T_Λ from --k-flows, --p-nodes, --t1)", param_hint="--pace")
    if pace == "rate" and rate is None:
        raise typer.BadParameter("rate needs --rate N", param_hint="--pace")
    if pace != "rate" and rate is not None:
        raise typer.BadParameter(f"it paces the ticks; it cannot go with --pace {pace}",
                                 param_hint="--rate")
    alphas = from_setting(settings["alphas"], lambda v: parse_alphas(str_list(v),
                                                                    (0.99, 0.975)))
    names = from_setting(settings["agents"],  # did-you-mean, as `var`
                         lambda v: resolve_agents(str_list(v)))
    data = from_setting(settings["data"], lambda v: check_data(str(v), stocks=True))
    if last is not None and last <= window:  # the window named where it was given
        given = settings["window"]
        named = (f"--window ({window})" if given.source in ("flag", "default") else
                 f"window ({given.source}: window = {window})")
        raise typer.BadParameter(f"must be more than {named}: the first {window} rows start "
                                 f"the swarm, the others are beaten; got {last}",
                                 param_hint="--last")
    if follow and (is_dataset(data) or is_stock_dataset(data)):
        raise typer.BadParameter(f"it follows a file as it grows; {data} is a bundled data "
                                 "set, which does not", param_hint="--follow")
    home = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    check_home_folders(home, home_words(settings["home"]))
    plugins = list(plugin or [])
    if plugins and sandbox is None:  # the runtime's words ("choose a backend") said for flags
        raise typer.BadParameter("a plug-in agent runs only in a sandbox: add --sandbox bwrap "
                                 "(--sandbox none runs it without walls, with a warning in "
                                 "the ledger; E2B takes no plug-ins yet)", param_hint="--plugin")
    for folder in plugin_path or []:
        if not folder.is_dir():
            raise typer.BadParameter(f"{folder} is not a folder", param_hint="--plugin-path")
    if not mesh and (mesh_port is not None or peer or mesh_id or mesh_cluster or mesh_key):
        raise typer.BadParameter("--mesh-port, --peer, --mesh-id, --mesh-cluster and "
                                 "--mesh-key need it", param_hint="--mesh")
    _check_refits(refit_every, refit_lag, settings)
    boxes = _sandbox_setup(sandbox, plugins, plugin_path or [])
    # the roster the runtime beats: the agents and the plug-ins (``sandbox.plugin_agents``)
    few = _check_quorum(rule, [*names, *(boxes.plugin_agents if boxes is not None else ())],
                        settings)
    _check_spread(spread, workers, refit_lag, boxes)
    judge = None
    if arbiter:  # the arbiter's own checks of its options, before any work
        from ..arbiter import Arbiter

        with usage_errors():  # the swarm's ledger and breakers are given to it later
            judge = Arbiter.from_options(k_flows=k_flows, p_nodes=p_nodes,
                                         t_threshold=t_threshold, t1=t1, record_decisions=False)
    saved_run, judged = _home_run(home)
    _check_arbiter_resume(home_words(settings["home"]), arbiter, judged)
    if checkpoint_every is None:  # a resume keeps the home's; a given other one is refused
        checkpoint_every = (int(saved_run.get("checkpoint_every", CHECKPOINT_EVERY))
                            if saved_run is not None else CHECKPOINT_EVERY)
    node_settings = _check_mesh_node(home, mesh, mesh_port, list(peer or []), mesh_id,
                                     mesh_cluster, mesh_key, mesh_agree_every)
    taken = from_file_line(settings)
    if taken:  # a file's home silently changes which home runs: say what the file set
        typer.echo(taken, err=True)
    if few is not None:
        typer.echo(few, err=True)
    node: Any = None
    host: Any = None
    swarm: Any = None
    try:
        from ..swarm import FollowedFile, JsonLines, LocalExecutor, Replay, RoleConfig, Swarm
        from ..swarm.ticks import ALL

        frame = _data(data)
        # --last: the replay starts `last` rows from the end; its rows keep their places
        # in --data (the cursor a resume seeks to), so a rerun on grown data goes on
        # after the ledger's last beat, as without --last
        first = 0 if last is None else max(0, len(frame) - last)
        if follow:
            _check_followed_dates(Path(data))
        specs = _portfolios(portfolios, frame)
        over_assets = any(isinstance(b, dict) and b for b in specs.values())
        if saved_run is None:  # a fresh start: a book's start history that its agents
            # cannot take (a day that wipes the book out or passes |r| <= 5) refused before
            # the home is made (a resume's start rows come from its checkpoint, not here)
            Swarm.check_start_history(specs, frame.iloc[first:first + window])
        if executor == "ray":
            from ..swarm.ray_executor import RayExecutor

            host = RayExecutor(shards=max(1, workers))
        else:
            host = LocalExecutor(workers)
        if boxes is not None:
            boxes.probe(str(home))
        swarm = Swarm(specs, home=home, agents=names, alphas=alphas, horizon=h,
                      window=window, refit_every=refit_every, seed=seed, executor=host,
                      policy=swarm_policy(rule),
                      checkpoint_every=checkpoint_every, ledger_batch=ledger_batch,
                      roles=RoleConfig(refit_lag=refit_lag, attribute_every=attribute_every),
                      sandbox=boxes, spread=spread, book_var=_book_var() if over_assets else None)
        cadence = None
        if judge is not None:
            # its entries join each beat's transaction; its state, the swarm's checkpoints
            judge.ledger, judge.breakers = swarm.beat_entries, swarm.breakers
            swarm.add_observer(judge)
            if pace == "pulse":
                from ..arbiter import Cadence

                cadence = Cadence(judge.config.pulse)
        if node_settings is not None:  # checked above; bound last: a start the swarm
            from ..mesh.launch import bind_swarm_node  # refuses binds no port, makes no HOME/mesh

            node = bind_swarm_node(node_settings)
    except BaseException as exc:
        _close_started(swarm, host, node)
        if isinstance(exc, SwarmVarError):
            raise _fail_run(exc, data, settings) from None
        raise
    stop = {"asked": False}

    def _interrupt(signum: int, frame_: Any) -> None:
        if stop["asked"]:  # a second Ctrl-C: leave now (the ledger and checkpoint are safe)
            raise KeyboardInterrupt
        stop["asked"] = True

    previous = signal.signal(signal.SIGINT, _interrupt)
    breaches: dict[str, int] = {}
    events: dict[str, str] = {}
    attribution_log = _AttributionWarnings()  # the library's logger has a NullHandler only
    logging.getLogger("swarmvar.swarm").addHandler(attribution_log)
    try:
        with swarm:
            history = frame.iloc[first:first + window]
            if stdin:
                source: Any = JsonLines(sys.stdin)
            elif follow:
                source = FollowedFile(data, portfolio=ALL if over_assets or len(specs) > 1 else
                                      next(iter(specs)), idle_timeout=idle_timeout)
                source.seek(window)
            else:
                target = ALL if hasattr(frame, "columns") and over_assets else next(iter(specs))
                if hasattr(frame, "columns") and not over_assets:
                    target = ALL
                bundled = is_dataset(data) or is_stock_dataset(data)
                source = Replay(frame, portfolio=target, start=first + window, rate=rate,
                                name=f"the bundled {data}" if bundled else Path(data).name)
            # a resume checks the source against the ledger's beats before anything is
            # written (stdin: each replayed tick as it arrives)
            swarm.start(history, source=source)
            live, last_draw = None, 0.0
            if not quiet:
                from rich.live import Live

                console = make_console(stderr=True, live=True)
                live = Live(_table(swarm, breaches, events, arbiter, console.width),
                            console=console, auto_refresh=False)
                live.start()

            # portfolios whose missing consensus was said (a roster below the rule: at start)
            unagreed: set[str] = set()

            def say(words: str) -> None:
                if live is not None:
                    live.console.print(words, markup=False, highlight=False)
                else:
                    typer.echo(words, err=True)

            def on_beat(rep: Any) -> None:
                nonlocal last_draw
                for d in rep.decisions:  # alerts and quarantines, in words (the log's
                    words = decision_words(d, rep.as_of)  # technical line is held back)
                    if words is not None:
                        say(words)
                closed = closed_on(judge, rep)
                if closed is not None:  # the beat its alert episode ended on
                    say(closed_words(rep.portfolio, closed))
                why = _consensus_lost(rep, unagreed)
                if why is not None and few is None:  # the start's warning said it already
                    say(why)
                if rep.breaches.get("consensus") and rep.breaches["consensus"][0]:
                    breaches[rep.portfolio] = breaches.get(rep.portfolio, 0) + 1
                if rep.events:
                    events[rep.portfolio] = rep.events[-1]
                now = time.monotonic()
                if live is not None and now - last_draw > 0.25:
                    live.update(_table(swarm, breaches, events, arbiter, live.console.width),
                                refresh=True)
                    last_draw = now

            swarm_log = logging.getLogger("swarmvar.swarm")
            swarm_log.addFilter(_said_here)
            try:
                if node is not None:
                    from ..mesh.launch import serve_swarm_node

                    summary = serve_swarm_node(node, swarm, source, beats=beats,
                                               on_beat=on_beat, pace=cadence, linger=3.0,
                                               wait_peers=30.0,
                                               should_stop=lambda: stop["asked"])
                else:
                    summary = swarm.run(source, beats=beats, on_beat=on_beat,
                                        should_stop=lambda: stop["asked"], pace=cadence)
            finally:
                swarm_log.removeFilter(_said_here)
                money = _currency_lines(swarm)
                if live is not None:
                    live.update(_table(swarm, breaches, events, arbiter, live.console.width),
                                refresh=True)
                    live.stop()
                    if not live.console.is_terminal:  # a log: end the table's last line
                        live.console.line()
                from ..swarm.attribution import closing_words, pending_attributions

                waiting = pending_attributions(swarm)
                if waiting:  # close waits for them: not in silence
                    typer.echo(closing_words(swarm.restore_timeout, waiting), err=True)
                    # as the line says, the next Ctrl-C stops the wait (the data may have
                    # run out with none asked for yet: one Ctrl-C, not two)
                    stop["asked"] = True
    except SwarmVarError as exc:
        raise _fail_run(exc, data, settings) from None
    finally:
        logging.getLogger("swarmvar.swarm").removeHandler(attribution_log)
        signal.signal(signal.SIGINT, previous)
    for line in _closing_lines(summary, beats=beats,
                               source="stdin" if stdin else "follow" if follow else "data"):
        typer.echo(line)
    for line in money:
        typer.echo(line)
    if cadence is not None:
        typer.echo(f"paced by the pulse T_Λ = {1000 * cadence.budget:.3f} ms: "
                   f"{summary.late} of {cadence.beats} beats late, {cadence.skipped} pulses "
                   "skipped")
    if node is not None:
        runs = list(node.finished.items())
        latest = f"; last {runs[-1][0]} -> {runs[-1][1].values[-1]:.6g}" if runs else ""
        typer.echo(f"mesh node {node.me}: {len(runs)} agreement runs{latest}; "
                   f"{sum(node.peer_ledgers.imported.values())} peer entries imported")
    if summary.stopped == "interrupted":
        typer.echo(f"stopped after the beat in progress; every beat is in the ledger under "
                   f"{home}. Resume with the same command: it restores the last checkpoint, "
                   f"replays the ledger after it and continues after cursor {summary.cursor}.")
