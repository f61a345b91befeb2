"""``swarmvar backtest --book`` prints and JSON-dumps its rows' notes (e.g. the GJR book
baseline's refits that did not converge) as the single-series backtest does; was: dropped."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.books import load_stocks
from swarmvar.cli import app
from swarmvar.errors import ConvergenceWarning
from swarmvar.models.book_baselines import ArchGjrT

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A two-asset book whose GJR baseline refits get one optimizer step (so they do not
    converge), and the flags of a short book backtest over it (in this process)."""
    init = ArchGjrT.__init__

    def one_step(self: ArchGjrT, options: Any = None) -> None:
        init(self, {"maxiter": 1})

    monkeypatch.setattr(ArchGjrT, "__init__", one_step)
    stocks = load_stocks().iloc[-140:, :2]
    data = tmp_path / "returns.csv"
    stocks.rename_axis("date").to_csv(data)
    book = tmp_path / "book.csv"
    book.write_text("asset,position\n" + "".join(f"{c},100000\n" for c in stocks.columns))
    return ["backtest", "--data", str(data), "--kind", "return", "--book", str(book),
            "--agents", "niw", "--no-consensus", "--last", "20", "--window", "120",
            "--refit-every", "10", "--alpha", "0.99", "--home", str(tmp_path / "h"),
            "--no-progress", "--workers", "1"]


def _run(args: list[str]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return CliRunner().invoke(app, args)


def test_the_book_backtest_prints_its_notes(files: list[str]) -> None:
    out = _run(files)
    assert out.exit_code == 0, out.output
    text = plain(out.output)
    assert f"{ArchGjrT.name}: " in text and " note(s): first fit did not converge" in text, text


def test_the_book_backtest_json_holds_its_notes(files: list[str]) -> None:
    out = _run([*files, "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    notes = doc["notes"][ArchGjrT.name]
    assert notes[0].startswith("first fit did not converge"), notes
    assert any("kept the previous fit" in n for n in notes[1:]), notes
    assert set(doc["notes"]) <= {r["model"] for r in doc["rows"]}
