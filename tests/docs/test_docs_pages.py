"""Every code block in docs/*.md and README.md runs as written, or says why not.

Every fence carries a tag. A block tagged ``python``, ``bash``, ``sh``,
``shell`` or ``console`` is *runnable*: a test here runs it (the page sweeps
below, or a test of its own: README's "Use it" section, docs/validation.md's
examples, two docs/operations.md blocks). A block that cannot run as
written — it starts a long-lived server, needs other hosts, Docker, an E2B
account, a certificate — carries an HTML comment on the line just before
its fence::

    <!-- not run: needs an E2B account (E2B_API_KEY) -->

(invisible when rendered). Output listings, command synopses with
``[options]`` and configuration files are fenced as ``text`` (or ``json``, ...)
and are not run. ``test_every_runnable_block_is_run_or_marked`` fails on a
runnable block that no test covers, so a new example cannot silently go
unrun.

How the blocks run:

* Python: one namespace per page, the page's blocks in order, in a temporary
  working directory; line numbers in a traceback are the page's. Some pages
  show an excerpt that names things made earlier (``forecast``, ``keys``):
  the page's *context* below makes them in a namespace of its own, and only
  the names it ``provides`` are copied in (its imports do not leak: a block
  that forgets an import fails).
* Shell: each ``swarmvar ...`` command (``\\`` continuations joined, ``#``
  comments dropped) through Typer's ``CliRunner`` in a temporary folder
  holding the files the page names (written by the page's fixture below);
  exit code 0. ``producer | swarmvar ...`` gets JSON lines on stdin from the
  fixture; ``... > file`` writes the output to that file. Commands also run
  by README's "Use it" test are not run twice.
* Commands that take more than ~10 s go under ``@pytest.mark.slow``
  (``SLOW_COMMANDS``, README's ``_heavy``), each with its measured time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

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


def section(page: str, heading: str, lang: str) -> list[Block]:
    """The unmarked ``lang`` blocks under the ``## heading`` line that starts with ``heading``."""
    lines = (ROOT / page).read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return [b for b in blocks(page)
            if start < b.line <= end and b.lang == lang and b.not_run is None]


def readme_use_it(lang: str) -> list[Block]:
    return section("README.md", "## Use it", lang)


def validation_example(heading: str) -> Block:
    """docs/validation.md's first Python block under ``heading``."""
    return section("docs/validation.md", heading, "python")[0]


# blocks run by a test of their own below: (page, how the block starts)
OWN_TESTS = {("docs/operations.md", "KEY=$(swarmvar keys create --role writer)"),
             ("docs/operations.md", "swarmvar serve --certfile cert.pem"),
             ("docs/validation.md", "swarmvar backtest --data sp500 --last 2500")}


def covered_elsewhere(block: Block) -> bool:
    """Run by a test of its own below: the blocks in ``OWN_TESTS``, README's "Use it"
    ``bash`` and ``python`` blocks, docs/validation.md's report and driver examples."""
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


# ---------------------------------------------------------------- coverage of the docs


def uncovered(block: Block) -> str | None:
    """Why no test runs ``block`` though it is runnable and unmarked (None: covered)."""
    if not block.lang:
        return f"{block.page}:{block.line}: a fence without a tag: tag it (python, bash, text, ...)"
    if block.lang not in RUNNABLE or block.not_run is not None or covered_elsewhere(block):
        return None
    if block.lang == "python" and block.page not in PYTHON_PAGES:
        return f"{block.page}:{block.line} python: add the page to PYTHON_PAGES"
    if block.lang in SHELL:
        commands(block)  # every line a plain swarmvar command
        if block.page not in SHELL_PAGES:
            return f"{block.page}:{block.line} {block.lang}: add the page to SHELL_PAGES"
    return None


def test_every_runnable_block_is_run_or_marked() -> None:
    missing = [why for page in pages() for block in blocks(page)
               if (why := uncovered(block)) is not None]
    assert not missing, missing


def test_an_unmarked_block_on_a_new_page_is_caught() -> None:
    assert uncovered(Block("docs/new.md", 3, "python", "print(1)\n", None)) is not None
    assert uncovered(Block("docs/new.md", 3, "bash", "swarmvar var\n", None)) is not None
    assert uncovered(Block("docs/new.md", 3, "python", "x\n", "needs a GPU cluster")) is None
    assert uncovered(Block("docs/new.md", 3, "text", "swarmvar var\n", None)) is None
    assert uncovered(Block("docs/new.md", 3, "", "swarmvar var\n", None)) is not None
    # README outside "Use it", "Use it" in a tag its test does not run, another validation block
    assert uncovered(Block("README.md", 3, "bash", "swarmvar var\n", None)) is not None
    (use_it,) = readme_use_it("bash")
    assert uncovered(use_it) is None
    assert uncovered(Block("README.md", use_it.line, "sh", use_it.code, None)) is not None
    assert uncovered(Block("docs/validation.md", 3, "python", "print(1)\n", None)) is not None
    with pytest.raises(AssertionError, match="not a swarmvar command"):
        uncovered(Block("docs/portfolio.md", 3, "sh", "curl http://x\n", None))


def test_slow_commands_are_still_in_the_docs() -> None:
    shown = {c.text for page in SHELL_PAGES for c in page_commands(page)}
    assert set(SLOW_COMMANDS) | set(EXPECT) <= shown, (set(SLOW_COMMANDS) | set(EXPECT)) - shown


def test_marked_blocks_say_why() -> None:
    for page in pages():
        for block in blocks(page):
            if block.not_run is not None:
                assert block.lang in RUNNABLE, (
                    f"{page}:{block.line}: a {block.lang} block is not run anyway: drop the mark")
                assert len(block.not_run) > 10, f"{page}:{block.line}: say why it is not run"


def test_the_block_reader_sees_marks_and_line_numbers(tmp_path: Path) -> None:
    found = blocks("docs/sandbox.md")
    first = next(b for b in found if b.lang == "python")
    text = (ROOT / "docs/sandbox.md").read_text(encoding="utf-8").split("\n")
    assert text[first.line - 2].startswith("```python") and text[first.line - 1] == \
        first.code.split("\n")[0]
    with pytest.raises(AssertionError, match="not a swarmvar command"):
        commands(Block("x.md", 1, "sh", "docker build .\n", None))
    assert commands(Block("x.md", 1, "sh", "swarmvar a \\\n  --b 1  # c\n", None))[0].args == \
        ("a", "--b", "1")



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


@pytest.mark.slow
def test_validation_command_line_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/validation.md's "Command line" block (in ``OWN_TESTS``: the page has no shell
    fixture, and the command fits over 2,500 days)."""
    from swarmvar.cli import app

    (block,) = [b for b in blocks("docs/validation.md")
                if b.code.startswith("swarmvar backtest --data sp500 --last 2500")]
    assert block.lang == "bash"
    (command,) = commands(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    result = CliRunner().invoke(app, list(command.args))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.html").read_text().startswith("<!DOCTYPE html>")


# ---------------------------------------------------------------- README "Use it", validation.md

FAST_AGENTS = {"nig", "bootstrap", "bb", "NormalInverseGamma", "BayesianBootstrap"}


def readme_use_it_commands() -> list[tuple[str, ...]]:
    return [c.args for b in readme_use_it("bash") for c in commands(b)]


def _heavy(args: tuple[str, ...]) -> bool:
    """Fits every agent (no --agents) or an MCMC agent: minutes, not seconds.

    ``arbiter replay`` backtests every agent over the whole history (38 s, then 8 s for the
    drill from its cache, load average 9.7); ``run --workers`` starts worker processes that
    each import and fit the swarm (26 s at load 9.7).
    """
    if args[:2] == ("arbiter", "replay") or (args[0] == "run" and "--workers" in args):
        return True
    if args[0] not in ("var", "backtest"):
        return False
    if "--agents" not in args:
        return True
    names = set(args[args.index("--agents") + 1].split(","))
    return not names <= FAST_AGENTS


def _user_files(folder: Path) -> None:
    """The files README's "Use it" names: my_prices.csv, my_returns.parquet, gappy.csv."""
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2015-01-01", periods=800)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(idx.size)))
    pd.DataFrame({"date": idx, "close": close}).to_csv(folder / "my_prices.csv", index=False)
    pd.DataFrame({"date": idx, "pnl": 0.01 * rng.standard_t(4, idx.size)}).to_parquet(
        folder / "my_returns.parquet", index=False)
    gappy = close.copy()
    gappy[[10, 11, 300]] = np.nan
    pd.DataFrame({"date": idx, "close": gappy}).to_csv(folder / "gappy.csv", index=False)


def _run_readme(commands: list[tuple[str, ...]], folder: Path,
                monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands in order, in one folder (``ledger verify`` checks what the others wrote)."""
    from swarmvar.cli import app

    monkeypatch.chdir(folder)
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    _user_files(folder)
    runner = CliRunner()
    for args in commands:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        if "--report" in args:
            assert (folder / args[args.index("--report") + 1]).read_text().startswith(
                "<!DOCTYPE html>")
        if "--csv" in args:
            assert (folder / args[args.index("--csv") + 1] / "summary.csv").exists()


def test_the_readme_lists_runnable_commands() -> None:
    commands = readme_use_it_commands()
    assert {c[0] for c in commands} >= {"var", "backtest", "config", "ledger"}
    assert any(not _heavy(c) for c in commands if c[0] == "var")


def test_readme_shell_examples_that_use_fast_agents(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [c for c in readme_use_it_commands() if not _heavy(c)]
    commands.sort(key=lambda c: c[0] == "ledger")  # verify what the others recorded
    _run_readme(commands, tmp_path, monkeypatch)
    assert (tmp_path / ".swarmvar" / "ledger.sqlite").exists()


@pytest.mark.slow
def test_readme_shell_examples_with_every_agent(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _run_readme([c for c in readme_use_it_commands() if _heavy(c)], tmp_path, monkeypatch)
    assert (tmp_path / "bt.html").exists() and (tmp_path / "bt.png").exists()


def test_readme_python_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    found = readme_use_it("python")
    assert len(found) >= 2
    for block in found:  # each in a namespace of its own, as a reader pastes it
        code = "\n" * (block.line - 1) + block.code
        exec(compile(code, str(ROOT / "README.md"), "exec"), {})  # noqa: S102 - our docs
    out = capsys.readouterr().out
    assert "consensus" in out and "2018-12-31" in out


def test_validation_doc_report_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    block = validation_example("## Report")
    code = "\n" * (block.line - 1) + block.code
    exec(compile(code, str(ROOT / block.page), "exec"), {})  # noqa: S102
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_validation_doc_driver_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    block = validation_example("## The backtest driver")
    code = "\n" * (block.line - 1) + block.code
    exec(compile(code, str(ROOT / block.page), "exec"), {})  # noqa: S102
    assert (tmp_path / "backtest.html").exists()


# ---------------------------------------------------------------- a started server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli_env() -> dict[str, str]:
    """The environment with this venv's ``swarmvar`` first on PATH, no config file."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SWARMVAR_CONFIG", None)
    return env


@contextmanager
def _serving(args: list[str], cwd: Path, env: dict[str, str], url: str) -> Iterator[None]:
    """``swarmvar <args>`` as a process until the block is done; waits for ``url``/healthz."""
    import httpx

    server = subprocess.Popen([str(Path(sys.executable).parent / "swarmvar"), *args], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0].decode()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1, verify=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"swarmvar {args} did not answer in 60 s"
            time.sleep(0.2)
        yield
    finally:
        server.terminate()
        try:
            server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_operations_first_session(tmp_path: Path) -> None:
    """docs/operations.md's "A first session" against ``swarmvar serve`` on a loopback port.

    The block runs in bash as written, with two edits: the history's ``...`` becomes 58
    more daily returns (>= 50 for the default swarm, all before the next block's
    2024-03-01) and port 8000 the test's free port. The key is created after the server
    started (the doc's order): the server re-reads its key file.
    """
    (block,) = [b for b in blocks("docs/operations.md")
                if b.code.startswith("KEY=$(swarmvar keys create --role writer)")]
    days = pd.date_range("2024-01-03", "2024-02-29")
    rng = np.random.default_rng(0)
    more = "".join(f', {{"date": "{d.date()}", "return": {0.01 * rng.standard_normal():.5f}}}'
                   for d in days)
    port = _free_port()
    assert block.code.count(", ...]") == 1 and "127.0.0.1:8000" in block.code
    script = block.code.replace(", ...]", more + "]").replace("127.0.0.1:8000",
                                                              f"127.0.0.1:{port}")
    env = _cli_env()
    with _serving(["serve", "--port", str(port)], tmp_path, env, f"http://127.0.0.1:{port}"):
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # three JSON answers, one after the other: the portfolio, the beat, its VaR
    decoder, text, answers = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    assert len(answers) == 3, done.stdout[-2000:]
    assert answers[0]["name"] == "book" and answers[0]["last_date"] == "2024-02-29", answers[0]
    assert answers[1]["stored"] == 1 and answers[1]["results"][0]["seq"] == 1, answers[1]
    assert answers[2]["as_of"] == "2024-03-01", answers[2]
    assert [level["alpha"] for level in answers[2]["levels"]] == [0.99, 0.975]
    assert all(0 < level["var"] < level["es"] < 0.2 for level in answers[2]["levels"])


def _self_signed(folder: Path) -> None:
    """cert.pem / key.pem for 127.0.0.1, valid for a day."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def test_operations_tls_line(tmp_path: Path) -> None:
    """docs/operations.md's TLS line serves HTTPS (a self-signed certificate, a free port
    instead of 8443); plain HTTP to that port gets no HTTP answer, as the page says."""
    import httpx

    (block,) = [b for b in blocks("docs/operations.md")
                if b.code.startswith("swarmvar serve --certfile cert.pem")]
    (command,) = commands(block)
    args = list(command.args)
    port = _free_port()
    args[args.index("--port") + 1] = str(port)
    _self_signed(tmp_path)
    with _serving(args, tmp_path, _cli_env(), f"https://127.0.0.1:{port}"):
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust,
                         timeout=5).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


# ---------------------------------------------------------------- every command and flag named


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
