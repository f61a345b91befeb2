"""`swarmvar run`'s live table fits the terminal: at 80, 100 and 160 columns every shown
cell is whole (no number cut to `…`); the least important columns go first."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from swarmvar.cli.run import DROPPED_FIRST, _table

ALPHAS = (0.99, 0.975)


def _swarm(n: int = 3) -> Any:
    """A swarm as the table reads it: ``n`` portfolios, the first of positions (a net value
    in the millions), each with a consensus at both levels and the arbiter's decisions."""
    specs, reports = {}, {}
    for k in range(n):
        name = "book-of-positions" if k == 0 else f"eq{k}"
        specs[name] = SimpleNamespace(net_value=12_345_678.0 if k == 0 else None)
        levels = tuple(SimpleNamespace(alpha=a, var=0.0231 + 0.001 * k + 0.01 * (a == 0.99),
                                       es=0.0312 + 0.001 * k, available=5, total=6,
                                       var_interval=(0.0190 + 0.001 * k, 0.0380 + 0.001 * k))
                       for a in ALPHAS)
        decisions = (SimpleNamespace(action=SimpleNamespace(value="apply_balance"),
                                     agents=("GarchT",)),)
        reports[name] = SimpleNamespace(seq=1234 + k, as_of=datetime(2026, 12, 4, tzinfo=UTC),
                                        consensus=levels, decisions=decisions)
    return SimpleNamespace(specs=specs, configs={"x": SimpleNamespace(alphas=ALPHAS)},
                           portfolios=lambda: list(specs), latest=reports.get)


def _numbers(swarm: Any) -> list[str]:
    """Every number the narrowest table must show whole: VaR and ES per level."""
    out = []
    for name in swarm.portfolios():
        for c in swarm.latest(name).consensus:
            out += [f"{100 * c.var:.2f}%", f"{100 * c.es:.2f}%"]
    return out


def _render(width: int, swarm: Any) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(_table(swarm, {"eq1": 2}, {"eq1": "builder: refit swapped in at beat "
                                                     "1200 (lag 0)"}, True, width))
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 160, 250])
def test_every_shown_cell_is_whole(width: int) -> None:
    swarm = _swarm()
    text = _render(width, swarm)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width, text
    for number in _numbers(swarm):
        assert number in text, (number, text)
    # a shown column's header is whole too (an optional one is shown whole or not at all)
    header = next(line for line in text.splitlines() if "as of" in line)
    cells = [c.strip() for c in re.split(r"[┃│]", header) if c.strip()]
    assert "portfolio" in cells and "as of" in cells, header


HEADERS = {"decisions": "last decisions", "event": "last role event", "m/n": "m/n",
           "beat": "beat", "ccy": "(ccy)", "breaches": "breaches", "interval": "[interval]"}


@pytest.mark.parametrize("width", [80, 100, 120, 160, 250])
def test_the_least_important_columns_go_first(width: int) -> None:
    text = _render(width, _swarm())
    header = next(line for line in text.splitlines() if "as of" in line)
    shown = [k for k in DROPPED_FIRST if HEADERS[k] in header]
    # what a width keeps of the optional columns is the most important ones: a tail of
    # DROPPED_FIRST
    assert shown == list(DROPPED_FIRST[len(DROPPED_FIRST) - len(shown):]), (shown, header)
    if width >= 250:
        assert shown == list(DROPPED_FIRST) and "12,345,678" in text
    if width <= 100:
        assert "last decisions" not in header and "last role event" not in header
