"""Refusals the CLI makes before any work: `arbiter replay --drift` checks its agent and
start before the backtest runs (nothing computed, cached or recorded); the drift's own
checks (``arbiter.Drift``) read in flag words; `is_dataset` needs no data layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize(("args", "says", "never"), [
    # HarArch is an agent, not one of the default swarm's: no "did you mean" for it
    (["--drift", "har-arch", "--drift-start", "10", "--drift-scale", "0.5"],
     "HarArch is not in the replayed swarm", "did you mean"),
    (["--drift", "nig", "--drift-start", "60", "--drift-frozen"],
     "--drift-start 60 is past the history's last day 49", None),
    (["--drift", "nig", "--drift-start", "5"],
     "give exactly one of --drift-scale S or --drift-frozen", "frozen=True"),
    (["--drift", "nig", "--drift-start", "5", "--drift-scale", "0.5", "--drift-frozen"],
     "give exactly one of --drift-scale S or --drift-frozen", "scale="),
    (["--drift", "nig", "--drift-start", "0", "--drift-scale", "0.5"],
     "--drift-start must be a whole number >= 1", None),
    (["--drift", "nig", "--drift-start", "5", "--drift-scale", "nan"],
     "--drift-scale must be a positive finite number", None),
])
def test_a_bad_drift_is_refused_before_the_backtest(args: list[str], says: str,
                                                    never: str | None, tmp_path: Path) -> None:
    """No cache at all (the backtest would take seconds): refused at once, exit 2,
    nothing computed, cached or recorded."""
    home = tmp_path / "home"
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "50", "--window", "200", "--home", str(home), *args])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert says in text, text
    assert never is None or never not in text, text
    assert "backtest of the default swarm" not in text
    assert not (home / "cache").exists() and not (home / "ledger.sqlite").exists()


def test_is_dataset_does_not_load_the_data_layer() -> None:
    code = ("import sys\nfrom swarmvar.cli._common import check_data, is_dataset\n"
            "assert is_dataset('SP500') and not is_dataset('ftse')\n"
            "assert check_data('nasdaq') == 'nasdaq'\n"
            "assert 'swarmvar.data' not in sys.modules and 'pandas' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_bundled_name_shadowed_by_a_file_is_the_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli._common import check_data, is_dataset

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sp500").write_text("date,x\n", encoding="utf-8")
    assert not is_dataset("sp500") and check_data("sp500") == "sp500"
