"""A streamed book's attribution (swarm/attribution.py): every N beats, off the beat, the
numbers of ``book_var`` on the same window and seed; single series get none."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from swarmvar import book_var
from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.swarm import RoleConfig, Swarm
from swarmvar.swarm import attribution as attribution_module
from swarmvar.swarm.attribution import attribution_seed
from swarmvar.types import Book, Tick

WINDOW = 250
POSITIONS = {"x": 1e5, "y": 5e4, "z": -2e4}
BOOK = {"book": {"positions": POSITIONS}}


def asset_returns(n: int, seed: int = 1) -> pd.DataFrame:
    """Three assets' daily log returns (Student-t, 1% scale), business days in UTC."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2020-01-01", periods=n, freq="B", tz="UTC")
    return pd.DataFrame(rng.standard_t(5, (n, 3)) * 0.01, index=idx, columns=list(POSITIONS))


def book_swarm(home: Path, portfolios: Any = BOOK, every: int | None = 5, **kw: Any) -> Swarm:
    args: dict[str, Any] = {
        "agents": ("NormalInverseGamma", "BayesianBootstrap"), "window": WINDOW,
        "policy": dataclasses.replace(DEFAULT_POLICY, f=0), "fsync": False,
        "roles": RoleConfig.quiet(attribute_every=every), "book_var": book_var}
    args.update(kw)
    return Swarm(portfolios, home=home, **args)


def tick(frame: pd.DataFrame, i: int) -> Tick:
    return Tick("*", frame.index[i].to_pydatetime(), assets=frame.iloc[i].to_dict())


def attributions(home: Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The ledger's attribution records by (portfolio, seq): a list, to count them."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        for e in ledger.entries():
            if e.kind == "flow" and e.data.get("flow") == "attribution":
                r = e.data["result"]
                out.setdefault((r["portfolio"], r["seq"]), []).append(r)
    return out


def direct(frame: pd.DataFrame, seq: int, seed: int = 0) -> Any:
    """``book_var`` called directly on beat ``seq``'s window (the start's last WINDOW - seq
    rows and the first seq ticks) with its seed."""
    window = frame.iloc[seq:WINDOW + seq]
    return book_var(window, Book(tuple(POSITIONS), tuple(POSITIONS.values())), kind="return",
                    alphas=(0.99, 0.975), window=WINDOW, seed=attribution_seed(seed, seq),
                    consensus=True, baseline=False)


def assert_equal_to_direct(record: dict[str, Any], frame: pd.DataFrame, seed: int = 0) -> None:
    ref = direct(frame, record["seq"], seed)
    levels = record["detail"]["levels"]
    assert record["action"] == "attributed"
    assert record["agents"] == list(ref.forecasts)
    assert len(levels) == 2
    for lv, agreed, att in zip(levels, ref.agreed, ref.attributions["consensus"], strict=True):
        assert lv["alpha"] == att.alpha
        assert lv["var"] == agreed.var and lv["es"] == agreed.es  # bit for bit
        assert lv["component_var"] == list(att.component_var)
        assert lv["component_es"] == list(att.component_es)


def test_records_equal_book_var_on_the_same_window_and_seed(tmp_path):
    frame = asset_returns(WINDOW + 10)
    with book_swarm(tmp_path / "h", seed=3) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 10):
            swarm.step(tick(frame, i))
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", 5), ("book", 10)]
    for (_, seq), recs in got.items():
        assert len(recs) == 1
        assert_equal_to_direct(recs[0], frame, seed=3)
        assert recs[0]["detail"]["as_of"] == frame.index[WINDOW + seq - 1].isoformat()
    latest = swarm.attribution("book")  # the last one landed (at close)
    assert latest is not None and latest.seq == 10
    ref = direct(frame, 10, seed=3)
    assert latest.level(0.99).var == ref.agreed[0].var  # type: ignore[union-attr]
    top = latest.top(3)
    comp = ref.attributions["consensus"][0].component_var
    assert [a for a, _ in top] == [list(POSITIONS)[i] for i in np.argsort(-comp)]
    assert top[0][1] == pytest.approx(comp.max() / ref.agreed[0].var)


def test_due_every_n_beats_and_a_single_series_gets_none(tmp_path):
    frame = asset_returns(WINDOW + 12)
    portfolios = {**BOOK, "x": {}}  # "x": a single series (the column named like it)
    with book_swarm(tmp_path / "h", portfolios=portfolios, every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 12):
            swarm.beat([tick(frame, i)])
        assert swarm.attribution("x") is None
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", 4), ("book", 8), ("book", 12)]
    with Ledger.open(tmp_path / "h") as ledger:  # each book beat records its asset row
        rows = {e.data["beat"]["portfolio"]: e.data["beat"].get("assets")
                for e in ledger.entries() if e.kind == "consensus" and "beat" in e.data}
    assert rows["x"] is None and rows["book"] == list(frame.iloc[WINDOW + 11])


@pytest.mark.parametrize("kw", [{"every": 0}, {"book_var": None}])
def test_off_when_every_is_0_or_no_book_var_is_given(tmp_path, kw):
    frame = asset_returns(WINDOW + 5)
    with book_swarm(tmp_path / "h", **kw) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 5):
            swarm.step(tick(frame, i))
    assert attributions(tmp_path / "h") == {}


def test_the_default_is_the_refit_rhythm(tmp_path):
    frame = asset_returns(WINDOW + 6)
    with book_swarm(tmp_path / "h", every=None, refit_every=3) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 6):
            swarm.step(tick(frame, i))
    assert sorted(attributions(tmp_path / "h")) == [("book", 3), ("book", 6)]


def test_a_slow_attribution_never_makes_a_beat_wait(tmp_path, monkeypatch):
    gate = threading.Event()
    real = attribution_module._attr_run

    def held(job: Any, fn: Any) -> Any:
        if not gate.wait(timeout=30):  # bounded: a beat that waited fails the test first
            raise RuntimeError("the gate was never opened")
        return real(job, fn)

    monkeypatch.setattr(attribution_module, "_attr_run", held)
    frame = asset_returns(WINDOW + 12)
    with book_swarm(tmp_path / "h", every=3) as swarm:  # 4 due: MAX_QUEUED, none waits
        swarm.start(frame.iloc[:WINDOW])
        times = []
        for i in range(WINDOW, WINDOW + 12):
            began = time.perf_counter()
            swarm.step(tick(frame, i))
            times.append(time.perf_counter() - began)
        # every due attribution is held, and still every beat ran: none waited for one
        assert sorted(s for _, s in swarm._attr_running) == [3, 6, 9, 12]
        assert swarm.attribution("book") is None
        assert max(times) < 10
        gate.set()  # close lands them, once each, in order
    got = attributions(tmp_path / "h")
    assert sorted(got) == [("book", s) for s in (3, 6, 9, 12)]
    assert all(len(v) == 1 for v in got.values())


def test_a_landed_attribution_is_ledgered_with_a_later_beat(tmp_path):
    frame = asset_returns(WINDOW + 40)
    with book_swarm(tmp_path / "h", every=2) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        i = WINDOW
        deadline = time.monotonic() + 60
        while swarm.attribution("book") is None and i < WINDOW + 40:
            assert time.monotonic() < deadline
            swarm.step(tick(frame, i))
            i += 1
            time.sleep(0.05)
        latest = swarm.attribution("book")
        assert latest is not None and latest.seq < i - WINDOW  # dated with its own beat
        assert_equal_to_direct(attributions(tmp_path / "h")[("book", latest.seq)][0], frame)


@pytest.mark.parametrize("bad", [-1, 10**9, True, 2.5])
def test_a_bad_attribute_every_is_refused(bad):
    with pytest.raises(InvalidParameter, match="attribute_every"):
        RoleConfig(attribute_every=bad)


def test_close_and_resume_records_each_once(tmp_path):
    """Closed with attributions maybe still running (close lands them); a resume neither
    records one again nor misses the next, each equal to ``book_var`` called directly."""
    frame = asset_returns(WINDOW + 16)
    home = tmp_path / "h"
    with book_swarm(home, every=3, checkpoint_every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 8):
            swarm.step(tick(frame, i))
    with book_swarm(home, every=3, checkpoint_every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        assert swarm.attribution("book") is not None  # read back from the ledger
        for i in range(WINDOW + 8, WINDOW + 16):
            swarm.step(tick(frame, i))
    got = attributions(home)
    assert sorted(got) == [("book", s) for s in (3, 6, 9, 12, 15)]
    for recs in got.values():
        assert len(recs) == 1
        assert_equal_to_direct(recs[0], frame)


def _records_with(home: Path, executor: Any) -> dict[tuple[str, int], list[dict[str, Any]]]:
    frame = asset_returns(WINDOW + 6)
    with book_swarm(home, every=3, executor=executor) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 6):
            swarm.step(tick(frame, i))
    got = attributions(home)
    for recs in got.values():
        for r in recs:
            r["detail"].pop("seconds")  # the one field that is a clock's
    return got


def test_worker_processes_give_the_same_attributions(tmp_path):
    from swarmvar.swarm import LocalExecutor

    here = _records_with(tmp_path / "here", None)
    assert sorted(here) == [("book", 3), ("book", 6)]
    assert _records_with(tmp_path / "worker", LocalExecutor(1)) == here


@pytest.mark.slow
def test_ray_actors_give_the_same_attributions(tmp_path):
    ray = pytest.importorskip("ray")
    from swarmvar.swarm.ray_executor import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        got = _records_with(tmp_path / "ray", RayExecutor(shards=1))
    finally:
        ray.shutdown()
    assert got == _records_with(tmp_path / "here", None)


def test_a_home_from_before_attribution_says_each_due_one_it_skips(tmp_path, caplog):
    """A checkpoint and beats recorded without the ring (no book_var then, as before this
    role existed): the ring cannot be rebuilt, so each due attribution until it is full
    again is ledgered as skipped, once, with the reason."""
    frame = asset_returns(WINDOW + 12)
    home = tmp_path / "h"
    with book_swarm(home, every=4, checkpoint_every=3, book_var=None) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 5):  # checkpoint at 3; beats 4, 5 replayed
            swarm.step(tick(frame, i))
    with caplog.at_level("INFO", logger="swarmvar.swarm"), \
            book_swarm(home, every=4, checkpoint_every=3) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW + 5, WINDOW + 12):
            swarm.step(tick(frame, i))
        assert swarm.attribution("book") is None
    assert "holds no asset ring" in caplog.text
    got = attributions(home)
    assert sorted(got) == [("book", 4), ("book", 8), ("book", 12)]
    for recs in got.values():
        assert len(recs) == 1 and recs[0]["action"] == "attribution-skipped"
        assert "asset ring holds" in recs[0]["detail"]["reason"]


def test_a_resume_compares_the_attribution_rhythm_as_it_acts(tmp_path):
    """``attribute_every=None`` (the refit rhythm) and the same number written out resume
    alike; another rhythm, or no ``book_var`` (attribution off, its running ones dropped),
    is refused before anything is restored, naming ``attribution.every``. (Off to on
    resumes: the test above.)"""
    from swarmvar.errors import ResumeMismatch

    frame = asset_returns(WINDOW + 6)
    home = tmp_path / "h"
    refit = 5
    with book_swarm(home, every=None, refit_every=refit) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 2):
            swarm.step(tick(frame, i))
    for kw in ({"every": 3}, {"every": refit, "book_var": None}):
        with book_swarm(home, refit_every=refit, **kw) as swarm, \
                pytest.raises(ResumeMismatch, match=r"attribution\.every of book: saved 5, now "
                              r"[30]\)"):
            swarm.start(frame.iloc[:WINDOW])
    with book_swarm(home, every=refit, refit_every=refit) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW + 2, WINDOW + 6):
            swarm.step(tick(frame, i))
    assert sorted(attributions(home)) == [("book", refit)]  # 6 beats, due at the 5th
