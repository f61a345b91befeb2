"""``swarmvar run``: beats, resume, portfolios over assets, stdin, usage errors, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.ledger import Ledger

FAST = ["--agents", "nig,bootstrap,student-t", "--window", "150", "--quiet"]


def _seqs(home) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        for e in ledger.entries():
            if e.kind == "consensus" and "beat" in e.data:
                out.setdefault(e.data["beat"]["portfolio"], []).append(e.data["beat"]["seq"])
    return out


def test_run_beats_and_resumes(tmp_path):
    runner = CliRunner()
    home = tmp_path / "home"
    r1 = runner.invoke(build_app(), ["run", "--home", str(home), "--beats", "12", *FAST])
    assert r1.exit_code == 0, r1.output
    assert "12 beats" in r1.output and "sp500 at beat 12" in r1.output
    r2 = runner.invoke(build_app(), ["run", "--home", str(home), "--beats", "5", *FAST])
    assert r2.exit_code == 0, r2.output
    assert "sp500 at beat 17" in r2.output
    assert _seqs(home) == {"sp500": list(range(1, 18))}


def test_portfolios_over_assets_and_usage_errors(tmp_path, sp500):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": sp500.iloc[:200].to_numpy(),
                          "y": rng.normal(0, 0.01, 200)}, index=sp500.index[:200])
    data = tmp_path / "assets.csv"
    frame.to_csv(data, index_label="date")
    book = tmp_path / "books.json"
    book.write_text(json.dumps({"long": {"weights": {"x": 0.7, "y": 0.3}},
                                "cash": {"positions": {"x": 1000.0, "y": -200.0}}}))
    runner = CliRunner()
    res = runner.invoke(build_app(), ["run", "--home", str(tmp_path / "h"), "--data", str(data),
                                      "--portfolios", str(book), "--beats", "20", *FAST])
    assert res.exit_code == 0, res.output
    assert _seqs(tmp_path / "h") == {"long": list(range(1, 11)), "cash": list(range(1, 11))}
    for args in (["--executor", "spark"], ["--beats", "0"], ["--data", "nope.csv"],
                 ["--workers", "-1"], ["--portfolios", str(data)]):
        bad = runner.invoke(build_app(), ["run", "--home", str(tmp_path / "bad"), *args, *FAST])
        assert bad.exit_code == 2, (args, bad.output)


def test_ticks_from_stdin(tmp_path, sp500):
    day = sp500.index[149]
    lines = [json.dumps({"portfolio": "sp500", "as_of": (day + pd.Timedelta(days=k)).isoformat(),
                         "value": v}) for k, v in ((1, 0.01), (2, float("nan")), (3, -0.02))]
    lines[1] = lines[1].replace("NaN", '"NaN"')
    res = CliRunner().invoke(build_app(), ["run", "--home", str(tmp_path), "--stdin", *FAST],
                             input="\n".join([*lines, "garbage"]) + "\n")
    assert res.exit_code == 0, res.output
    assert "2 beats" in res.output and "2 ticks refused" in res.output


def test_ctrl_c_stops_after_the_beat_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from swarmvar.cli import main; main()", "run", "--home",
         str(home), "--rate", "20", *FAST], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (home / "ledger.sqlite").exists() and _seqs(home).get("sp500", [0])[-1] >= 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "interrupted" in out and "Resume with the same command" in out
    seqs = _seqs(home)["sp500"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 5


def test_stdin_after_a_restart_skips_what_was_recorded(tmp_path, sp500):
    day = sp500.index[149]

    def lines(ks):
        return "\n".join(json.dumps({"portfolio": "sp500", "value": 0.001 * k,
                                     "as_of": (day + pd.Timedelta(days=k)).isoformat()})
                         for k in ks) + "\n"

    runner = CliRunner()
    first = runner.invoke(build_app(), ["run", "--home", str(tmp_path), "--stdin", *FAST],
                          input=lines(range(1, 5)))
    assert first.exit_code == 0 and "4 beats" in first.output, first.output
    again = runner.invoke(build_app(), ["run", "--home", str(tmp_path), "--stdin", *FAST],
                          input=lines(range(1, 8)))  # the producer resends from the start
    assert again.exit_code == 0, again.output
    assert "3 beats" in again.output and "4 already recorded" in again.output
    assert _seqs(tmp_path) == {"sp500": list(range(1, 8))}


def test_run_spread_over_two_workers_and_its_usage_errors(tmp_path):
    """``--spread 2 --workers 2``: each beat composed from both groups, resumable; a spread
    without a host per group, or with --refit-lag, is a usage error (exit 2)."""
    runner = CliRunner()
    home = tmp_path / "home"
    args = ["run", "--home", str(home), "--workers", "2", "--spread", "2", *FAST]
    r1 = runner.invoke(build_app(), [*args, "--beats", "6"])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(build_app(), [*args, "--beats", "3"])
    assert r2.exit_code == 0 and "sp500 at beat 9" in r2.output, r2.output
    with Ledger.open(home) as ledger:
        groups = [e.data["beat"]["groups"] for e in ledger.entries()
                  if e.kind == "consensus" and "beat" in e.data]
    assert groups == [["sp500#g0", "sp500#g1"]] * 9
    for bad in (["--spread", "2"], ["--spread", "3", "--workers", "2"], ["--spread", "0"],
                ["--spread", "2", "--workers", "2", "--refit-lag", "1"]):
        r = runner.invoke(build_app(), ["run", "--home", str(tmp_path / "bad"), *FAST, *bad])
        assert r.exit_code == 2 and "--spread" in r.output, (bad, r.output)
