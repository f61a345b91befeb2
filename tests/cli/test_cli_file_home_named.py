"""A home (or other setting) taken from ``swarmvar.toml`` is said as the file's: ``serve``
names the file and the keys it took from it in one line at its start (it read no file
before), and ``backtest``'s damaged-ledger refusal names the file's key, not ``--home``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import stub_serve
from _cli_text import with_config as _cli  # noqa: E402
from _cli_text import write_toml as _toml


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """uvicorn.run and the listen check stubbed: nothing listens; what was handed over."""
    return stub_serve(monkeypatch)


def test_serve_names_the_file_and_the_keys_it_took(tmp_path: Path,
                                                   served: dict[str, object]) -> None:
    home = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{home}"\nwindow = 300\nrefit_every = 7\n')
    code, out = _cli(["serve", "--refit-every", "5"], toml)
    assert code == 0 and served, out
    assert f'settings: {toml} gives home = "{home}", window = 300 (a flag overrides each)' \
        in out, out
    assert "refit_every" not in out, out  # the flag's, not the file's
    from swarmvar.service.config import ServiceConfig

    assert ServiceConfig.from_env().home == home  # the file's home is the one served


def test_serve_says_nothing_of_a_file_it_took_nothing_from(tmp_path: Path,
                                                          served: dict[str, object],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    (tmp_path / "cfg").mkdir()
    toml = _toml(tmp_path / "cfg", 'home = "/nowhere/risk"\nwindow = 300\n')
    code, out = _cli(["serve", "--home", str(tmp_path / "h"), "--window", "400"], toml)
    assert code == 0 and served and "settings:" not in out, out  # every key a flag's
    monkeypatch.chdir(tmp_path / "h")  # no swarmvar.toml here (the file is in cfg/)
    served.clear()
    code, out = _cli(["serve", "--home", str(tmp_path / "h2")])
    assert code == 0 and served and "settings:" not in out, out


def test_backtest_names_a_files_home_with_a_damaged_ledger_by_its_key(tmp_path: Path) -> None:
    home = tmp_path / "risk"
    home.mkdir()
    (home / "ledger.sqlite").write_bytes(b"not a database, not even close " * 4)
    toml = _toml(tmp_path, f'home = "{home}"\n')
    code, out = _cli(["backtest", "--data", "sp500", "--quiet"], toml)
    assert code == 2 and f'{toml}: home = "{home}": ' in out, out
    assert "is not an SQLite database" in out and "--home" not in out, out
