"""Facts README.md states in prose that no other test checked, each read from the README.

The default swarm's size ("the six-agent default swarm"), the first day a replay
of the bundled stocks beats ("first beaten at 2003-12-29", from a one-beat run
and its ledger) and how many stocks ship, the service's defaults (port, ``--max-batch``,
``--max-streams``, from the CLI's own options) and the live table's narrowest
width that keeps every number whole and its frame closed ("never cutting a number
or the table's frame down to 37 columns, 39 with a positions portfolio ...",
rendered for 1 to 6 levels and long portfolio names) and the table
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

    word = _claim(r"the ([a-z]+)-agent default swarm").group(1)
    assert word in NUMBERS, f"README's '{word}-agent default swarm': teach NUMBERS {word!r}"
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


def _swarm(levels: int, name: str, net: float | None) -> Any:
    """Two portfolios as the live table reads them (the first, named ``name``, of currency
    positions of net value ``net`` unless None), ``levels`` consensus levels each, the
    arbiter's decisions; the second named ``eq``."""
    alphas = tuple(0.999 - 0.005 * k for k in range(levels))
    specs, reports = {}, {}
    for k, portfolio in enumerate((name, "eq")):
        specs[portfolio] = SimpleNamespace(net_value=net if k == 0 else None)
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


#: how each line of a table's frame ends when its right edge is drawn (rich's default box)
RIGHT_EDGE = tuple("┓┃┩│┘")


def _cut(swarm: Any, width: int) -> list[str]:
    """What the live table of ``swarm`` rendered ``width`` columns wide cuts: the VaR, ES
    and net value figures not shown whole, and "frame" when a line of the table's frame
    has no right edge (rich cuts a table wider than the console at its right)."""
    from rich.console import Console

    from swarmvar.cli.run import _table

    console = Console(record=True, width=width, file=io.StringIO())
    console.print(_table(swarm, {}, {}, True, width))
    text = console.export_text()
    numbers = [f"{100 * x:.2f}%" for p in swarm.portfolios()
               for c in swarm.latest(p).consensus for x in (c.var, c.es)]
    numbers += [f"{s.net_value:,.0f}" for s in swarm.specs.values() if s.net_value is not None]
    frame = [line.rstrip() for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert frame, text  # the table was drawn
    edge = [] if all(line.endswith(RIGHT_EDGE) for line in frame) else ["frame"]
    return [n for n in numbers if n not in text] + edge


def test_cut_sees_a_cut_frame_and_a_folded_figure() -> None:
    """:func:`_cut` can fail: a table one column narrower than it needs loses its right
    edge, and a net value folded in the portfolio column is not whole."""
    from swarmvar.cli import run

    swarm = _swarm(1, "ab", None)
    assert _cut(swarm, 37) == [] and _cut(swarm, 36) == ["frame"]
    original = run._table_rows

    def narrow(*args: Any) -> Any:  # the net figure's width forgotten: it folds again
        alphas, money, rows = original(*args)
        return alphas, money, [r | {"net width": 0} for r in rows]

    swarm = _swarm(1, "ab", 12_345_678.0)
    assert _cut(swarm, 50) == []  # one row per level: a portfolio column 11 wide, not 9
    run._table_rows = narrow  # type: ignore[assignment]
    try:
        assert _cut(swarm, 50) == ["12,345,678"]
    finally:
        run._table_rows = original  # type: ignore[assignment]


def test_the_live_table_keeps_every_number_whole_down_to_the_readme_width() -> None:
    """Every width from README's narrowest to its widest, 1 to 6 levels, a portfolio name of
    README's longest and a short one, with and without a positions portfolio of README's
    net value: every VaR, ES and net figure whole and the frame closed; one column less
    cuts the frame (README's narrowest is the narrowest) (~2 s)."""
    claim = _claim(r"never cutting a number or the table's frame down to (\d+) columns, "
                   r"(\d+) with a positions portfolio of net value ([\d,]+) .*? for 1 to "
                   r"(\d+) levels and portfolio names of up to (\d+) characters, every width "
                   r"from the narrowest to (\d+) columns, and one column less cuts the frame")
    plain, positions, most, longest, widest = (int(claim.group(i)) for i in (1, 2, 4, 5, 6))
    net = float(claim.group(3).replace(",", ""))
    cut, tight = [], []
    for name in (("long-short-book-" * 3)[:longest], "ab"):
        for levels in range(1, most + 1):
            for value, narrowest in ((None, plain), (net, positions)):
                swarm = _swarm(levels, name, value)
                for width in range(narrowest, widest + 1):
                    if missing := _cut(swarm, width):
                        cut.append((len(name), levels, value, width, missing))
                tight.append("frame" in _cut(swarm, narrowest - 1))
    assert not cut, cut
    assert all(tight), "README's narrowest width is not the narrowest: one column less fits"


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
