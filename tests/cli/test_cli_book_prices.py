"""Returns computed from prices are not judged for looking like prices, on every CLI path.

A steep series given as prices (a hyperinflation-like asset whose log returns are ~9% a
day, one-signed and smooth) used to pass the data layer and then be refused by every
agent (``var --kind price``) or judged twice (``--positions ... --kind price``). Typed as
returns, the same values are still refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import invoke  # noqa: E402


def _steep(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 400
    days = pd.bdate_range("2018-01-01", periods=n)
    # ~9% a day: the last 300 returns (--last 300) still move like a price (median 7%,
    # above PRICE_FLOOR), so a slice that lost the mark would be refused
    wander = 0.09 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    prices = pd.DataFrame({"X": np.exp(np.cumsum(wander)),
                           "SPX": 3000 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))},
                          index=days)
    table = prices.rename_axis("date").reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    path = tmp_path / "steep.csv"
    table.to_csv(path, index=False)
    returns = tmp_path / "steep_returns.csv"
    logs = np.log(prices).diff().dropna().rename_axis("date").reset_index()
    logs["date"] = logs["date"].dt.strftime("%Y-%m-%d")
    logs.to_csv(returns, index=False)
    return path, returns


def test_var_kind_price_of_a_steep_series_is_forecast(tmp_path: Path) -> None:
    prices, returns = _steep(tmp_path)
    home = tmp_path / "home"
    code, out = invoke("var", "--data", str(prices), "--column", "X", "--kind", "price",
                       "--agents", "nig,bootstrap", "--no-consensus", "--home", str(home),
                       "--quiet")
    assert code == 0, out
    assert "like prices" not in out
    # the same values typed as returns are still taken for a price
    code, out = invoke("var", "--data", str(returns), "--column", "X", "--kind", "return",
                       "--agents", "nig", "--home", str(home), "--quiet")
    assert code == 2 and "looks like prices" in out, out


def test_positions_kind_price_with_a_steep_asset(tmp_path: Path) -> None:
    prices, returns = _steep(tmp_path)
    home = tmp_path / "home"
    code, out = invoke("var", "--data", str(prices), "--positions", "X=100,SPX=100", "--kind",
                       "price", "--agents", "NormalInverseWishart", "--no-consensus",
                       "--home", str(home), "--json")
    assert code == 0, out
    assert "like prices" not in out
    code, out = invoke("var", "--data", str(returns), "--positions", "X=100,SPX=100",
                       "--kind", "return", "--agents", "NormalInverseWishart",
                       "--no-consensus", "--home", str(home), "--quiet")
    assert code == 2, out
    assert out.count("look like prices") == 1, out  # said once, not twice


def test_var_book_json_names_the_ledger(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from swarmvar.cli import build_app

    prices, _ = _steep(tmp_path)
    home = tmp_path / "home"
    result = CliRunner().invoke(build_app(), [
        "var", "--data", str(prices), "--positions", "X=100,SPX=100", "--kind", "price",
        "--agents", "NormalInverseWishart", "--no-consensus", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ledger = doc["ledger"]
    assert Path(ledger["path"]) == home / "ledger.sqlite" and Path(ledger["path"]).exists()
    assert 0 <= ledger["first_entry"] <= ledger["last_entry"]
    assert len(ledger["merkle_root"]) == 64


def test_book_settings_refuses_wrong_flags_without_assert() -> None:
    """The invariant holds under ``python -O`` too (was an ``assert``)."""

    from swarmvar.cli.book import book_settings
    from swarmvar.config import BOOK_APPLIES

    keys = sorted(BOOK_APPLIES["var --book"])
    with pytest.raises(TypeError, match="reads exactly"):  # a programmer's mistake
        book_settings("var --book", dict.fromkeys([*keys, "no-such-key"]))
    with pytest.raises(TypeError, match="reads exactly"):
        book_settings("var --book", dict.fromkeys(keys[1:]))


def test_last_n_of_a_steep_price_series_keeps_its_mark(tmp_path: Path) -> None:
    """``--last N`` slices the returns worked out from prices: the slice keeps their mark
    (it was refused as a stale mark before, ``var`` and ``backtest`` alike)."""
    prices, _ = _steep(tmp_path)
    home = tmp_path / "home"
    code, out = invoke("var", "--data", str(prices), "--column", "X", "--kind", "price",
                       "--last", "300", "--agents", "nig,bootstrap", "--no-consensus",
                       "--home", str(home), "--quiet")
    assert code == 0, out
    code, out = invoke("backtest", "--data", str(prices), "--column", "X", "--kind", "price",
                       "--last", "300", "--window", "250", "--agents", "nig", "--workers", "1",
                       "--no-record", "--home", str(home), "--quiet")
    assert code == 0, out
