"""A file's rows are named by the line they start on, also after a quoted field that spans
lines (was: every later row named one line too early)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmvar import data
from swarmvar.data._tables import file_lines
from swarmvar.errors import InvalidReturns


def test_a_row_after_a_quoted_newline_is_named_by_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('date,x,note\n2020-01-01,0.01,"a\nb"\n2020-01-02,0.02,c\n'
                    "2020-01-01,0.03,d\n")
    with pytest.raises(InvalidReturns, match=r"\(line 2 and line 5\)"):
        data.read(path, "x", kind="return")
    where = file_lines(path)
    assert [where(i) for i in range(4)] == ["line 2", "line 4", "line 5", "row 4"]


def test_blank_lines_and_line_endings_are_counted_as_the_reader_skips_them(
        tmp_path: Path) -> None:
    for name, text, want in [
        ("crlf.csv", "date,x\r\n2020-01-01,0.01\r\n\r\n2020-01-03,0.02\r\n2020-01-02,0.01\r\n",
         ["line 2", "line 4", "line 5"]),
        ("cr.csv", "date,x\r2020-01-01,0.01\r2020-01-03,0.02\r2020-01-02,0.01\r",
         ["line 2", "line 3", "line 4"]),
        ("lead.csv", "\n\ndate,x\n2020-01-01,0.01\n   \n2020-01-02,0.02\n",
         ["line 4", "line 6", "row 3"]),
    ]:
        path = tmp_path / name
        path.write_text(text, newline="")
        where = file_lines(path)
        assert [where(i) for i in range(3)] == want, name
