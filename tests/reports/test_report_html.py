"""The HTML report: structure, numbers against the result, permissions, and the figure."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from swarmvar.errors import InvalidParameter
from swarmvar.validation import BacktestResult, Test, traffic_light
from swarmvar.validation.coverage import Zone, rolling_zones
from swarmvar.validation.report import Provenance, Section, render_html

PROVENANCE = Provenance("sp500", "2016-03-01", "2018-12-31", "swarmvar backtest --data sp500",
                        7, "0.1.0", (3, 42), "ab" * 32, "/tmp/x/ledger.sqlite")


class _Sections(HTMLParser):
    """Section ids, and the text of every table row under each."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.rows: dict[str, list[list[str]]] = {}
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("id")
            self.rows[self.section or ""] = []
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows[self.section or ""].append(self.row)
            self.row = None
        elif tag == "tbody":
            self.in_body = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _parse(text: str) -> _Sections:
    parser = _Sections()
    parser.feed(text)
    return parser


def test_sections_and_one_summary_row_per_model_and_level(small_backtest: BacktestResult
                                                         ) -> None:
    text = render_html(small_backtest, provenance=PROVENANCE,
                       sections=[Section("Emergence", "<p>seam</p>")])
    parsed = _parse(text)
    assert list(parsed.rows) == ["summary", "traffic-light", "charts", "weights", "emergence",
                                 "breaches", "timings", "provenance"]
    r = small_backtest
    summary = parsed.rows["summary"]
    assert [(row[0], row[1]) for row in summary] == [
        (m, f"{a:.1%}") for m in r.rows for a in r.alphas]
    for line in summary:
        model, alpha = line[0], next(a for a in r.alphas if f"{a:.1%}" == line[1])
        s = r.series[model][alpha]
        assert line[2] == f"{int(s.hits.sum())} / {s.hits.size * (1 - alpha):.1f}"
        kupiec = r.evaluation[model][alpha].tests[Test.KUPIEC]
        word = "pass" if kupiec.pvalue > 0.05 else "FAIL"
        assert line[3] == f"{word} {kupiec.pvalue:.3f}"
    # one chart per model and level, each an inline SVG; nothing fetched, no script
    assert text.count('<div class="card"><h3>') == len(r.rows) * len(r.alphas) + len(r.alphas)
    assert "<script" not in text and not re.search(r"(src|href)=\"(?!#|data:)", text)
    assert "http://" not in text and "https://" not in text
    assert "00:00:00" not in text
    assert "ab" * 32 in text and "entries 3&ndash;42" in text and "seed" in text


def test_breach_table_lists_every_breached_day_with_each_models_var(
    small_backtest: BacktestResult,
) -> None:
    r = small_backtest
    frame = r.breaches()
    for alpha in r.alphas:
        any_hit = np.column_stack([r.series[m][alpha].hits for m in r.rows]).any(axis=1)
        mine = frame[frame.alpha == alpha]
        assert len(mine) == int(any_hit.sum())
        for line in mine.itertuples(index=False):
            t = r.dates.get_loc(line.date)
            assert line.loss == pytest.approx(r.losses[t])
            breached = [m for m in r.rows if r.series[m][alpha].hits[t]]
            assert line.breached == ", ".join(breached)
        for _, line in mine.iterrows():
            t = r.dates.get_loc(line["date"])
            for m in r.rows:
                assert line[f"{m} VaR"] == r.series[m][alpha].var[t]
                assert line[f"{m} ES"] == r.series[m][alpha].es[t]
    rows = _parse(render_html(r)).rows["breaches"]
    assert len(rows) == len(frame)
    assert rows[0][0] == str(frame.iloc[0]["date"].date())
    first = frame.iloc[0]
    assert rows[0][3] == f"{len(first['breached'].split(', '))} / {len(r.rows)}"


def test_rolling_zones_agree_with_the_traffic_light_of_each_window(
    small_backtest: BacktestResult,
) -> None:
    hits = small_backtest.series["nig"][0.99].hits
    zones = rolling_zones(hits, 0.99)
    assert zones.size == hits.size - 250 + 1
    code = {Zone.GREEN: 0, Zone.YELLOW: 1, Zone.RED: 2}
    for k in range(0, zones.size, 17):
        assert zones[k] == code[traffic_light(hits[k:k + 250], 0.99).zone]
    shares = small_backtest.traffic_light_shares()
    one = shares[(shares.model == "nig") & (shares.alpha == 0.99)].iloc[0]
    assert one.windows == zones.size and one.green == pytest.approx(np.mean(zones == 0))
    assert one.green + one.yellow + one.red == pytest.approx(1.0)
    assert one["last"] == small_backtest.evaluation["nig"][0.99].traffic_light.zone.value
    with pytest.raises(InvalidParameter):
        rolling_zones(hits[:100], 0.99)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_report_is_written_with_the_users_umask(small_backtest: BacktestResult, tmp_path: Path,
                                                umask: int) -> None:
    old = os.umask(umask)
    try:
        path = small_backtest.to_html(tmp_path / "r.html", provenance=PROVENANCE)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary left over
    with pytest.raises(InvalidParameter):
        small_backtest.to_html(tmp_path / "missing" / "r.html")
    with pytest.raises(InvalidParameter):
        small_backtest.to_html(tmp_path)


def test_plot_has_a_panel_per_model_and_level_with_bands_and_breaches(
    small_backtest: BacktestResult,
) -> None:
    r = small_backtest
    fig = r.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == len(r.rows) * len(r.alphas)
    one = r.plot(level=0.975, models=["nig", "consensus"])
    assert len(one.axes) == 2
    ax = one.axes[0]
    s = r.series["nig"][0.975]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), s.var)  # VaR over the loss line
    assert len(ax.collections) == 2  # the credible band and the breaches
    assert len(ax.collections[1].get_offsets()) == int(s.hits.sum())
    # greys only: it reads the same printed in grey
    drawn = [to_rgb(line.get_color()) for line in ax.lines]
    drawn += [tuple(c.get_facecolor()[0][:3]) for c in ax.collections]
    assert all(max(c) - min(c) < 1e-9 for c in drawn), drawn
    with pytest.raises(InvalidParameter):
        r.plot(level=0.9)
    with pytest.raises(InvalidParameter):
        r.plot(models=["nope"])
