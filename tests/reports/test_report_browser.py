"""The report in a real browser: headless Debian Chromium through Playwright.

Renders the page at 1280 px, checks that nothing overflows horizontally and the
executive summary is on screen, prints it to A4, and keeps a screenshot and the
PDF in the test's temporary folder as artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarmvar.validation import BacktestResult
from swarmvar.validation.report import Provenance

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: A4 (210 mm) less the page's 12 mm margins, in CSS pixels (96 per inch).
A4_CONTENT_PX = int((210 - 24) / 25.4 * 96)


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed "
                    "(scripts/system-deps.sh installs it)")
def test_report_renders_at_1280_px_without_overflow_and_prints_to_a4(
    small_backtest: BacktestResult, tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    provenance = Provenance("sp500", "2016-03-01", "2018-12-31", "swarmvar backtest", 0,
                            "0.1.0", (1, 20), "cd" * 32, "ledger.sqlite")
    page_file = small_backtest.to_html(tmp_path / "report.html", provenance=provenance)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            width = page.evaluate("[document.documentElement.scrollWidth, "
                                  "document.documentElement.clientWidth]")
            assert width[0] <= width[1] == 1280, width  # no horizontal scrolling
            summary = page.locator("#summary table")
            assert summary.is_visible()
            box = summary.bounding_box()
            assert box is not None and box["y"] < 900 and box["x"] + box["width"] <= 1280
            assert page.locator("#summary tbody tr").count() == (
                len(small_backtest.rows) * len(small_backtest.alphas))
            assert page.locator("#charts svg").count() == (
                len(small_backtest.rows) * len(small_backtest.alphas))
            page.screenshot(path=str(tmp_path / "report-1280.png"), full_page=False)
            assert requests == [page_file.as_uri()]  # offline: nothing else was fetched

            page.emulate_media(media="print")
            page.set_viewport_size({"width": A4_CONTENT_PX, "height": 1000})
            printed = page.evaluate("[document.documentElement.scrollWidth, "
                                    "document.documentElement.clientWidth]")
            assert printed[0] <= printed[1], printed  # fits A4's width
            pdf = page.pdf(path=str(tmp_path / "report-a4.pdf"), format="A4")
            assert pdf[:5] == b"%PDF-"
        finally:
            browser.close()
    assert (tmp_path / "report-1280.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
