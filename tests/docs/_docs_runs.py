"""How each page's examples run: shell fixtures and expectations, Python contexts.

A helper module of the docs tests (imported through ``sys.path``; see
``_docs_blocks``). For the shell pages: the commands over ~10 s
(``SLOW_COMMANDS``, marked slow), what a command's output must show
(``EXPECT``), each page's fixture writing the files its commands name
(``SHELL_PAGES``) and the commands a page runs (:func:`page_commands`).
For the Python pages: each page's context and the names it provides
(``PYTHON_PAGES``) and :func:`run_python_page`. test_docs_pages.py runs them;
test_docs_coverage.py checks every runnable block lands in one of these
tables or a test of its own. Constant tables and pure functions: no state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _docs_blocks import (
    ROOT,
    SHELL,
    Block,
    Command,
    commands,
    covered_elsewhere,
    readme_commands,
    runnable,
)

# Commands that take more than ~10 s (seconds measured alone, load average beside).
SLOW_COMMANDS = {
    "backtest --book book.csv --last 1000": "69 s (load 2.8): 4 joint agents refit over 1,000 days",
    "run --data assets.csv --portfolios books.json --executor ray --workers 4":
        "41 s (load 10): a local Ray cluster and four actors",
    "run --data live.csv --portfolios books.json --follow":
        "23 s (load 10): waits out --idle-timeout (10 s) after the last row",
}

# What a command's output must show, beyond exit code 0 (regular expressions).
EXPECT = {
    "run --data assets.csv --stdin --portfolios books.json":
        r"40 beats .* stopped: stdin ended; 0 ticks refused",
    "run --data assets.csv --portfolios books.json --executor ray --workers 4":
        r"200 beats .* 0 ticks refused",
    "run --data live.csv --portfolios books.json --follow": r"200 beats .* 0 ticks refused",
    "var --data prices.csv --book book.csv --alpha 0.99,0.975 --json": r'"command": "var"',
    "var --positions AAPL=600000,MSFT=-400000,XOM=300000 --trade JPM=1000000":
        r"trade JPM=1000000: incremental VaR",
}


def _asset_returns(folder: Path, name: str, days: int = 1100) -> None:
    from swarmvar.books import load_stocks

    stocks = load_stocks().iloc[-days:, :4]
    stocks.rename_axis("date").reset_index().to_csv(folder / name, index=False)


def _portfolio_files(folder: Path) -> str:
    from swarmvar.books import load_stocks

    prices = load_stocks(kind="price").iloc[-1200:]
    prices.rename_axis("date").reset_index().to_csv(folder / "prices.csv", index=False)
    (folder / "book.csv").write_text("asset,position\nAAPL,600000\nMSFT,-400000\nXOM,300000\n")
    return ""


def _runtime_files(folder: Path) -> str:
    """assets.csv / live.csv: four stocks' log returns; books.json: two books over them."""
    from swarmvar.books import load_stocks

    _asset_returns(folder, "assets.csv")
    _asset_returns(folder, "live.csv")
    columns = list(load_stocks().columns[:4])
    books = {"equal": {"weights": {c: 0.25 for c in columns}},
             "long-short": {"positions": {columns[0]: 600_000.0, columns[1]: -400_000.0}}}
    (folder / "books.json").write_text(json.dumps(books))
    # the producer: the 20 days after the history, one JSON line per day, every portfolio
    returns = load_stocks().iloc[-20:, :4]
    return "".join(json.dumps({"portfolio": "*", "as_of": str(day.date()),
                               "assets": {c: float(v) for c, v in row.items()}}) + "\n"
                   for day, row in returns.iterrows())


# page -> fixture(folder) writing the files its commands name; returns the producer's stdin
SHELL_PAGES: dict[str, Callable[[Path], str]] = {
    "docs/portfolio.md": _portfolio_files,
    "docs/runtime.md": _runtime_files,
}


def page_commands(page: str) -> list[Command]:
    seen = readme_commands()
    return [c for b in runnable(page, SHELL) if not covered_elsewhere(b) for c in commands(b)
            if c.args not in seen]



# ---------------------------------------------------------------- Python blocks


@dataclass(frozen=True)
class PythonPage:
    context: str = ""                 # makes the names the page's excerpts use...
    provides: tuple[str, ...] = ()    # ...and these are the names copied to the page
    check: Callable[[dict[str, object], str], None] | None = None  # (namespace, stdout)


LEDGER_CONTEXT = """
from datetime import UTC, datetime
from swarmvar import data
from swarmvar.consensus import private_key_from_seed, sign_measures
from swarmvar.models import NormalInverseGamma

forecast = NormalInverseGamma().fit(data.load("sp500").iloc[-500:], seed=0).forecast((0.99,))
keys = {"nig": private_key_from_seed(b"n" * 32)}
estimates = sign_measures([("nig", forecast.at(0.99))], keys, portfolio="sp500", horizon=1,
                          as_of=datetime(2018, 12, 31, tzinfo=UTC), seq=1)
"""

CONSENSUS_CONTEXT = """
from datetime import UTC, datetime
from swarmvar import data
from swarmvar.consensus import private_key_from_seed
from swarmvar.models import BayesianBootstrap, NormalInverseGamma

r = data.load("sp500")
forecasts = {f"{name}-{days}": agent().fit(r.iloc[-days:], seed=0).forecast((0.99,))
             for name, agent in (("nig", NormalInverseGamma), ("bootstrap", BayesianBootstrap))
             for days in (250, 500, 1000)}
keys = {agent_id: private_key_from_seed(agent_id.encode().ljust(32, b"-"))
        for agent_id in forecasts}
data_time, beat = datetime(2018, 12, 31, 22, tzinfo=UTC), 1
"""

EMERGENCE_CONTEXT = """
import numpy as np
from swarmvar.data import load
from swarmvar.models import BayesianBootstrap, NormalInverseGamma, StudentT
from swarmvar.validation import backtest

series = load("sp500").iloc[-1300:]                 # 300 days after the first 1,000-day window
agents = {"nig": NormalInverseGamma(), "bootstrap": BayesianBootstrap(), "t": StudentT()}
z = float(np.random.default_rng(0).standard_normal())
"""


def _check_sandbox(scope: dict[str, object], out: str) -> None:
    assert 0.0 < float(out.strip().splitlines()[-1]) < 0.2  # a daily 99% VaR, as a fraction


PYTHON_PAGES: dict[str, PythonPage] = {
    "docs/arbiter.md": PythonPage(),
    "docs/consensus.md": PythonPage(CONSENSUS_CONTEXT,
                                    provides=("forecasts", "keys", "data_time", "beat")),
    "docs/emergence.md": PythonPage(EMERGENCE_CONTEXT, provides=("series", "agents", "z")),
    "docs/ledger.md": PythonPage(LEDGER_CONTEXT, provides=("forecast", "keys", "estimates")),
    "docs/models-garch.md": PythonPage(),
    "docs/models-student-t-evt.md": PythonPage(),
    "docs/portfolio.md": PythonPage(),
    "docs/runtime.md": PythonPage(),
    "docs/sandbox.md": PythonPage(check=_check_sandbox),
}


def run_python_page(page: str, spec: PythonPage, todo: list[Block]) -> dict[str, object]:
    """The context in a namespace of its own, its ``provides`` copied to the page's
    namespace, then the page's blocks in order there; the page's namespace."""
    setup: dict[str, object] = {"__name__": "__docs_context__"}
    exec(compile(spec.context, f"<context of {page}>", "exec"), setup)  # noqa: S102
    missing = [name for name in spec.provides if name not in setup]
    assert not missing, f"the context of {page} does not make {missing}"
    scope: dict[str, object] = {"__name__": "__docs__"}
    scope.update({name: setup[name] for name in spec.provides})
    for block in todo:
        # blank lines first: a traceback's line numbers are the page's
        code = "\n" * (block.line - 1) + block.code
        exec(compile(code, str(ROOT / page), "exec"), scope)  # noqa: S102 - our documentation
    return scope
