"""``swarmvar run --arbiter`` resumed under other arbiter options: refused (exit 2) naming
each option "saved X, now Y", nothing stored touched; under the same options it resumes.
The arbiter's checkpoint holds its options (the pulse's and the thresholds)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import Result
from typer.testing import CliRunner

from swarmvar.cli import build_app

FAST = ["--agents", "nig,bootstrap,student-t", "--window", "60", "--quiet", "--arbiter"]


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_a_resume_under_other_arbiter_options_names_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    days = pd.date_range("2021-01-01", periods=72, freq="D")
    data, home = tmp_path / "r.csv", tmp_path / "home"
    pd.DataFrame({"r": rng.normal(0, 0.01, 72)}, index=days).to_csv(data, index_label="date")

    def run(beats: int, *extra: str) -> Result:
        return CliRunner().invoke(build_app(), ["run", "--home", str(home), "--data", str(data),
                                                "--beats", str(beats), *FAST, *extra])

    first = run(4, "--k-flows", "4")
    assert first.exit_code == 0, first.output
    before = _files(home)
    other = run(6, "--k-flows", "3", "--t1", "0.002")
    assert other.exit_code == 2, other.output
    assert "--k-flows): saved 4.0, now 3.0" in other.output, other.output
    assert "--t1): saved 0.001, now 0.002" in other.output, other.output
    assert "--p-nodes" not in other.output and "Traceback" not in other.output
    assert _files(home) == before  # the refused resume touched nothing stored
    same = run(6, "--k-flows", "4")
    assert same.exit_code == 0, same.output
