"""The issue's quality bar on the real S&P 500 backtest, and the README table that reports it.

The slow tests run every agent over 2,500 days; one module-scoped backtest
(the call ``swarmvar backtest --data sp500 --last 2500 --window 1000
--refit-every 20 --alpha 0.99,0.975`` makes, both arch baselines included)
serves the quality bar and the check of every figure in README.md's table.
The fast tests check the README table's parser on small strings.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning
from swarmvar.models import DEFAULT_AGENTS, agent_class
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import BacktestResult, Test, backtest
from swarmvar.validation.backtest import Baseline

README = Path(__file__).resolve().parents[2] / "README.md"

#: The README command's setup (``swarmvar backtest``'s defaults; seed 0).
LAST, WINDOW, REFIT_EVERY, ALPHAS, SEED = 2500, 1000, 20, (0.99, 0.975), 0
#: "Passes both levels": both tests pass (p > 0.05) at every level.
BOTH = (Test.KUPIEC, Test.CHRISTOFFERSEN)


def _readme_table() -> ModuleType:
    """tests/validation/_readme_table.py, loaded by path (importlib mode: no ``tests.*``)."""
    name = "swarmvar_tests_readme_table"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parent / "_readme_table.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[name]


rt = _readme_table()


@pytest.fixture(scope="module")
def sp500() -> BacktestResult:
    """The backtest ``swarmvar backtest --data sp500`` runs with its defaults, run once.

    Same series (the last ``LAST + WINDOW`` returns: the CLI loads ``last +
    window + horizon - 1``), default agents built with their defaults (a home
    without a variant registry), the swarm's policy as the consensus row, both
    arch baselines, seed 0.
    """
    agents = [agent_class(name)() for name in DEFAULT_AGENTS]
    r = load("sp500").iloc[-(LAST + WINDOW):]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return backtest(r, agents, window=WINDOW, refit_every=REFIT_EVERY, alphas=ALPHAS,
                        seed=SEED, baseline=[Baseline.ARCH, Baseline.ARCH_GJR],
                        progress=False, consensus={"consensus": SWARM_POLICY}, workers=2)


def _passes_both(res: BacktestResult, row: str, alphas: tuple[float, ...]) -> bool:
    return all(res.passed(row, a, t) is True for a in alphas for t in BOTH)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_an_agent_passes_kupiec_and_christoffersen_at_both_levels(
        sp500: BacktestResult) -> None:
    res = sp500
    assert len(res.dates) == LAST
    assert res.baseline == "arch GARCH(1,1)-t" and res.baseline in res.rows
    print("\n" + res.summary().to_string())
    passing = [row for row in res.rows
               if row not in res.baselines and _passes_both(res, row, ALPHAS)]
    assert passing, "no swarmvar agent passes Kupiec and Christoffersen at 99% and 97.5%"
    # GarchEVT with its default GJR-GARCH filter is the one (docs/models-garch.md has the
    # table; with the symmetric filter its 99% breaches cluster: Christoffersen p = 0.017)
    assert "GarchEVT" in passing
    # and the swarm's consensus (tempered FZ0 weights over a 1,000-day track record,
    # swarm.consensus.TRACK_DAYS; docs/consensus.md)
    assert "consensus" in passing
    # the baseline fails, as the issue reports
    assert not res.passed(res.baseline, 0.99, Test.KUPIEC)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_every_figure_of_the_readme_table_is_the_backtests(sp500: BacktestResult) -> None:
    """README.md's table, row by row: hits, p-values to the printed 3 decimals, pass column."""
    table = rt.parse(README.read_text(encoding="utf-8"))
    # the command the README names is the one run here (seed: the default, 0)
    assert table.flags.get("--data") == "sp500"
    assert int(table.flags["--last"]) == LAST and int(table.flags["--window"]) == WINDOW
    assert int(table.flags["--refit-every"]) == REFIT_EVERY
    assert tuple(float(a) for a in table.flags["--alpha"].split(",")) == ALPHAS
    assert int(table.flags.get("--seed", "0")) == SEED
    assert table.alphas == ALPHAS
    res = sp500
    wrong = []
    missing = sorted(set(res.rows) - {r.row for r in table.rows})
    unknown = sorted({r.row for r in table.rows} - set(res.rows))
    if missing or unknown:
        wrong.append(f"rows the backtest has, not the README: {missing}; "
                     f"rows the README has, not the backtest: {unknown}")
    for line in table.rows:
        if line.row not in res.rows:
            continue
        for alpha, cells in line.levels.items():
            ev = res.evaluation[line.row][alpha]
            ran = rt.LevelCells(
                int(res.series[line.row][alpha].hits.sum()),
                f"{ev.tests[Test.KUPIEC].pvalue:.3f}",
                f"{ev.tests[Test.CHRISTOFFERSEN].pvalue:.3f}")
            if ran != cells:
                wrong.append(f"README line {line.line}, {line.row} at {alpha:g}: README "
                             f"{cells}, backtest {ran}")
        passes = _passes_both(res, line.row, table.alphas)
        if passes != line.passes:
            wrong.append(f"README line {line.line}, {line.row}: README says passes both "
                         f"levels = {line.passes}, backtest {passes}")
    assert not wrong, "README's backtest table differs from the backtest:\n" + "\n".join(wrong)


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

`swarmvar backtest --data sp500 --last 2500 --window 1000 --refit-every 20
--alpha 0.99,0.975 --report backtest.html`, seed 0:

| row | 99%: hits, Kupiec p, Christoffersen p | 97.5%: hits, Kupiec p, Christoffersen p | passes both levels |
| --- | --- | --- | --- |
| **GarchEVT** (GJR filter) | 19, 0.208, 0.589 | 56, 0.397, 0.810 | **yes** |
| StudentT | 21, 0.408, 0.169 | 64, 0.848, 0.000 | no (breaches cluster: iid model) |
| arch GJR-GARCH(1,1)-t (strongest arch baseline) | 34, 0.086, 0.486 | 87, 0.003, 0.986 | no |

Text after the table.

## Next section
"""  # noqa: E501 (a README table line)


def test_the_parser_reads_every_cell_of_a_table() -> None:
    table = rt.parse(_GOOD)
    assert table.alphas == (0.99, 0.975)
    assert table.flags == {"--data": "sp500", "--last": "2500", "--window": "1000",
                           "--refit-every": "20", "--alpha": "0.99,0.975",
                           "--report": "backtest.html"}
    assert [r.row for r in table.rows] == ["GarchEVT", "StudentT", "arch GJR-GARCH(1,1)-t"]
    assert [r.passes for r in table.rows] == [True, False, False]
    assert [r.line for r in table.rows] == [10, 11, 12]
    assert table.rows[0].levels == {0.99: rt.LevelCells(19, "0.208", "0.589"),
                                    0.975: rt.LevelCells(56, "0.397", "0.810")}
    assert table.rows[1].levels[0.975].christoffersen == "0.000"


def test_the_parser_reads_the_real_readme() -> None:
    """The README's own table reads (its figures are the slow test's business)."""
    table = rt.parse(README.read_text(encoding="utf-8"))
    assert table.alphas == ALPHAS and len(table.rows) >= 3


@pytest.mark.parametrize(("old", "new", "message"), [
    ("## Backtest: where the swarm stands on the S&P 500", "## Backtest", "no section"),
    ("`swarmvar backtest --data", "swarmvar backtest --data", "no `swarmvar backtest"),
    ("--alpha 0.99,0.975 --report", "--alpha --report", "'--flag value'"),
    ("| passes both levels |", "| passes both levels", "start and end with '|'"),
    ("| --- | --- | --- | --- |", "| --- | === | --- | --- |", "separator"),
    ("| 99%: hits, Kupiec p, Christoffersen p |", "| hits, Kupiec p, Christoffersen p |",
     "must name a level"),
    ("| 99%: hits, Kupiec p, Christoffersen p |", "| 99%: Kupiec p, hits, Christoffersen p |",
     "must name a level"),
    ("| passes both levels |", "| verdict |", "header must be"),
    ("19, 0.208, 0.589", "19, 0.21, 0.589", "'hits, 0.ddd, 0.ddd'"),
    ("19, 0.208, 0.589", "nineteen, 0.208, 0.589", "line 10"),
    ("19, 0.208, 0.589", "19, 0.208, 0.589 | extra", "5 cells"),
    ("| **yes** |", "| maybe |", "not 'yes' or 'no'"),
    ("| **yes** |", "| **yes |", "not 'yes' or 'no'"),
    ("| **GarchEVT** (GJR filter) |", "| (GJR filter) |", "names no row"),
    ("| **GarchEVT** (GJR filter) |", "| StudentT |", "StudentT twice"),
])
def test_the_parser_fails_loudly_on_what_it_cannot_read(old: str, new: str,
                                                       message: str) -> None:
    assert old in _GOOD
    with pytest.raises(rt.ReadmeTableError, match=message.replace("(", r"\(").replace(
            "|", r"\|")):
        rt.parse(_GOOD.replace(old, new, 1))


def test_the_parser_refuses_a_section_without_a_table_or_rows() -> None:
    no_table = _GOOD.split("| row |")[0] + "## Next section\n"
    with pytest.raises(rt.ReadmeTableError, match="has no table"):
        rt.parse(no_table)
    header_only = "\n".join(line for line in _GOOD.splitlines()
                            if not line.startswith("| **") and not line.startswith("| S")
                            and not line.startswith("| arch"))
    with pytest.raises(rt.ReadmeTableError, match="at least one row"):
        rt.parse(header_only)


_name = st.text(st.sampled_from("abcXYZ-_,()1"), min_size=1, max_size=12).filter(
    lambda s: " (" not in s and not s.startswith("("))
_p = st.integers(0, 1000).map(lambda k: f"{k / 1000:.3f}")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_name, st.integers(0, 999), _p, _p, st.integers(0, 999), _p, _p,
                          st.booleans(), st.booleans()),
                min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_the_parser_reads_back_any_table_it_is_given(
        rows: list[tuple[str, int, str, str, int, str, str, bool, bool]]) -> None:
    lines = [line for line in _GOOD.splitlines() if not line.startswith(("| **", "| S",
                                                                         "| arch"))]
    at = lines.index("| --- | --- | --- | --- |") + 1
    body = []
    for name, h1, k1, c1, h2, k2, c2, ok, bold in rows:
        verdict = ("yes" if ok else "no")
        verdict = f"**{verdict}**" if bold else verdict + " (a reason)"
        body.append(f"| {'**' + name + '** (note)' if bold else name} | {h1}, {k1}, {c1} "
                    f"| {h2}, {k2}, {c2} | {verdict} |")
    table = rt.parse("\n".join(lines[:at] + body + lines[at:]))
    assert [(r.row, r.passes) for r in table.rows] == [(t[0], t[7]) for t in rows]
    assert [r.levels[0.99] for r in table.rows] == [rt.LevelCells(*t[1:4]) for t in rows]
    assert [r.levels[0.975] for r in table.rows] == [rt.LevelCells(*t[4:7]) for t in rows]
