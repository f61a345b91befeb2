"""README.md's S&P 500 backtest table, read so that a slow test can check every figure.

The section ``## Backtest: where the swarm stands on the S&P 500`` names the
command that made the table (in backticks) and has one table: a row name, one
``hits, Kupiec p, Christoffersen p`` cell per level (``19, 0.208, 0.589``) and
``yes``/``no`` (bold and a ``(reason)`` allowed) for "passes both levels".
:func:`parse` fails loudly (:class:`ReadmeTableError`) on a missing section,
command, table or level, a row of the wrong width or a row named twice.

Loaded by path (``--import-mode=importlib`` cannot import ``tests.*``); it loads
tests/docs/_docs_blocks.py the same way for the section and cell readers.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HEADING = "## Backtest: where the swarm stands on the S&P 500"


class ReadmeTableError(ValueError):
    """The README's backtest section is missing or a part of it cannot be read."""


@dataclass(frozen=True)
class ReadmeTable:
    """``argv``: the command's words after ``swarmvar``; ``alphas``: the levels of the
    columns (``(0.99, 0.975)``); ``rows``: name -> (the cells per level, as printed;
    passes both levels), in the table's order."""

    argv: tuple[str, ...]
    alphas: tuple[float, ...]
    rows: Mapping[str, tuple[tuple[str, ...], bool]]


def _docs_blocks() -> ModuleType:
    """tests/docs/_docs_blocks.py (its section and cell readers), loaded by path under the
    name the docs tests import it by, so that a session holds one copy."""
    name = "_docs_blocks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "docs" / "_docs_blocks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[name]


_db = _docs_blocks()


def parse(text: str) -> ReadmeTable:
    """The backtest section of README text ``text`` (:class:`ReadmeTableError` if unreadable)."""
    try:
        section = _db.section_lines(text, HEADING)
    except _db.MissingSection as exc:
        raise ReadmeTableError(f"README has {exc}") from None
    command = re.search(r"`swarmvar (backtest\b[^`]*)`", "\n".join(section))
    if command is None:
        raise ReadmeTableError("README's backtest section names no `swarmvar backtest ...`")
    first = next((i for i, line in enumerate(section) if line.startswith("|")), len(section))
    table = []
    for line in section[first:]:
        if not line.startswith("|"):
            break
        table.append(_db.cells(line))
    if len(table) < 3:
        raise ReadmeTableError("README's backtest section has no table with a header, a "
                               "separator and rows")
    levels = [re.match(r"(\d+(?:\.\d+)?)%:", cell) for cell in table[0][1:-1]]
    if not levels or None in levels:
        raise ReadmeTableError(f"README's table header {table[0]} must name a level "
                               "('99%: hits, ...') in every column but the first and last")
    rows: dict[str, tuple[tuple[str, ...], bool]] = {}
    for cells in table[2:]:
        name = cells[0].replace("**", "").split(" (", 1)[0].strip()
        verdict = cells[-1].replace("**", "").split(" (", 1)[0]
        if len(cells) != len(table[0]) or verdict not in ("yes", "no") or name in rows:
            raise ReadmeTableError(f"README's table row {cells} must have {len(table[0])} "
                                   "cells, a name not used before and end with yes or no")
        rows[name] = (tuple(cells[1:-1]), verdict == "yes")
    return ReadmeTable(tuple(shlex.split(command.group(1))),
                       tuple(float(m.group(1)) / 100 for m in levels if m is not None), rows)
