"""The README's S&P 500 backtest table, parsed so that a test can check every figure in it.

README.md's section ``## Backtest: where the swarm stands on the S&P 500``
names the command that produced it (in backticks) and has one table: per row
(an agent, the consensus, an arch baseline) the hits, Kupiec p and
Christoffersen p at each level, and whether the row passes both tests at
every level. :func:`parse` reads that section and fails loudly
(:class:`ReadmeTableError`, naming the README line) on anything it cannot read,
so a table that moved, lost a column or gained a typo cannot be skipped
silently by the slow test that checks it.

The p-values stay text: the README prints them to three decimals, and the
check is that the backtest's value, formatted the same way, is that text.

Loaded by path (``--import-mode=importlib`` cannot import ``tests.*``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: The README section that holds the table.
HEADING = "## Backtest: where the swarm stands on the S&P 500"

_COMMAND = re.compile(r"`(swarmvar backtest\b[^`]*)`")
_LEVEL = re.compile(r"(\d+(?:\.\d+)?)%")
_SEPARATOR = re.compile(r":?-{3,}:?")
_CELLS = re.compile(r"(\d+), (\d\.\d{3}), (\d\.\d{3})")
_PASS = re.compile(r"(?:\*\*(yes|no)\*\*|(yes|no))(?: \(.+\))?")


class ReadmeTableError(ValueError):
    """The README's backtest section is missing or a part of it cannot be read."""


@dataclass(frozen=True)
class LevelCells:
    """One level's figures as the README prints them.

    Attributes
    ----------
    hits : int
        VaR breaches over the out-of-sample days.
    kupiec, christoffersen : str
        p-values as printed, three decimals (``"0.208"``).
    """

    hits: int
    kupiec: str
    christoffersen: str


@dataclass(frozen=True)
class TableRow:
    """One row of the table.

    Attributes
    ----------
    row : str
        The backtest row it describes (the first cell without bold and
        without its trailing ``(note)``: ``"arch GARCH(1,1)-t"``).
    levels : mapping alpha -> LevelCells
        In the table's column order.
    passes : bool
        The last column: ``yes`` or ``no``.
    line : int
        1-based line number in the README (for messages).
    """

    row: str
    levels: Mapping[float, LevelCells]
    passes: bool
    line: int


@dataclass(frozen=True)
class BacktestTable:
    """The section: the command that made the table, its levels and its rows.

    Attributes
    ----------
    flags : mapping str -> str
        The command's ``--flag value`` pairs (``{"--last": "2500", ...}``).
    alphas : tuple of float
        The levels of the table's columns (``(0.99, 0.975)``).
    rows : tuple of TableRow
        In the table's order; names are distinct.
    """

    flags: Mapping[str, str]
    alphas: tuple[float, ...]
    rows: tuple[TableRow, ...]


def _cells(line: str, number: int) -> list[str]:
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        raise ReadmeTableError(f"README line {number}: a table line must start and end with "
                               f"'|': {line!r}")
    return [c.strip() for c in text[1:-1].split("|")]


def _flags(command: str) -> dict[str, str]:
    words = command.split()[2:]  # after "swarmvar backtest"
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or i + 1 == len(words) or words[i + 1].startswith("--"):
            raise ReadmeTableError(f"README's backtest command: {word!r} is not a "
                                   f"'--flag value' pair in {command!r}")
        out[word] = words[i + 1]
        i += 2
    return out


def _header(cells: list[str], number: int) -> tuple[float, ...]:
    if len(cells) < 3 or "passes" not in cells[-1]:
        raise ReadmeTableError(f"README line {number}: the table's header must be 'row', one "
                               f"column per level and 'passes both levels', not {cells!r}")
    alphas = []
    for cell in cells[1:-1]:
        level = _LEVEL.search(cell)
        words = [cell.find(w) for w in ("hits", "Kupiec", "Christoffersen")]
        if level is None or -1 in words or words != sorted(words):
            raise ReadmeTableError(f"README line {number}: header cell {cell!r} must name a "
                                   "level (99%) then hits, Kupiec p, Christoffersen p")
        alphas.append(float(level.group(1)) / 100)
    if len(set(alphas)) != len(alphas):
        raise ReadmeTableError(f"README line {number}: a level appears twice in the header")
    return tuple(alphas)


def _row(cells: list[str], alphas: tuple[float, ...], number: int, line: str) -> TableRow:
    where = f"README line {number} ({line.strip()!r})"
    if len(cells) != len(alphas) + 2:
        raise ReadmeTableError(f"{where}: {len(cells)} cells, the header has "
                               f"{len(alphas) + 2}")
    name = cells[0].replace("**", "").split(" (", 1)[0].strip()
    if not name or name.startswith("("):
        raise ReadmeTableError(f"{where}: the first cell names no row")
    levels = {}
    for alpha, cell in zip(alphas, cells[1:-1], strict=True):
        m = _CELLS.fullmatch(cell)
        if m is None:
            raise ReadmeTableError(f"{where}: the {alpha:.1%} cell {cell!r} is not "
                                   "'hits, 0.ddd, 0.ddd'")
        levels[alpha] = LevelCells(int(m.group(1)), m.group(2), m.group(3))
    verdict = _PASS.fullmatch(cells[-1])
    if verdict is None:
        raise ReadmeTableError(f"{where}: the last cell {cells[-1]!r} is not 'yes' or 'no' "
                               "(bold allowed, then an optional '(reason)')")
    return TableRow(name, levels, (verdict.group(1) or verdict.group(2)) == "yes", number)


def parse(text: str, heading: str = HEADING) -> BacktestTable:
    """The backtest section of README text ``text``.

    Raises
    ------
    ReadmeTableError
        No such heading, no command or table in its section, a header,
        separator or row that does not read, or a row named twice.
    """
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        raise ReadmeTableError(f"README has no section {heading!r}") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")
                and lines[i].lstrip("#").startswith(" ")), len(lines))
    section = lines[start + 1:end]
    command = _COMMAND.search("\n".join(section))
    if command is None:
        raise ReadmeTableError(f"README's section {heading!r} names no `swarmvar backtest ...` "
                               "command in backticks")
    first = next((i for i, line in enumerate(section) if line.lstrip().startswith("|")), None)
    if first is None:
        raise ReadmeTableError(f"README's section {heading!r} has no table")
    table = []
    for i in range(first, len(section)):
        if not section[i].lstrip().startswith("|"):
            break
        table.append((start + 2 + i, section[i]))
    if len(table) < 3:
        raise ReadmeTableError(f"README line {table[0][0]}: the table needs a header, a "
                               "separator and at least one row")
    alphas = _header(_cells(table[0][1], table[0][0]), table[0][0])
    number, separator = table[1]
    if not all(_SEPARATOR.fullmatch(c) for c in _cells(separator, number)):
        raise ReadmeTableError(f"README line {number}: {separator!r} is not the table's "
                               "'| --- |' separator")
    rows = tuple(_row(_cells(line, n), alphas, n, line) for n, line in table[2:])
    names = [r.row for r in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ReadmeTableError(f"README's backtest table names {', '.join(twice)} twice")
    return BacktestTable(_flags(command.group(1)), alphas, rows)
