"""Service under load on loopback: ingestion throughput and latency, GET of the current VaR,
and a metrics scrape with many portfolios, beside uvicorn serving a trivial endpoint.

Both servers are real ``uvicorn`` processes on 127.0.0.1 (one worker each), driven by
the same asyncio client at the same concurrency, so the reference shows what the
HTTP stack alone costs on this machine (the client shares its CPUs). Ingestion posts
dated returns, one portfolio per concurrent client (dates rise within a portfolio),
and checks afterwards that every acknowledged return is in the ledger once: 0 lost,
0 5xx are the targets.

Full: 20,000 POSTs at concurrency 32, a scrape with 200 portfolios. Quick: a few
hundred POSTs, 20 portfolios.

Then one batch through the desk (in process, the default swarm and the arbiter, a
portfolio fitted on 250 returns): its time beside the same returns ingested one at a
time, the latency of reads of another portfolio made every 5 ms while it runs beside the
same reads with nothing running, and the beat times the arbiter was given in both cases.
Full: 1,000 returns; quick: 60.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
from _table import print_table

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def echo(request):
    body = await request.json()
    return JSONResponse({"ok": True, "date": body.get("date")}, status_code=201)
async def var(request):
    return JSONResponse({"var": 0.01})
app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/var", var)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _history(n: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    start = date(2020, 1, 1)
    return [{"date": (start + timedelta(days=i)).isoformat(),
             "return": float(rng.standard_t(5) * 0.01)} for i in range(n)]


def _day(i: int) -> str:
    return (date(2023, 1, 1) + timedelta(days=i)).isoformat()


async def _load(url: str, key: str, books: list[str], per_book: int,
                path: str) -> tuple[list[float], Counter[int], list[tuple[str, str]]]:
    """POST ``per_book`` dated returns to each book, one client task per book."""
    lat: list[float] = []
    codes: Counter[int] = Counter()
    acked: list[tuple[str, str]] = []
    limits = httpx.Limits(max_connections=len(books), max_keepalive_connections=len(books))
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60,
                                 limits=limits) as c:
        async def one(book: str) -> None:
            for i in range(per_book):
                d = _day(i)
                t = time.perf_counter()
                for attempt in range(3):  # a POST is idempotent: re-sending is safe
                    try:
                        r = await c.post(path.format(book=book),
                                         json={"date": d, "return": 1e-4 * (i % 7)})
                        break
                    except httpx.TransportError:
                        codes[-1] += 1  # counted as a retry
                        if attempt == 2:
                            raise
                lat.append(time.perf_counter() - t)
                codes[r.status_code] += 1
                if r.status_code in (200, 201):  # 200: a retry found it already stored
                    acked.append((book, d))

        await asyncio.gather(*(one(b) for b in books))
    return lat, codes, acked


async def _gets(url: str, key: str, path: str, n: int, concurrency: int) -> list[float]:
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
        async def worker(k: int) -> None:
            for _ in range(k):
                t = time.perf_counter()
                r = await c.get(path)
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return lat


def _say(text: str) -> None:
    print(f"  {text} (load {os.getloadavg()[0]:.1f})", flush=True)


def _pct(xs: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(xs), q)) if xs else float("nan")


def _reads(desk: object, name: str, stop: threading.Event, out: list[float],
           every: float = 0.005) -> None:
    """Read ``name`` (its info and its points) every ``every`` seconds until ``stop``."""
    while not stop.is_set():
        t = time.perf_counter()
        desk.info(name)  # type: ignore[attr-defined]
        desk.points(name)  # type: ignore[attr-defined]
        out.append(time.perf_counter() - t)
        stop.wait(every)


def _batch_case(quick: bool) -> list[list[str]]:
    """One batch through the desk beside single-return ingests and idle reads."""
    from swarmvar.arbiter import Arbiter
    from swarmvar.ledger import Ledger
    from swarmvar.service.desk import DatedReturn, Desk

    n = 60 if quick else 1000
    hist = [DatedReturn(date.fromisoformat(str(h["date"])), float(str(h["return"])))
            for h in _history(250, 7)]
    rng = np.random.default_rng(8)
    new = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
           for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with Ledger.open(home) as led:
            desk = Desk(led, home, observers=(Arbiter(record_decisions=False),))
            for name in ("batch", "single", "read"):
                desk.create(name, hist, key_id="bench")
            idle: list[float] = []
            stop = threading.Event()
            reader = threading.Thread(target=_reads, args=(desk, "read", stop, idle))
            reader.start()
            time.sleep(0.5 if quick else 3.0)
            stop.set()
            reader.join(30)
            busy: list[float] = []
            stop = threading.Event()
            reader = threading.Thread(target=_reads, args=(desk, "read", stop, busy))
            reader.start()
            t = time.perf_counter()
            try:
                desk.ingest("batch", new, key_id="bench")
            finally:
                batch_s = time.perf_counter() - t
                stop.set()
                reader.join(30)
            _say(f"one batch of {n} returns through the desk in {batch_s:.2f} s")
            t = time.perf_counter()
            for it in new:
                desk.ingest("single", [it], key_id="bench")
            single_s = time.perf_counter() - t
            _say(f"the same {n} returns one at a time in {single_s:.2f} s")
            secs: dict[str, list[float]] = {"batch": [], "single": []}
            for e in led.entries():
                d = e.data.get("details", {}) if e.data.get("type") == "tick" else {}
                if d.get("portfolio") in secs:
                    secs[d["portfolio"]].append(float(d["beat_seconds"]))
    ms = 1000.0
    return [
        [f"batch of {n} returns (desk)", f"{batch_s:.2f} s, {ms * batch_s / n:.2f} ms/beat",
         "", f"{n} single ingests {single_s:.2f} s, {ms * single_s / n:.2f} ms/beat", ""],
        ["read during the batch p50", f"{ms * _pct(busy, 0.5):.2f} ms ({len(busy)} reads)",
         "", f"no batch {ms * _pct(idle, 0.5):.2f} ms ({len(idle)} reads)", ""],
        ["read during the batch max", f"{ms * max(busy, default=float('nan')):.1f} ms", "",
         f"no batch {ms * max(idle, default=float('nan')):.1f} ms", ""],
        ["beat time to the arbiter p50, batch",
         f"{ms * _pct(secs['batch'], 0.5):.2f} ms", "",
         f"single ingests {ms * _pct(secs['single'], 0.5):.2f} ms", ""],
    ]


def main(quick: bool = False) -> None:
    from swarmvar.ledger import Ledger
    from swarmvar.service.keys import KeyFile, Role

    if threading.current_thread() is threading.main_thread():  # a TERM still stops the servers
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    n_posts, conc, n_books_scrape = (160, 4, 12) if quick else (20_000, 32, 200)
    n_posts = int(os.environ.get("BENCH_SERVICE_POSTS", n_posts))
    per_book = n_posts // conc
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        keys = home / "api-keys.json"
        _, writer = KeyFile(keys).create(Role.WRITER, rate=0)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
            os.environ.get("PYTHONPATH"), str(ROOT / "src")]))}
        sport, tport = _port(), _port()
        log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
        serve = subprocess.Popen(
            [sys.executable, "-c", "from swarmvar.cli import main; main()", "serve",
             "--port", str(sport), "--home", str(home), "--keys", str(keys),
             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
        trivial = subprocess.Popen([sys.executable, "-c", TRIVIAL, str(tport)], env=env)
        try:
            surl, turl = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{tport}"
            _wait(surl + "/healthz", serve)
            _wait(turl + "/var", trivial)
            h = {"X-API-Key": writer}
            books = [f"load{i}" for i in range(conc)]
            for i, b in enumerate(books):
                r = httpx.post(surl + "/v1/portfolios", json={"name": b, "history": _history(
                    120, i)}, headers=h, timeout=60)
                assert r.status_code == 201, r.text
            t = time.perf_counter()
            ref_lat, ref_codes, _ = asyncio.run(_load(turl, writer, books, per_book, "/echo"))
            ref_s = time.perf_counter() - t
            _say(f"reference: {n_posts} POSTs in {ref_s:.1f} s")
            t = time.perf_counter()
            lat, codes, acked = asyncio.run(_load(surl, writer, books, per_book,
                                                  "/v1/portfolios/{book}/returns"))
            ing_s = time.perf_counter() - t
            _say(f"ingestion: {n_posts} POSTs in {ing_s:.1f} s, codes {dict(codes)}")
            n_get = 100 if quick else 5000
            get_lat = asyncio.run(_gets(surl, writer, "/v1/portfolios/load0/var", n_get, conc))
            ref_get = asyncio.run(_gets(turl, writer, "/var", n_get, conc))
            for i in range(conc, n_books_scrape):
                r = httpx.post(surl + "/v1/portfolios", json={"name": f"s{i}", "history":
                               _history(60, i)}, headers=h, timeout=60)
                assert r.status_code == 201, r.text
                httpx.post(surl + f"/v1/portfolios/s{i}/returns",
                           json={"date": _day(0), "return": -0.01}, headers=h, timeout=60)
            scrapes = []
            size = 0
            for _ in range(5 if quick else 20):
                t = time.perf_counter()
                r = httpx.get(surl + "/metrics", timeout=60)
                scrapes.append(time.perf_counter() - t)
                size = len(r.content)
        except BaseException:
            log.flush()
            tail = (home / "serve.log").read_text(errors="replace")[-3000:]
            print(f"server exit code {serve.poll()}; its log ends:\n{tail}", file=sys.stderr)
            raise
        finally:
            for p in (serve, trivial):
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(15)
            log.close()
        with Ledger.open(home) as led:
            ticks = Counter((e.data["details"]["portfolio"], e.data["details"]["as_of"])
                            for e in led.entries() if e.kind.value == "action"
                            and e.data.get("type") == "tick")
        lost = sum(1 for a in acked if ticks.get(a, 0) != 1)
        fives = sum(v for c, v in codes.items() if c >= 500)
        retries = codes.pop(-1, 0) + ref_codes.pop(-1, 0)
    rows = [
        ["ingestion POSTs", f"{n_posts} at concurrency {conc}", "", "", ""],
        ["ingestion throughput", f"{n_posts / ing_s:.0f}/s", "",
         f"trivial uvicorn {n_posts / ref_s:.0f}/s", ""],
        ["ingestion p50", f"{1000 * _pct(lat, 0.5):.1f} ms", "",
         f"{1000 * _pct(ref_lat, 0.5):.1f} ms", ""],
        ["ingestion p99", f"{1000 * _pct(lat, 0.99):.1f} ms", "",
         f"{1000 * _pct(ref_lat, 0.99):.1f} ms", ""],
        ["acknowledged lost", str(lost), "0", "", "yes" if lost == 0 else "NO"],
        ["5xx responses", str(fives), "0", "", "yes" if fives == 0 else "NO"],
        ["non-201 responses", str(sum(v for c, v in codes.items() if c != 201)), "0", "",
         "yes" if set(codes) == {201} else "NO"],
        ["connection errors retried", str(retries), "", "", ""],
        ["GET current VaR p50", f"{1000 * _pct(get_lat, 0.5):.1f} ms", "",
         f"{1000 * _pct(ref_get, 0.5):.1f} ms", ""],
        ["GET current VaR p99", f"{1000 * _pct(get_lat, 0.99):.1f} ms", "",
         f"{1000 * _pct(ref_get, 0.99):.1f} ms", ""],
        [f"/metrics scrape, {n_books_scrape} portfolios",
         f"{1000 * statistics.median(scrapes):.1f} ms ({size / 1024:.0f} KiB)", "", "", ""],
    ]
    batch_load = os.getloadavg()
    rows += _batch_case(quick)
    print(f"service on loopback (load average before: {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; before the batch case: {batch_load[0]:.2f}; after: "
          f"{os.getloadavg()[0]:.2f})")
    print_table(rows)
    if lost or fives:
        raise SystemExit(f"{lost} acknowledged returns lost, {fives} 5xx")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
