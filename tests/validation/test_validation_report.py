"""Tidy frames, the figure and the self-contained HTML report of a backtest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from swarmvar.errors import InvalidParameter
from swarmvar.validation import BacktestResult, backtest


@pytest.fixture(scope="module")
def result(known_mean_normal: Any) -> BacktestResult:
    rng = np.random.default_rng(0)
    r = pd.Series(0.01 * rng.standard_t(4, 420) * np.sqrt(0.5),
                  index=pd.bdate_range("2020-01-01", periods=420))
    return backtest(r, {"knm": known_mean_normal(window=100)}, window=150, refit_every=30,
                    alphas=(0.99, 0.975), progress=False, n_sim=100)


def test_to_frame_is_tidy(result: BacktestResult) -> None:
    frame = result.to_frame()
    assert len(frame) == 2 * 2 * 270  # rows x alphas x days
    assert {"date", "model", "alpha", "var", "es", "var_lo", "var_hi", "loss", "hit"} <= set(
        frame.columns)
    one = frame[(frame.model == "knm") & (frame.alpha == 0.99)]
    np.testing.assert_array_equal(one["var"], result.series["knm"][0.99].var)
    assert (one["hit"] == (one["loss"] > one["var"])).all()
    assert (frame["es"] >= frame["var"]).all()
    assert (frame["var_lo"] <= frame["var_hi"]).all()
    assert one["date"].iloc[0] == pd.Timestamp(result.dates[0])


def test_test_table_and_summary(result: BacktestResult) -> None:
    tests = result.test_table()
    assert len(tests) == 2 * 2 * 5
    assert set(tests["test"]) == {"kupiec", "christoffersen", "conditional_coverage",
                                  "acerbi_szekely_z2", "mcneil_frey"}
    for _, line in tests.iterrows():
        if not np.isnan(line["pvalue"]):
            assert line["passed"] == (line["pvalue"] > 0.05)
    summary = result.summary()
    assert list(summary["model"]) == ["knm", "knm", result.baseline, result.baseline]
    s = result.series["knm"][0.99]
    assert summary.loc[0, "hits"] == s.hits.sum()
    assert summary.loc[0, "zone_last_250d"] in ("green", "yellow", "red")
    assert np.isfinite(summary.loc[0, "dm_pvalue"])


def test_plot_draws_one_panel_per_row_and_level(result: BacktestResult) -> None:
    fig = result.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 2  # rows x levels
    ax = fig.axes[0]
    assert len(ax.lines) == 2  # realized losses and the row's VaR
    np.testing.assert_allclose(ax.lines[1].get_ydata(), result.series["knm"][0.99].var)
    hits = int(result.series["knm"][0.99].hits.sum())
    assert len(ax.collections[1].get_offsets()) == hits  # after the credible band
    assert len(result.plot(0.975).axes) == 2
    assert len(result.plot(level=0.975, models=["knm"]).axes) == 1
    with pytest.raises(InvalidParameter):
        result.plot(0.9)


def test_html_report_is_one_offline_file(result: BacktestResult, tmp_path: Path) -> None:
    path = result.to_html(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg ") == 2 * 2  # one chart per row and level, inline
    assert not re.search(r"(src|href)=\"(?!#|data:)", text)  # nothing fetched from elsewhere
    assert "http" not in text and "<script" not in text
    assert "knm" in text and "Kupiec" in text and result.baseline in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left over


def test_html_report_into_a_missing_folder_fails_cleanly(
    result: BacktestResult, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameter):
        result.to_html(tmp_path / "missing" / "report.html")
    assert list(tmp_path.iterdir()) == []
