"""``swarmvar run`` resumed with another ``--refit-lag``: refused by the checkpoint's
fingerprint, which holds it (not as a role of the run record's settings), naming the flag."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import build_app

FAST = ["--agents", "nig,bootstrap", "--window", "60", "--quiet"]


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_a_resume_with_another_refit_lag_names_the_flag(tmp_path):
    rng = np.random.default_rng(3)
    days = pd.date_range("2021-01-01", periods=70, freq="D")
    frame = pd.DataFrame({"AAPL": rng.normal(0, 0.01, 70), "MSFT": rng.normal(0, 0.012, 70)},
                         index=days)
    data, books, home = tmp_path / "assets.csv", tmp_path / "books.json", tmp_path / "home"
    frame.to_csv(data, index_label="date")
    books.write_text(json.dumps({"hedged": {"positions": {"AAPL": 600000, "MSFT": -400000}}}))

    def run(*extra: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", str(data),
                                                "--portfolios", str(books), "--beats", "4",
                                                *FAST, *extra])

    first = run()
    assert first.exit_code == 0, first.output
    before = _files(home)
    other = run("--refit-lag", "2")
    assert other.exit_code == 2, other.output
    assert "--refit-lag: saved 0, now 2" in other.output, other.output
    assert "roles." not in other.output and "Traceback" not in other.output
    assert "--home" in other.output
    assert _files(home) == before  # the refused resume touched nothing stored
