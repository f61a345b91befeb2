"""The dashboard's script on the cases a live service rarely shows in a short test, against a
fake API (Playwright routes: no server, no swarm): a beat with no consensus keeps its slot,
its loss and the chosen level; a fresh portfolio (one beat, two) draws its forecast; the chart
follows its box when the page, not the window, resizes, and the screen's pixel density; a
burst of beats sends a few detail requests, not three per beat, and its last refresh is not
lost; slot 0 of a full chart is under the forecast of the beat before it. The details panel
outlives a request that never answers (a level pick aborts it, a time limit gives it up) and
drops a reply for the previous portfolio; another portfolio shows nothing of the previous one
and keeps the chosen level by its alpha; overlapping connections leave one event stream; a
card keeps the keyboard focus over a beat; the readout says why no forecast is in force.
Debian's headless Chromium; no script error may occur."""

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
         breaches: list[bool] | None = None,
         alphas: list[float] | None = None) -> dict[str, Any]:
    """A beat as ``/history`` and the event stream give it; with no consensus (a
    NotEnoughAgents beat) it has no levels. The VaR grows with the level."""
    alphas = ALPHAS if alphas is None else alphas
    var = [0.02 + 0.001 * (seq % 7) + (0.01 if a > min(alphas) else 0.0) for a in alphas]
    var = var if consensus else []
    return {"seq": seq, "date": (date(2024, 1, 1) + timedelta(days=seq)).isoformat(),
            "realized": realized, "alphas": alphas if consensus else [], "var": var,
            "es": [v * 1.2 for v in var], "var_interval": [[v * 0.9, v * 1.1] for v in var],
            "es_interval": [[v * 1.1, v * 1.3] for v in var],
            "breaches": breaches if breaches is not None else [False, False] if seq else []}


class FakeApi:
    """The API the page reads, from lists: ``/history`` gives ``points``; each connection to
    the event stream sends the next list of ``events`` (then ends; the page reconnects). The
    ledger's size is the number of beats; the consensus weight is all on an agent named after
    ``name``. A path in ``hold`` is not answered: its next request is kept in ``held`` (and
    the path taken out of ``hold``) for the test to answer with :meth:`release`."""

    def __init__(self, points: list[dict[str, Any]], name: str = "book") -> None:
        self.points = points
        self.name = name
        self.events: list[list[dict[str, Any]]] = []
        self.urls: list[str] = []
        self.hold: set[str] = set()
        self.held: list[Any] = []

    def release(self) -> None:
        """Answers the requests held (those the page aborted meanwhile are ignored)."""
        while self.held:
            route = self.held.pop(0)
            try:
                self.answer(route)
            except Exception:  # noqa: BLE001 - the page gave the request up: nothing to answer
                pass

    def handle(self, route: Any) -> None:
        path = route.request.url[len(ORIGIN):].split("?")[0]
        self.urls.append(path)
        if path in self.hold:
            self.hold.discard(path)
            self.held.append(route)
            return
        self.answer(route)

    def answer(self, route: Any) -> None:
        path = route.request.url[len(ORIGIN):].split("?")[0]

        def answer(body: object) -> None:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

        if path == "/dashboard":
            route.fulfill(status=200, content_type="text/html", body=page_html())
        elif path.startswith("/dashboard/assets/"):
            name = path.rsplit("/", 1)[1]
            route.fulfill(status=200, body=asset(name), content_type="text/css"
                          if name.endswith(".css") else "text/javascript")
        elif path == "/v1/portfolios":
            answer([{"name": self.name}])
        elif path.endswith("/history"):
            answer(self.points)
        elif path.endswith("/var"):
            last = self.points[-1]
            answer({"portfolio": self.name, "seq": last["seq"], "as_of": last["date"], "horizon": 1,
                    "levels": [{"alpha": a, "var": last["var"][k], "es": last["es"][k],
                                "var_interval": last["var_interval"][k],
                                "es_interval": last["es_interval"][k], "method": "trimmed mean",
                                "weights": {f"{self.name}Agent": 1.0}, "available": 2,
                                "total": 2, "degraded": False}
                               for k, a in enumerate(last["alphas"])]})
        elif path.endswith("/decisions"):
            answer([{"seq": 1, "action": "noop", "agents": [], "threat": 0.0, "reason": "",
                     "signals": {}, "weights": {}}])
        elif path == "/v1/ledger/head":
            answer({"size": len(self.points), "root": "ab" * 32,
                    "timestamp": "2024-01-01T00:00:00Z"})
        elif path.endswith("/events"):
            sent = self.events.pop(0) if self.events else []
            self.points.extend(sent)
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                          body="retry: 200\n\n" + "".join(
                              f"event: beat\nid: {p['seq']}\ndata: {json.dumps(p)}\n\n"
                              for p in sent))
        else:
            route.fulfill(status=404, body="")


class Books:
    """Several portfolios, each a :class:`FakeApi` (``books[name]``), behind one API."""

    def __init__(self, books: dict[str, list[dict[str, Any]]]) -> None:
        self.books = {name: FakeApi(points, name) for name, points in books.items()}

    def handle(self, route: Any) -> None:
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path == "/v1/portfolios":
            route.fulfill(status=200, content_type="application/json",
                          body=json.dumps([{"name": name} for name in self.books]))
        elif path.startswith("/v1/portfolios/"):
            self.books[path.split("/")[3]].handle(route)
        else:
            next(iter(self.books.values())).handle(route)


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

    def opener(api: FakeApi | Books, width: int = 1280, init: str = "") -> Any:
        page = browser.new_page(viewport={"width": width, "height": 900})
        pages.append(page)
        if init:
            page.add_init_script(init)
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
    assert "beat 11" in tip and "forecast of beat" not in tip, tip
    assert "(beat 10 had no consensus)" in tip, tip
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
    # slot 0 (beat 50) is under beat 49's forecast, which is not drawn as a beat but is loaded
    cols = var_columns(page)
    left, right, count = data(page, "slots")
    assert cols and abs(cols[0] - left) <= 2, (cols[:3], left)
    assert "forecast of beat 49" in hover(page, 0)


def wait_text(page: Any, selector: str, text: str, timeout: int = 5_000) -> None:
    """Waits until the element's text (as shown: ``innerText``) is ``text``."""
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); "
                           "return e !== null && e.innerText === t; }", arg=[selector, text],
                           timeout=timeout)


def wait_held(page: Any, api: FakeApi, what: str) -> None:
    """Waits (up to 5 s) until ``api`` holds a request."""
    for _ in range(100):
        if api.held:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"no {what} request came")


def test_a_detail_request_with_no_answer_stops_nothing(open_page: Any) -> None:
    api = FakeApi([beat(i) for i in range(5)])
    page = open_page(api, init="window.SWARMVAR_DETAIL_MS = 60000;")
    wait_text(page, "#head-size", "5")
    # a level picked while a request hangs: the load is aborted and the pick's one is sent
    api.hold.add("/v1/portfolios/book/var")
    api.events.append([beat(5)])
    page.wait_for_selector("#var-0[data-seq='5']", timeout=5_000)
    wait_held(page, api, "/var")
    page.click("#level-pick button[data-k='1']")
    wait_text(page, "#weights-level", "(VaR 99%)")
    wait_text(page, "#head-size", "6")
    api.held.clear()  # never answered
    # beats alone: a request with no answer is given up after the time limit, and the beats
    # that came meanwhile are refreshed
    page.evaluate("window.SWARMVAR_DETAIL_MS = 800")
    api.hold.add("/v1/portfolios/book/var")
    api.events.append([beat(6)])
    page.wait_for_selector("#var-0[data-seq='6']", timeout=5_000)
    api.events.append([beat(i) for i in range(7, 10)])
    page.wait_for_selector("#var-0[data-seq='9']", timeout=5_000)
    wait_text(page, "#head-size", "10")
    assert api.held, "the /var request was not held"
    api.held.clear()


def test_another_portfolio_shows_nothing_of_the_previous_one(open_page: Any) -> None:
    api = Books({"book": [beat(i) for i in range(5)],
                 "fresh": [beat(i, consensus=False, breaches=[]) for i in range(3)]})
    page = open_page(api)
    wait_text(page, "#weights-level", "(VaR 97.5%)")
    page.select_option("#portfolio", "fresh")
    page.wait_for_selector("body[data-live='1']", timeout=5_000)
    page.wait_for_function("document.getElementById('asof').textContent.startsWith('beat 2')",
                           timeout=5_000)
    page.wait_for_function("document.getElementById('availability').textContent !== ''",
                           timeout=5_000)
    assert page.inner_text("#asof") == "beat 2 as of 2024-01-03: no consensus"
    assert page.query_selector_all("#levels .card") == []
    assert page.query_selector_all("#level-pick button") == []
    assert page.inner_text("#chart-title") == "VaR and ES vs realized losses"
    assert page.inner_text("#weights-level") == "" and page.inner_text("#weights") == ""
    assert page.inner_text("#availability") == "no consensus"
    assert var_columns(page) == []  # no forecast drawn, not the previous portfolio's


def test_the_level_is_kept_by_its_alpha_across_portfolios(open_page: Any) -> None:
    api = Books({"book": [beat(i) for i in range(5)],
                 "rev": [beat(i, alphas=ALPHAS[::-1]) for i in range(4)]})
    page = open_page(api)
    page.click("#level-pick button[data-k='1']")
    page.wait_for_selector("#chart[data-level='1']", timeout=5_000)
    page.click("#level-pick button[data-k='0']")  # 97.5% chosen
    page.wait_for_selector("#chart[data-level='0']", timeout=5_000)
    page.select_option("#portfolio", "rev")
    page.wait_for_selector("#var-0[data-seq='3']", timeout=5_000)
    wait_text(page, "#weights-level", "(VaR 97.5%)")
    page.wait_for_selector("#chart[data-level='1']", timeout=5_000)
    assert page.get_attribute("#level-pick button[data-k='1']", "aria-checked") == "true"
    assert "VaR 97.5%" in page.inner_text("#chart-title")
    assert page.inner_text("#weights") == "revAgent\t1.000"


#: counts the page's event streams and which of them it closed
STREAMS = """
window.streams = [];
const Native = window.EventSource;
window.EventSource = function (url) {
  const s = new Native(url), close = s.close.bind(s);
  s.closed = false; s.close = () => { s.closed = true; close(); };
  window.streams.push([url.split('?')[0], s]);
  return s;
};
"""


def test_overlapping_connections_leave_one_stream(open_page: Any) -> None:
    api = Books({"book": [beat(i) for i in range(5)], "slow": [beat(i) for i in range(8)],
                 "last": [beat(i) for i in range(3)]})
    api.books["slow"].events.append([beat(50)])
    page = open_page(api, init=STREAMS)
    api.books["slow"].hold.add("/v1/portfolios/slow/history")
    page.select_option("#portfolio", "slow")
    wait_held(page, api.books["slow"], "slow's /history")
    page.select_option("#portfolio", "last")
    page.wait_for_selector("body[data-live='1']", timeout=5_000)
    page.wait_for_selector("#var-0[data-seq='2']", timeout=5_000)
    api.books["slow"].release()  # the overtaken connection goes on, and must stop
    page.wait_for_timeout(600)
    open_streams = page.evaluate("window.streams.filter(([u, s]) => !s.closed).map(([u]) => u)")
    assert open_streams == ["/v1/portfolios/last/events"], open_streams
    assert page.get_attribute("#var-0", "data-seq") == "2"
    assert page.inner_text("#asof").startswith("beat 2 ")
    assert page.eval_on_selector("#portfolio", "s => s.value") == "last"
    wait_text(page, "#weights", "lastAgent\t1.000")


def test_a_card_keeps_the_keyboard_focus_over_a_beat(open_page: Any) -> None:
    api = FakeApi([beat(i) for i in range(5)])
    page = open_page(api)
    page.focus(".card[data-k='1']")
    api.events.append([beat(5)])
    page.wait_for_selector("#var-0[data-seq='5']", timeout=5_000)
    assert page.evaluate("document.activeElement.dataset.k") == "1"
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart[data-level='1']", timeout=5_000)


def test_the_last_refresh_after_a_burst_is_not_lost(open_page: Any) -> None:
    api = FakeApi([beat(i) for i in range(5)])
    page = open_page(api)
    wait_text(page, "#head-size", "5")
    api.hold.add("/v1/ledger/head")
    api.events.append([beat(5)])
    wait_held(page, api, "ledger head")
    api.events.append([beat(i) for i in range(6, 40)])
    page.wait_for_selector("#var-0[data-seq='39']", timeout=5_000)
    # the head as it was when asked for (after beat 5); the beats since must ask again
    api.held.pop().fulfill(status=200, content_type="application/json", body=json.dumps(
        {"size": 6, "root": "ab" * 32, "timestamp": "2024-01-01T00:00:00Z"}))
    wait_text(page, "#head-size", "40")


def test_a_stale_details_reply_is_dropped(open_page: Any) -> None:
    api = Books({"book": [beat(i) for i in range(5)], "other": [beat(i) for i in range(3)]})
    page = open_page(api, init="window.SWARMVAR_DETAIL_MS = 60000;")
    wait_text(page, "#weights", "bookAgent\t1.000")
    book, other = api.books["book"], api.books["other"]
    book.hold.add("/v1/portfolios/book/var")
    book.events.append([beat(5)])
    wait_held(page, book, "book's /var")
    other.hold.add("/v1/portfolios/other/history")
    page.select_option("#portfolio", "other")
    wait_held(page, other, "other's /history")
    book.release()  # book's reply, late, while other's page is loading: not shown
    page.wait_for_timeout(300)
    assert page.inner_text("#weights") == "" and page.inner_text("#weights-level") == ""
    # other's details are asked for at once, not after book's request ends
    other.hold.add("/v1/portfolios/other/decisions")
    other.release()
    wait_held(page, other, "other's decisions")
    wait_text(page, "#weights", "otherAgent\t1.000")
    other.release()
    page.wait_for_function("document.getElementById('decisions-note').textContent !== ''",
                           timeout=5_000)


#: a screen whose pixel density the test sets (``window.setDensity``): headless Chromium
#: tells a page no density change (its emulation changes ``devicePixelRatio`` silently)
DENSITY = """
let density = 1;
const listeners = [];
Object.defineProperty(window, 'devicePixelRatio', { get: () => density });
const native = window.matchMedia.bind(window);
window.matchMedia = (q) => {
  const m = native(q), made = density;
  if (!q.includes('resolution')) return m;
  return { media: q, get matches() { return density === made; },
           addEventListener: (type, f) => listeners.push([made, f]) };
};
window.setDensity = (d) => {
  density = d;
  const fire = listeners.filter(([made]) => made !== d);
  listeners.splice(0, listeners.length, ...listeners.filter(([made]) => made === d));
  for (const [, f] of fire) f({ matches: false });
};
"""


def test_the_chart_follows_the_pixel_density(open_page: Any) -> None:
    page = open_page(FakeApi([beat(i) for i in range(20)]), init=DENSITY)
    page.wait_for_selector("#var-0[data-seq='19']", timeout=5_000)
    width = page.eval_on_selector("#chart", "c => c.parentElement.clientWidth")
    page.wait_for_function(f"document.getElementById('chart').width === {width}",
                           timeout=5_000)
    for d in [2, 1.5]:
        page.evaluate(f"window.setDensity({d})")
        page.wait_for_function(f"document.getElementById('chart').width === {round(d * width)}",
                               timeout=5_000)


def test_the_readout_says_why_no_forecast_is_in_force(open_page: Any) -> None:
    # the history starts at beat 5 (the beats before are not loaded); beat 6 has other levels
    points = [beat(5), beat(6, alphas=[0.99]), beat(7), beat(8)]
    page = open_page(FakeApi(points))
    page.wait_for_selector("#var-0[data-seq='8']", timeout=5_000)
    tip = hover(page, 0)
    assert "(beat 4 is not loaded)" in tip and "no consensus" not in tip, tip
    tip = hover(page, 2)  # beat 7: beat 6 had the 99% level only, the chart shows 97.5%
    assert "(beat 6 had other levels)" in tip and "no consensus" not in tip, tip
    assert "forecast of beat 5" in hover(page, 1)
