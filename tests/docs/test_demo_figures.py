"""``make demo``'s figures in README.md, checked against a run of the demo's own commands.

README's "Two commands" section says what ``make demo`` does, step by step
(:func:`readme_steps`), how many alerts its 250-beat arbiter run prints and
which beats its second run replays; docs/arbiter.md gives the same run's
episodes. The commands are read from the Makefile's ``demo`` recipe
(:func:`demo_recipe`) and matched to README's steps (:func:`step_is`), the
figures from the two pages (:func:`page_figures`, which fails loudly on a part
it cannot read), so that neither a page nor the Makefile can drift from what
the demo does. The slow test runs the recipe's
commands in order in an empty folder with a home of its own (no config file;
``--workers 2`` added where a command leaves its processes to the CPU count),
then checks the alerts as printed and as ledgered (episodes opened and
raised again read from the decisions' signals), the beats, the backtest
table and the "beats its best member" FZ0 figures against the ledger, and that
the run resumes where it stopped.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT, MissingSection, section_lines  # noqa: E402
from _readme_table import readme_table  # noqa: E402

README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
ARBITER = ROOT / "docs" / "arbiter.md"
HEADING = "## Two commands"
BEST_HEADING = "## Backtest: where the swarm stands on the S&P 500"
SWARMVAR = "$(BIN)/swarmvar"
HOME = "$(HOME_DIR)"


class DemoFiguresError(ValueError):
    """The Makefile's demo recipe or a page's demo figures cannot be read."""


def demo_recipe(text: str) -> list[tuple[str, ...]]:
    """The ``swarmvar`` commands of the Makefile ``text``'s ``demo`` target, continuations
    joined, words after ``$(BIN)/swarmvar`` (``$(HOME_DIR)`` kept as written)."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if re.match(r"demo\s*:", line)), None)
    if start is None:
        raise DemoFiguresError("the Makefile has no demo target")
    recipe, pending = [], ""
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        recipe.append(pending)
        pending = ""
    out = []
    for command in recipe:
        words = shlex.split(command)
        if not words:  # a blank recipe line runs nothing
            continue
        if words[0] != SWARMVAR:
            raise DemoFiguresError(f"the demo recipe runs {words[0]!r}, not {SWARMVAR}: "
                                   "teach this test what it does")
        out.append(tuple(words[1:]))
    return out


def readme_steps(readme: str) -> list[tuple[str, ...]]:
    """README ``readme``'s numbered steps of "Two commands", each ``N. `swarmvar ...` ``:
    the words after ``swarmvar`` (``...`` stands for a value), numbered 1, 2, ... in order
    (:class:`DemoFiguresError` when there are none or a number is out of order)."""
    try:
        lines = section_lines(readme, HEADING)
    except MissingSection as exc:
        raise DemoFiguresError(f"README has {exc}") from None
    numbered = [m for line in lines if (m := re.match(r"(\d+)\. `swarmvar ([^`]+)`", line))]
    if not numbered:
        raise DemoFiguresError(f"README's {HEADING!r} has no numbered step "
                               "'1. `swarmvar ...`'")
    if [int(m.group(1)) for m in numbered] != list(range(1, len(numbered) + 1)):
        raise DemoFiguresError(f"README's {HEADING!r} numbers its steps "
                               f"{[int(m.group(1)) for m in numbered]}, not 1, 2, ...")
    return [tuple(m.group(2).split()) for m in numbered]


def step_is(step: tuple[str, ...], command: tuple[str, ...]) -> bool:
    """Whether the recipe's ``command`` is README's ``step``: the same subcommand words (those
    before the first flag) and every flag the step names among the command's."""
    def head(words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(w for w in words[:next((i for i, w in enumerate(words)
                                              if w.startswith("-")), len(words))])

    flags = {w for w in step if w.startswith("--")}
    return head(step) == head(command) and flags <= set(command)


def make_targets(readme: str) -> set[str]:
    """The ``make X`` README ``readme`` names: in backticks, or a line of a fenced block
    that starts with ``make X`` (not prose such as "make sure")."""
    named, fenced = set(), False
    for line in readme.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and (m := re.match(r"make ([\w-]+)(?:\s|$)", line)):
            named.add(m.group(1))
        named.update(re.findall(r"`make ([\w-]+)`", line))
    return named


def demo_commands(home: Path) -> list[tuple[str, ...]]:
    """The recipe's commands for ``home``, each with ``--workers 2`` when it has the option
    and the recipe leaves it to the default (the CPU count)."""
    out = []
    for args in demo_recipe(MAKEFILE.read_text(encoding="utf-8")):
        words = tuple(w.replace(HOME, str(home)) for w in args)
        if words[0] in ("var", "backtest") and "--workers" not in words:
            words += ("--workers", "2")
        out.append(words)
    return out


@dataclass(frozen=True)
class DemoFigures:
    """What the pages say the demo's arbiter run prints: ``beats`` (README), ``alerts``
    (README), ``episodes`` and ``raised_again`` (docs/arbiter.md, which also gives the
    alerts); the FZ0 of the backtest's consensus and its best agent per level (README),
    ``best`` that agent's name; ``resumed``: the first and last beat README says the run
    replays when run again."""

    beats: int
    alerts: int
    episodes: int
    raised_again: int
    best: str
    fz0: dict[float, tuple[str, str]]  # alpha -> (consensus, best agent), as printed
    resumed: tuple[int, int]


def _count(word: str) -> int:
    return 0 if word == "none" else int(word)


def page_figures(readme: str, arbiter: str) -> DemoFigures:
    """The demo's figures from README text ``readme`` and docs/arbiter.md text ``arbiter``
    (:class:`DemoFiguresError` naming the part that is missing or malformed)."""
    try:
        steps = " ".join(" ".join(section_lines(readme, HEADING)).split())
        best = " ".join(" ".join(section_lines(readme, BEST_HEADING)).split())
    except MissingSection as exc:
        raise DemoFiguresError(f"README has {exc}") from None
    run = re.search(r"`swarmvar run --arbiter`: the living swarm replays ([\d,]+) beats .*?"
                    r"printing its alerts \(([\d,]+) alerts in ([\d,]+) episodes, "
                    r"(none|\d+) raised again", steps)
    if run is None:
        raise DemoFiguresError("README's step `swarmvar run --arbiter` must say 'replays N "
                               "beats' and 'printing its alerts (A alerts in E episodes, "
                               "R raised again'")
    resumed = re.search(r"run it again and it resumes where it stopped \(beats ([\d,]+)[–-]"
                        r"([\d,]+)\)", steps)
    if resumed is None:
        raise DemoFiguresError("README's step `swarmvar run --arbiter` must say 'run it again "
                               "and it resumes where it stopped (beats A–B)'")
    page = " ".join(arbiter.split())
    told = re.search(r"`make demo` prints \*\*(\d+) alerts \((\d+) episodes, (none|\d+) "
                     r"raised again\)\*\*", page)
    if told is None:
        raise DemoFiguresError("docs/arbiter.md must say '`make demo` prints **A alerts "
                               "(E episodes, R raised again)**'")
    fz0 = re.search(r"([−-]\d\.\d{3}) at 99% against (\w+)'s ([−-]\d\.\d{3}), and "
                    r"([−-]\d\.\d{3}) at 97\.5% against ([−-]\d\.\d{3}) \(this table's run\)",
                    best)
    if fz0 is None:
        raise DemoFiguresError("README's 'Does the swarm beat its best member?' must say "
                               "'-C at 99% against AGENT's -B, and -C at 97.5% against -B "
                               "(this table's run)'")
    readme_run = (int(run.group(2).replace(",", "")), int(run.group(3).replace(",", "")),
                  _count(run.group(4)))
    arbiter_run = (int(told.group(1)), int(told.group(2)), _count(told.group(3)))
    if readme_run != arbiter_run:
        raise DemoFiguresError(f"README says the demo's run prints (alerts, episodes, raised "
                               f"again) {readme_run}, docs/arbiter.md {arbiter_run}")
    g = [s.replace("−", "-") if s else s for s in fz0.groups()]
    return DemoFigures(int(run.group(1).replace(",", "")), *readme_run, best=g[1],
                       fz0={0.99: (g[0], g[2]), 0.975: (g[3], g[4])},
                       resumed=(int(resumed.group(1).replace(",", "")),
                                int(resumed.group(2).replace(",", ""))))


def test_the_makefile_demo_runs_the_readme_steps() -> None:
    """The recipe's commands are README's numbered steps, in order, with its home."""
    recipe = demo_recipe(MAKEFILE.read_text(encoding="utf-8"))
    steps = readme_steps(README.read_text(encoding="utf-8"))
    assert len(steps) == len(recipe), (steps, recipe)
    wrong = [(step, command) for step, command in zip(steps, recipe, strict=True)
             if not step_is(step, command)]
    assert not wrong, f"README's step is not the recipe's command: {wrong}"
    assert all("--home" in c and c[c.index("--home") + 1] == HOME for c in recipe), recipe
    run = recipe[3]
    assert "--arbiter" in run and run[run.index("--beats") + 1] == str(
        page_figures(README.read_text(encoding="utf-8"),
                     ARBITER.read_text(encoding="utf-8")).beats)


def test_the_readme_make_targets_exist() -> None:
    """Every ``make X`` README names is a target of the Makefile."""
    targets = set(re.findall(r"^([\w-]+)\s*:", MAKEFILE.read_text(encoding="utf-8"), re.M))
    named = make_targets(README.read_text(encoding="utf-8"))
    assert named >= {"demo", "test", "test-slow", "bench"}, named
    assert named <= targets, named - targets


def test_the_pages_give_the_demo_figures() -> None:
    """README and docs/arbiter.md parse and agree (fast: no run)."""
    f = page_figures(README.read_text(encoding="utf-8"), ARBITER.read_text(encoding="utf-8"))
    assert f.beats > 0 and f.alerts == f.episodes + f.raised_again
    assert set(f.fz0) == {0.99, 0.975}
    assert f.resumed == (f.beats + 1, 2 * f.beats), f  # the second run's beats follow on


def test_the_readers_read_only_what_they_are_for() -> None:
    """``make sure`` in prose is no target; a step matches only its own command."""
    text = "make sure it works: `make demo`.\n```bash\nmake test   # x\nmake\n```\n"
    assert make_targets(text) == {"demo", "test"}
    book = ("var", "--positions", "A=1", "--trade", "B=2", "--home", HOME)
    assert step_is(("var", "--positions", "...", "--trade", "..."), book)
    assert step_is(("var",), book) and not step_is(("var", "--data"), book)
    assert not step_is(("ledger", "verify"), ("ledger", "show", "--home", HOME))
    assert not step_is(("run", "--arbiter"), ("run", "--data", "sp500"))


def test_the_parsers_fail_loudly() -> None:
    readme = README.read_text(encoding="utf-8")
    arbiter = ARBITER.read_text(encoding="utf-8")
    with pytest.raises(DemoFiguresError, match="no section"):
        page_figures(readme.replace(HEADING, "## Three commands"), arbiter)
    with pytest.raises(DemoFiguresError, match="printing its alerts"):
        page_figures(readme.replace("printing its alerts (", "printing alerts ("), arbiter)
    with pytest.raises(DemoFiguresError, match="docs/arbiter.md must say"):
        page_figures(readme, re.sub(r"`make demo`\s+prints \*\*", "`make demo` gives **",
                                    arbiter))
    f = page_figures(readme, arbiter)
    other = arbiter.replace(f"prints **{f.alerts} alerts", f"prints **{f.alerts + 1} alerts")
    with pytest.raises(DemoFiguresError, match="docs/arbiter.md"):
        page_figures(readme, other)
    with pytest.raises(DemoFiguresError, match="best member"):
        page_figures(readme.replace("(this table's run)", "(a run)"), arbiter)
    with pytest.raises(DemoFiguresError, match="resumes where it stopped"):
        page_figures(readme.replace("(beats 251", "(beat 251"), arbiter)
    with pytest.raises(DemoFiguresError, match="no demo target"):
        demo_recipe("test:\n\tpytest\n")
    with pytest.raises(DemoFiguresError, match="runs 'echo', not"):
        demo_recipe("demo: x\n\techo hello\n")
    assert demo_recipe("demo: x\n\t$(BIN)/swarmvar var \\\n\t\t--home $(HOME_DIR)\n\t\n"
                       "\nx:\n") == [("var", "--home", HOME)]
    with pytest.raises(DemoFiguresError, match="no numbered step"):
        readme_steps(readme.replace("1. `swarmvar var`", "1. swarmvar var").replace(
            "\n2. `", "\n2. ").replace("\n3. `", "\n3. ").replace("\n4. `", "\n4. ")
            .replace("\n5. `", "\n5. "))
    with pytest.raises(DemoFiguresError, match="not 1, 2"):
        readme_steps(readme.replace("\n2. `swarmvar backtest`", "\n7. `swarmvar backtest`"))


def _ledger(home: Path) -> list[tuple[str, dict[str, Any]]]:
    from swarmvar.ledger import Ledger

    with Ledger.open(home) as ledger:
        return [(e.kind.value, dict(e.data)) for e in ledger.entries()]


def _printed(output: str) -> tuple[list[int], int, int]:
    """The run's printed alerts: the beats of those said in full (an episode's first, or one
    at quarantine level inside it with no new agent), how many name new agents inside an
    open episode, and how many episodes it says closed."""
    full = re.findall(r"^alert on sp500 at beat (\d+) ", output, re.M)
    again = re.findall(r"^alert on sp500: the alert open since beat \d+ now also", output, re.M)
    closed = re.findall(r"^alert on sp500 closed at beat \d+ ", output, re.M)
    return [int(b) for b in full], len(again), len(closed)


def _episodes(alerts: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """Of the ledgered ALERT decisions: how many opened an episode (its ``episode_since``
    signal is its own beat) and the beats of those raised again for a new agent (an
    ``episode_new:<agent>`` signal)."""
    opened = sum(d["signals"].get("episode_since") == d["seq"] for d in alerts)
    again = [d["seq"] for d in alerts if any(k.startswith("episode_new:")
                                             for k in d["signals"])]
    return opened, again


@pytest.mark.slow
def test_the_demo_gives_the_readme_figures(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``make demo``'s commands, in order, in an empty folder (63-87 s at load 2-7 on 2
    cores), then its run again: every figure README and docs/arbiter.md state for it."""
    from swarmvar.arbiter.decide import RAISED_AGAIN
    from swarmvar.cli import app
    from swarmvar.models import DEFAULT_AGENTS

    f = page_figures(README.read_text(encoding="utf-8"), ARBITER.read_text(encoding="utf-8"))
    table = readme_table().parse(README.read_text(encoding="utf-8"))
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)  # no swarmvar.toml of the caller's
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    runner = CliRunner()
    outputs = []
    for args in demo_commands(home):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.output)
    var, backtest, book, run, verify = outputs
    # 1. every agent of the default swarm, then the consensus with its effective number
    assert all(name in var for name in DEFAULT_AGENTS)
    assert f"trimmed mean of {len(DEFAULT_AGENTS)} agents" in var and "n eff" in var
    assert "FZ0 loss over its last 1000 forecasts, out of sample" in " ".join(var.split())
    # 2. the last 2,500 days out of sample, no arch refit that did not converge ("none did
    # here": a row's notes would say so), the report and the plot
    assert "2500 out-of-sample days" in backtest and "note(s):" not in backtest, backtest
    assert (home / "backtest.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (home / "backtest.png").stat().st_size > 0
    # 3. the book in currency with a proposed trade's incremental risk
    assert "trade JPM=1000000: incremental VaR" in book
    # 4. the run: its beats and its alerts, as printed and as ledgered
    assert f"{f.beats} beats in " in run and f"sp500 at beat {f.beats}\n" in run, run
    # 5. the ledger verifies
    assert verify.startswith("ok: "), verify
    entries = _ledger(home)
    decisions = [d for kind, d in entries if kind == "decision"]
    alerts = [d for d in decisions if d["action"] == "alert"]
    opened, again = _episodes(alerts)
    assert (len(decisions), len(alerts), opened, len(again)) == (
        f.beats, f.alerts, f.episodes, f.raised_again), alerts
    assert sum(RAISED_AGAIN in d["reason"] for d in alerts) == f.raised_again
    full, printed_again, closed = _printed(run)
    assert full == [d["seq"] for d in alerts if d["seq"] not in again], run
    assert printed_again == f.raised_again and closed in (opened - 1, opened), run
    beats = sorted(d["beat"]["seq"] for kind, d in entries
                   if kind == "consensus" and "beat" in d)  # the run's, not var's
    assert beats == list(range(1, f.beats + 1)), beats
    # the backtest table as the demo recorded it, and the swarm against its best member
    rows = {(d["row"], d["alpha"]): d for kind, d in entries
            if kind == "backtest" and "row" in d}
    wrong = []
    for name, (cells, _) in table.rows.items():
        for alpha, cell in zip(table.alphas, cells, strict=True):
            d = rows[name, alpha]
            got = ", ".join([str(d["hits"]), f"{d['tests']['kupiec']['pvalue']:.3f}",
                             f"{d['tests']['christoffersen']['pvalue']:.3f}"])
            if got != cell:
                wrong.append(f"{name} at {alpha}: README {cell}, demo {got}")
    assert not wrong, wrong
    for alpha, (consensus, best) in f.fz0.items():
        agents = {a: rows[a, alpha]["fz0"] for a in DEFAULT_AGENTS}
        assert min(agents, key=agents.__getitem__) == f.best, agents
        assert rows["consensus", alpha]["fz0"] < agents[f.best]
        assert (f"{rows['consensus', alpha]['fz0']:.3f}", f"{agents[f.best]:.3f}") == (
            consensus, best)
    # run it again: it resumes where it stopped
    again = runner.invoke(app, list(demo_commands(home)[3]))
    assert again.exit_code == 0, again.output
    first, last = f.resumed
    assert f"{last - first + 1} beats in " in again.output, again.output
    assert f"sp500 at beat {last}\n" in again.output, again.output
    beaten = sorted(d["beat"]["seq"] for kind, d in _ledger(home)
                    if kind == "consensus" and "beat" in d)
    assert beaten == list(range(1, last + 1)), beaten  # the first run's, then first..last
    alerted = re.search(r"^alert on sp500 at beat (\d+) ", again.output, re.M)
    assert alerted is None or int(alerted.group(1)) >= first
