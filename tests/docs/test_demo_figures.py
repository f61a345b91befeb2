"""``make demo``'s figures in README.md, checked against a run of the demo's own commands.

README's "Two commands" section says what ``make demo`` does, step by step, and
how many alerts its 250-beat arbiter run prints; docs/arbiter.md gives the same
run's episodes. The commands are read from the Makefile's ``demo`` recipe
(:func:`demo_recipe`), the figures from the two pages (:func:`page_figures`,
which fails loudly on a part it cannot read), so that neither a page nor the
Makefile can drift from what the demo does. The slow test runs the recipe's
commands in order in an empty folder with a home of its own (no config file;
``--workers 2`` added where a command leaves its processes to the CPU count),
then checks the alerts as printed and as ledgered, the beats, the backtest
table and the "beats its best member" FZ0 figures against the ledger, and that
the run resumes where it stopped.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT, MissingSection, section_lines  # noqa: E402

README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
ARBITER = ROOT / "docs" / "arbiter.md"
HEADING = "## Two commands"
BEST_HEADING = "## Backtest: where the swarm stands on the S&P 500"
SWARMVAR = "$(BIN)/swarmvar"
HOME = "$(HOME_DIR)"
# the README's five steps, in order: how each of the recipe's commands starts
STEPS = [("var", "--data"), ("backtest", "--data"), ("var", "--positions"), ("run", "--data"),
         ("ledger", "verify")]


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
        if words[0] != SWARMVAR:
            raise DemoFiguresError(f"the demo recipe runs {words[0]!r}, not {SWARMVAR}: "
                                   "teach this test what it does")
        out.append(tuple(words[1:]))
    return out


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
    ``best`` that agent's name."""

    beats: int
    alerts: int
    episodes: int
    raised_again: int
    best: str
    fz0: dict[float, tuple[str, str]]  # alpha -> (consensus, best agent), as printed


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
                       fz0={0.99: (g[0], g[2]), 0.975: (g[3], g[4])})


def _readme_table() -> ModuleType:
    """tests/validation/_readme_table.py (README's backtest table reader), loaded by path."""
    name = "_readme_table"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "tests" / "validation" / "_readme_table.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_makefile_demo_runs_the_readme_steps() -> None:
    """The recipe's commands are the README's five steps, in order, with its home."""
    recipe = demo_recipe(MAKEFILE.read_text(encoding="utf-8"))
    assert [("var", "--positions") if "--positions" in c else c[:2] for c in recipe] == STEPS
    assert all("--home" in c and c[c.index("--home") + 1] == HOME for c in recipe), recipe
    run = recipe[3]
    assert "--arbiter" in run and run[run.index("--beats") + 1] == str(
        page_figures(README.read_text(encoding="utf-8"),
                     ARBITER.read_text(encoding="utf-8")).beats)


def test_the_readme_make_targets_exist() -> None:
    """Every ``make X`` README names is a target of the Makefile."""
    targets = set(re.findall(r"^([\w-]+)\s*:", MAKEFILE.read_text(encoding="utf-8"), re.M))
    named = set(re.findall(r"`?make ([\w-]+)", README.read_text(encoding="utf-8")))
    assert named >= {"demo", "test", "test-slow", "bench"}, named
    assert named <= targets, named - targets


def test_the_pages_give_the_demo_figures() -> None:
    """README and docs/arbiter.md parse and agree (fast: no run)."""
    f = page_figures(README.read_text(encoding="utf-8"), ARBITER.read_text(encoding="utf-8"))
    assert f.beats > 0 and f.alerts == f.episodes + f.raised_again
    assert set(f.fz0) == {0.99, 0.975}


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
    with pytest.raises(DemoFiguresError, match="no demo target"):
        demo_recipe("test:\n\tpytest\n")
    with pytest.raises(DemoFiguresError, match="not"):
        demo_recipe("demo: x\n\techo hello\n")
    assert demo_recipe("demo: x\n\t$(BIN)/swarmvar var \\\n\t\t--home $(HOME_DIR)\n\nx:\n") == [
        ("var", "--home", HOME)]


def _ledger(home: Path) -> list[tuple[str, dict[str, Any]]]:
    from swarmvar.ledger import Ledger

    with Ledger.open(home) as ledger:
        return [(e.kind.value, dict(e.data)) for e in ledger.entries()]


def _alerts(output: str) -> tuple[int, int]:
    """(episodes opened, alerts raised again) as the run prints them."""
    opened = re.findall(r"^alert on sp500 at beat \d+ ", output, re.M)
    again = re.findall(r"^alert on sp500: the alert open since beat \d+ now also", output, re.M)
    return len(opened), len(again)


@pytest.mark.slow
def test_the_demo_gives_the_readme_figures(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``make demo``'s commands, in order, in an empty folder (63-87 s at load 2-7 on 2
    cores), then its run again: every figure README and docs/arbiter.md state for it."""
    from swarmvar.arbiter.decide import RAISED_AGAIN
    from swarmvar.cli import app
    from swarmvar.models import DEFAULT_AGENTS

    f = page_figures(README.read_text(encoding="utf-8"), ARBITER.read_text(encoding="utf-8"))
    table = _readme_table().parse(README.read_text(encoding="utf-8"))
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
    assert _alerts(run) == (f.episodes, f.raised_again), run
    # 5. the ledger verifies
    assert verify.startswith("ok: "), verify
    entries = _ledger(home)
    decisions = [d for kind, d in entries if kind == "decision"]
    alerts = [d for d in decisions if d["action"] == "alert"]
    assert len(decisions) == f.beats and len(alerts) == f.alerts
    assert sum(RAISED_AGAIN in d["reason"] for d in alerts) == f.raised_again
    assert sum(kind == "consensus" for kind, _ in entries) >= f.beats
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
    assert f"{f.beats} beats in " in again.output, again.output
    assert f"sp500 at beat {2 * f.beats}\n" in again.output, again.output
    first = re.search(r"^alert on sp500 at beat (\d+) ", again.output, re.M)
    assert first is None or int(first.group(1)) > f.beats
