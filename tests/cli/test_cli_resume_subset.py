"""``swarmvar run`` resumed with some of the home's portfolios, or another
``--checkpoint-every``: a usage error (exit 2) naming what differs, the home untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import build_app

FAST = ["--agents", "nig,bootstrap", "--window", "60", "--quiet"]
BOOKS = {"tech": {"weights": {"AAPL": 0.5, "MSFT": 0.5}},
         "hedged": {"positions": {"AAPL": 600000, "MSFT": -400000}}}


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _runner(tmp_path: Path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    days = pd.date_range("2021-01-01", periods=80, freq="D")
    frame = pd.DataFrame({"AAPL": rng.normal(0, 0.01, 80), "MSFT": rng.normal(0, 0.012, 80)},
                         index=days)
    data = tmp_path / "assets.csv"
    frame.to_csv(data, index_label="date")
    home = tmp_path / "home"

    def run(books: dict, *extra: str) -> object:
        path = tmp_path / "books.json"
        path.write_text(json.dumps(books))
        return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", str(data),
                                                "--portfolios", str(path), "--beats", "4",
                                                "--checkpoint-every", "3", *FAST, *extra])
    return home, run


def test_a_resume_of_some_portfolios_is_a_usage_error(tmp_path):
    home, run = _runner(tmp_path)
    first = run(BOOKS)
    assert first.exit_code == 0, first.output
    before = _files(home)
    some = run({"hedged": BOOKS["hedged"]})
    assert some.exit_code == 2, some.output
    assert "this home's run beats tech, hedged; tech left out would be lost" in some.output
    assert "resume with all of them" in some.output and "--home" in some.output
    assert "Traceback" not in some.output
    assert _files(home) == before  # the refused resume touched nothing stored
    again = run(BOOKS)
    assert again.exit_code == 0, again.output
    assert "tech at beat 4" in again.output and "hedged at beat 4" in again.output


def test_a_resume_with_another_checkpoint_every_is_a_usage_error(tmp_path):
    home, run = _runner(tmp_path)
    assert run({"hedged": BOOKS["hedged"]}).exit_code == 0
    before = _files(home)
    other = run({"hedged": BOOKS["hedged"]}, "--checkpoint-every", "2")
    assert other.exit_code == 2, other.output
    assert "other settings" in other.output and "--checkpoint-every: saved 3, now 2" in " ".join(
        other.output.split())
    assert "--home" in other.output and "Traceback" not in other.output
    assert _files(home) == before
