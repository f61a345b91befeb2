"""`swarmvar variants` prints user text as text: a `[/x]` is never read as rich markup.

The two hand-made BadParameter printers (create's agent name, canary run's flags) go
through cli._common.bad_parameter; the other refusals through usage_error; the
output console has markup off (descriptions and parameters are user text).
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from swarmvar.cli import app

runner = CliRunner()
MARKUP = "[/x]"


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["variants", *args])
    assert "MarkupError" not in repr(result.exception), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_an_agent_name_with_markup_is_a_usage_error_printed_as_is(tmp_path: Path) -> None:
    code, output = _invoke("create", MARKUP, "--set", "lam=0.9", "--home", str(tmp_path / "h"))
    assert code == 2 and f"error: AGENT_CLASS: no agent called {MARKUP!r}" in output, output


def test_a_canary_data_path_with_markup_is_a_usage_error_printed_as_is(tmp_path: Path) -> None:
    code, output = _invoke("canary", "run", "v1", "--data", f"{MARKUP}.csv", "--home",
                           str(tmp_path / "h"))
    assert code == 2 and f"error: --data: no such file: {MARKUP}.csv" in output, output
    assert not (tmp_path / "h").exists()


def test_other_refusals_and_listings_print_markup_as_is(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    code, output = _invoke("create", "nig", "--set", MARKUP, "--home", home)
    assert code == 2 and f"error: --set {MARKUP!r} is not NAME=VALUE" in output, output
    code, output = _invoke("create", "nig", "--set", "prior_shape=3", "--description", MARKUP,
                           "--home", home)
    assert code == 0, output
    code, output = _invoke("list", "--home", home)
    assert code == 0 and output.rstrip().endswith(MARKUP), output
    code, output = _invoke("promote", f"{MARKUP}", "--home", home)
    assert code == 2 and MARKUP in output, output
