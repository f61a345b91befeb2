"""Property-based fuzzing of the book doors: Book, parse_positions, read_book, asset frames,
book_returns, attribution and book_var.

Everywhere: a :class:`~swarmvar.errors.SwarmVarError` with a message, or a correct
result. Any other exception (a raw pandas, numpy or scipy error) fails the property.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmvar
from swarmvar import books
from swarmvar.errors import SwarmVarError
from swarmvar.models.attribution import euler
from swarmvar.models.joint_base import Scenarios
from swarmvar.types import Book

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                    st.text(max_size=5), st.none(), st.booleans())
NAMES = st.one_of(st.text(max_size=6), st.integers(), st.none())


@FUZZ
@given(st.dictionaries(NAMES, NUMBERS, max_size=5))
def test_book_from_anything(positions: dict) -> None:
    try:
        book = Book.from_positions(positions)  # type: ignore[arg-type]
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert all(math.isfinite(p) for p in book.positions) and len(set(book.assets)) == len(
        book.assets)
    assert any(p != 0 for p in book.positions)


@FUZZ
@given(st.dictionaries(st.text(min_size=1, max_size=4), NUMBERS, max_size=4), NUMBERS)
def test_book_from_weights_anything(weights: dict, notional: object) -> None:
    try:
        book = Book.from_weights(weights, notional)  # type: ignore[arg-type]
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert all(math.isfinite(p) for p in book.positions)


@FUZZ
@given(st.text(max_size=40))
def test_parse_positions_anything(text: str) -> None:
    try:
        book = books.parse_positions(text)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert book.assets and all(math.isfinite(p) for p in book.positions)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_read_book_any_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "book.csv"
        path.write_bytes(content)
        try:
            book = books.read_book(path)
        except SwarmVarError as exc:
            assert str(exc)
            return
        assert all(math.isfinite(p) for p in book.positions)


CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                  st.floats(min_value=50, max_value=150))


@FUZZ
@given(st.integers(1, 8), st.integers(1, 3), st.data(), st.sampled_from(["price", "return"]))
def test_asset_frames_anything(rows: int, cols: int, draw: st.DataObject, kind: str) -> None:
    values = draw.draw(st.lists(st.lists(CELLS, min_size=cols, max_size=cols), min_size=rows,
                                max_size=rows))
    index = pd.bdate_range("2020-01-01", periods=rows)
    if draw.draw(st.booleans()):
        index = index[::-1]
    frame = pd.DataFrame(values, index=index, columns=[f"A{j}" for j in range(cols)])
    positions = {f"A{j}": draw.draw(NUMBERS) for j in range(cols)}
    try:
        book = Book.from_positions({**positions, **draw.draw(st.dictionaries(
            st.sampled_from(["A0", "ZZ"]), NUMBERS, max_size=1))})
        out, pos = books.book_returns(frame, book, kind=kind)  # type: ignore[arg-type]
    except SwarmVarError as exc:
        assert str(exc)
        return
    x = out.to_numpy()
    assert np.isfinite(x).all() and np.abs(x).max() <= 1 and out.index.is_monotonic_increasing
    assert pos.shape == (x.shape[1],)


@FUZZ
@given(st.integers(1, 4), st.integers(1, 40), st.data())
def test_euler_anything(n: int, m: int, draw: st.DataObject) -> None:
    r = np.array(draw.draw(st.lists(st.floats(-0.9, 0.9), min_size=2 * m * n,
                                    max_size=2 * m * n))).reshape(2, m, n)
    p = np.array(draw.draw(st.lists(st.one_of(st.floats(-1e7, 1e7), st.just(math.nan)),
                                    min_size=n, max_size=n)))
    alpha = draw.draw(st.one_of(st.floats(0.5, 1.0), st.just(0.99)))
    try:
        (att,) = euler(Scenarios(r, np.full(2, 0.5), None, 1), p, alpha)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert math.isfinite(att.var) and math.isfinite(att.es)
    assert att.es >= att.var - 1e-6 * (1 + abs(att.var))
    assert np.isclose(att.component_es.sum(), att.es, rtol=1e-7, atol=1e-6)
    assert np.isclose(att.component_var.sum(), att.var, rtol=1e-7, atol=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["AAPL", "AMD", "BAC", "NOPE", ""]), NUMBERS,
                       min_size=1, max_size=3),
       st.sampled_from([(0.99,), (0.975, 0.99), (1.5,), ()]), st.integers(-1, 3),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(["AAPL", "XX"]), NUMBERS,
                                            max_size=2)))
def test_book_var_anything(positions: dict, alphas: tuple, horizon: int, trade) -> None:
    frame = _STOCKS
    try:
        book = Book.from_positions(positions)
        res = swarmvar.book_var(frame, book, kind="return", agents=["niw"], alphas=alphas,
                                horizon=horizon, window=100, trade=trade, consensus=False)
    except SwarmVarError as exc:
        assert str(exc)
        return
    for row in res.forecasts:
        for a in res.alphas:
            m = res.measure(row, a)
            assert math.isfinite(m.var) and m.es >= m.var - 1e-6 * (1 + abs(m.var))


_STOCKS = books.load_stocks().iloc[-150:, :3]
