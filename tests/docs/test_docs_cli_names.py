"""Every ``swarmvar`` command and ``--option`` the docs name, in code or prose, exists.

A page's fenced blocks (``\\`` continuations joined) and inline code spans
that start ``swarmvar`` are checked against the CLI's commands and options
(Typer's click tree), so a renamed flag fails here before a user meets it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT, Block, blocks, logical_lines, pages  # noqa: E402


def block_usages(block: Block) -> list[tuple[int, str]]:
    """``swarmvar ...`` lines of a fenced block, ``\\`` continuations joined (as ``commands``)."""
    found = []
    for first, line in logical_lines(block):
        line = re.sub(r"^(\$ |\.venv/bin/|producer \| )", "", line.strip())
        if line.startswith("swarmvar "):
            found.append((first, " ".join(line.split())))
    return found


def _usages(page: str) -> list[tuple[int, str]]:
    """``swarmvar ...`` as the page names it: lines of any fenced block, inline code spans."""
    text = (ROOT / page).read_text(encoding="utf-8")
    found = [usage for block in blocks(page) for usage in block_usages(block)]
    prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for span in re.finditer(r"`(swarmvar [^`]+)`", prose):
        found.append((prose[:span.start()].count("\n") + 1, " ".join(span.group(1).split())))
    return found


def _unknown(usage: str) -> list[str]:
    """What ``usage`` names that the CLI does not have: a command, or an option of it."""
    import typer

    from swarmvar.cli import app

    words = re.sub(r"[\[\]]", " ", usage.split(" #")[0].rstrip("\\")).split()[1:]
    command: Any = typer.main.get_command(app)  # typer's own click: duck-typed
    path, i = ["swarmvar"], 0
    while hasattr(command, "list_commands") and i < len(words) and not words[i].startswith("-"):
        if words[i] in ("...", "|"):
            break
        names = words[i].rstrip(":").split("|")  # `ledger verify|show|tail`
        subs = [command.get_command(command.context_class(command), name) for name in names]
        if None in subs:
            return [f"{' '.join(path)} has no command {words[i]!r}"]
        command, path, i = subs[0], path + [names[0]], i + 1
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    bad = []
    for word in words[i:]:
        for name in word.split("=")[0].rstrip(",.;:)").split("|"):
            if re.fullmatch(r"--?[a-zA-Z][\w-]*", name) and name not in options:
                bad.append(f"{' '.join(path)} has no option {name}")
    return bad


@pytest.mark.parametrize("page", pages())
def test_documented_commands_and_options_exist(page: str) -> None:
    """Every ``swarmvar`` command a page names, in code or in prose, and each of its
    ``--options``, exists in the CLI (a renamed flag fails here before a user meets it)."""
    bad = [f"{page}:{line}: {problem}  ({usage[:80]})"
           for line, usage in _usages(page) for problem in _unknown(usage)]
    assert not bad, bad


def test_the_usage_check_reads_continued_lines() -> None:
    block = Block("x.md", 5, "bash", "swarmvar var --data sp500 \\\n    --dtaa x\n", None)
    ((line, usage),) = block_usages(block)
    assert line == 5 and _unknown(usage) == ["swarmvar var has no option --dtaa"]


def test_the_usage_check_catches_a_renamed_flag() -> None:
    assert _unknown("swarmvar ledger verify --against head.json") == []
    assert _unknown("swarmvar ledger verify|show [--against x]") == []
    assert _unknown("swarmvar ledger verfy") == ["swarmvar ledger has no command 'verfy'"]
    assert _unknown("swarmvar var --dtaa sp500") == ["swarmvar var has no option --dtaa"]
