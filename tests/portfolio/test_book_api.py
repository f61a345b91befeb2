"""swarmvar.book_var and the CLI's --book/--positions: end to end on small real books."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import swarmvar
from swarmvar.books import load_stocks
from swarmvar.errors import InvalidBook, InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.types import Book

FAST = ("NormalInverseWishart", "FilteredHistorical", "CopulaGarchEVT")


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    return load_stocks().iloc[-400:, :4]


@pytest.fixture(scope="module")
def result(stocks: pd.DataFrame):
    book = Book.from_positions({"AAPL": 6e5, "AMD": -2e5, "BAC": 3e5})
    return swarmvar.book_var(stocks, book, kind="return", alphas=(0.99, 0.975), window=300,
                             trade={"BBY": 1e5}, seed=1)


def test_book_var_rows_frames_and_contributions(result) -> None:
    assert result.rows() == [*FAST, "consensus", "RiskMetrics"]
    assert set(result.assets) == {"AAPL", "AMD", "BAC", "BBY"}
    frame = result.to_frame()
    assert len(frame) == 5 * 2 and (frame["var"] > 0).all()
    assert (frame["var_lo"] <= frame["var_hi"]).all()
    for row in result.attributions:
        for att in result.attributions[row]:
            assert att.component_es.sum() == pytest.approx(att.es, rel=1e-9)
            assert att.component_var.sum() == pytest.approx(att.var, rel=1e-9)
    c = result.contributions("consensus", 0.99)
    assert c.loc["BBY", "position"] == 0 and c.loc["BBY", "component_es"] == 0
    assert c.loc["BBY", "marginal_es"] != 0  # not held, yet it has a marginal risk
    assert "top contributors" in result.summary()
    assert result.incremental["consensus"][0].var != 0


def test_consensus_contributions_are_the_consensus_weighted_ones(result) -> None:
    for c, att in zip(result.agreed, result.attributions["consensus"], strict=True):
        assert att.var == pytest.approx(c.var) and att.es == pytest.approx(c.es)
        assert att.component_es.sum() == pytest.approx(c.es, rel=1e-9)
        used = [a for a in c.used if a in result.attributions]
        w = np.array([c.weights[a] for a in used])
        w = w / w.sum()
        parts = [next(x for x in result.attributions[a] if x.alpha == c.alpha) for a in used]
        mixed = sum(wk * p.component_es for wk, p in zip(w, parts, strict=True))
        np.testing.assert_allclose(att.component_es, mixed * c.es / sum(
            wk * p.es for wk, p in zip(w, parts, strict=True)))


def test_same_seed_same_numbers(stocks: pd.DataFrame) -> None:
    book = Book.from_positions({"AAPL": 1e6})
    a = swarmvar.book_var(stocks, book, kind="return", agents=["niw"], window=200, seed=3,
                          consensus=False)
    b = swarmvar.book_var(stocks, book, kind="return", agents=["niw"], window=200, seed=3,
                          consensus=False)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_dollar_neutral_book_of_two_identical_assets_has_zero_risk(stocks) -> None:
    """Zero for RiskMetrics (and for any scenarios: test_attribution); the Bayesian agents
    keep their posterior doubt that two series move identically (per-asset filter parameters
    drawn independently; the NIW prior's scale in the unseen direction): small, not zero.
    Measured 6.0-6.9% of a leg's VaR (seeds 0-2, every agent); for the filter agents the
    scale is the difference of two independent draws of a leg's volatility, whose posterior
    coefficient of variation is 3.5% on these 300 days (sd of the difference: 4.9%)."""
    twin = stocks[["AAPL"]].assign(TWIN=stocks["AAPL"])
    res = swarmvar.book_var(twin, Book.from_positions({"AAPL": 1e6, "TWIN": -1e6}),
                            kind="return", window=300, consensus=False)
    leg = swarmvar.book_var(twin, Book.from_positions({"AAPL": 1e6}), kind="return",
                            window=300, consensus=False)
    m = res.measure("RiskMetrics", 0.99)
    assert abs(m.var) < 1e-6 and abs(m.es) < 1e-6
    for row in res.forecasts:
        assert res.measure(row, 0.99).var < 0.08 * leg.measure(row, 0.99).var, row


@pytest.mark.parametrize("positions, words", [
    ({"AAPL": 1e6, "NOPE": 1.0}, "not in the data"),
])
def test_bad_books_get_clear_errors(stocks, positions, words) -> None:
    with pytest.raises(InvalidBook, match=words):
        swarmvar.book_var(stocks, Book.from_positions(positions), kind="return")
    with pytest.raises(InvalidBook, match="finite"):
        Book.from_positions({"AAPL": float("nan")})
    gap = stocks.assign(EMPTY=np.nan)
    with pytest.raises(InvalidBook, match="no history"):
        swarmvar.book_var(gap, Book.from_positions({"AAPL": 1.0, "EMPTY": 1.0}), kind="return")
    with pytest.raises(InvalidParameter):
        swarmvar.book_var(stocks, Book.from_positions({"AAPL": 1.0}), kind="return",
                          horizon=0)
    with pytest.raises(InvalidBook, match="trade"):
        swarmvar.book_var(stocks, Book.from_positions({"AAPL": 1.0}), kind="return",
                          trade={"AAPL": float("inf")})


@pytest.mark.parametrize("trade, words", [({"AAPL": ""}, "trade"), ({"AAPL": "1"}, "trade"),
                                          ({"AAPL": True}, "trade"), ({"AAPL": 2e15}, "trade"),
                                          ({"XX": 1.0}, "XX")])
def test_bad_trades_and_huge_positions_get_clear_errors(stocks, trade, words) -> None:
    """Found by the fuzz test: an empty-string amount or an unknown asset raised a bare
    ValueError, and a 1e157 position overflowed the attribution's sums."""
    small = stocks.iloc[-150:, :3]
    with pytest.raises(InvalidBook, match=words):
        swarmvar.book_var(small, Book.from_positions({"AAPL": 1.0}), kind="return",
                          agents=["niw"], window=100, trade=trade, consensus=False)
    for huge in (6.35e157, -2e15, 10**20):
        with pytest.raises(InvalidBook, match="at most 1e\\+15"):
            Book.from_positions({"AAPL": huge})
    assert Book.from_positions({"AAPL": 1e15}).gross == 1e15


def test_ledger_records_the_beat_with_contributions(stocks, tmp_path) -> None:
    res = swarmvar.book_var(stocks, Book.from_positions({"AAPL": 5e5, "AMD": 5e5}),
                            kind="return", window=250, home=tmp_path, seed=2)
    assert res.ledger_entries is not None
    with Ledger.open(tmp_path) as ledger:
        assert ledger.verify_chain().ok
        first, last = res.ledger_entries
        entries = [ledger.entry(i) for i in range(first, last + 1)]
    kinds = [e.kind.value for e in entries]
    assert kinds.count("forecast") == 3 and kinds.count("consensus") == 1
    cons = next(e for e in entries if e.kind.value == "consensus")
    assert sum(cons.data["contributions"]["component_es"]) == pytest.approx(
        cons.data["es"], rel=1e-9)


def test_cli_var_with_positions_json(tmp_path, stocks) -> None:
    from swarmvar.cli import app

    path = tmp_path / "returns.csv"
    stocks.rename_axis("date").to_csv(path)
    runner = CliRunner()
    out = runner.invoke(app, ["var", "--data", str(path), "--kind", "return",
                              "--positions", "AAPL=600000,AMD=-400000", "--trade", "BAC=1e5",
                              "--last", "250", "--home", str(tmp_path / "h"), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert {r["model"] for r in doc["forecasts"]} >= {"consensus", "RiskMetrics"}
    assert doc["incremental"] and doc["contributions"]
    bad = runner.invoke(app, ["var", "--data", str(path), "--kind", "return", "--positions",
                              "AAPL=600000,ZZZ=1", "--home", str(tmp_path / "h")])
    assert bad.exit_code == 2 and "ZZZ" in bad.output
    bad = runner.invoke(app, ["var", "--positions", "AAPL=nan", "--home", str(tmp_path / "h")])
    assert bad.exit_code == 2


def test_cli_notional_is_exact_currency_with_es(tmp_path) -> None:
    from swarmvar.cli import app

    out = CliRunner().invoke(app, ["var", "--agents", "nig", "--notional", "1e7", "--last",
                                   "300", "--no-consensus", "--home", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout)["forecasts"][0]
    assert row["var_ccy"] == pytest.approx(1e7 * -np.expm1(-row["var"]))
    assert row["var_ccy"] < 1e7 * row["var"]
    assert row["es_ccy"] == pytest.approx(1e7 * -np.expm1(-row["es"]))


def test_cli_backtest_with_a_book(tmp_path, stocks) -> None:
    from swarmvar.cli import app

    path = tmp_path / "returns.csv"
    stocks.iloc[-130:].rename_axis("date").to_csv(path)
    book = tmp_path / "book.csv"
    book.write_text("asset,position\nAAPL,500000\nAMD,-200000\n")
    out = CliRunner().invoke(app, ["backtest", "--data", str(path), "--kind", "return",
                                   "--book", str(book), "--agents", "niw", "--no-baseline",
                                   "--no-consensus", "--last", "10", "--window", "120",
                                   "--alpha", "0.99", "--home", str(tmp_path / "h"),
                                   "--json", "--no-progress", "--workers", "1"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["gross"] == 700000 and doc["rows"][0]["model"] == "NormalInverseWishart"
    assert doc["rows"][0]["days"] == 10


def test_consensus_weights_from_a_track_record_on_the_book(stocks) -> None:
    book = Book.from_positions({"AAPL": 5e5, "AMD": 3e5, "BAC": -2e5})
    res = swarmvar.book_var(stocks, book, kind="return", window=250, track_days=12, seed=4)
    assert "over its last 12 forecasts of this book, out of sample" in res.note
    for c in res.agreed:
        assert "equal" not in c.method and abs(sum(c.weights.values()) - 1) < 1e-9
    with pytest.raises(InvalidBook, match="track record"):
        swarmvar.book_var(stocks, book, kind="return", window=250, track_days=350)
