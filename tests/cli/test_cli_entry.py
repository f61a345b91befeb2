"""The ``swarmvar`` entry point mounts only the command group it runs."""

import subprocess
import sys

PROBE = """
import sys
sys.argv = ["swarmvar", "ledger", "verify", "--home", sys.argv[1]]
from swarmvar.cli import main
try:
    main()
except SystemExit as exc:
    print("exit", exc.code)
print("models imported:", "swarmvar.models" in sys.modules)
print("jax imported:", "jax" in sys.modules)
"""


def test_ledger_commands_do_not_import_the_models(tmp_path):
    from swarmvar.ledger import EntryKind, Ledger

    with Ledger.open(tmp_path) as ledger:
        ledger.add_entry(EntryKind.ACTION, {"type": "probe"})
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert "exit 0" in out.stdout, out.stdout + out.stderr
    assert "models imported: False" in out.stdout and "jax imported: False" in out.stdout


def test_the_full_app_still_lists_every_command():
    from typer.testing import CliRunner

    from swarmvar.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("var", "backtest", "ledger", "variants"):
        assert command in result.output


def test_jax_compilations_persist_under_the_data_home_unless_set(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from swarmvar.cli._common import persist_compilations

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "x")
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    assert persist_compilations(tmp_path) == tmp_path / "cache" / "jax"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "cache" / "jax")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert persist_compilations(tmp_path / "other") == Path(tmp_path / "mine")


HELP_PROBE = """
import sys
sys.argv = ["swarmvar", *sys.argv[1:]]
from swarmvar.cli import main
try:
    main()
except SystemExit as exc:
    print("exit", exc.code)
print("heavy:", sorted(m for m in ("numpy", "pandas", "scipy", "jax", "swarmvar.models",
                                   "swarmvar.ledger", "matplotlib") if m in sys.modules))
"""


def test_help_lists_every_command_without_importing_the_numerical_stack():
    from swarmvar.cli import _COMMANDS

    root = subprocess.run([sys.executable, "-c", HELP_PROBE, "--help"], capture_output=True,
                          text=True, timeout=120)
    assert "exit 0" in root.stdout and "heavy: []" in root.stdout, root.stdout + root.stderr
    for command in _COMMANDS:
        assert command in root.stdout
    var = subprocess.run([sys.executable, "-c", HELP_PROBE, "var", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert "exit 0" in var.stdout and "heavy: []" in var.stdout, var.stdout + var.stderr
    assert "GarchEVT" in var.stdout and "--dropna" in var.stdout


def test_an_unexpected_error_is_one_line_without_a_traceback(monkeypatch, capsys):
    import pytest

    import swarmvar.cli.var as var_module  # imported first: it binds check_data itself
    from swarmvar.cli import main

    def broken(source: str) -> str:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(var_module, "check_data", broken)
    monkeypatch.setattr(sys, "argv", ["swarmvar", "var", "--agents", "nig"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "RuntimeError: simulated bug" in err and "Traceback" not in err
