"""`variants canary run` prints the worker's error output as text, never as rich markup:
brackets survive, and a stray closing tag cannot break the command after the ledger
entry is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar import sandbox
from swarmvar.cli.variants import app

LOUD = "[/x] [word] ends\x1b[31m"


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nig_canary: Callable[[Path], str],
         module: str) -> str:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sbx_loud.py").write_text(module)
    vid = nig_canary(tmp_path / "home")
    monkeypatch.setattr(sandbox, "create", lambda backend, profile: sandbox.UnsandboxedWorker(
        sandbox.VALIDATION, plugin_paths=[str(plugins)], preload=("numpy", "sbx_loud")))
    res = CliRunner().invoke(app, ["canary", "run", vid, "--data", "sp500", "--last", "60",
                                   "--window", "60", "--home", str(tmp_path / "home")])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 1, res.output
    return res.output


def test_an_unavailable_workers_stderr_is_printed_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        nig_canary: Callable[[Path], str]) -> None:
    out = _run(tmp_path, monkeypatch, nig_canary,
               f"import sys\nprint({LOUD!r}, file=sys.stderr, flush=True)\n"
               "raise ImportError('cannot')\n")
    assert "sandbox unavailable (bwrap)" in out
    assert "[/x] [word] ends[31m" in out and "\x1b" not in out


def test_a_crashed_tasks_stderr_is_printed_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        nig_canary: Callable[[Path], str]) -> None:
    out = _run(tmp_path, monkeypatch, nig_canary,
               "import os, sys\nimport swarmvar.models.task as task\n"
               "def crash(*args, **kwargs):\n"
               f"    print({LOUD!r}, file=sys.stderr, flush=True)\n"
               "    os._exit(3)\n"
               "task.forecast_path = crash\n")
    assert "canary failed: sandbox violation (crashed)" in out
    assert "[/x] [word] ends[31m" in out and "\x1b" not in out
