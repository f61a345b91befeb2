"""Each docs page's examples run as written, and print what the page shows.

How the blocks run (which blocks must run, and how a block is marked not run:
test_docs_coverage.py; the reader and the pages' tables: ``_docs_blocks``,
``_docs_runs``):

* Python: one namespace per page, the page's blocks in order, in a temporary
  working directory; line numbers in a traceback are the page's. Some pages
  show an excerpt that names things made earlier (``forecast``, ``keys``):
  the page's *context* (``_docs_runs.PYTHON_PAGES``) makes them in a
  namespace of its own, and only the names it ``provides`` are copied in
  (its imports do not leak: a block that forgets an import fails).
* Shell: each ``swarmvar ...`` command (``\\`` continuations joined, ``#``
  comments dropped) through Typer's ``CliRunner`` in a temporary folder
  holding the files the page names (written by the page's fixture,
  ``_docs_runs.SHELL_PAGES``); exit code 0. ``producer | swarmvar ...`` gets
  JSON lines on stdin from the fixture; ``... > file`` writes the output to
  that file. Commands also run by README's "Use it" test are not run twice.
* Commands that take more than ~10 s go under ``@pytest.mark.slow``
  (``SLOW_COMMANDS``, README's ``_heavy``), each with its measured time.
* Printed output beside the code: docs/arbiter.md's drift drill listing is
  re-run and its figures compared (slow).
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import Block, Command, blocks, covered_elsewhere, runnable  # noqa: E402
from _docs_runs import (  # noqa: E402
    EXPECT,
    PYTHON_PAGES,
    SHELL_PAGES,
    SLOW_COMMANDS,
    PythonPage,
    page_commands,
    run_python_page,
)


def _shell_cases(slow: bool) -> Iterator[object]:
    for page in SHELL_PAGES:
        for command in page_commands(page):
            if (command.text in SLOW_COMMANDS) == slow:
                marks = [pytest.mark.slow] if slow else []
                yield pytest.param(command, id=f"{page}:{command.line}", marks=marks)


def _invoke(command: Command, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli import app

    monkeypatch.chdir(folder)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    stdin = SHELL_PAGES[command.page](folder)
    result = CliRunner().invoke(app, list(command.args), input=stdin if command.stdin else None)
    assert result.exit_code == 0, (f"{command.page}:{command.line}", command.text, result.output)
    if command.text in EXPECT:
        assert re.search(EXPECT[command.text], " ".join(result.output.split())), (
            command.text, EXPECT[command.text], result.output[-1500:])
    if command.redirect:
        (folder / command.redirect).write_text(result.stdout)


@pytest.mark.parametrize("command", list(_shell_cases(slow=False)))
def test_shell_example(command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _invoke(command, tmp_path, monkeypatch)


@pytest.mark.parametrize("command", list(_shell_cases(slow=True)))
def test_shell_example_slow(command: Command, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    _invoke(command, tmp_path, monkeypatch)


@pytest.mark.parametrize("page", list(PYTHON_PAGES))
def test_python_examples(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    spec = PYTHON_PAGES[page]
    todo = [b for b in runnable(page, {"python"}) if not covered_elsewhere(b)]
    assert todo, f"{page} has no runnable Python block left: drop it from PYTHON_PAGES"
    scope = run_python_page(page, spec, todo)
    if spec.check is not None:
        spec.check(scope, capsys.readouterr().out)


def test_a_context_import_does_not_leak_into_the_page() -> None:
    """A block that forgets an import fails though the page's context imported the name."""
    spec = PythonPage("import math\nz = math.pi\n", provides=("z",))
    made = run_python_page("x.md", spec, [Block("x.md", 1, "python", "y = 2 * z\n", None)])
    z = made["z"]
    assert isinstance(z, float) and made["y"] == 2 * z and "math" not in made
    with pytest.raises(NameError, match="math"):
        run_python_page("x.md", spec, [Block("x.md", 1, "python", "math.sqrt(z)\n", None)])


# ---------------------------------------------------------------- printed output beside the code


def _listing(page: str, prompt: str) -> tuple[list[str], list[str]]:
    """A ``text`` block that starts ``$ swarmvar ...``: (the command's args, the shown lines)."""
    block = next(b for b in blocks(page) if b.code.startswith(prompt))
    first, *shown = block.code.strip("\n").split("\n")
    return shlex.split(first)[2:], shown


def _figures(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


@pytest.mark.slow
def test_arbiter_drill_listing_matches_the_command(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/arbiter.md's drift drill: breaches, tests, alert/quarantine beats as shown.

    26 s (load average 7.7): the default swarm's backtest over 2,500 days, then the replay.
    All shown figures are checked as printed (seeded: a change to a default agent's
    numbers fails here until the listing is re-run).
    """
    from swarmvar.cli import app

    args, shown = _listing("docs/arbiter.md", "$ swarmvar arbiter replay")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {tuple(_figures(line)[:2]): _figures(line) for line in result.output.split("\n")
            if line.startswith("│") and len(_figures(line)) == 7}
    table = [line for line in shown if line.startswith("│")]
    assert len(table) == 4
    for line in table:
        want = _figures(line)
        got = rows[tuple(want[:2])]
        assert got[2:] == want[2:], (want, got)  # breaches, expected, Kupiec, Christoffersen, FZ0
    prose = " ".join(" ".join(shown).split())
    output = " ".join(result.output.split())
    for pattern in (r"first ALERT naming it after \d+ beats, QUARANTINE after \d+ beats",
                    r"GarchT breaches [\d.]+ of \d+", r"binomial p = [\d.]+"):
        found = re.search(pattern, prose)
        assert found is not None, pattern
        assert found.group(0) in output, (found.group(0), output[-800:])
