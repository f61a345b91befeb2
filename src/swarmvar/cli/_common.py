"""What the CLI commands share: flag checks in the CLI's words, data sources, output.

Everything here is cheap to import (no numpy, pandas or models at module
level), so ``swarmvar var --help`` stays fast; the heavy modules load inside
the functions that need them. Every check raises :class:`typer.BadParameter`
naming the flag, so a bad value is a usage error (exit 2) before any work
or ledger write.
"""

from __future__ import annotations

import ast
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import typer

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from ..config import Setting
    from ..errors import SwarmVarError

#: Longest horizon the CLI forecasts (trading days: one year). The engines have
#: their own bound; this one refuses before any fitting.
MAX_HORIZON = 250
#: Seeds are non-negative integers below 2**63 (numpy's SeedSequence entropy).
MAX_SEED = 2**63 - 1
#: Figure formats ``--plot`` writes (matplotlib's, by suffix).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps",
                 ".ps")
#: What ``backtest --report`` writes: one self-contained HTML page.
REPORT_SUFFIXES = (".html", ".htm")
#: Columns every console is at least wide (:func:`make_console`): the widest table, ``run
#: --arbiter``'s with two levels (200), fits whole in logs and CI.
CONSOLE_WIDTH = 200
#: Bundled data sets (names as ``swarmvar.data.DATASETS`` has them; checked by a test).
BUNDLED = ("sp500", "nasdaq")
#: Bundled multi-asset data sets, one column per stock (``swarmvar.books.STOCK_DATASETS``;
#: checked by a test): for a book (``var``/``backtest --positions``) and for ``run``.
BUNDLED_STOCKS = ("sp500-stocks",)
#: The robust rules ``--policy`` accepts (``consensus.Aggregator`` but the non-robust mean;
#: checked by a test).
POLICIES = ("trimmed_mean", "median", "geometric_median", "krum", "multi_krum")


@cache
def _registry_literals() -> dict[str, object]:
    """The literal assignments of ``models/registry.py`` (``AGENT_MODULES``, ``ALIASES``,
    ``DEFAULT_AGENTS``), parsed, not imported: importing :mod:`swarmvar.models` costs
    ~0.8 s (numpy, scipy, pandas), too much for ``--help``. A test checks them against
    the registry."""
    source = (Path(__file__).resolve().parent.parent / "models" / "registry.py").read_text(
        encoding="utf-8")
    return {node.target.id: ast.literal_eval(node.value) for node in ast.parse(source).body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and node.value is not None
            and node.target.id in ("AGENT_MODULES", "ALIASES", "DEFAULT_AGENTS")}


def agent_catalog() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """``(class names, (alias, class name) pairs)`` of the model registry."""
    found = _registry_literals()
    return (tuple(cast("dict[str, str]", found["AGENT_MODULES"])),
            tuple(cast("dict[str, str]", found["ALIASES"]).items()))


def default_agents() -> tuple[str, ...]:
    """The default swarm (``models.registry.DEFAULT_AGENTS``)."""
    return cast("tuple[str, ...]", _registry_literals()["DEFAULT_AGENTS"])


def agents_listing() -> str:
    """Every agent with its short names: ``NormalInverseGamma (nig); ...``."""
    names, aliases = agent_catalog()
    parts = []
    for name in names:
        short = [a for a, full in aliases if full == name]
        parts.append(f"{name} ({', '.join(short)})" if short else name)
    return "; ".join(parts)


def agents_help() -> str:
    """The ``--agents`` help: the default swarm, then every agent with its short names."""
    return ("agents, repeated or comma-separated (default: the default swarm, "
            f"{', '.join(default_agents())}): " + agents_listing())


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1,
                                      cutoff=0.6)
    if not close:
        return ""
    match = next(c for c in choices if c.lower() == close[0])
    return f"; did you mean {match!r}?"


def resolve_agents(values: Sequence[str] | None, *, flag: str = "--agents") -> list[str]:
    """Agent names or aliases (repeated or comma-separated) -> class names; the default swarm
    (``DEFAULT_AGENTS``) when none are given.

    Refuses unknown names (with the closest known one), an empty list and an
    agent named twice (one agent, one vote).
    """
    names, aliases = agent_catalog()
    if values is None:
        return list(default_agents())
    lookup = {n.lower(): n for n in names} | {a.lower(): full for a, full in aliases}
    out: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            full = lookup.get(part.lower())
            if full is None:
                known = ", ".join([*names, *(a for a, _ in aliases)])
                raise typer.BadParameter(
                    f"no agent called {part!r}{_suggest(part, [*names, *(a for a, _ in aliases)])}"
                    f" Known agents: {known}", param_hint=flag)
            out.append(full)
    if not out:
        raise typer.BadParameter("no agent names given; name at least one, e.g. --agents nig "
                                 "(or leave the flag out for all)", param_hint=flag)
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise typer.BadParameter(f"agent(s) given more than once: {', '.join(twice)} "
                                 "(each agent votes once)", param_hint=flag)
    return out


def parse_alphas(
    values: Sequence[str] | None, default: tuple[float, ...] = (0.99,), *, flag: str = "--alpha"
) -> tuple[float, ...]:
    """``--alpha 0.99 --alpha 0.975`` or ``--alpha 0.99,0.975`` -> (0.99, 0.975), checked.

    Each level must lie strictly between 0.5 and 1, the bound the engines enforce
    (``models.risk``), so a bad level is a usage error before any fitting.
    """
    if values is None:
        return default
    out: list[float] = []
    for value in values:
        for part in str(value).replace(",", " ").split():
            try:
                a = float(part)
            except ValueError as exc:
                raise typer.BadParameter(f"{part!r} is not a number (e.g. 0.99)",
                                         param_hint=flag) from exc
            if not 0.5 < a < 1.0:  # the engines' bound (models.risk): a loss quantile
                raise typer.BadParameter(
                    f"{part} is not a confidence level; give one strictly between 0.5 and 1, "
                    "e.g. 0.99", param_hint=flag)
            if a in out:
                raise typer.BadParameter(f"level {part} given more than once", param_hint=flag)
            out.append(a)
    if not out:
        raise typer.BadParameter("no confidence level given, e.g. --alpha 0.99",
                                 param_hint=flag)
    return tuple(out)


def str_list(value: object) -> list[str] | None:
    """A flag's or config file's list (or single value) as strings; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def check_whole(value: object, flag: str, low: int, high: int | None = None) -> int:
    """An integer flag within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise typer.BadParameter(f"{value!r} is not a whole number", param_hint=flag)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise typer.BadParameter(f"{value} is out of range; it must be {bound}", param_hint=flag)
    return value


_T = TypeVar("_T")


def _toml(value: object) -> str:
    """A config value as it is written in the file (``true``, ``"sp500"``, ``[0.99, 0.3]``)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def from_setting(setting: Setting, check: Callable[[object], _T]) -> _T:
    """``check(setting.value)``; a value from a config file that fails the flag's check is
    reported as the file's (``swarmvar.toml: horizon = 999: ...``), not as a flag never given.

    Raises
    ------
    typer.Exit
        Code 2, after ``error: <file>: <key> = <value>: <why>`` on stderr, for a file's value.
    typer.BadParameter
        A flag's (or the default's) value, as ``check`` raised it.
    """
    try:
        return check(setting.value)
    except typer.BadParameter as exc:
        if setting.source in ("flag", "default"):
            raise
        raise usage_error(f"{setting.source}: {setting.key} = {_toml(setting.value)}: "
                          f"{exc.message}") from None


def max_processes() -> int:
    """Most worker processes a ``--workers`` flag may ask for (``var``, ``backtest``, ``run``,
    ``serve``): 4 per CPU, at least 8 (each is a Python process with the numerical stack;
    more only thrash the machine)."""
    return max(8, 4 * (os.cpu_count() or 1))


def check_processes(value: object, flag: str = "--workers", low: int = 1) -> int:
    """A process count within ``[low, max_processes()]``: a typo such as 99999 is a usage
    error, not thousands of processes started."""
    return check_whole(value, flag, low, max_processes())


def check_positive(value: float | None, flag: str, what: str) -> float | None:
    """A finite number above 0 (or none): NaN, inf, 0 and negatives are usage errors."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value} is not {what}; give a finite number above 0",
                                 param_hint=flag)
    return value


def check_horizon(value: object) -> int:
    return check_whole(value, "--horizon", 1, MAX_HORIZON)


def check_seed(value: object) -> int:
    return check_whole(value, "--seed", 0, MAX_SEED)


def check_notional(value: float | None) -> float | None:
    """A finite, positive portfolio value (or none)."""
    return check_positive(value, "--notional", "a portfolio value")


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_home(home: Path) -> Path:
    """The data directory: a directory, or a path that can become one."""
    if home.exists() and not home.is_dir():
        raise typer.BadParameter(f"{home} is a file, not a directory; give a directory for "
                                 "swarmvar's data (it is created if missing)", param_hint="--home")
    base = _nearest_existing(home)
    if not base.is_dir():
        raise typer.BadParameter(f"cannot create {home}: {base} is a file", param_hint="--home")
    if not os.access(base, os.W_OK):
        raise typer.BadParameter(f"cannot write under {base} (permission denied)",
                                 param_hint="--home")
    ledger = home / "ledger.sqlite"
    try:
        _probe_writable(ledger)
    except OSError as exc:
        if ledger.is_file():  # the home is there; its ledger file is what refuses
            raise typer.BadParameter(f"cannot write the ledger {ledger}: "
                                     f"{exc.strerror or exc} (swarmvar appends to it and "
                                     "creates its tables); make it writable by this user, "
                                     "or give another home", param_hint="--home") from None
        raise typer.BadParameter(f"cannot create {home}: {exc.strerror or exc}",
                                 param_hint="--home") from None
    return home


def home_words(setting: Setting) -> str:
    """How a message names the home: ``--home PATH``, or the config file's key when the
    file gave it (``swarmvar.toml: home = "/srv/risk"``), never a flag not given."""
    if setting.source in ("flag", "default"):
        return f"--home {setting.value}"
    return f"{setting.source}: home = {_toml(setting.value)}"


def from_file_line(settings: Mapping[str, Setting]) -> str | None:
    """One line naming the config file and the keys a command took from it (``settings:
    swarmvar.toml gives home = "/srv/risk", window = 500 (a flag overrides each)``), or
    None when it took none: a file's ``home`` silently changes which home runs."""
    taken = [s for s in settings.values() if s.source not in ("flag", "default")]
    if not taken:
        return None
    keys = ", ".join(f"{s.key} = {_toml(s.value)}" for s in taken)
    return f"settings: {taken[0].source} gives {keys} (a flag overrides each)"


#: The folders under a home that ``run`` and ``serve`` write: the agents' signing keys.
HOME_FOLDERS = (Path("keys") / "agents",)


def check_home_folders(home: Path, words: str, folders: Sequence[Path] = HOME_FOLDERS
                       ) -> None:
    """A file where a command writes a folder under ``home`` (``keys``, ``keys/agents``) is
    a usage error naming the home as ``words`` (:func:`home_words`), before any work;
    nothing is created (a missing folder is left to the command).

    Raises
    ------
    typer.Exit
        Code 2, naming the file in the way and the home.
    """
    for folder in folders:
        at = home
        for part in folder.parts:  # bounded: the folder's few parts
            at = at / part
            if at.exists() and not at.is_dir():
                raise usage_error(f"{words}: {at} is a file where swarmvar keeps a folder "
                                  f"({home / folder}: the agents' signing keys); move it "
                                  "away or give another home")


def check_ledger(home: Path, words: str | None = None) -> None:
    """Open the home's ledger, if it has one, and close it: an emptied or damaged
    ``ledger.sqlite`` (the engine refuses it at open, SQLite's ``quick_check`` included)
    is a usage error before any fit, not after the forecast is printed. Nothing is
    written to an existing file; a missing ledger is left for the command to create."""
    from ..errors import SwarmVarError
    from ..ledger import Ledger, ledger_path

    if not ledger_path(home).exists():
        return
    try:
        Ledger.open(home).close()
    except SwarmVarError as exc:
        raise usage_error(f"{words or f'--home {home}'}: {cli_words(str(exc))}") from None


def _probe_writable(path: Path) -> None:
    """Create ``path``'s missing folders and a scratch file beside it, then remove both.

    Permission bits alone do not tell (root passes ``os.access`` on ``/proc``;
    a read-only mount or a full disk refuses anyway), so the folder is
    tried for real; nothing is left behind. Raises the ``OSError`` met.
    """
    import tempfile

    folder = path.parent.absolute()
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    made: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            made.append(d)
        if path.exists():
            with path.open("ab"):  # appending nothing: its content and mtime unchanged
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".swarmvar-probe-"):
                pass
    finally:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:  # something else wrote there meanwhile: leave it
                break


def check_output(path: Path | None, flag: str, suffixes: Sequence[str] | None = None
                 ) -> Path | None:
    """A file the command will write: known suffix, not a directory, and writable there.

    The folder is created and a file written in it for real (then removed),
    so an unwritable target is a usage error before any work or ledger entry,
    not a failure after a long run.
    """
    if path is None:
        return None
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise typer.BadParameter(
            f"{path.name!r} has no known format; end it with one of {', '.join(suffixes)}",
            param_hint=flag)
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory; give a file name", param_hint=flag)
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise typer.BadParameter(f"cannot create {path}: {base} is a file", param_hint=flag)
    try:
        _probe_writable(path)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {path}: {exc.strerror or exc} (under {base}); give a path in a "
            "folder you can write", param_hint=flag) from None
    return path


def check_csv_folder(folder: Path | None) -> Path | None:
    """The ``--csv DIR`` folder: a directory (or a path that can become one) you can write."""
    if folder is None:
        return None
    if folder.exists() and not folder.is_dir():
        raise typer.BadParameter(f"{folder} is a file; give a directory for the CSV tables",
                                 param_hint="--csv")
    check_output(folder / "forecasts.csv", "--csv")
    return folder


def check_policy(name: object) -> str | None:
    """A consensus rule name (``--policy``), or ``None`` for the swarm's default."""
    if name is None:
        return None
    key = str(name).lower().replace("-", "_")
    if key not in POLICIES:
        raise typer.BadParameter(f"no consensus rule {name!r}{_suggest(key, POLICIES)} "
                                 f"Rules: {', '.join(POLICIES)}", param_hint="--policy")
    return key


def swarm_policy(name: str | None) -> Any:
    """The swarm's consensus policy with the robust rule ``name`` (its default if ``None``)."""
    import dataclasses

    from ..consensus import Aggregator
    from ..swarm.consensus import SWARM_POLICY

    if name is None:
        return SWARM_POLICY
    return dataclasses.replace(SWARM_POLICY, aggregator=Aggregator(name))


def check_kind(kind: str) -> str:
    if kind not in ("price", "return"):
        raise typer.BadParameter(f"{kind!r}: the file holds 'price' or 'return' values",
                                 param_hint="--kind")
    return kind


def check_data(source: str, *, stocks: bool = False) -> str:
    """A bundled data set name or an existing file (with a "did you mean" for names).

    ``stocks``: the command reads a table of assets (``run``), so the bundled multi-asset
    sets (:data:`BUNDLED_STOCKS`) are data sets too; a command of one series refuses them
    saying where they go.

    Raises
    ------
    typer.BadParameter
        No such data set or file (``--data``).
    """
    if is_dataset(source) or (stocks and is_stock_dataset(source)) or Path(source).exists():
        return source
    if is_stock_dataset(source):
        raise typer.BadParameter(
            f"{source!r} is the bundled multi-asset data set (one column per stock): give it "
            "with --positions or --book, or to `swarmvar run`; this takes one series: "
            f"{', '.join(BUNDLED)}, or a CSV/Parquet file", param_hint="--data")
    looks_like_name = not Path(source).suffix and os.sep not in source and "/" not in source
    if looks_like_name:
        names = (*BUNDLED, *BUNDLED_STOCKS) if stocks else BUNDLED
        close = _suggest(source, names)
        raise typer.BadParameter(
            f"no bundled data set or file called {source!r}{close or '.'} "
            f"Bundled: {', '.join(names)}; or give a CSV/Parquet file", param_hint="--data")
    raise typer.BadParameter(f"no such file: {source}", param_hint="--data")


#: Python spellings in engine messages -> what the user types on the command line.
_FLAG_WORDS = (
    (re.compile(r"\s*\(([^()]*?) on the command line, [^()]*? in Python\)"), r" (\1)"),
    (re.compile(r"\(([^()]*?) in Python, ([^()]*?) on the command line\)"), r"(\2)"),
    (re.compile(r"dropna\s*=\s*True"), "--dropna"),
    (re.compile(r"kind\s*=\s*['\"](price|return)['\"]"), r"--kind \1"),
    (re.compile(r"\bcolumn\s*=\s*"), "--column "),
    (re.compile(r"\bhorizon\s*=\s*"), "--horizon "),
    (re.compile(r"swarmvar\.data\.read\(path\)"), "--data PATH"),
    # arbiter.Drift's checks, for `arbiter replay --drift`
    (re.compile(r"a drift is either scale=<factor> or frozen=True \(one of them\)"),
     "give exactly one of --drift-scale S or --drift-frozen"),
    (re.compile(r"\bdrift (start|scale)\b"), r"--drift-\1"),
    # evolution.HealthPolicy's checks, for `variants canary check`
    (re.compile(r"\bmin_success_rate\b"), "--min-success-rate"),
    (re.compile(r"\bmax_latency_s\b"), "--max-latency-s"),
    # the runtime's refit rhythm (swarm.RoleConfig, PortfolioConfig, Swarm), for `run`
    # (a dotted key, ``roles.refit_lag``, is the checkpoint's name: left as it is)
    (re.compile(r"(?<![-\w.])refit_lag\b"), "--refit-lag"),
    (re.compile(r"(?<![-\w.])refit_every\b"), "--refit-every"),
    # arbiter.Pulse's checks, for `run --arbiter` and `arbiter replay`
    (re.compile(r"\bt_threshold\b"), "--t-threshold"),
    (re.compile(r"\bt1 \(base seconds\)"), "--t1 (base seconds)"),
)


def cli_words(message: str) -> str:
    """An engine's message in the CLI's terms (flags, not keyword arguments)."""
    for pattern, repl in _FLAG_WORDS:
        message = pattern.sub(repl, message)
    return message


def is_dataset(source: str) -> bool:
    """A bundled data set's name (sp500, nasdaq), unless a file of that name exists."""
    return source.lower() in BUNDLED and not Path(source).exists()


def is_stock_dataset(source: str) -> bool:
    """A bundled multi-asset data set's name (sp500-stocks), unless a file of that name
    exists (the rule ``var --positions`` reads it by)."""
    return source.lower() in BUNDLED_STOCKS and not Path(source).exists()


def load_series(source: str, column: str | None, kind: str, last: int | None,
                *, dropna: bool = False) -> pd.Series:
    """A bundled data set name or a CSV/Parquet path, as validated log returns."""
    from .. import data

    if is_dataset(source):
        series = data.load(source)
    else:
        series = data.read(source, column, kind=kind, dropna=dropna)  # type: ignore[arg-type]
    if last is not None:
        tail = series.iloc[-last:]
        # returns worked out from prices keep their mark (a slice is new data to the mark)
        series = data.mark_from_prices(tail) if data.is_from_prices(series) else tail
    return series


def make_console(*, quiet: bool = False, stderr: bool = False, live: bool = False) -> Console:
    """Every command's console, with one width rule: at least :data:`CONSOLE_WIDTH` columns.

    Wider if the terminal is; never narrower, so that in logs and CI (no
    terminal: rich would assume 80) no table cell is cut to ``…``. A table
    takes its natural width, so a wide console does not stretch it. The one
    exception is a ``live`` display in a terminal: it redraws in place, which
    needs the terminal's own width (lines wider than it would wrap and the
    redraw would scroll). ``quiet`` prints nothing; ``stderr`` keeps stdout
    clean for ``--json``.
    """
    from rich.console import Console

    probe = Console(stderr=stderr)
    width = probe.width if live and probe.is_terminal else max(probe.width, CONSOLE_WIDTH)
    return Console(width=width, quiet=quiet, stderr=stderr)


def print_notes(console: Console, notes: Mapping[str, Sequence[str]]) -> None:
    """A backtest's notes, one yellow line per row: how many, the first, ``...`` if more.

    The single-series and the book backtest show them alike (e.g. the arch
    baselines' fits that did not converge); rows and notes are printed as
    text, never read as rich markup.
    """
    from rich.markup import escape

    for row, lines in notes.items():
        if lines:
            console.print(f"[yellow]{escape(row)}: {len(lines)} note(s): {escape(lines[0])}"
                          f"{' ...' if len(lines) > 1 else ''}[/yellow]")


def usage_error(message: str, *, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` on stderr as plain text (a ``[...]`` in it is never
    read as rich markup); the exit to raise (2: a usage error)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def fail(exc: SwarmVarError) -> typer.Exit:
    """Print a SwarmVarError as a one-line message in the CLI's words; the exit to raise.

    A config file's error (:class:`~swarmvar.errors.InvalidConfig`) is printed as it is: it
    names the file's keys (``refit_every``), not flags (``--refit-every``)."""
    from ..errors import InvalidConfig

    return usage_error(str(exc) if isinstance(exc, InvalidConfig) else cli_words(str(exc)))


def bad_parameter(exc: typer.BadParameter) -> typer.Exit:
    """Print a :class:`typer.BadParameter` caught by hand as ``error: FLAG: message``."""
    hint = exc.param_hint if isinstance(exc.param_hint, str) else None
    return usage_error(f"{hint}: {exc.message}" if hint else exc.message)


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn swarmvar's errors into usage errors (exit 2, one line, no traceback)."""
    from ..errors import SwarmVarError

    try:
        yield
    except SwarmVarError as exc:
        raise fail(exc) from exc


def write_json(document: Any) -> None:
    """One JSON document on stdout (NaN and inf as null: strict JSON)."""
    import json

    sys.stdout.write(json.dumps(_strict(document), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _strict(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _strict(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def write_csv_tables(folder: Path, tables: dict[str, tuple[pd.DataFrame, str]]) -> list[Path]:
    """Each table as ``<folder>/<name>.csv``, its first line a ``# units: ...`` comment.

    Read back with ``pandas.read_csv(path, comment="#")``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (frame, units) in tables.items():
        path = folder / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(f"# units: {units}\n")
            frame.to_csv(handle, index=False)
        written.append(path)
    return written


def emergence_section(result: Any, *, seed: int = 0) -> Any:
    """The report's "Emergence" section from :func:`swarmvar.emergence.summarize`.

    Built here, in the face, because the validation engine may not import the
    emergence engine (emergence imports validation). ``None`` when the backtest
    has no consensus row; a short note when the summary cannot be computed.
    """
    from ..errors import SwarmVarError
    from ..validation.report import Section, frame_section

    if "consensus" not in result.series:
        return None
    try:
        from ..emergence import summarize
    except ImportError:  # an install without the emergence engine
        return None
    try:
        summary = summarize(result, consensus="consensus", seed=seed)
    except SwarmVarError as exc:
        return Section("Emergence", f'<p class="note">not computed: {exc}</p>', "emergence")
    frame = summary.to_frame().T.reset_index()
    frame.columns = ["measure", *(f"{a:.1%}" for a in summary.to_frame().index)]
    return frame_section(
        "Emergence", frame, anchor="emergence",
        note="What the consensus adds over its best agent: mean FZ0 losses (lower is better), "
        "gain = best agent's loss - consensus loss, Diebold-Mariano p-values of the "
        "difference, Model Confidence Set p-value of the consensus (in the set when p >= "
        f"{summary.mcs_size:g}), the effective number of agents 1/sum(w^2) of the weights.")


def persist_compilations(home: Path) -> Path:
    """Keep JAX's compiled programs under ``<home>/cache/jax`` across runs.

    GarchT's likelihood (~0.35 s) and StudentT's optional NUTS sampler
    (``sampler="nuts"``, ~5 s) compile on first use in a process; with the
    persistent cache a later run (or a spawned backtest worker) loads the
    compiled program instead. Set through
    the environment before JAX is imported, so worker processes inherit it;
    a cache directory the user already set wins.
    """
    folder = Path(os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                                        str(Path(home) / "cache" / "jax")))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    return folder
