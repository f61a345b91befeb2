"""The issue's quality bar on the real S&P 500 backtest, and the README table that reports it.

The slow tests run every agent over 2,500 days: one module-scoped run of the
command README.md's backtest section names (``swarmvar backtest ...``, its
flags read from the README, ``--report`` dropped, ``--json --workers 2 --home
<tmp>`` added) serves the quality bar and the check of every figure of the
README's table, so a change of any ``swarmvar backtest`` default (policy,
baselines, roster) that moves the table fails here. The fast tests check the
README parser on small strings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarmvar.data import load
from swarmvar.models import DEFAULT_AGENTS, agent_class
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import Test, backtest

README = Path(__file__).resolve().parents[2] / "README.md"
#: "Passes both levels": both tests pass (p > 0.05) at every level.
BOTH = ("kupiec", "christoffersen")


# tests/validation/_readme_table.py through the one loader test_demo_figures.py uses too
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from _readme_table import readme_table  # noqa: E402

rt = readme_table()


def _without(argv: tuple[str, ...], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value."""
    words = list(argv)
    if flag in words:
        at = words.index(flag)
        del words[at:at + 2]
    return words


@pytest.fixture(scope="module")
def sp500(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The ``--json`` document of the README's ``swarmvar backtest`` command, run once.

    Run by the installed ``swarmvar`` in an empty folder with no config file
    (``SWARMVAR_CONFIG`` unset): the defaults ``make demo`` gets.
    """
    table = rt.parse(README.read_text(encoding="utf-8"))
    folder = tmp_path_factory.mktemp("sp500")
    argv = [str(Path(sys.executable).parent / "swarmvar"), *_without(table.argv, "--report"),
            "--json", "--workers", "2", "--home", str(folder / "home")]
    env = {k: v for k, v in os.environ.items() if k != "SWARMVAR_CONFIG"}
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stderr[-3000:]}"
    doc: dict[str, Any] = json.loads(done.stdout)  # --json: one JSON document on stdout
    assert doc["command"] == "backtest" and doc["ledger"] is not None
    assert all(isinstance(doc[k], list) for k in ("rows", "baselines", "alphas", "summary",
                                                  "tests"))
    # one summary line per (row, level) and one test line per (row, level, test)
    assert sorted((s["model"], s["alpha"]) for s in doc["summary"]) == sorted(
        (r, a) for r in doc["rows"] for a in doc["alphas"])
    assert all({"hits", *(f"p_{t}" for t in BOTH)} <= set(s) for s in doc["summary"])
    return doc


def _passes_both(doc: dict[str, Any], row: str) -> bool:
    """Both tests pass (``passed`` true, p > 0.05) at every level of the run."""
    lines = [t for t in doc["tests"] if t["model"] == row and t["test"] in BOTH]
    assert len(lines) == len(BOTH) * len(doc["alphas"]), (row, lines)
    return all(t["passed"] is True for t in lines)


def _cells(doc: dict[str, Any], row: str, alpha: float) -> str:
    """The run's ``hits, Kupiec p, Christoffersen p`` at ``alpha`` as the README prints it."""
    s = next(s for s in doc["summary"] if s["model"] == row and round(s["alpha"], 6)
             == round(alpha, 6))
    return ", ".join([str(s["hits"]), *(f"{s[f'p_{t}']:.3f}" for t in BOTH)])


@pytest.mark.slow
def test_an_agent_passes_kupiec_and_christoffersen_at_both_levels(
        sp500: dict[str, Any]) -> None:
    doc = sp500
    assert doc["days"] == 2500 and doc["alphas"] == [0.99, 0.975]
    assert doc["baselines"][0] == "arch GARCH(1,1)-t" and set(doc["baselines"]) < set(doc["rows"])
    passing = [row for row in doc["rows"]
               if row not in doc["baselines"] and _passes_both(doc, row)]
    assert passing, "no swarmvar agent passes Kupiec and Christoffersen at 99% and 97.5%"
    # GarchEVT with its default GJR-GARCH filter is the one (docs/models-garch.md has the
    # table; with the symmetric filter its 99% breaches cluster: Christoffersen p = 0.017)
    assert "GarchEVT" in passing
    # and the swarm's consensus (tempered FZ0 weights over a 1,000-day track record,
    # swarm.consensus.TRACK_DAYS; docs/consensus.md)
    assert "consensus" in passing
    # the baseline fails, as the issue reports
    assert not next(t["passed"] for t in doc["tests"] if t["model"] == doc["baselines"][0]
                    and t["alpha"] == 0.99 and t["test"] == "kupiec")


@pytest.mark.slow
def test_every_figure_of_the_readme_table_is_the_commands(sp500: dict[str, Any]) -> None:
    """README.md's table, row by row: hits, p-values to the printed 3 decimals, pass column."""
    table = rt.parse(README.read_text(encoding="utf-8"))
    doc = sp500
    assert [round(a, 6) for a in table.alphas] == [round(a, 6) for a in doc["alphas"]]
    wrong = []
    if set(table.rows) != set(doc["rows"]):
        wrong.append(f"rows the command has, not the README: "
                     f"{sorted(set(doc['rows']) - set(table.rows))}; rows the README has, "
                     f"not the command: {sorted(set(table.rows) - set(doc['rows']))}")
    for row, (cells, passes) in table.rows.items():
        if row not in doc["rows"]:
            continue
        ran = tuple(_cells(doc, row, a) for a in table.alphas)
        if ran != cells:
            wrong.append(f"{row}: README {cells}, command {ran}")
        if _passes_both(doc, row) != passes:
            wrong.append(f"{row}: README says passes both levels = {passes}, command "
                         f"{not passes}")
    assert not wrong, "README's backtest table differs from its command:\n" + "\n".join(wrong)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_the_consensus_passes_on_nasdaq_too() -> None:
    """The second bundled series, where the policy was also checked (docs/consensus.md)."""
    agents = [agent_class(name)() for name in DEFAULT_AGENTS]
    r = load("nasdaq").iloc[-3500:]
    res = backtest(r, agents, window=1000, refit_every=20, alphas=(0.99, 0.975), progress=False,
                   baseline=None, consensus={"consensus": SWARM_POLICY}, workers=2)
    for alpha in (0.99, 0.975):
        for test in (Test.KUPIEC, Test.CHRISTOFFERSEN):
            assert res.passed("consensus", alpha, test), (alpha, test)


# --- the README table's parser (fast) --------------------------------------------------

_GOOD = """\
# swarmvar

## Backtest: where the swarm stands on the S&P 500

`swarmvar backtest --data sp500 --last 2500
--alpha 0.99,0.975 --report backtest.html`, seed 0:

| row | 99%: hits, Kupiec p, Christoffersen p | 97.5%: hits, Kupiec p, Christoffersen p | passes both levels |
| --- | --- | --- | --- |
| **GarchEVT** (GJR filter) | 19, 0.208, 0.589 | 56, 0.397, 0.810 | **yes** |
| StudentT | 21, 0.408, 0.169 | 64, 0.848, 0.000 | no (breaches cluster) |

## Next section
"""  # noqa: E501 (a README table line)


def test_the_parser_reads_the_command_levels_and_rows() -> None:
    table = rt.parse(_GOOD)
    assert table.argv == ("backtest", "--data", "sp500", "--last", "2500", "--alpha",
                          "0.99,0.975", "--report", "backtest.html")
    assert _without(table.argv, "--report")[-2:] == ["--alpha", "0.99,0.975"]
    assert table.alphas == (0.99, 0.975)
    assert table.rows == {"GarchEVT": (("19, 0.208, 0.589", "56, 0.397, 0.810"), True),
                          "StudentT": (("21, 0.408, 0.169", "64, 0.848, 0.000"), False)}


def test_the_parser_reads_the_real_readme() -> None:
    """The README's own section reads (its figures are the slow test's business)."""
    table = rt.parse(README.read_text(encoding="utf-8"))
    assert table.argv[:1] == ("backtest",) and "--report" in table.argv
    assert table.alphas == (0.99, 0.975) and {"GarchEVT", "consensus"} <= set(table.rows)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("## Backtest: where the swarm stands on the S&P 500", "## Backtest", "no section"),
    ("`swarmvar backtest --data", "swarmvar backtest --data", "names no `swarmvar"),
    ("| 99%: hits", "| hits", "must name a level"),
    ("| 19, 0.208, 0.589 |", "| 19, 0.208, 0.589 | 1 |", "must have 4 cells"),
    ("| **yes** |", "| maybe |", "end with yes or no"),
    ("| StudentT |", "| GarchEVT |", "a name not used before"),
])
def test_the_parser_fails_loudly_on_what_it_cannot_read(old: str, new: str,
                                                       message: str) -> None:
    assert old in _GOOD
    with pytest.raises(rt.ReadmeTableError, match=message):
        rt.parse(_GOOD.replace(old, new, 1))


def test_the_parser_refuses_a_section_without_a_table_or_rows() -> None:
    head, rest = _GOOD.split("| row |")
    with pytest.raises(rt.ReadmeTableError, match="no table"):
        rt.parse(head + "## Next section\n")
    header = "| row |" + "\n".join(rest.splitlines()[:2])  # header and separator only
    with pytest.raises(rt.ReadmeTableError, match="no table with a header, a separator and rows"):
        rt.parse(head + header + "\n\n## Next section\n")
