"""User defaults from ``swarmvar.toml`` (or ``[tool.swarmvar]`` in ``pyproject.toml``).

Looked up in the working directory, first ``swarmvar.toml``, then
``pyproject.toml``'s ``[tool.swarmvar]`` table; ``SWARMVAR_CONFIG`` names a
file explicitly. Every key is optional; a flag on the command line overrides
the file, which overrides the built-in default. ``var``, ``backtest``, ``run``
and ``serve`` read it, each the keys that mean the same thing there
(:data:`APPLIES`; ``swarmvar config show`` lists them); with a book, ``var`` and
``backtest`` read the keys of :data:`BOOK_APPLIES` (an ``agents`` list names
single-series agents, so a book, whose agents are joint ones, leaves it aside; a
book backtest is one day ahead, so ``backtest --book`` leaves ``horizon`` aside:
:data:`BOOK_ASIDE`, per path). Example::

    # swarmvar.toml
    home = ".swarmvar"          # data directory (ledger, keys, caches)
    data = "sp500"              # bundled name or a CSV/Parquet path
    agents = ["nig", "bootstrap", "garch-evt"]
    alphas = [0.99, 0.975]
    horizon = 1                 # days
    window = 1000               # trailing returns per (re)fit (backtest, run, serve)
    refit_every = 20            # days between refits (backtest, run, serve)
    last = 2500                 # returns used (var) / days backtested (backtest)
    consensus = true            # add the swarm's consensus
    track_days = 1000           # out-of-sample days behind the consensus weights
    policy = "trimmed_mean"     # the consensus's robust rule (median, krum, ...)

Service-only settings (host, port, the request caps) have no key: they are
deployment settings, given to ``swarmvar serve`` as flags (or its environment).

Unknown keys and wrong types are refused (:class:`~swarmvar.errors.InvalidConfig`,
an ``InvalidParameter``, naming the file and the key as the file spells it,
``refit_every``: the CLI does not rewrite it into a flag). A value takes its
flag's rule (``alphas`` strictly between 0.5 and 1, as ``--alpha``); the CLI
checks a file's value against the flag's bounds too and names the file and key
(``swarmvar.toml: horizon = 999: ...``), never a flag that was not given.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidConfig

#: Where a file's settings may come from, in order.
CONFIG_NAMES = ("swarmvar.toml", "pyproject.toml")
#: The variable naming a config file explicitly.
CONFIG_ENV = "SWARMVAR_CONFIG"

#: key -> (built-in default, what it is)
DEFAULTS: Mapping[str, tuple[object, str]] = {
    "home": (".swarmvar", "data directory (ledger, keys, caches)"),
    "data": ("sp500", "bundled data set or CSV/Parquet path"),
    # None: the default swarm, models.registry.DEFAULT_AGENTS (named by `config show`)
    "agents": (None, "agents (default: the default swarm; serve: NormalInverseGamma, "
               "BayesianBootstrap)"),
    "alphas": (None, "confidence levels (var: 0.99; the others: 0.99, 0.975)"),
    "horizon": (1, "horizon in days"),
    "window": (1000, "trailing returns per (re)fit"),
    "refit_every": (20, "days (run, serve: beats) between refits"),
    "last": (2500, "returns used (var) / days backtested (backtest)"),
    "consensus": (True, "add the swarm's consensus"),
    # the swarm policy's window (swarm.consensus.TRACK_DAYS; a test keeps them equal), so
    # that `var` weighs the agents as the backtest's consensus row does
    "track_days": (1000, "out-of-sample days behind the consensus weights"),
    "policy": (None, "consensus rule: trimmed_mean (default), median, geometric_median, "
               "krum, multi_krum"),
}

#: key -> the commands that read it (the others leave it aside: ``run`` has no ``last``;
#: ``serve`` takes no data, its horizon is one day and its consensus rule its own).
APPLIES: Mapping[str, tuple[str, ...]] = {
    "home": ("var", "backtest", "run", "serve"),
    "data": ("var", "backtest", "run"),
    "agents": ("var", "backtest", "run", "serve"),
    "alphas": ("var", "backtest", "run", "serve"),
    "horizon": ("var", "backtest", "run"),
    "window": ("backtest", "run", "serve"),
    "refit_every": ("backtest", "run", "serve"),
    "last": ("var", "backtest"),
    "consensus": ("var", "backtest"),
    "track_days": ("var",),
    "policy": ("var", "backtest", "run"),
}

#: book path -> the keys it reads (``var --book/--positions``, ``backtest --book/--positions``):
#: those whose value means the same thing there, with the same built-in default, so a file
#: written for the single series changes a book only where it says the same.
BOOK_APPLIES: Mapping[str, tuple[str, ...]] = {
    "var --book": ("home", "alphas", "horizon", "consensus"),
    "backtest --book": ("home", "alphas", "window", "refit_every", "consensus"),
}

#: book path -> key -> why that path leaves the key aside (the flag gives it there): with
#: the path's :data:`BOOK_APPLIES`, every key its command reads (:data:`APPLIES`).
_JOINT = ("a book's agents are joint agents, named apart from the single-series ones "
          "(--agents niw, fhs, copula)")
BOOK_ASIDE: Mapping[str, Mapping[str, str]] = {
    "var --book": {
        "data": "a book's data is multi-asset (--data; default sp500-stocks)",
        "agents": _JOINT,
        "last": "a book's --last has its own default (1000)",
        "track_days": "a book's --track-days has its own default, 0 (equal weights: its "
                      "joint agents' backtest takes minutes)",
        "policy": "a book has no --policy",
    },
    "backtest --book": {
        "data": "a book's data is multi-asset (--data; default sp500-stocks)",
        "agents": _JOINT,
        "horizon": "a book backtest is one day ahead (no --horizon)",
        "last": "a book's --last has its own default (1000)",
        "policy": "a book has no --policy",
    },
}

_INTS = ("horizon", "window", "refit_every", "last", "track_days")


@dataclass(frozen=True)
class Setting:
    """One effective setting: its value and where it came from (``default``, a file, a flag)."""

    key: str
    value: object
    source: str


@dataclass(frozen=True)
class Config:
    """The settings a config file gives, and the file (``None``: no file found)."""

    values: Mapping[str, object]
    path: Path | None

    @property
    def source(self) -> str:
        if self.path is None:
            return "default"
        return f"{self.path} [tool.swarmvar]" if self.path.name == "pyproject.toml" else str(
            self.path)

    def get(self, key: str) -> Setting:
        """The file's value of ``key``, else the built-in default."""
        if key in self.values:
            return Setting(key, self.values[key], self.source)
        return Setting(key, DEFAULTS[key][0], "default")

    def effective(self, flags: Mapping[str, object]) -> dict[str, Setting]:
        """Every setting: a flag given (not ``None``) wins over the file over the default."""
        out = {}
        for key in DEFAULTS:
            given = flags.get(key)
            out[key] = Setting(key, given, "flag") if given is not None else self.get(key)
        return out


def _check(key: str, value: object, where: str) -> object:
    def bad(what: str) -> InvalidConfig:
        return InvalidConfig(f"{where}: {key} must be {what}, not {value!r}")

    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < (
                0 if key == "track_days" else 1):
            raise bad("a whole number >= " + ("0" if key == "track_days" else "1"))
    elif key == "consensus":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif key == "policy":
        rules = ("trimmed_mean", "median", "geometric_median", "krum", "multi_krum")
        if not isinstance(value, str) or value.lower().replace("-", "_") not in rules:
            raise bad(f"one of {', '.join(rules)}")
    elif key in ("home", "data"):
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
    elif key == "agents":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) and v for v in value):
            raise bad('a list of agent names, e.g. ["nig", "garch-evt"]')
    elif key == "alphas":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and 0.5 < v < 1 for v in value):  # the --alpha flag's rule (the engines')
            raise bad("a list of confidence levels strictly between 0.5 and 1, e.g. "
                      "[0.99, 0.975]")
    return value


def find_config(cwd: Path | None = None) -> Path | None:
    """The config file in effect: ``$SWARMVAR_CONFIG``, else ``swarmvar.toml``, else a
    ``pyproject.toml`` with a ``[tool.swarmvar]`` table, in ``cwd``."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InvalidConfig(f"{CONFIG_ENV}={explicit}: no such file")
        return path
    folder = Path.cwd() if cwd is None else Path(cwd)
    own = folder / CONFIG_NAMES[0]
    if own.is_file():
        return own
    project = folder / CONFIG_NAMES[1]
    if project.is_file():
        try:
            table = tomllib.loads(project.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # someone else's file we cannot read is not our config
        tool = table.get("tool")
        if isinstance(tool, dict) and "swarmvar" in tool:
            return project
    return None


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """The settings of ``path`` (default: :func:`find_config`), checked.

    Raises
    ------
    InvalidConfig
        Unreadable TOML, an unknown key (with the closest known one) or a value
        of the wrong type, naming the file.
    """
    path = find_config(cwd) if path is None else Path(path)
    if path is None:
        return Config({}, None)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"cannot read the config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(f"{path} is not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        tool = table.get("tool", {})
        table = tool.get("swarmvar", {}) if isinstance(tool, dict) else {}
        where = f"{path} [tool.swarmvar]"
    else:
        where = str(path)
    if not isinstance(table, dict):
        raise InvalidConfig(f"{where}: settings must be a table of key = value")
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidConfig(f"{where}: unknown setting {key!r}{hint} Known: "
                                   f"{', '.join(DEFAULTS)}")
        values[key] = _check(key, value, where)
    return Config(values, path)
