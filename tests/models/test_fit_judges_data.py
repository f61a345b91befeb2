"""An agent's public ``fit`` judges its data as the doors do; the drivers' is not judged twice.

Prices or rates below 1 handed straight to an agent as a plain array or list
(``GarchT().fit(eurgbp)``) are refused with the rule and message of
:func:`swarmvar.data.as_array` (:func:`swarmvar.data.moves_like_prices`);
what a driver judged where it entered - ``as_array``'s output and the windows
of it handed on, the values of a Series or frame marked as returns from
prices, everything inside :func:`swarmvar.data.judged_inputs` (a backtest's
rows, in worker processes too) - is not judged again. Joint agents judge each
asset's column the same way. The mark covers the bytes marked and no more (another
column of a frame, the rest of an array stay judged), a slice of a marked Series
or frame fits, values written into marked memory in place are not judged again (the doors
judge them), and the table holds under threads and in a forked child.
"""

from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from swarmvar import books
from swarmvar.data import (
    TO_RETURNS_HINT,
    as_array,
    is_from_prices,
    is_judged,
    judged_inputs,
    load,
    mark_from_prices,
    mark_judged,
    moves_like_prices,
    prices_to_returns,
    validate,
)
from swarmvar.data import _returns as returns_module
from swarmvar.data._returns import STALE_MARK_HINT
from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models import agent_class, book_agent_class
from swarmvar.models.registry import AGENT_MODULES
from swarmvar.validation import backtest


def _walk(level: float, sd: float, n: int = 300, seed: int = 0) -> np.ndarray:
    """A level that wanders as a price or rate does (a random walk in logs)."""
    return level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, sd, n)))


EURGBP = _walk(0.85, 0.004)  # a simulated EUR/GBP: the door refuses it as returns


def _steep_returns() -> pd.Series:
    """Returns worked out from prices that, typed as returns, the door refuses (~8% a day,
    one-signed, wandering): a hyperinflation's price, given as prices."""
    r = _walk(0.08, 0.01, 300, seed=1)
    days = pd.bdate_range("2020-01-01", periods=301)
    prices = pd.Series(100.0 * np.exp(np.r_[0.0, np.cumsum(r)]), index=days, name="X")
    return prices_to_returns(prices)


@pytest.mark.parametrize("name", sorted(AGENT_MODULES))
def test_every_agent_refuses_prices_in_an_array_with_the_doors_message(name: str) -> None:
    agent = agent_class(name)()
    with pytest.raises(InvalidReturns) as door:
        as_array(EURGBP, min_obs=agent.min_observations, who=agent.name)
    for given in (EURGBP, EURGBP.tolist(), pd.Series(EURGBP)):
        with pytest.raises(InvalidReturns) as refused:
            agent.fit(given, seed=0)
        assert "look like prices or rates, not returns" in str(refused.value)
        assert str(refused.value) == str(door.value)
        assert not agent.is_fitted


def test_a_window_of_judged_data_is_not_judged_again_but_a_copy_is() -> None:
    agent = agent_class("NormalInverseGamma")()
    x = as_array(EURGBP, judge_prices=False)  # a driver that chose not to judge (var's track)
    assert is_judged(x) and is_judged(x[-100:]) and not is_judged(EURGBP)
    agent.fit(x[-100:], seed=0)  # the window a backtest hands on
    with pytest.raises(InvalidReturns, match="like prices"):
        agent_class("NormalInverseGamma")().fit(x[-100:].copy(), seed=0)


def test_returns_from_prices_are_not_judged_as_plain_values_either() -> None:
    r = _steep_returns()
    assert moves_like_prices(r.to_numpy()) is not None  # typed as returns: refused
    with pytest.raises(InvalidReturns, match="like prices"):
        as_array(r.to_numpy().copy())
    agent_class("NormalInverseGamma")().fit(r, seed=0)  # the marked Series
    agent_class("NormalInverseGamma")().fit(r.to_numpy()[-100:], seed=0)  # its values
    with pytest.raises(InvalidReturns, match="like prices"):
        agent_class("NormalInverseGamma")().fit(np.exp(r.to_numpy()) - 1.0, seed=0)


def test_the_drivers_scope_skips_the_judgement_and_ends_with_it() -> None:
    agent = agent_class("BayesianBootstrap")()
    with judged_inputs():
        assert is_judged(EURGBP)
        agent.fit(EURGBP, seed=0)
    assert not is_judged(EURGBP)
    with pytest.raises(InvalidReturns, match="like prices"):
        agent_class("BayesianBootstrap")().fit(EURGBP, seed=0)


def test_a_book_agent_takes_its_computed_returns_unjudged() -> None:
    agent = agent_class("NormalInverseGamma")().take_book_returns()
    agent.fit(EURGBP, seed=0)  # a book's return is computed from judged assets
    assert agent.is_fitted


@pytest.mark.parametrize("workers", [1, 2])
def test_a_backtest_does_not_judge_its_windows_again_in_workers_too(workers: int) -> None:
    r = _steep_returns()
    rows = {n: agent_class(n)() for n in ("NormalInverseGamma", "BayesianBootstrap")}
    result = backtest(r.iloc[-90:].to_numpy(), rows, window=60, baseline=None, progress=False,
                      n_sim=10, workers=workers, judge_prices=False)
    assert set(result.series) >= set(rows)
    with pytest.raises(InvalidReturns, match="look like prices"):
        backtest(r.iloc[-90:].to_numpy(), rows, window=60, baseline=None, progress=False,
                 n_sim=10, workers=1)


def test_a_joint_agent_refuses_a_column_of_prices_naming_it() -> None:
    rng = np.random.default_rng(2)
    m = np.column_stack([rng.normal(0.0, 0.01, 300), EURGBP])
    for name in ("NormalInverseWishart", "RiskMetrics"):
        with pytest.raises(InvalidReturns, match="the returns of asset 1 look like prices"):
            book_agent_class(name)().fit(m, seed=0)
    frame = pd.DataFrame(m, columns=["SPX", "EURGBP"])
    with pytest.raises(InvalidReturns, match="the returns of EURGBP look like prices"):
        book_agent_class("NormalInverseWishart")().fit(frame, seed=0)
    agent = book_agent_class("NormalInverseWishart")().fit(m[:, :1], seed=0)
    agent.update(np.array([0.85]))  # one row: nothing to judge its moves by, |r| <= 1 holds


def test_a_joint_agent_takes_a_window_of_a_book_from_prices() -> None:
    steep = _steep_returns()
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2020-01-01", periods=301)
    prices = pd.DataFrame({"X": 100.0 * np.exp(np.r_[0.0, np.cumsum(steep.to_numpy())]),
                           "Y": 50.0 * np.exp(np.r_[0.0, np.cumsum(rng.normal(0, 0.01, 300))])},
                          index=days)
    frame = books.prices_to_returns(prices)  # marked: given as prices
    x = frame.to_numpy()[-120:]  # what book_var hands its joint agents
    book_agent_class("NormalInverseWishart")().fit(x, seed=0)
    with pytest.raises(InvalidReturns, match="the returns of asset 0 look like prices"):
        book_agent_class("NormalInverseWishart")().fit(x.copy(), seed=0)


def test_a_judged_array_is_forgotten_with_it() -> None:
    gc.collect()
    before = len(returns_module._JUDGED)
    for _ in range(200):
        as_array(np.random.default_rng(0).normal(0.0, 0.01, 50))
    x = mark_judged(np.zeros(30))
    assert len(returns_module._JUDGED) <= before + 2
    key = id(x)
    del x
    gc.collect()
    assert key not in returns_module._JUDGED


def _garch(n: int, seed: int, mu: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, h = np.empty(n), 1e-6 / 0.02
    for t in range(n):
        out[t] = mu + np.sqrt(h) * rng.standard_t(5) * np.sqrt(3 / 5)
        h = 1e-6 + 0.08 * (out[t] - mu) ** 2 + 0.9 * h
    return out


def test_no_bundled_or_simulated_return_series_is_refused_as_a_plain_array() -> None:
    series = {n: load(n).to_numpy() for n in ("sp500", "nasdaq")}
    stocks = books.load_stocks("sp500-stocks", kind="return")
    assert len(stocks.columns) == 20
    series |= {str(c): stocks[c].dropna().to_numpy() for c in stocks.columns}
    series |= {f"garch{s}": _garch(1000, s, mu=0.002 * (s % 2)) for s in range(20)}
    for name, x in series.items():
        plain = np.array(x)  # not judged before: fit judges it, whole and by windows
        agent_class("NormalInverseGamma")().fit(plain, seed=0)
        for end in range(250, plain.size + 1, 250):
            assert moves_like_prices(plain[end - 250:end]) is None, name
            agent_class("NormalInverseGamma")().fit(plain[end - 250:end].copy(), seed=0)


def test_the_limit_levels_below_the_floor_read_as_returns() -> None:
    """docs/data.md: a rate in decimals (0.03) or a penny price (0.03) is read as returns; a
    lower floor would refuse real one-signed returns of the same shape and size."""
    rate = np.clip(0.03 + np.cumsum(np.random.default_rng(4).normal(0, 5e-4, 250)), 1e-4, None)
    assert float(np.median(rate)) < returns_module.PRICE_FLOOR
    agent_class("NormalInverseGamma")().fit(rate, seed=0)  # the limit: not told from returns
    tbill = np.log1p(np.clip(0.1375 + np.cumsum(np.random.default_rng(5).normal(0, 1e-3, 60)),
                             1e-5, None) / 12)  # monthly T-bill returns at 13.75% a year
    floor = returns_module.PRICE_FLOOR
    try:
        returns_module.PRICE_FLOOR = 0.01  # what catching the rate would take
        assert moves_like_prices(rate) is not None
        assert moves_like_prices(tbill) is not None
    finally:
        returns_module.PRICE_FLOOR = floor
    assert moves_like_prices(tbill) is None


# --- the mark covers the bytes marked, no more (a view marks its window, not its base) ---


def _rate_and_returns(n: int = 300) -> pd.DataFrame:
    """One float block of two columns: a rate below 1 (prices) and plain returns."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"close": _walk(0.85, 0.004, n), "ret": rng.normal(0.0, 0.01, n)},
                        index=pd.bdate_range("2020-01-01", periods=n))


def test_marking_one_column_leaves_the_others_judged() -> None:
    df = _rate_and_returns()
    mark_from_prices(df["ret"])  # a user marks one column as returns from prices
    assert is_judged(df["ret"].to_numpy()) and is_judged(df["ret"].to_numpy()[-50:])
    close = df["close"].to_numpy()
    assert not is_judged(close) and not is_judged(df.to_numpy())
    with pytest.raises(InvalidReturns, match="like prices"):
        agent_class("NormalInverseGamma")().fit(close, seed=0)
    df2 = _rate_and_returns()
    validate(df2["ret"], from_prices=True)  # carries the mark on: the same rule
    assert not is_judged(df2["close"].to_numpy())


def test_a_window_marks_its_own_bytes_only() -> None:
    base = np.random.default_rng(1).normal(0.0, 0.01, 300)
    mark_judged(base[100:200])
    assert is_judged(base[100:200]) and is_judged(base[150:180]) and is_judged(base[100:200:3])
    assert is_judged(base[199:99:-1])  # the same bytes walked backwards
    assert not is_judged(base) and not is_judged(base[50:150]) and not is_judged(base[:100])
    assert not is_judged(base[100:201]) and not is_judged(base[::2])
    mark_judged(base[200:250])  # touching the first window: one range now
    assert is_judged(base[120:240]) and not is_judged(base[120:251])


def test_a_window_of_a_frames_columns_is_judged_to_its_rows() -> None:
    frame = pd.DataFrame(np.random.default_rng(2).normal(0.0, 0.01, (300, 3)),
                         columns=["A", "B", "C"])
    x = frame.to_numpy()[-120:]  # (in pandas 3) one run of bytes per column, with gaps
    mark_judged(x)
    assert is_judged(x) and is_judged(x[-60:]) and is_judged(x[:, 1]) and is_judged(x[:, 1:])
    assert not is_judged(frame.to_numpy()[-121:]) and not is_judged(frame.to_numpy()[:, 0])
    strided = np.random.default_rng(3).normal(0.0, 0.01, 20_000)[::2]  # 10,000 runs
    mark_judged(strided)  # recorded by its exact layout (too scattered for ranges)
    assert is_judged(strided) and not is_judged(strided.base[1::2])


def test_a_slice_of_a_marked_series_or_frame_fits_a_copy_is_judged() -> None:
    r = _steep_returns()
    window = r.iloc[-100:]
    assert not is_from_prices(window) and is_judged(window)  # its memory is marked
    agent_class("NormalInverseGamma")().fit(window, seed=0)
    with pytest.raises(InvalidReturns, match="like prices"):
        agent_class("NormalInverseGamma")().fit(window.copy(), seed=0)
    frame = books.prices_to_returns(_steep_prices_frame())
    book_agent_class("NormalInverseWishart")().fit(frame.iloc[-120:], seed=0)
    with pytest.raises(InvalidReturns, match="the returns of X look like prices") as exc:
        book_agent_class("NormalInverseWishart")().fit(frame.iloc[-120:].copy(), seed=0)
    assert STALE_MARK_HINT in str(exc.value)  # the copy still carries the (stale) mark


def test_values_written_in_place_into_marked_memory_are_not_judged_again() -> None:
    """The documented limit (docs/data.md, ``is_judged``): a marked Series edited in place
    keeps its memory's mark, so an agent's ``fit`` takes a rate written into it, as it does
    one written into a marked array; the door judges it (the values no longer match the
    from-prices mark). A change to either (pandas copying on write, a values check in
    ``is_judged``) fails here, to be documented."""
    r = _steep_returns()
    r.iloc[:] = EURGBP  # in place, into the memory mark_from_prices marked
    assert not is_from_prices(r) and is_judged(r) and is_judged(r.iloc[-100:])
    agent_class("NormalInverseGamma")().fit(r, seed=0)  # the limit: fitted, not judged
    with pytest.raises(InvalidReturns, match="column 'X' looks like prices") as exc:
        validate(r)
    assert moves_like_prices(EURGBP) in str(exc.value) and STALE_MARK_HINT in str(exc.value)


def test_check_returns_refuses_a_marked_frame_edited_in_place() -> None:
    frame = books.prices_to_returns(_steep_prices_frame())
    frame.loc[:, "X"] = EURGBP  # a rate typed into the marked frame, in place
    assert not is_from_prices(frame) and is_judged(frame)  # the limit, as for a Series
    book_agent_class("NormalInverseWishart")().fit(frame, seed=0)
    with pytest.raises(InvalidReturns, match="the returns of X look like prices") as exc:
        books.check_returns(frame)  # the door judges the values
    assert moves_like_prices(EURGBP) in str(exc.value) and STALE_MARK_HINT in str(exc.value)


def _steep_prices_frame() -> pd.DataFrame:
    steep = _steep_returns()
    rng = np.random.default_rng(3)
    return pd.DataFrame({"X": 100.0 * np.exp(np.r_[0.0, np.cumsum(steep.to_numpy())]),
                         "Y": 50.0 * np.exp(np.r_[0.0, np.cumsum(rng.normal(0, 0.01, 300))])},
                        index=pd.bdate_range("2020-01-01", periods=301))


@pytest.mark.parametrize("fresh", [False, True])
def test_a_series_own_array_is_marked_a_fresh_copy_is_not(
        monkeypatch: pytest.MonkeyPatch, fresh: bool) -> None:
    """pandas 2.x: ``Series.to_numpy()`` is the Series' own array (``base`` None), every call;
    a copy (fresh each call) is told apart by memory, not by ``base``."""
    own = _steep_returns().to_numpy().copy()
    assert own.base is None
    s = pd.Series(own, index=pd.bdate_range("2020-01-01", periods=own.size))
    monkeypatch.setattr(s, "to_numpy", (lambda *a, **k: own.copy()) if fresh
                        else (lambda *a, **k: own))
    assert not is_judged(own)
    mark_from_prices(s)
    assert is_judged(own[-100:]) is not fresh


def test_mark_judged_takes_arrays_only() -> None:
    for given in ([0.1, 0.2], (0.1,), pd.Series([0.1, 0.2]), 0.1):
        with pytest.raises(InvalidParameter, match="numpy array"):
            mark_judged(given)  # type: ignore[arg-type]


def test_the_mark_table_holds_under_threads() -> None:
    """Windows of one array marked from 4 threads at once keep every mark (the ranges of an
    owner are merged under the table's lock: without it, 4,352 of 6,400 marks were lost in
    5 such runs), and arrays marked and dropped meanwhile are forgotten."""
    shared = np.zeros(4 * 300 * 4)
    done: list[int] = []

    def work(t: int) -> None:
        rng = np.random.default_rng(t)
        for i in range(300):
            k = (t * 300 + i) * 4
            mark_judged(shared[k:k + 2])  # disjoint windows of one array
            mark_judged(rng.normal(0.0, 0.01, 8))  # dropped at once: ids reused
        done.append(t)

    gc.collect()
    before = len(returns_module._JUDGED)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    gc.collect()
    assert sorted(done) == [0, 1, 2, 3]
    lost = [k for k in range(0, shared.size, 4) if not is_judged(shared[k:k + 2])]
    assert not lost and not is_judged(shared[2:4])
    assert len(returns_module._JUDGED) <= before + 1


def test_the_book_and_the_joint_agent_refuse_a_column_in_one_wording() -> None:
    frame = pd.DataFrame(np.column_stack([np.random.default_rng(4).normal(0, 0.01, 300),
                                          EURGBP]), columns=["SPX", "EURGBP"],
                         index=pd.bdate_range("2020-01-01", periods=300))
    with pytest.raises(InvalidReturns) as book:
        books.check_returns(frame)
    with pytest.raises(InvalidReturns) as joint:
        book_agent_class("NormalInverseWishart")().fit(frame.to_numpy().copy(), seed=0)
    head = "the returns of {} look like prices or rates, not returns: "
    why = moves_like_prices(EURGBP)
    assert str(book.value).startswith(head.format("EURGBP") + f"{why}; read the column")
    assert str(joint.value) == head.format("asset 1") + f"{why}; {TO_RETURNS_HINT}"


def test_a_layout_marked_again_is_kept_as_the_most_recent() -> None:
    """Views too scattered to list as ranges are kept by layout, the most recently marked
    :data:`_MAX_LAYOUTS` of an owner: marking one again makes it the most recent (it was
    dropped first, as the first marked, before)."""
    n = returns_module.MAX_MARKED_RUNS + 1
    keep = returns_module._MAX_LAYOUTS
    base = np.zeros(2 * n + keep + 1)
    views = [base[k:k + 2 * n:2] for k in range(keep + 1)]  # n runs each: by layout only
    for v in views[:keep]:
        mark_judged(v)
    mark_judged(views[0])  # marked again: now the most recent
    mark_judged(views[keep])  # one too many: the one marked longest ago (views[1]) goes
    assert is_judged(views[0]) and not is_judged(views[1])
    assert all(is_judged(v) for v in views[2:])


def _mark_in_child() -> None:
    x = np.zeros(8)
    mark_judged(x[2:])
    if not is_judged(x[3:]) or is_judged(x[:2]):
        raise SystemExit(1)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_marks_while_a_parent_thread_holds_the_table() -> None:
    """A fork copies the table's lock as it is: held by another thread of the parent, the
    child would wait on it for ever; the child starts with a fresh lock."""
    import multiprocessing

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with returns_module._JUDGED_LOCK:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        child = multiprocessing.get_context("fork").Process(target=_mark_in_child)
        child.start()
        child.join(timeout=20)
        if child.is_alive():  # waiting on the copied lock
            child.kill()
            child.join(5)
    finally:
        release.set()
        holder.join(10)
    assert child.exitcode == 0
