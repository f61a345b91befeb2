"""`swarmvar run --data FILE` reads through the data layer; `--portfolios FILE` refuses cleanly.

The file is judged as a file (encoding, NUL bytes, ragged rows, dates, cells that are
not numbers): a usage error (exit 2) naming the file, before the home is opened. Its
rows (NaN, a date not after the last) are the run's to refuse tick by tick.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from swarmvar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import RUN_FAST, plain  # noqa: E402

runner = CliRunner()


# Each of these the old reader (pandas.read_csv(index_col=0, parse_dates=True)) let
# through as a table: NUL text as one column, numbers as dates, a NaT date, text and
# true/false cells (which crashed the replay), day-first dates read month-first.
BAD_FILES = {
    "utf16_no_bom.csv": ("date,x\n2020-01-01,0.01\n".encode("utf-16-le"), "NUL bytes"),
    "ragged.csv": (b"date,x\n2020-01-01,0.01\n2020-01-02,0.01,7\n", "not a well-formed CSV"),
    "numdates.csv": (b"date,x\n1,0.01\n2,0.02\n", "holds numbers such as 1, not dates"),
    "blankdate.csv": (b"date,x\n2020-01-01,0.01\n,0.02\n", "no date at line 3"),
    "text.csv": (b"date,x\n2020-01-01,0.01\n2020-01-02,abc\n",
                 "'abc' at 2020-01-02 in column 'x' is not a number"),
    "bool.csv": (b"date,x\n2020-01-01,True\n2020-01-02,False\n", "true/false values"),
    "ambiguous.csv": (b"date,x\n01/02/2020,0.01\n01/03/2020,0.02\n01/04/2020,0.0\n",
                      "'01/02/2020' (line 2) reads as 2020-01-02 month-first and as "
                      "2020-02-01 day-first"),
    "empty.csv": (b"", "is empty (0 bytes)"),
    "headeronly.csv": (b"date,x\n", "has a header but no data rows"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_a_usage_error_naming_it_and_nothing_is_stored(tmp_path: Path,
                                                                      name: str) -> None:
    raw, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(raw)
    home = tmp_path / "home"
    result = runner.invoke(app, ["run", "--data", str(path), *RUN_FAST, "--beats", "1",
                                 "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "--data" in text and name in text and words in text, text
    assert "Traceback" not in result.output and "this is a bug" not in text
    assert not home.exists()  # refused before the home is opened


def _sp(n: int) -> pd.Series:
    from swarmvar import data

    return data.load("sp500").iloc[:n]


def test_nan_cells_and_a_repeated_date_are_refused_per_tick_and_the_run_goes_on(
        tmp_path: Path) -> None:
    sp = _sp(160)
    values = sp.to_numpy().copy()
    values[152] = np.nan
    dates = sp.index.strftime("%Y-%m-%d").to_numpy().copy()
    dates[156] = dates[155]  # a date not after the last: the run's per-tick refusal
    lines = ["date,sp"] + [f"{d},{'' if np.isnan(v) else repr(float(v))}"
                           for d, v in zip(dates, values, strict=True)]
    path = tmp_path / "gappy.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-16")  # with its byte-order mark
    result = runner.invoke(app, ["run", "--data", str(path), *RUN_FAST,
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "8 beats in" in result.output and "2 ticks refused" in result.output, result.output


def test_a_day_first_daily_file_is_replayed_in_its_dates_not_scrambled(
        tmp_path: Path) -> None:
    sp = _sp(200)
    frame = pd.DataFrame({"date": sp.index.strftime("%d/%m/%Y"), "sp": sp.to_numpy()})
    frame.to_csv(tmp_path / "dmy.csv", index=False)  # days above 12: the column is day-first
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "dmy.csv"), *RUN_FAST,
                                 "--beats", "2", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0 and "sp at beat 2" in result.output, result.output
    assert "0 ticks refused" in result.output, result.output  # no tick misread out of order
    frame.loc[7, "date"] = sp.index[7].strftime("%m/%d/%Y")  # 01/14/1999 among dd/mm: corrupt
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    mixed = runner.invoke(app, ["run", "--data", str(tmp_path / "mixed.csv"), *RUN_FAST,
                                "--beats", "1", "--home", str(tmp_path / "h3")])
    assert mixed.exit_code == 2 and "mix two orders" in plain(mixed.output), mixed.output
    frame["date"] = sp.index.strftime("%m/%d/%Y")  # month-first: days above 12 settle it
    frame.to_csv(tmp_path / "mdy.csv", index=False)
    ok = runner.invoke(app, ["run", "--data", str(tmp_path / "mdy.csv"), *RUN_FAST,
                             "--beats", "2", "--home", str(tmp_path / "h2")])
    assert ok.exit_code == 0 and "sp at beat 2" in ok.output, ok.output


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%m/%d/%Y"])
def test_follow_refuses_a_file_whose_dates_are_not_iso(tmp_path: Path, fmt: str) -> None:
    """--follow reads each new row's date as ISO: a dd/mm or mm/dd file the data layer reads
    would otherwise start and ledger every followed row as a refused tick."""
    sp = _sp(200)
    path = tmp_path / "dates.csv"
    pd.DataFrame({"date": sp.index.strftime(fmt), "sp": sp.to_numpy()}).to_csv(path,
                                                                                index=False)
    home = tmp_path / "h"
    result = runner.invoke(app, ["run", "--data", str(path), "--follow",
                                 "--idle-timeout", "0.2", *RUN_FAST, "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "--follow" in text and "YYYY-MM-DD" in text and "dates.csv" in text, text
    assert not home.exists()  # refused before the home is opened
    iso = tmp_path / "iso.csv"
    pd.DataFrame({"date": sp.index.strftime("%Y-%m-%d"), "sp": sp.to_numpy()}).to_csv(
        iso, index=False)
    ok = runner.invoke(app, ["run", "--data", str(iso), "--follow",
                             "--idle-timeout", "0.2", *RUN_FAST, "--home", str(home)])
    assert ok.exit_code == 0 and "0 ticks refused" in ok.output, ok.output


@pytest.mark.parametrize("content", [
    "date,x\n".encode("utf-16"),            # not JSON (UTF-16 read as UTF-8)
    b"{\"a\": 5}",                          # a portfolio that is not an object
    b"{\"a\": {\"weights\": {\"zz\": 1}}}",  # an asset the data do not have
    b"[1, 2]",                              # a list without names
    b"{\"a\": {\"weights\": {\"x\": \"1\"}}}",  # a weight that is text
    b"{\"a\": {\"weights\": {\"x\": 1}, \"positions\": {\"x\": 1}}}",
    b"{\"a\": {\"weights\": {\"x\": true}}}",  # a bool is not a weight of 1.0
    b"{\"a\": {\"weights\": \"abc\"}}",        # a book that is not a mapping
    b"{\"a\": {\"positions\": [1, 2]}}",
])
def test_a_bad_portfolios_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    pd.DataFrame({"x": _sp(160).to_numpy()}, index=_sp(160).index).to_csv(
        tmp_path / "assets.csv", index_label="date")
    (tmp_path / "books.json").write_bytes(content)
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "assets.csv"), "--portfolios",
                                 str(tmp_path / "books.json"), *RUN_FAST, "--beats", "1",
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "this is a bug" not in result.output


def test_a_folder_given_as_portfolios_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--portfolios", str(tmp_path), *RUN_FAST, "--beats",
                                 "1", "--home", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    assert "--portfolios" in plain(result.output)


def test_a_gap_in_the_history_rows_says_so_in_runs_words(tmp_path: Path) -> None:
    sp = _sp(160)
    values = sp.to_numpy().copy()
    values[10] = np.nan  # inside the first --window rows: the swarm's starting history
    pd.DataFrame({"sp": values}, index=sp.index).to_csv(tmp_path / "h.csv", index_label="date")
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "h.csv"), *RUN_FAST,
                                 "--home", str(tmp_path / "h")])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "1999-01-20" in text and "missing (NaN)" in text, text
    assert "start history (the first --window rows) needs every value" in text, text
    assert "fill or remove that row" in text and "--dropna" not in text
