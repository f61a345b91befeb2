"""Property-based fuzzing of the data door: ``data.read``, ``data.load``, ``data.portfolio``.

The single assertion everywhere: a :class:`~swarmvar.errors.SwarmVarError`,
or a correct result (a float64 series of finite fractions on increasing,
unique dates). Any other exception - a raw pandas, pyarrow, gzip, OS or
Unicode error - fails the property.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar import data
from swarmvar.errors import SwarmVarError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _correct(series: pd.Series) -> None:
    assert isinstance(series, pd.Series) and series.dtype == np.float64
    assert isinstance(series.index, pd.DatetimeIndex) and len(series) >= 2
    assert series.index.is_monotonic_increasing and series.index.is_unique
    assert not series.index.isna().any()
    x = series.to_numpy()
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= data.MAX_ABS_RETURN)
    assert x.std(ddof=1) <= data.MAX_DAILY_SD
    assert series.index.min() >= pd.Timestamp("1000-01-01")  # never nanoseconds since 1970


def _read(name: str, content: bytes, **kwargs: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            series = data.read(path, **kwargs)  # type: ignore[arg-type]
        except SwarmVarError as exc:
            assert str(exc)  # a message, naming something
            return
        _correct(series)


SUFFIXES = st.sampled_from(["a.csv", "a.txt", "a.gz", "a.parquet", "a.pq", "a.csv.gz"])
KINDS = st.sampled_from(["price", "return"])

cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["", "NaN", "n/a", "abc", "2020-01-01", "20200101", "1e309", "-0", "\"",
                     "2020-02-30", "0x10", "1,5", "\t", "2020-01-01T00:00:00+05:00", "True"]),
    st.text(max_size=8),
)


@st.composite
def csv_text(draw: st.DrawFn) -> bytes:
    """CSV-like text: a header and rows of cells, sometimes ragged, sometimes well-formed."""
    ncol = draw(st.integers(0, 4))
    header = ",".join(draw(st.lists(st.sampled_from(["Date", "date", "P", "r", "", "x", "Date"]),
                                    min_size=ncol, max_size=ncol)))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=5), max_size=12))
    text = "\n".join([header, *(",".join(r) for r in rows)])
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-16-le", "latin-1", "utf-8-sig"]))
    return text.encode(encoding, errors="replace")


@st.composite
def plausible_csv(draw: st.DrawFn) -> bytes:
    """A well-formed date/value table, its values and dates fuzzed."""
    n = draw(st.integers(1, 40))
    start = draw(st.dates(min_value=pd.Timestamp("1900-01-01").date(),
                          max_value=pd.Timestamp("2100-01-01").date()))
    days = pd.date_range(start, periods=n, freq=draw(st.sampled_from(["D", "B", "-1D"])))
    values = draw(st.lists(st.one_of(st.floats(-2.0, 200.0), st.just(float("nan"))), min_size=n,
                                  max_size=n))
    dates = draw(st.sampled_from(["iso", "int", "ymd", "mixed"]))
    if dates == "iso":
        col = [d.strftime("%Y-%m-%d") for d in days]
    elif dates == "int":
        col = [str(i) for i in range(n)]
    elif dates == "ymd":
        col = [d.strftime("%Y%m%d") for d in days]
    else:
        col = [d.strftime("%d/%m/%Y") if i % 2 else d.strftime("%Y-%m-%d")
               for i, d in enumerate(days)]
    return pd.DataFrame({"Date": col, "P": values}).to_csv(index=False).encode()


@FUZZ
@given(SUFFIXES, st.binary(max_size=2000), KINDS)
def test_read_of_arbitrary_bytes(name: str, content: bytes, kind: str) -> None:
    _read(name, content, kind=kind)


@FUZZ
@given(st.sampled_from(["a.csv", "a.txt"]), csv_text(), KINDS, st.booleans())
def test_read_of_csv_like_text(name: str, content: bytes, kind: str, dropna: bool) -> None:
    _read(name, content, kind=kind, dropna=dropna)


@FUZZ
@given(plausible_csv(), KINDS, st.booleans(), st.booleans())
def test_read_of_plausible_tables_gzipped_or_not(content: bytes, kind: str, dropna: bool,
                                                 zipped: bool) -> None:
    if zipped:
        _read("a.csv.gz", gzip.compress(content), kind=kind, dropna=dropna)
    else:
        _read("a.csv", content, kind=kind, dropna=dropna)


@st.composite
def damaged_parquet(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 30))
    frame = pd.DataFrame({"Date": pd.bdate_range("2020-01-01", periods=n),
                          "P": np.linspace(100.0, 110.0, n)})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.parquet"
        frame.to_parquet(path)
        raw = bytearray(path.read_bytes())
    how = draw(st.sampled_from(["truncate", "flip", "none"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(raw)


@FUZZ
@given(damaged_parquet(), KINDS)
def test_read_of_truncated_or_bit_flipped_parquet(content: bytes, kind: str) -> None:
    _read("a.parquet", content, kind=kind)


@FUZZ
@given(st.one_of(st.text(max_size=12), st.none(), st.integers(), st.binary(max_size=4),
                 st.sampled_from(["sp500", "NASDAQ", "Sp500 "])))
def test_load_of_any_name(name: object) -> None:
    try:
        series = data.load(name)  # type: ignore[arg-type]
    except SwarmVarError:
        return
    _correct(series)


weights_value = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30,
                          10**30), st.none(), st.text(max_size=3), st.booleans())


@FUZZ
@given(
    st.lists(st.lists(st.one_of(st.floats(-1.5, 1.5), st.just(float("nan"))), min_size=3,
                      max_size=3),
             min_size=0, max_size=12),
    st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), weights_value, max_size=4),
    st.booleans(), st.booleans(), st.sampled_from(["dates", "range", "strings"]),
)
def test_portfolio_of_fuzzed_frames_and_books(rows: list[list[float]], book: dict[str, object],
                                              positions: bool, dropna: bool, index: str) -> None:
    n = len(rows)
    idx: pd.Index = (pd.bdate_range("2020-01-01", periods=n) if index == "dates"
                     else pd.RangeIndex(n) if index == "range"
                     else pd.Index([f"2020-01-{i + 1:02d}" for i in range(n)]))
    frame = pd.DataFrame(rows or None, columns=["A", "B", "C"], index=idx)
    kwargs = {"positions" if positions else "weights": book}
    try:
        series = data.portfolio(frame, dropna=dropna, **kwargs)  # type: ignore[arg-type]
    except SwarmVarError:
        return
    assert isinstance(series.index, pd.DatetimeIndex) and series.index.is_monotonic_increasing
    x = series.to_numpy()
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= data.MAX_ABS_RETURN)
    # the definition: log of the weighted simple returns
    vec = np.array([float(book[c]) for c in book])  # type: ignore[arg-type]
    w = vec / vec.sum() if positions else vec
    simple = np.expm1(frame.loc[:, list(book)].dropna().to_numpy(dtype=float)) @ w
    np.testing.assert_allclose(x, np.log1p(simple), rtol=1e-9, atol=1e-15)
