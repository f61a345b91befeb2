"""`var` names a config file's home by the file's key when its ledger is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app


def test_var_names_a_files_home_by_its_key_when_its_ledger_is_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "risk"
    home.mkdir()
    (home / "ledger.sqlite").write_bytes(b"not a database, not even close " * 4)
    toml = tmp_path / "swarmvar.toml"
    toml.write_text(f'home = "{home}"\n', encoding="utf-8")
    monkeypatch.setenv("SWARMVAR_CONFIG", str(toml))
    result = CliRunner().invoke(app, ["var", "--data", "sp500", "--agents", "nig"])
    out = result.output
    assert result.exit_code == 2, out
    assert f'{toml}: home = "{home}": ' in out and "is not an SQLite database" in out, out
    assert "--home" not in out, out
    assert (home / "ledger.sqlite").read_bytes() == b"not a database, not even close " * 4


def test_book_commands_read_the_bundled_stocks_by_any_case() -> None:
    from swarmvar.cli.book import _load

    upper = _load("SP500-Stocks", "return", False)
    assert list(upper.columns) == list(_load("sp500-stocks", "return", False).columns)
    assert len(upper.columns) == 20
