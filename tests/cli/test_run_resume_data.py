"""``swarmvar run`` resumed on other data than its run beat: refused (exit 2) before anything
is written, naming the data, the beats and the first difference; data that only grew
resumes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.ledger import Ledger

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

FAST = ["--agents", "nig,bootstrap,student-t", "--window", "60", "--quiet"]
ROWS = 90


def _frame(seed: int, rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", periods=rows, freq="D")
    return pd.DataFrame({"x": rng.normal(0, 0.01, rows)}, index=days)


def _write(frame: pd.DataFrame, path: Path, suffix: str = "csv") -> Path:
    if suffix == "parquet":
        frame.rename_axis("date").reset_index().to_parquet(path)
    else:
        frame.to_csv(path, index_label="date")
    return path


def _run(home: Path, data: Path, *extra: str, stdin: str | None = None) -> object:
    return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", str(data),
                                            *FAST, *extra], input=stdin)


def _size(home: Path) -> int:
    with Ledger.open(home) as ledger:
        return ledger.size


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_resume_on_another_series_is_refused_naming_the_first_difference(
        tmp_path: Path, suffix: str) -> None:
    a = _frame(1)
    home = tmp_path / "home"
    first = _run(home, _write(a, tmp_path / f"A.{suffix}", suffix), "--beats", "5")
    assert first.exit_code == 0, first.output
    size = _size(home)
    b = a.copy()
    b.iloc[63:, 0] = _frame(2).iloc[63:, 0]  # the same columns, other returns from row 64
    other = _run(home, _write(b, tmp_path / f"B.{suffix}", suffix), "--beats", "5")
    text = plain(other.output)
    assert other.exit_code == 2, other.output
    span = f"beats 1..5 ({a.index[60].date()}..{a.index[64].date()})"
    assert f"B.{suffix}" in text and span in text and "rows at those dates" in text, text
    day = a.index[63].date().isoformat()
    ledgered = f"{a.iloc[63, 0]:.4g}"
    now = f"{b.iloc[63, 0]:.4g}"
    assert f"first difference at {day} (row 64, beat 4): ledgered {ledgered}, now {now}" \
        in text, text
    assert "2 of 5 beats differ" in text and "--home" in text, text
    assert "Traceback" not in other.output
    assert _size(home) == size  # refused before anything was written
    again = _run(home, tmp_path / f"A.{suffix}", "--beats", "2")  # its own data resumes
    assert again.exit_code == 0, again.output
    assert _size(home) > size


def test_a_followed_file_that_grew_resumes_and_one_edited_is_refused(tmp_path: Path) -> None:
    a = _frame(3)
    path = _write(a.iloc[:70], tmp_path / "live.csv")
    home = tmp_path / "home"
    args = ("--follow", "--idle-timeout", "0.3")
    first = _run(home, path, *args)
    assert first.exit_code == 0, first.output  # beats rows 61..70
    _write(a, path)  # grown by 20 rows: its processed prefix unchanged
    grown = _run(home, path, *args, "--beats", "3")
    assert grown.exit_code == 0, grown.output
    size = _size(home)
    edited = a.copy()
    edited.iloc[65, 0] += 0.001  # a row already beaten, changed
    _write(edited, path)
    refused = _run(home, path, *args)
    text = plain(refused.output)
    assert refused.exit_code == 2, refused.output
    assert "live.csv" in text and "data lines" in text and "1 of 13 beats differ" in text, text
    assert _size(home) == size
    _write(a.iloc[:66], path)  # cut before rows the ledger beat
    cut = _run(home, path, *args)
    assert cut.exit_code == 2, cut.output
    text = plain(cut.output)
    assert f"has no data line dated {a.index[66].date()}" in text and "truncated" in text, text
    assert _size(home) == size


def test_stdin_ticks_replayed_after_a_restart_are_checked_against_the_ledger(
        tmp_path: Path) -> None:
    a = _frame(4)
    data = _write(a.iloc[:60], tmp_path / "start.csv")
    home = tmp_path / "home"

    def lines(frame: pd.DataFrame) -> str:
        return "".join(json.dumps({"portfolio": "x", "as_of": d.date().isoformat(),
                                   "value": float(v)}) + "\n"
                       for d, v in zip(frame.index, frame["x"], strict=True))

    first = _run(home, data, "--stdin", stdin=lines(a.iloc[60:66]))
    assert first.exit_code == 0, first.output
    size = _size(home)
    same = _run(home, data, "--stdin", stdin=lines(a.iloc[60:68]))  # 6 again, then 2 new
    assert same.exit_code == 0, same.output
    assert _size(home) > size
    size = _size(home)
    changed = a.iloc[60:70].copy()
    changed.iloc[2, 0] = -0.05
    refused = _run(home, data, "--stdin", stdin=lines(changed))
    text = plain(refused.output)
    assert refused.exit_code == 2, refused.output
    assert "line 3 of the JSON lines on stdin" in text and "-0.05" in text, text
    assert _size(home) == size  # the replayed ticks write nothing before it
    stream = io.StringIO(lines(a.iloc[68:70]))  # only new ticks: nothing to check
    fresh = _run(home, data, "--stdin", stdin=stream.getvalue())
    assert fresh.exit_code == 0, fresh.output


def test_a_resume_whose_start_rows_differ_is_refused(tmp_path: Path) -> None:
    a = _frame(5)
    home = tmp_path / "home"
    first = _run(home, _write(a, tmp_path / "A.csv"), "--beats", "3")
    assert first.exit_code == 0, first.output
    size = _size(home)
    b = a.copy()
    b.iloc[10, 0] = 0.02  # a start row only: every beaten row is the same
    other = _run(home, _write(b, tmp_path / "B.csv"), "--beats", "3")
    text = plain(other.output)
    assert other.exit_code == 2, other.output
    assert "start history (60 rows, 2021-01-01..2021-03-01" in text and "--window" in text
    assert _size(home) == size


def test_the_bundled_series_resumes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ("--last", "70", "--beats", "3")
    first = CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", "sp500",
                                             *FAST, *args])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", "sp500",
                                             *FAST, *args])
    assert again.exit_code == 0, again.output
    assert "sp500 at beat 6" in plain(again.output), again.output


PLUGIN = """
from swarmvar.models import NormalInverseGamma


class HalfLife(NormalInverseGamma):
    name = "HalfLife"

    def __init__(self, forgetting=0.97):
        super().__init__(forgetting=forgetting)
"""


def test_a_resume_with_a_changed_plugin_is_a_usage_error(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    (folder / "house").mkdir(parents=True)
    (folder / "house" / "__init__.py").write_text("")
    (folder / "house" / "agents.py").write_text(PLUGIN)
    (folder / "house" / "helpers.py").write_text("SCALE = 1.0\n")
    home = tmp_path / "home"
    data = _write(_frame(6), tmp_path / "A.csv")
    args = ("--agents", "nig,bootstrap", "--window", "60", "--quiet", "--beats", "2",
            "--sandbox", "none", "--plugin", "house.agents:HalfLife",
            "--plugin-path", str(folder))

    def run() -> object:
        return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data",
                                                str(data), *args])

    first = run()
    assert first.exit_code == 0, first.output
    size = _size(home)
    (folder / "house" / "helpers.py").write_text("SCALE = 2.0\n")  # a module it may import
    changed = run()
    text = plain(changed.output)
    assert changed.exit_code == 2, changed.output
    assert "plug-in agent 'HalfLife' (house.agents:HalfLife) has changed" in text, text
    assert "3 file(s)" in text and "--home" in text and "Traceback" not in text
    assert _size(home) == size
    (folder / "house" / "helpers.py").write_text("SCALE = 1.0\n")  # the code as it was
    again = run()
    assert again.exit_code == 0, again.output


def test_a_home_beaten_from_stdin_resumes_on_a_file_of_the_same_rows(tmp_path: Path) -> None:
    """The ledger's cursors of a stream count its lines: a resume on --data finds the
    ledgered days by date (the rows before them skipped by date, as before)."""
    a = _frame(7)
    home = tmp_path / "home"
    ticks = "".join(json.dumps({"portfolio": "x", "as_of": d.date().isoformat(),
                                "value": float(v)}) + "\n"
                    for d, v in zip(a.index[60:66], a["x"].iloc[60:66], strict=True))
    first = _run(home, _write(a.iloc[:60], tmp_path / "start.csv"), "--stdin", stdin=ticks)
    assert first.exit_code == 0, first.output
    size = _size(home)
    full = _run(home, _write(a, tmp_path / "A.csv"), "--beats", "3")
    assert full.exit_code == 0, full.output
    assert _size(home) > size
    b = a.copy()
    b.iloc[62, 0] += 0.01  # the stream's third tick
    other = _run(home, _write(b, tmp_path / "B.csv"), "--beats", "3")
    assert other.exit_code == 2, other.output
    assert f"first difference at {a.index[62].date()} (row 63, beat 3)" in plain(other.output)


def test_a_csv_with_older_history_prepended_resumes(tmp_path: Path) -> None:
    a = _frame(8, rows=ROWS + 30)
    path = tmp_path / "A.csv"
    home = tmp_path / "home"
    first = _run(home, _write(a.iloc[30:], path), "--beats", "5")
    assert first.exit_code == 0, first.output
    size = _size(home)
    _write(a, path)  # 30 older rows before its first: every row moved by 30
    again = _run(home, path, "--beats", "3")
    assert again.exit_code == 0, again.output
    assert "x at beat 8" in plain(again.output), again.output
    assert _size(home) > size


def _beaten(home: Path) -> list[tuple[str, str, object]]:
    """Each ledgered beat's portfolio, day and cursor, in ledger order."""
    with Ledger.open(home) as ledger:
        return [(b["portfolio"], b["as_of"][:10], b["cursor"]) for e in ledger.entries(0)
                if e.kind == "consensus" and isinstance(b := e.data.get("beat"), dict)]


def test_a_stdin_home_of_two_portfolios_resumes_on_data_at_its_next_row(
        tmp_path: Path) -> None:
    """Two JSON lines a date after 60 blank ones: the stream's cursor (80, a line count) is
    no row of the file (its last beaten day is row 70); seeking there as a row skipped 10
    of the 15 new days."""
    rng = np.random.default_rng(5)
    days = pd.date_range("2021-01-01", periods=85, freq="D")
    a = pd.DataFrame({"x": rng.normal(0, 0.01, 85), "y": rng.normal(0, 0.01, 85)},
                     index=days)
    home = tmp_path / "home"
    lines = "\n" * 60 + "".join(json.dumps({"portfolio": p, "as_of": d.date().isoformat(),
                                "value": float(a.at[d, p])}) + "\n"
                    for d in days[60:70] for p in ("x", "y"))
    first = _run(home, _write(a.iloc[:60], tmp_path / "start.csv"), "--stdin", stdin=lines)
    assert first.exit_code == 0, first.output
    assert _beaten(home)[-1] == ("y", "2021-03-11", 80)
    again = _run(home, _write(a, tmp_path / "A.csv"))
    assert again.exit_code == 0, again.output
    assert "x at beat 25, y at beat 25" in plain(again.output), again.output
    new = _beaten(home)[20:]
    assert [(p, day) for p, day, _ in new] == [(p, d.date().isoformat())
                                                for d in days[70:] for p in ("x", "y")]


def test_a_followed_file_whose_oldest_rows_were_dropped_resumes_at_its_next_row(
        tmp_path: Path) -> None:
    a = _frame(9, rows=ROWS + 10)
    path = tmp_path / "A.csv"
    home = tmp_path / "home"
    follow = ["--follow", "--idle-timeout", "0.3"]
    first = _run(home, _write(a.iloc[:65], path), *follow)
    assert first.exit_code == 0, first.output
    assert _beaten(home)[-1][1:] == (str(a.index[64].date()), 65)
    _write(a.iloc[30:], path)  # a rolling file: 30 oldest rows gone, 35 new
    again = _run(home, path, *follow)
    assert again.exit_code == 0, again.output
    assert "x at beat 40" in plain(again.output), again.output
    assert [day for _, day, _ in _beaten(home)] == [str(d.date()) for d in a.index[60:]]
