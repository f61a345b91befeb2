"""The dashboard's script on the cases a live service rarely shows in a short test, against a
fake API (Playwright routes: no server, no swarm): a beat with no consensus keeps its slot,
its loss and the chosen level; a fresh portfolio (one beat, two) draws its forecast; the chart
follows its box when the page, not the window, resizes; a burst of beats sends a few detail
requests, not three per beat. Debian's headless Chromium; no script error may occur."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarmvar.service.dashboard import asset
from swarmvar.service.dashboard import page as page_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ORIGIN = "http://dashboard.test"
ALPHAS = [0.975, 0.99]
VAR_RGB = (0x2F, 0x6F, 0xDB)  # the VaR line's colour in dashboard.js


def beat(seq: int, consensus: bool = True, realized: float | None = -0.01,
         breaches: list[bool] | None = None) -> dict[str, Any]:
    """A beat as ``/history`` and the event stream give it; with no consensus (a
    NotEnoughAgents beat) it has no levels."""
    var = [0.02 + 0.001 * (seq % 7), 0.03 + 0.001 * (seq % 5)] if consensus else []
    return {"seq": seq, "date": (date(2024, 1, 1) + timedelta(days=seq)).isoformat(),
            "realized": realized, "alphas": ALPHAS if consensus else [], "var": var,
            "es": [v * 1.2 for v in var], "var_interval": [[v * 0.9, v * 1.1] for v in var],
            "es_interval": [[v * 1.1, v * 1.3] for v in var],
            "breaches": breaches if breaches is not None else [False, False] if seq else []}


class FakeApi:
    """The API the page reads, from lists: ``/history`` gives ``points``; each connection to
    the event stream sends the next list of ``events`` (then ends; the page reconnects)."""

    def __init__(self, points: list[dict[str, Any]]) -> None:
        self.points = points
        self.events: list[list[dict[str, Any]]] = []
        self.urls: list[str] = []

    def handle(self, route: Any) -> None:
        url = route.request.url[len(ORIGIN):]
        path = url.split("?")[0]
        self.urls.append(path)

        def answer(body: object) -> None:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

        if path == "/dashboard":
            route.fulfill(status=200, content_type="text/html", body=page_html())
        elif path.startswith("/dashboard/assets/"):
            name = path.rsplit("/", 1)[1]
            route.fulfill(status=200, body=asset(name), content_type="text/css"
                          if name.endswith(".css") else "text/javascript")
        elif path == "/v1/portfolios":
            answer([{"name": "book"}])
        elif path.endswith("/history"):
            answer(self.points)
        elif path.endswith("/var"):
            last = self.points[-1]
            answer({"portfolio": "book", "seq": last["seq"], "as_of": last["date"], "horizon": 1,
                    "levels": [{"alpha": a, "var": last["var"][k], "es": last["es"][k],
                                "var_interval": last["var_interval"][k],
                                "es_interval": last["es_interval"][k], "method": "trimmed mean",
                                "weights": {"NormalInverseGamma": 1.0}, "available": 2,
                                "total": 2, "degraded": False}
                               for k, a in enumerate(last["alphas"])]})
        elif path.endswith("/decisions"):
            answer([{"seq": 1, "action": "noop", "agents": [], "threat": 0.0, "reason": "",
                     "signals": {}, "weights": {}}])
        elif path == "/v1/ledger/head":
            answer({"size": 1, "root": "ab" * 32, "timestamp": "2024-01-01T00:00:00Z"})
        elif path.endswith("/events"):
            sent = self.events.pop(0) if self.events else []
            self.points.extend(sent)
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                          body="retry: 200\n\n" + "".join(
                              f"event: beat\nid: {p['seq']}\ndata: {json.dumps(p)}\n\n"
                              for p in sent))
        else:
            route.fulfill(status=404, body="")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """Opens the dashboard on a :class:`FakeApi`; afterwards, no script error may have
    occurred (console errors, uncaught exceptions) and no request may have failed."""
    pages: list[Any] = []
    failed: list[str] = []

    def opener(api: FakeApi, width: int = 1280) -> Any:
        page = browser.new_page(viewport={"width": width, "height": 900})
        pages.append(page)
        page.on("console", lambda m: m.type == "error" and failed.append(m.text))
        page.on("pageerror", lambda e: failed.append(f"uncaught: {e}"))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.route(ORIGIN + "/**", api.handle)
        page.goto(ORIGIN + "/dashboard#key=sv_test&portfolio=book")
        page.wait_for_selector("body[data-live='1']", timeout=10_000)
        return page

    yield opener
    for page in pages:
        page.close()
    assert not failed, failed


def data(page: Any, name: str) -> Any:
    return json.loads(page.eval_on_selector("#chart", f"c => c.dataset.{name}"))


def note(page: Any) -> str | None:
    """The chart's note on how many beats it draws ("" when all)."""
    return page.eval_on_selector("#chart", "c => c.dataset.note")  # type: ignore[no-any-return]


def hover(page: Any, slot: int) -> str:
    """The readout over the chart's ``slot`` (beat ``slot`` of those drawn; the last slot is
    the next day)."""
    left, right, count = data(page, "slots")
    box = page.locator("#chart").bounding_box()
    scale = box["width"] / page.eval_on_selector("#chart", "c => c.parentElement.clientWidth")
    page.mouse.move(box["x"] + scale * (left + (right - left) * (slot + 0.5) / count),
                    box["y"] + box["height"] / 2)
    page.wait_for_selector("#tip:not([hidden])", timeout=5_000)
    return str(page.inner_text("#tip"))


def var_columns(page: Any) -> list[int]:
    """The canvas columns (in CSS pixels) holding pixels of the VaR line's colour."""
    return list(page.evaluate("""([r, g, b]) => {
        const c = document.getElementById('chart'), dpr = window.devicePixelRatio || 1;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const cols = new Set();
        for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 40
              && d[i + 3] > 200) cols.add(Math.floor((i / 4) % c.width / dpr));
        }
        return [...cols].sort((a, b) => a - b); }""", list(VAR_RGB)))


def test_a_beat_without_consensus_keeps_its_slot_and_loss(open_page: Any) -> None:
    points = [beat(i) for i in range(10)] + [beat(10, consensus=False, realized=-0.08)]
    points += [beat(11, breaches=[])] + [beat(i) for i in range(12, 15)]
    page = open_page(FakeApi(points))
    page.wait_for_selector("#var-0[data-seq='14']", timeout=5_000)
    yticks = data(page, "yticks")
    assert yticks[-1] >= 0.08 > yticks[-2], yticks  # beat 10's 8% loss is on the chart
    xticks = data(page, "xticks")
    assert xticks and all(d in [p["date"] for p in points] for d in xticks), xticks
    assert len(data(page, "slots")) == 3 and data(page, "slots")[2] == len(points) + 1
    tip = hover(page, 10)
    assert "beat 10" in tip and "loss 8.00%" in tip and "no consensus" in tip, tip
    # beat 11: no forecast was in force (beat 10 had none), so none is named
    tip = hover(page, 11)
    assert "beat 11" in tip and "forecast of beat" not in tip and "in force" in tip, tip
    tip = hover(page, 12)
    assert "beat 12" in tip and "forecast of beat 11" in tip, tip
    assert note(page) == ""  # every beat is drawn


def test_the_chosen_level_stays_over_a_beat_without_consensus(open_page: Any) -> None:
    api = FakeApi([beat(i) for i in range(5)])
    page = open_page(api)
    page.click("#level-pick button[data-k='1']")
    page.wait_for_selector("#chart[data-level='1']", timeout=5_000)
    page.wait_for_function("document.getElementById('weights-level').textContent === "
                           "'(VaR 99%)'", timeout=5_000)
    api.events.append([beat(5, consensus=False), beat(6, breaches=[])])
    page.wait_for_selector("#var-0[data-seq='6']", timeout=5_000)
    page.wait_for_function("document.getElementById('chart').dataset.level === '1'",
                           timeout=5_000)
    assert page.get_attribute("#level-pick button[data-k='1']", "aria-checked") == "true"
    assert "on" in (page.get_attribute(".card[data-k='1']", "class") or "")
    page.wait_for_function("document.getElementById('weights-level').textContent === "
                           "'(VaR 99%)'", timeout=5_000)
    # the level cards are reached and picked with the keyboard too
    page.focus(".card[data-k='0']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart[data-level='0']", timeout=5_000)
    page.wait_for_function("document.getElementById('weights-level').textContent === "
                           "'(VaR 97.5%)'", timeout=5_000)


@pytest.mark.parametrize("beats", [1, 2])
def test_a_fresh_portfolio_draws_its_forecast(open_page: Any, beats: int) -> None:
    page = open_page(FakeApi([beat(i, realized=None if i == 0 else -0.01)
                              for i in range(beats)]))
    page.wait_for_selector(f"#var-0[data-seq='{beats - 1}']", timeout=5_000)
    page.wait_for_function("JSON.parse(document.getElementById('chart').dataset.slots "
                           "|| '[]').length > 0", timeout=5_000)
    cols = var_columns(page)
    assert cols, "no VaR drawn"
    left, right = data(page, "slots")[:2]
    # each beat's slot and the next day's; beat 0's forecast is in force from the second slot
    # on: the VaR line starts there and steps over every slot after it
    slot = (right - left) / (beats + 1)
    assert abs(cols[0] - (left + slot)) <= 2, (cols[0], left, slot)
    assert len(cols) >= beats * slot - 4, (len(cols), beats, slot)


def test_the_chart_follows_its_box_without_a_window_resize(open_page: Any) -> None:
    page = open_page(FakeApi([beat(i) for i in range(30)]))
    page.wait_for_selector("#var-0[data-seq='29']", timeout=5_000)
    before = page.eval_on_selector("#chart", "c => c.width")
    page.evaluate("document.querySelector('main').style.maxWidth = '700px'")
    page.wait_for_function("""() => { const c = document.getElementById('chart');
        return c.width === Math.round(c.parentElement.clientWidth *
                                      (window.devicePixelRatio || 1)); }""", timeout=5_000)
    assert page.eval_on_selector("#chart", "c => c.width") < before
    assert "beat 20" in hover(page, 20)


def test_a_burst_of_beats_sends_few_detail_requests(open_page: Any) -> None:
    api = FakeApi([beat(i) for i in range(150)])
    page = open_page(api)
    page.wait_for_selector("#var-0[data-seq='149']", timeout=5_000)
    page.wait_for_function("document.getElementById('head-size')", timeout=5_000)
    before = api.urls.count("/v1/portfolios/book/decisions")
    hover(page, 100)  # the readout stays up while the pointer is over the chart
    burst = [beat(i, consensus=i % 50 != 7) for i in range(150, 450)]
    api.events.append(burst)
    page.wait_for_selector("#var-0[data-seq='449']", timeout=10_000)
    page.wait_for_function("document.getElementById('chart').dataset.note !== ''",
                           timeout=5_000)
    # the pointer stays where it was: now over slot 100.5 / 151 of 401 (beat 50 is the first)
    assert page.is_visible("#tip") and "(beat 316)" in page.inner_text("#tip")
    page.wait_for_timeout(500)  # the refresh that the burst left pending, if any
    sent = api.urls.count("/v1/portfolios/book/decisions") - before
    print(f"dashboard: a burst of {len(burst)} beats sent {sent} decisions requests")
    # one refresh in flight at a time: the first beat's, then one for all the others
    assert 1 <= sent <= 3, sent
    assert note(page) == "latest 400 of 450 beats"
