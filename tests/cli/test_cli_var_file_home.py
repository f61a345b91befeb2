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


def test_var_positions_refuses_a_file_where_the_keys_go_before_the_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the book path fitted, then met a raw NotADirectoryError at the agents' keys."""
    import swarmvar.book_api as book_api

    home = tmp_path / "risk"
    home.mkdir()
    (home / "keys").write_text("not a folder\n", encoding="utf-8")

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the book was fitted: the refusal came after the work began")

    monkeypatch.setattr(book_api, "book_var", no_fit)
    result = CliRunner().invoke(app, ["var", "--positions", "AAPL=600000,MSFT=-400000",
                                      "--home", str(home)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert f"{home / 'keys'} is a file where swarmvar keeps a folder" in said, said
    assert "Traceback" not in said
