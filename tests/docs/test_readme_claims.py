"""Facts README.md states in prose that no other test checked, each read from the README.

The default swarm's size ("the six-agent default swarm"), the first day a replay
of the bundled stocks beats ("first beaten at 2003-12-29", from a one-beat run
and its ledger) and how many stocks ship, the service's defaults (port, ``--max-batch``,
``--max-streams``, from the CLI's own options) and the live table's narrowest
width that keeps every number whole ("never cutting a number down to 36
columns", rendered for 1 to 6 levels and long portfolio names) and the table
of which command reads which ``swarmvar.toml`` key (``config.APPLIES``). A claim the
README rewords so that it cannot be read fails here, naming the phrase.
"""

from __future__ import annotations

import io
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT  # noqa: E402

README = ROOT / "README.md"
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10}


def _readme() -> str:
    """README's text, whitespace folded (a phrase may wrap)."""
    return " ".join(README.read_text(encoding="utf-8").split())


def _claim(pattern: str) -> re.Match[str]:
    found = re.search(pattern, _readme())
    assert found is not None, f"README no longer says {pattern!r}: update this test or it"
    return found


def _option_default(path: list[str], name: str) -> Any:
    import typer

    from swarmvar.cli import app

    command: Any = typer.main.get_command(app)
    for word in path:
        command = command.get_command(command.context_class(command), word)
    (param,) = [p for p in command.params if name in p.opts]
    return param.default


def test_the_default_swarm_has_the_readme_size() -> None:
    from swarmvar.models import DEFAULT_AGENTS

    word = _claim(r"the (\w+)-agent default swarm").group(1)
    assert NUMBERS[word] == len(DEFAULT_AGENTS), DEFAULT_AGENTS


def test_the_bundled_stocks_are_first_beaten_on_the_readme_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``swarmvar run --data sp500-stocks`` with its default ``--window``: one beat of every
    stock's portfolio, ledgered on the day README names (two fast agents, ~2 s)."""
    from swarmvar.cli import app
    from swarmvar.ledger import Ledger

    claim = _claim(r"the bundled stocks \(from (\d{4}-\d{2})\) are first beaten at "
                   r"(\d{4}-\d{2}-\d{2})")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["run", "--data", "sp500-stocks", "--beats", "1",
                                      "--agents", "nig,bootstrap", "--quiet", "--home",
                                      str(home)])
    assert result.exit_code == 0, result.output
    with Ledger.open(home) as ledger:
        days = {e.data["beat"]["as_of"][:10] for e in ledger.entries()
                if e.kind.value == "consensus"}
    assert days == {claim.group(2)}, days
    from swarmvar.books import load_stocks

    stocks = load_stocks()
    assert str(stocks.index[0].date()).startswith(claim.group(1))
    assert stocks.shape[1] == int(_claim(r"(\d+) S&P 500 stocks ship in the package").group(1))


def test_the_service_defaults_are_the_readme_ones() -> None:
    port = int(_claim(r"Prometheus `/metrics` on port (\d+)").group(1))
    batch = int(_claim(r"at most `--max-batch` ([\d,]+) returns a request").group(1)
                .replace(",", ""))
    streams = int(_claim(r"at most `--max-streams` (\d+) event streams per process").group(1))
    assert _option_default(["serve"], "--port") == port
    assert _option_default(["serve"], "--max-batch") == batch
    assert _option_default(["serve"], "--max-streams") == streams


def _swarm(levels: int, name: str) -> Any:
    """Two portfolios as the live table reads them (one of currency positions), ``levels``
    consensus levels each, the arbiter's decisions; names ``name`` and a short one."""
    alphas = tuple(0.999 - 0.005 * k for k in range(levels))
    specs, reports = {}, {}
    for k, portfolio in enumerate((name, "eq")):
        specs[portfolio] = SimpleNamespace(net_value=12_345_678.0 if k == 0 else None)
        consensus = tuple(SimpleNamespace(alpha=a, var=0.0231 + 0.01 * k + 0.001 * j,
                                          es=0.0312 + 0.01 * k + 0.001 * j, available=5,
                                          total=6, var_interval=(0.019, 0.038))
                          for j, a in enumerate(alphas))
        decisions = (SimpleNamespace(action=SimpleNamespace(value="apply_balance"),
                                     agents=("GarchT",)),)
        reports[portfolio] = SimpleNamespace(seq=1234 + k,
                                             as_of=datetime(2026, 12, 4, tzinfo=UTC),
                                             consensus=consensus, decisions=decisions)
    return SimpleNamespace(specs=specs, configs={"x": SimpleNamespace(alphas=alphas)},
                           portfolios=lambda: list(specs), latest=reports.get)


def test_the_live_table_keeps_every_number_whole_down_to_the_readme_width() -> None:
    """Every width from README's narrowest to 60 columns, 1 to 6 levels, a portfolio name
    of README's longest and a short one: every VaR and ES shown whole (~1 s)."""
    from rich.console import Console

    from swarmvar.cli.run import _table

    claim = _claim(r"never cutting a number down to (\d+) columns .*? for 1 to (\d+) levels "
                   r"and portfolio names of up to (\d+) characters")
    narrowest, most, longest = (int(g) for g in claim.groups())
    name = ("long-short-book-" * 3)[:longest]
    cut = []
    for levels in range(1, most + 1):
        swarm = _swarm(levels, name)
        numbers = [f"{100 * c.var:.2f}%" for p in swarm.portfolios()
                   for c in swarm.latest(p).consensus]
        numbers += [f"{100 * c.es:.2f}%" for p in swarm.portfolios()
                    for c in swarm.latest(p).consensus]
        for width in range(narrowest, 61):
            console = Console(record=True, width=width, file=io.StringIO())
            console.print(_table(swarm, {}, {}, True, width))
            text = console.export_text()
            missing = [n for n in numbers if n not in text]
            if missing or max(len(line) for line in text.splitlines()) > width:
                cut.append((levels, width, missing))
    assert not cut, cut


def test_the_config_table_is_the_code_s() -> None:
    """README's table of which command reads which ``swarmvar.toml`` key is
    ``config.APPLIES`` (single series) and ``config.BOOK_APPLIES`` (books), cell by cell."""
    from _docs_blocks import cells, section_lines

    from swarmvar.config import APPLIES, BOOK_APPLIES, DEFAULTS

    lines = section_lines(README.read_text(encoding="utf-8"), "## Use it")
    head = next((i for i, line in enumerate(lines) if line.startswith("| key |")), None)
    assert head is not None, "README's 'Use it' has no '| key | ...' table"
    commands = cells(lines[head])[1:]
    assert set(commands) == {c for cs in APPLIES.values() for c in cs} | set(BOOK_APPLIES)
    seen, wrong = set(), []
    for line in lines[head + 2:]:
        if not line.startswith("|"):
            break
        row = cells(line)
        keys = re.findall(r"`(\w+)`", row[0])
        for key in keys:
            seen.add(key)
            for command, cell in zip(commands, row[1:], strict=True):
                reads = (key in BOOK_APPLIES[command] if command in BOOK_APPLIES
                         else command in APPLIES[key])
                if cell.startswith("yes") != reads or cell not in ("-", "yes", "yes (beats)"):
                    wrong.append(f"{key} / {command}: README {cell!r}, code reads it: {reads}")
    assert seen == set(DEFAULTS), (seen, set(DEFAULTS))
    assert not wrong, wrong
