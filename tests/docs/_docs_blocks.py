"""The docs' fenced blocks as the docs tests read them (a helper module, not a test file).

Shared by every ``tests/docs/test_docs_*.py`` (imported through ``sys.path``, as
tests/cli imports ``_cli_text``: with ``--import-mode=importlib`` test files
cannot import each other). It holds the block reader (:class:`Block`,
:func:`blocks`, :func:`logical_lines`, :func:`section`; :func:`section_lines` and
:func:`cells`, which the page parsers share), which runnable
blocks have a test of their own (``OWN_TESTS``, :func:`covered_elsewhere`:
README's "Use it" and docs/validation.md's examples in
test_docs_readme_validation.py, two docs/operations.md blocks in
test_docs_served.py, validation.md's command line) and the reading of a
shell block as ``swarmvar`` commands (:class:`Command`, :func:`commands`).
Pure functions of the pages on disk: no state.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = {"python", "bash", "sh", "shell", "console"}
SHELL = RUNNABLE - {"python"}
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page (relative to the repo), first code line, tag, code."""

    page: str
    line: int
    lang: str
    code: str
    not_run: str | None  # the reason, when marked


def pages() -> list[str]:
    return ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))


def blocks(page: str) -> list[Block]:
    lines = (ROOT / page).read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"\s*```(\S*)", lines[i])
        if not fence:
            i += 1
            continue
        j = i + 1
        while not re.match(r"\s*```\s*$", lines[j]):
            j += 1
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        mark = NOT_RUN.search(before)
        found.append(Block(page, i + 2, fence.group(1).lower(), "\n".join(lines[i + 1:j]) + "\n",
                           mark.group(1) if mark else None))
        i = j + 1
    return found


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """The block's lines with ``\\`` continuations joined: (page line of the first, text)."""
    out, pending, first = [], "", 0
    for offset, raw in enumerate(block.code.split("\n")):
        if not pending:
            first = block.line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        out.append((first, pending + raw))
        pending = ""
    if pending:
        out.append((first, pending))
    return out


def runnable(page: str, lang: set[str]) -> list[Block]:
    return [b for b in blocks(page) if b.lang in lang and b.not_run is None]


class MissingSection(LookupError):
    """A page has no ``## heading`` line that :func:`section_span` accepts."""


def section_span(lines: list[str], heading: str) -> tuple[int, int]:
    """Indexes of the ``heading`` line and of the next ``## `` line (or ``len(lines)``).

    The heading line is the first that is ``heading`` itself or ``heading`` followed by a
    space and more (``## Report`` finds ``## Report (`result.py`)``, not ``## Reports``);
    :class:`MissingSection` if there is none."""
    start = next((i for i, line in enumerate(lines)
                  if line == heading or line.startswith(heading + " ")), None)
    if start is None:
        raise MissingSection(f"no section {heading!r}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return start, end


def section_lines(text: str, heading: str) -> list[str]:
    """The lines of ``text`` under ``heading`` up to the next ``## `` line (see
    :func:`section_span`; :class:`MissingSection` if the heading is missing)."""
    lines = text.splitlines()
    start, end = section_span(lines, heading)
    return lines[start + 1:end]


def cells(line: str) -> list[str]:
    """The stripped cells of a Markdown table row ``| a | b |``."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def section(page: str, heading: str, lang: str) -> list[Block]:
    """The unmarked ``lang`` blocks under the ``heading`` line (:func:`section_span`)."""
    lines = (ROOT / page).read_text(encoding="utf-8").split("\n")
    start, end = section_span(lines, heading)
    return [b for b in blocks(page)
            if start < b.line <= end and b.lang == lang and b.not_run is None]


def readme_use_it(lang: str) -> list[Block]:
    return section("README.md", "## Use it", lang)


def validation_example(heading: str) -> Block:
    """docs/validation.md's first Python block under ``heading``."""
    return section("docs/validation.md", heading, "python")[0]


# blocks run by a test of their own (test_docs_served.py, test_docs_readme_validation.py):
# (page, how the block starts)
OWN_TESTS = {("docs/operations.md", "KEY=$(swarmvar keys create --role writer)"),
             ("docs/operations.md", "swarmvar serve --certfile cert.pem"),
             ("docs/validation.md", "swarmvar backtest --data sp500 --last 2500")}


def covered_elsewhere(block: Block) -> bool:
    """Run by a test of its own (test_docs_served.py, test_docs_readme_validation.py): the
    blocks in ``OWN_TESTS``, README's "Use it" ``bash`` and ``python`` blocks,
    docs/validation.md's report and driver examples."""
    if any(block.page == page and block.code.startswith(start) for page, start in OWN_TESTS):
        return True
    own = [*readme_use_it("bash"), *readme_use_it("python"),
           validation_example("## Report"), validation_example("## The backtest driver")]
    return block in own


# ---------------------------------------------------------------- shell commands


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str            # as in the doc, continuations joined, comment dropped
    args: tuple[str, ...]
    stdin: bool          # `producer | swarmvar ...`
    redirect: str | None  # `... > file`


def commands(block: Block) -> list[Command]:
    """The block's commands; AssertionError naming a line that is not a plain swarmvar call."""
    out = []
    for first, line in logical_lines(block):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        stdin = words[:2] == ["producer", "|"]
        words = words[2:] if stdin else words
        redirect = None
        if len(words) > 2 and words[-2] == ">":
            redirect, words = words[-1], words[:-2]
        where = f"{block.page}:{first}"
        assert Path(words[0]).name == "swarmvar", (
            f"{where}: {' '.join(words)!r} is not a swarmvar command: make it one, or mark the "
            "block <!-- not run: reason -->")
        assert not any(w in ("|", ">", "<", "&&", ";") or "$(" in w for w in words), (
            f"{where}: shell syntax the runner does not play; mark the block not run")
        out.append(Command(block.page, first, shlex.join(words[1:]), tuple(words[1:]), stdin,
                           redirect))
    return out


def readme_commands() -> set[tuple[str, ...]]:
    return {c.args for b in blocks("README.md") if b.lang in SHELL and covered_elsewhere(b)
            for c in commands(b)}
