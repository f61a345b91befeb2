"""Error text a table shows is printed as text, never read as rich markup.

A failed row's reason or a rejected agent's reason can hold ``[/x]`` (a path, a user's
column name); inside an f-string of markup that closed a tag that was never opened and
crashed the command at print time.
"""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace

from rich.console import Console

from swarmvar.cli.book import render_book


def _printed(table: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(table)
    return out.getvalue()


def test_a_failed_book_row_with_markup_in_its_reason_prints() -> None:
    result = SimpleNamespace(horizon=1, as_of=dt.datetime(2020, 1, 2), alphas=(0.99,),
                             rows=lambda: [], seconds={},
                             errors={"JointGarch": "column [/x] is [bold]odd"})
    text = _printed(render_book(result))  # type: ignore[arg-type]
    assert "failed: column [/x] is [bold]odd" in text
