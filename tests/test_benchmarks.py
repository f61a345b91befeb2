"""Every benchmark runs in quick mode through ``benchmarks/run.py``'s loader.

A benchmark that cannot load or raises fails ``make test`` here, instead of
breaking unseen until someone runs ``make bench``. Each runs in its own
subprocess (as ``make bench`` would run it), so a benchmark's servers,
workers and global settings never leak into the rest of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
NAMES = sorted(p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_runs_in_quick_mode(name: str, tmp_path: Path) -> None:
    env = dict(os.environ, JAX_PLATFORMS="cpu", RAY_AUTH_MODE="disabled", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"bench_{name} --quick failed:\n{proc.stdout}\n{proc.stderr}"
    assert f"=== bench_{name} ===" in proc.stdout
