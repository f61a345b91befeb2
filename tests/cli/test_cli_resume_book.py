"""``swarmvar run`` resumed with another book: a usage error naming what differs (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.ledger import Ledger

FAST = ["--agents", "nig,bootstrap,student-t", "--window", "60", "--quiet"]


def test_a_resume_with_other_positions_is_a_usage_error(tmp_path):
    rng = np.random.default_rng(3)
    days = pd.date_range("2021-01-01", periods=80, freq="D")
    frame = pd.DataFrame({"AAPL": rng.normal(0, 0.01, 80), "MSFT": rng.normal(0, 0.012, 80)},
                         index=days)
    data = tmp_path / "assets.csv"
    frame.to_csv(data, index_label="date")
    home = tmp_path / "home"

    def run(book: dict) -> object:
        path = tmp_path / "book.json"
        path.write_text(json.dumps({"hedged": {"positions": book}}))
        return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", str(data),
                                                "--portfolios", str(path), "--beats", "4",
                                                *FAST])

    first = run({"AAPL": 600000, "MSFT": -400000})
    assert first.exit_code == 0, first.output
    with Ledger.open(home) as ledger:
        size = ledger.size
    other = run({"AAPL": 600000, "MSFT": -300000})
    assert other.exit_code == 2, other.output
    assert "'hedged'" in other.output and "MSFT: -400000 -> -300000" in other.output
    assert "--home" in other.output and "Traceback" not in other.output
    with Ledger.open(home) as ledger:
        assert ledger.size == size  # the refused resume recorded nothing
    same = run({"MSFT": -400000.0, "AAPL": 6e5})  # the same book, written otherwise
    assert same.exit_code == 0, same.output
    assert "hedged at beat 8" in same.output
