"""docs/arbiter.md's replay figures ("Does it help?"), checked against the command's output.

The section's table (series, level, without / with the arbiter's actions:
breaches, expected, Kupiec p, Christoffersen p, mean FZ0) and its decisions
line (``NOOP a / b, ALERT ..., quarantine a / b (N agent-days held out on
NASDAQ``, ``... late beats``) are read from the page (:func:`parse`, which fails
loudly on a missing or malformed part); the slow test runs ``swarmvar arbiter
replay --data <series> --home <empty> --workers 2``, the command the page names,
and compares every figure, as printed (3 decimals for p, 6 for FZ0), so the page
cannot go stale silently when an agent or the arbiter changes.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import ROOT, MissingSection, cells, section_lines  # noqa: E402

PAGE = ROOT / "docs" / "arbiter.md"
HEADING = "## Does it help? (issue item 6)"
SERIES = {"S&P 500": "sp500", "NASDAQ": "nasdaq"}
HEADER = ["series", "α", "consensus", "breaches", "expected", "Kupiec p", "Christoffersen p",
          "FZ0 (mean)"]
# the page's decision names -> the command's action names (its decisions table)
ACTIONS = {"NOOP": "noop", "ALERT": "alert", "APPLY_BALANCE": "apply_balance",
           "quarantine": "quarantine"}


class PageFiguresError(ValueError):
    """The page's replay section is missing or a part of it cannot be read."""


@dataclass(frozen=True)
class ReplayFigures:
    """One series' figures as a page or the command shows them.

    ``rows``: (alpha as printed, "without"/"with") -> (breaches, expected, Kupiec p,
    Christoffersen p, FZ0), strings as printed (ASCII minus); ``decisions``: action ->
    beats; ``late``: late beats; ``held``: agent-days quarantined."""

    rows: dict[tuple[str, str], tuple[str, ...]]
    decisions: dict[str, int]
    late: int
    held: int


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def parse(text: str) -> dict[str, ReplayFigures]:
    """Series name (``sp500``, ``nasdaq``) -> its figures on the page ``text``."""
    try:
        section = section_lines(text, HEADING)
    except MissingSection as exc:
        raise PageFiguresError(f"docs/arbiter.md has {exc}") from None
    heads = [i for i, line in enumerate(section) if cells(line) == HEADER]
    if len(heads) != 1:
        raise PageFiguresError(f"the section needs one table with the header {HEADER}, "
                               f"found {len(heads)}")
    rows: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {s: {} for s in SERIES.values()}
    for line in section[heads[0] + 2:]:
        if not line.startswith("|"):
            break
        row = [c.replace("−", "-") for c in cells(line)]
        if len(row) != len(HEADER) or row[0] not in SERIES or row[2] not in (
                "without", "with") or (row[1], row[2]) in rows[SERIES[row[0]]]:
            raise PageFiguresError(f"table row {row}: {len(HEADER)} cells, a series of "
                                   f"{list(SERIES)}, without/with, each row once")
        rows[SERIES[row[0]]][row[1], row[2]] = tuple(row[3:])
    prose = " ".join(section)
    line = re.search(r"Decisions \(S&P 500 / NASDAQ\):(.*?)late beats", prose)
    if line is None:
        raise PageFiguresError("the section has no 'Decisions (S&P 500 / NASDAQ): ... "
                               "N late beats' line")
    pairs = dict(re.findall(r"\b(NOOP|ALERT|APPLY_BALANCE|quarantine) ([\d,]+ / [\d,]+)",
                            line.group(1)))
    held = re.search(r"\(([\d,]+) agent-days held out on NASDAQ", line.group(1))
    late = re.search(r"([\d,]+)\s*$", line.group(1))
    if set(pairs) != set(ACTIONS) or held is None or late is None:
        raise PageFiguresError(f"the decisions line must give {list(ACTIONS)} as 'a / b', "
                               "'(N agent-days held out on NASDAQ' and 'N late beats'; "
                               f"read {pairs}")
    out = {}
    for k, name in enumerate(SERIES.values()):
        if len(rows[name]) != 4:
            raise PageFiguresError(f"the table needs 4 rows of {name} (2 levels x "
                                   f"without/with), has {len(rows[name])}")
        decisions = {ACTIONS[a]: _number(v.split(" / ")[k]) for a, v in pairs.items()}
        out[name] = ReplayFigures(rows[name], {a: n for a, n in decisions.items() if n},
                                  _number(late.group(1)),
                                  _number(held.group(1)) if name == "nasdaq" else 0)
    return out


def read_output(output: str) -> ReplayFigures:
    """The same figures from ``swarmvar arbiter replay``'s printed output."""
    rows = {}
    for m in re.finditer(r"│\s*([\d.]+)\s*│\s*(without|with)\s*│\s*(\d+)\s*│\s*([\d.]+)\s*│"
                         r"\s*(?:pass|FAIL) ([\d.]+)\s*│\s*(?:pass|FAIL) ([\d.]+)\s*│"
                         r"\s*(-?[\d.]+)\s*│", output):
        rows[m.group(1), m.group(2)] = m.groups()[2:]
    decisions = {a: int(n) for a, n in re.findall(r"^│ ([a-z_]+)\s*│\s*(\d+) │$", output,
                                                  re.MULTILINE)}
    late = re.search(r"late beats \(simulated load\) (\d+)", output)
    held = re.search(r"agent-days quarantined: (.*?);", output)
    assert late is not None and held is not None, output
    days = sum(int(n) for n in re.findall(r" (\d+)(?:,|$)", held.group(1)))
    return ReplayFigures(rows, decisions, int(late.group(1)), days)


def test_the_page_names_every_figure() -> None:
    """The page's table and decisions line parse, for both series (fast: no replay)."""
    figures = parse(PAGE.read_text(encoding="utf-8"))
    assert set(figures) == {"sp500", "nasdaq"}
    for f in figures.values():
        assert set(f.rows) == {(a, c) for a in ("0.99", "0.975") for c in ("without", "with")}
        assert sum(f.decisions.values()) == 2499  # one decision per beat, days 1 .. 2,499
    # the command the slow test runs is the one the page documents
    words = " ".join(PAGE.read_text(encoding="utf-8").split())
    assert "`swarmvar arbiter replay --data sp500 --home H --workers 2`" in words


def test_parse_refuses_a_page_without_the_section_or_a_row() -> None:
    text = PAGE.read_text(encoding="utf-8")
    with pytest.raises(PageFiguresError, match="no section"):
        parse(text.replace(HEADING, "## Something else"))
    row = next(line for line in text.splitlines() if line.startswith("| NASDAQ | 0.99 | with |"))
    with pytest.raises(PageFiguresError, match="4 rows of nasdaq"):
        parse(text.replace(row + "\n", ""))
    with pytest.raises(PageFiguresError, match="decisions line"):
        parse(text.replace("APPLY_BALANCE", "BALANCE"))


def test_read_output_reads_the_printed_tables() -> None:
    out = ("sp500: 2499 beats 2009-01-28 → 2018-12-31; pulse 0.004211 s; late beats "
           "(simulated load) 76\n│ noop          │  1042 │\n│ alert         │   704 │\n"
           "agent-days quarantined: NormalInverseGamma 73, StudentT 9; refits requested: 0\n"
           "│  0.99 │ with      │       22 │     25.0 │ pass 0.539 │     FAIL 0.012 │  "
           "-3.510418 │\n")
    got = read_output(out)
    assert got.rows == {("0.99", "with"): ("22", "25.0", "0.539", "0.012", "-3.510418")}
    assert (got.decisions, got.late, got.held) == ({"noop": 1042, "alert": 704}, 76, 82)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["sp500", "nasdaq"])
def test_replay_figures_match_the_page(data: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``swarmvar arbiter replay --data DATA --home <empty> --workers 2`` prints every figure
    the page shows for DATA (~25 s each at load average 5 on 2 cores: the backtest of the
    six default agents over 2,500 days, then the replay)."""
    from swarmvar.cli import app

    page = parse(PAGE.read_text(encoding="utf-8"))[data]
    monkeypatch.chdir(tmp_path)  # no swarmvar.toml of the caller's
    monkeypatch.delenv("SWARMVAR_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["arbiter", "replay", "--data", data, "--home",
                                      str(tmp_path / "home"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    # a fresh backtest, not a cached file (the line may wrap)
    assert "computed once, then cached" in " ".join(result.output.split())
    got = read_output(result.output)
    assert got.rows == page.rows, result.output
    assert got.decisions == page.decisions, result.output
    assert (got.late, got.held) == (page.late, page.held), result.output
