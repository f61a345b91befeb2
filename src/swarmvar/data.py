"""Return series in: bundled real data, user files, portfolios, and validation.

Convention: a *return* in swarmvar is a daily **log return as a fraction**
(0.01 = 1%), ``r_t = log(P_t / P_{t-1})``. Losses, VaR and ES are reported in
the same unit. Everything that enters a model passes :func:`validate` (for
labelled series) or :func:`as_array` (for plain arrays) first, so bad input
is refused at the door with a message naming the first bad row.

The bundled data sets are the ones that ship inside the ``arch`` package
(Yahoo Finance daily Adj Close, 1999-2018); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import warnings
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidParameter, InvalidReturns, SwarmVarError, UnknownDataset

#: A daily log return beyond this (|r| > 1, i.e. a move of -63% / +172%) is
#: treated as a unit mistake, usually percent instead of fractions.
MAX_ABS_RETURN = 1.0
#: A labelled series whose standard deviation exceeds this (10% a day, ~160% a
#: year) is taken for percent: a percent-scaled equity series has sd ~1, far
#: below MAX_ABS_RETURN's reach (the most volatile assets run at ~5% a day).
MAX_DAILY_SD = 0.1
#: Largest file :func:`read` opens (bytes): 50 years of daily rows are ~1 MB.
MAX_FILE_BYTES = 1 << 30

#: What to tell a user about missing values, on the command line and in Python.
DROPNA_HINT = "drop rows with missing values (--dropna on the command line, dropna=True in Python)"
_PERCENT_HINT = "returns are fractions (0.01 = 1%) - if these are percent, divide them by 100"
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")

DATASETS: Mapping[str, str] = {
    "sp500": "S&P 500 index, daily Adj Close 1999-2018 (arch.data.sp500)",
    "nasdaq": "NASDAQ Composite index, daily Adj Close 1999-2018 (arch.data.nasdaq)",
}


def load(name: str) -> pd.Series:
    """Daily log returns of a bundled real data set (``"sp500"`` or ``"nasdaq"``).

    Returns
    -------
    pandas.Series
        Log returns as fractions, indexed by trading date, named ``name``.
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in DATASETS:
        raise UnknownDataset(
            f"no bundled data set {name!r}; choose one of {sorted(DATASETS)} or read a file "
            "with swarmvar.data.read(path)"
        )
    from arch.data import nasdaq, sp500

    prices = (sp500 if key == "sp500" else nasdaq).load()["Adj Close"]
    prices.index = pd.DatetimeIndex(prices.index)
    returns = prices_to_returns(prices)
    returns.name = key
    return returns


def prices_to_returns(prices: pd.Series, *, dropna: bool = False) -> pd.Series:
    """Log returns from a price series, after checking the prices."""
    prices = _check_index(_floats(prices, "price"), what="price", dropna=dropna)
    bad = ~(prices > 0)
    if bad.any():
        first = prices.index[int(np.argmax(bad.to_numpy()))]
        raise InvalidReturns(
            f"price at {first} is {float(prices.loc[first])!r}; prices must be positive. If the "
            "column holds returns, read it as returns (--kind return on the command line, "
            "kind='return' in Python)"
        )
    if not np.all(np.isfinite(prices.to_numpy())):
        first = prices.index[int(np.argmax(~np.isfinite(prices.to_numpy())))]
        raise InvalidReturns(
            f"price at {first} is {float(prices.loc[first])!r}; prices must be finite")
    values = np.log(prices.to_numpy())
    returns = pd.Series(np.diff(values), index=prices.index[1:], name=prices.name)
    return returns


def read(
    path: str | Path,
    column: str | None = None,
    *,
    kind: Literal["price", "return"] = "price",
    dropna: bool = False,
    min_obs: int = 2,
) -> pd.Series:
    """Read a return series from a CSV or Parquet file.

    The first column (or a column named ``date``/``Date``) is taken as the date
    index: dates as text (``2024-01-31``) or whole numbers ``YYYYMMDD``; other
    numbers are refused (they are not dates). ``column`` picks the value
    column; it may be omitted when the file has exactly one numeric column.
    ``kind="price"`` turns prices into log returns; ``kind="return"`` takes the
    values as log returns (fractions). Missing values raise
    :class:`InvalidReturns` unless ``dropna=True``. CSV files may be gzipped
    (``.gz``) and UTF-8 or UTF-16 with a byte-order mark.

    Raises
    ------
    InvalidReturns
        Naming the file and what is wrong with it: missing, a directory,
        empty, not a table (binary, corrupt, truncated), no rows, no usable
        date or value column, bad values (see :func:`validate`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameter(f"path must be a file path (str or Path), not {path!r}")
    if column is not None and not isinstance(column, str):
        raise InvalidParameter(f"column must be a column name (str) or None, not {column!r}")
    if kind not in ("price", "return"):
        raise InvalidReturns(
            f"kind must be 'price' or 'return', not {kind!r} (--kind on the command line)")
    if not isinstance(dropna, (bool, np.bool_)):
        raise InvalidParameter(f"dropna must be True or False, not {dropna!r}")
    min_obs = _whole("min_obs", min_obs, 1)
    p = Path(path)
    frame = _read_table(p)
    with naming(p.name, "a return series"):
        frame = _date_indexed(frame, p.name)
        series = _pick_column(frame, column, p.name)
        if kind == "price":
            return validate(prices_to_returns(series, dropna=dropna), min_obs=min_obs,
                            from_prices=True)
        return validate(series, dropna=dropna, min_obs=min_obs)


@contextlib.contextmanager
def naming(name: str, what: str) -> Iterator[None]:
    """Every error raised inside names the file ``name`` (once); pandas' own errors
    (``TypeError``, ``ValueError``, ...) become an :class:`InvalidReturns` saying the file
    cannot be read as ``what``."""
    try:
        yield
    except SwarmVarError as exc:
        if name in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from exc
    except (TypeError, ValueError, OverflowError, KeyError, IndexError) as exc:
        raise InvalidReturns(f"{name}: cannot be read as {what} ({exc})") from exc


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a date-indexed table of asset returns from a CSV or Parquet file.

    The file layout is :func:`read`'s: the first column (or one named
    ``date``) holds the dates - text such as ``2024-01-31`` or whole numbers
    ``YYYYMMDD`` - and every other column is one asset's (or portfolio's)
    daily log returns as fractions. The file itself is checked as
    :func:`read` checks it: size, encoding (UTF-8, or UTF-16 with its
    byte-order mark), NUL bytes, emptiness, rows with more fields than the
    header, dates that do not parse, a row without a date, numbers that are
    not ``YYYYMMDD``, text dates whose day/month order cannot be settled
    (see :func:`check_dates`), and cells that are not numbers (text,
    true/false).

    The *rows* are not judged: a blank or NaN cell, inf, a return beyond
    ``|r| <= 1``, a date not after the one before it or a duplicate date stay
    in the table, for the caller to refuse row by row (``swarmvar run``
    refuses such a tick, ledgers it and goes on; :func:`validate` and
    :func:`portfolio` refuse the series).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``/``.txt`` (optionally ``.gz``) or ``.parquet``/``.pq`` file.

    Returns
    -------
    pandas.DataFrame
        Shape ``(T, N)``, float64 log returns (fractions, NaN where a cell
        is blank), indexed by a ``DatetimeIndex`` in file order, one column
        per asset named as in the file (as ``str``).

    Raises
    ------
    InvalidParameter
        ``path`` is not a path.
    InvalidReturns
        Naming the file and what is wrong with it (see above).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameter(f"path must be a file path (str or Path), not {path!r}")
    p = Path(path)
    frame = _read_table(p)
    with naming(p.name, "a table of returns"):
        frame = _date_indexed(frame, p.name)
        if frame.index.isna().any():
            raise InvalidReturns(f"{p.name}: no date at row {int(np.argmax(frame.index.isna()))};"
                                 " every row needs a date")
        if frame.shape[1] == 0:
            raise InvalidReturns(f"{p.name} has a date column but no value column; give one "
                                 "column of returns per asset")
        names = [str(c) for c in frame.columns]  # repeated names refused by _read_table
        frame.columns = pd.Index(names)
        columns = {c: _number_cells(frame.iloc[:, j], c, p.name) for j, c in enumerate(names)}
        out = pd.DataFrame(columns, index=frame.index)
        return out


def _number_cells(col: pd.Series, name: str, source: str) -> pd.Series:
    """One value column as float64: blanks and NaN kept as NaN, text and true/false refused."""
    if pd.api.types.is_bool_dtype(col.dtype):
        raise InvalidReturns(f"{source}: column {name!r} holds true/false values, not returns")
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(col.dtype):
        return col.astype(np.float64)
    cells = col.astype(object)
    blank = cells.map(lambda v: v is None or (isinstance(v, str) and not v.strip())
                      or (isinstance(v, float) and v != v))
    flags = cells.map(lambda v: isinstance(v, (bool, np.bool_)))
    values = pd.to_numeric(cells.where(~blank & ~flags), errors="coerce")
    text = (values.isna() & ~blank) | flags
    if text.any():
        i = int(np.argmax(text.to_numpy()))
        raise InvalidReturns(
            f"{source}: {cells.iloc[i]!r} at {col.index[i]} (row {i}) in column {name!r} is not "
            "a number; write returns as numbers such as 0.0123 (leave a cell blank for a "
            "missing return)")
    return values.astype(np.float64)


def _read_table(p: Path) -> pd.DataFrame:
    """The table in a CSV or Parquet file; every failure an :class:`InvalidReturns` naming it."""
    try:
        if not p.exists():
            raise InvalidReturns(f"no such file: {p}")
        if p.is_dir():
            raise InvalidReturns(f"{p} is a directory; give a CSV or Parquet file")
        size = p.stat().st_size
    except OSError as exc:  # a path too long, a component that is a file, no permission
        raise InvalidReturns(f"{p}: cannot be opened ({exc.strerror or exc})") from exc
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".gz"):
        raise InvalidReturns(f"{p.name}: unknown file type {suffix!r}; use .csv or .parquet")
    if size == 0:
        raise InvalidReturns(f"{p.name} is empty (0 bytes); it needs a header row and data rows")
    if size > MAX_FILE_BYTES:
        raise InvalidReturns(
            f"{p.name} is {size / 2**30:.1f} GiB, beyond the {MAX_FILE_BYTES / 2**30:.0f} GiB "
            "swarmvar reads; keep the columns and rows you need in a smaller file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mixed-type columns: the checks below judge them
            if suffix in (".parquet", ".pq"):
                frame = pd.read_parquet(p)
                names = [str(c) for c in frame.columns]
            else:
                encoding = _encoding(p, suffix)
                frame = pd.read_csv(p, encoding=encoding, encoding_errors="strict")
                # the header as written: read_csv renames a repeated "a" to "a.1"
                names = pd.read_csv(p, encoding=encoding, header=None, nrows=1, dtype=str,
                                    keep_default_na=False).iloc[0].tolist()
                if not isinstance(frame.index, pd.RangeIndex):  # pandas' implicit index column
                    raise InvalidReturns(
                        f"{p.name} has more fields in every row than names in its header "
                        f"({', '.join(map(str, frame.columns))}); name every column in the "
                        "header, the date column too (date,...)")
    except InvalidReturns:
        raise
    except UnicodeError as exc:
        raise InvalidReturns(
            f"{p.name} is not UTF-8 or UTF-16 text (byte {getattr(exc, 'start', '?')} does not "
            "decode); is it binary? Save it as a UTF-8 CSV file") from exc
    except pd.errors.EmptyDataError as exc:
        raise InvalidReturns(f"{p.name} has no columns; it needs a header row and data "
                             "rows") from exc
    except pd.errors.ParserError as exc:
        raise InvalidReturns(
            f"{p.name} is not a well-formed CSV table ({_first_line(exc)}); every row needs "
            "as many fields as the header") from exc
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise InvalidReturns(
            f"{p.name} cannot be read ({_first_line(exc)}); is it truncated, or not the "
            f"{_KINDS.get(suffix, 'CSV')} file its name says?") from exc
    except Exception as exc:  # pyarrow's ArrowException family, pandas' own errors
        if isinstance(exc, MemoryError):
            raise
        raise InvalidReturns(
            f"{p.name} cannot be read as a table ({type(exc).__name__}: {_first_line(exc)}); "
            "is it corrupt or truncated?") from exc
    twice = sorted({c for c in names if c and names.count(c) > 1})
    if twice:
        raise InvalidReturns(f"{p.name}: column(s) {twice} appear more than once in the header; "
                             "give each column its own name")
    if frame.shape[1] < 2 and not isinstance(frame.index, pd.DatetimeIndex):
        raise InvalidReturns(
            f"{p.name} has {frame.shape[1]} column(s); it needs a date column and a value column, "
            "separated by commas")
    if len(frame) == 0:
        raise InvalidReturns(f"{p.name} has a header but no data rows")
    return frame


_KINDS = {".parquet": "Parquet", ".pq": "Parquet", ".gz": "gzip"}


def _encoding(p: Path, suffix: str) -> str:
    """UTF-16 when the file starts with its byte-order mark, UTF-8 otherwise."""
    if suffix == ".gz":
        return "utf-8"
    with p.open("rb") as handle:
        head = handle.read(3)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    with p.open("rb") as handle:
        if b"\x00" in handle.read(1 << 16):
            raise InvalidReturns(
                f"{p.name} holds NUL bytes: it is binary, or UTF-16 text without a byte-order "
                "mark; save it as a UTF-8 CSV file")
    return "utf-8-sig" if head == b"\xef\xbb\xbf" else "utf-8"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _whole(label: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise InvalidParameter(f"{label} must be a whole number >= {least}, not {value!r}")
    return int(value)


def _date_indexed(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    date_names = ("date", "datetime", "time", "timestamp")
    names = [c for c in frame.columns if str(c).lower() in date_names]
    date_col = names[0] if names else frame.columns[0]
    index = _as_dates(frame[date_col], f"{source}: column {date_col!r}")
    return frame.drop(columns=[date_col]).set_index(index)


def _as_dates(values: pd.Series | pd.Index, what: str) -> pd.DatetimeIndex:
    """Dates from text, datetimes or ``YYYYMMDD`` whole numbers; never numbers as nanoseconds.

    Parameters
    ----------
    values : pandas.Series or pandas.Index
        A date column or index ``(T,)``.
    what : str
        What the values are, for the message (``"the return index"``).

    Returns
    -------
    pandas.DatetimeIndex
        ``(T,)``, in the given order (sorting and duplicates are the caller's).

    Raises
    ------
    InvalidReturns
        Numbers that are not ``YYYYMMDD``, text that is not dates, a missing
        date, or ``a/b/yyyy`` text whose order is not one per column: values
        of both orders (``13/01/2020`` and ``01/13/2020``), or days and months
        all 12 or less (the two readings differ: write ISO dates). One value
        with a field above 12 settles the order of the whole column.
    """
    if isinstance(values, pd.DatetimeIndex):
        return values
    col = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        index = pd.DatetimeIndex(col)
    else:
        numeric = pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(
            col.dtype) or bool(col.dropna().astype(str).str.fullmatch(_NUMBER.pattern).all())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # format inference: the checks below judge it
                if numeric:
                    index = _yyyymmdd(col, what)
                else:
                    index = pd.DatetimeIndex(pd.to_datetime(_month_first(col, what),
                                                            format="mixed"))
        except InvalidReturns:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidReturns(
                f"{what} does not parse as dates ({_first_line(exc)}); put dates such as "
                "2024-01-31 in the first column") from exc
    if index.isna().any():
        i = int(np.argmax(index.isna()))
        raise InvalidReturns(f"{what} has no date at row {i}; every row needs a date")
    return index


#: ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (``/``, ``.`` or ``-``; a 2-digit year too): day and
#: month can only be told apart by a value above 12.
_DAY_MONTH = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)"


def _month_first(col: pd.Series, what: str) -> pd.Series:
    """Text dates with the day/month order settled once for the whole column, month-first.

    ``a/b/yyyy`` text has two readings. One value with ``a > 12`` (``13/01/2020``)
    settles the column as day-first, one with ``b > 12`` as month-first; a
    column holding both is corrupt, and one where every ``a`` and ``b`` is 12
    or less (with ``a != b`` somewhere) cannot be settled: both are refused.
    A day-first column is returned with day and month swapped in every such
    value, so that the one month-first parse of :func:`_as_dates` reads each
    value as the column means it (never value by value). ISO dates, ``YYYYMMDD``
    and other text without the ``a/b/yyyy`` form are returned unchanged.

    Parameters
    ----------
    col : pandas.Series
        ``(T,)`` date text (missing values allowed).
    what : str
        What the values are, for the message.

    Returns
    -------
    pandas.Series
        ``(T,)`` ``str``, the same rows (missing values as pandas writes them).

    Raises
    ------
    InvalidReturns
        Both orders in one column, naming one value of each; or no value to
        settle the order, naming a value and both of its readings.
    """
    rows = np.flatnonzero(col.notna().to_numpy())
    text = col.astype(str)
    parts = text.iloc[rows].str.extract(_DAY_MONTH)
    found = np.flatnonzero(parts[0].notna().to_numpy())
    if found.size == 0:
        return text
    first = parts[0].to_numpy()[found].astype(int)
    second = parts[2].to_numpy()[found].astype(int)
    day_first = (first > 12) & (second <= 12)  # only a day can be above 12
    month_first = (second > 12) & (first <= 12)
    if day_first.any() and month_first.any():
        d = int(rows[found[int(np.argmax(day_first))]])
        m = int(rows[found[int(np.argmax(month_first))]])
        raise InvalidReturns(
            f"{what}: the dates mix two orders - {text.iloc[d]!r} (row {d}) can only be "
            f"day-first (dd/mm) and {text.iloc[m]!r} (row {m}) only month-first (mm/dd); a "
            "column holds one order, so this one is corrupt: write the dates as ISO dates, "
            "year-month-day")
    if day_first.any():
        return text.str.replace(_DAY_MONTH, r"\3\2\1\2\4", regex=True)
    if month_first.any():
        return text
    differ = first != second
    if not differ.any():  # 01/01/2020, 02/02/2020: one reading
        return text
    k = int(rows[found[int(np.argmax(differ))]])
    value = text.iloc[k]
    a, sep, b, year = parts.iloc[int(found[int(np.argmax(differ))])]
    readings = [pd.Timestamp(pd.to_datetime(f"{m}{sep}{d}{sep}{year}", format="mixed")).date()
                for m, d in ((a, b), (b, a))]
    raise InvalidReturns(
        f"{what}: the dates are ambiguous - {value!r} (row {k}) reads as {readings[0]} "
        f"month-first and as {readings[1]} day-first, and no date in the column has a day or "
        "month above 12 to tell which; write the dates as ISO dates, year-month-day "
        f"({readings[1]} or {readings[0]})")


def _yyyymmdd(col: pd.Series, what: str) -> pd.DatetimeIndex:
    numbers = pd.to_numeric(col, errors="coerce")
    ok = numbers.notna().all() and bool((numbers == np.floor(numbers)).all()) and bool(
        numbers.between(1000_01_01, 9999_12_31).all())
    if not ok:
        raise InvalidReturns(
            f"{what} holds numbers such as {col.iloc[0]}, not dates; put dates such as "
            "2024-01-31 (or whole numbers YYYYMMDD) in the first column")
    return pd.DatetimeIndex(pd.to_datetime(numbers.astype(np.int64).astype(str), format="%Y%m%d"))


def _pick_column(frame: pd.DataFrame, column: str | None, source: str) -> pd.Series:
    if column is not None:
        if column not in frame.columns:
            raise InvalidReturns(
                f"{source}: no column {column!r}; columns are {list(map(str, frame.columns))}"
            )
        series = frame[column]  # one column: repeated names refused by _read_table
    elif frame.shape[1] == 1:  # the one value column, numbers or not (checked below)
        series = frame[frame.columns[0]]
    else:
        numeric = frame.select_dtypes("number").columns
        if len(numeric) != 1:
            raise InvalidReturns(
                f"{source}: {len(numeric)} numeric columns ({list(map(str, numeric))}); "
                "name the value column (--column on the command line, column=... in Python)"
            )
        series = frame[numeric[0]]
    return _number_cells(series, str(series.name), source).rename(str(series.name))


def _floats(series: pd.Series, what: str) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise InvalidParameter(f"expected a pandas Series of {what}s, not {type(series).__name__}")
    try:
        return series.astype(float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidReturns(f"the {what}s are not numbers ({_first_line(exc)})") from exc


def check_dates(index: pd.Index, what: str) -> pd.DatetimeIndex:
    """A series' or frame's index as increasing dates, one row per date.

    Parameters
    ----------
    index : pandas.Index
        ``(T,)`` dates, or text / ``YYYYMMDD`` numbers read as dates (never numbers as
        nanoseconds). ``a/b/yyyy`` text is read in one order for the whole index:
        day-first if some ``a`` exceeds 12, month-first if some ``b`` does;
        both, or neither (with ``a != b`` somewhere), is refused.
    what : str
        What the rows hold, for the message (``"return"``, ``"price"``).

    Returns
    -------
    pandas.DatetimeIndex
        ``(T,)``, the same dates.

    Raises
    ------
    InvalidReturns
        A value that is not a date, a missing date, a repeated date, dates
        not increasing, or text dates of no one day/month order.
    """
    if not isinstance(index, pd.DatetimeIndex):
        index = _as_dates(index, f"the {what} index")
    if index.isna().any():
        raise InvalidReturns(
            f"the {what} index has no date at row {int(np.argmax(index.isna()))}; every row "
            "needs a date")
    dup = index.duplicated()
    if dup.any():
        raise InvalidReturns(
            f"date {index[int(np.argmax(dup))]} appears twice; remove duplicate rows"
        )
    steps = np.diff(index.asi8)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise InvalidReturns(
            f"dates are not increasing at row {i} ({index[i - 1]} then {index[i]}); "
            "sort the series by date")
    return index


def _check_index(series: pd.Series, *, what: str, dropna: bool) -> pd.Series:
    if not isinstance(series.index, pd.DatetimeIndex):
        series = series.copy()
    series.index = check_dates(series.index, what)
    missing = series.isna()
    if missing.any():
        if dropna:
            series = series[~missing]
        else:
            first = series.index[int(np.argmax(missing.to_numpy()))]
            raise InvalidReturns(f"{what} at {first} is missing (NaN); {DROPNA_HINT}")
    return series


def validate(
    returns: pd.Series,
    *,
    min_obs: int = 2,
    dropna: bool = False,
    max_abs: float = MAX_ABS_RETURN,
    max_sd: float = MAX_DAILY_SD,
    from_prices: bool = False,
) -> pd.Series:
    """Check a labelled return series and return it as float64.

    Refuses an index that is not dates (numbers are not read as dates), NaN
    (unless ``dropna``), inf, duplicate or non-increasing dates, fewer than
    ``min_obs`` observations, and two signs of percent instead of fractions:
    ``|r| > max_abs`` or a standard deviation above ``max_sd`` (10% a day).
    ``from_prices`` adds to that message that a price column may hold returns.
    """
    series = _check_index(_floats(returns, "return"), what="return", dropna=dropna)
    x = as_array(series.to_numpy(), min_obs=min_obs, max_abs=max_abs, labels=series.index)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    if sd > max_sd:
        extra = ("; if the column holds returns rather than prices, read it as returns (--kind "
                 "return on the command line, kind='return' in Python)") if from_prices else ""
        raise InvalidReturns(
            f"the returns' standard deviation is {sd:.3g} ({sd:.1%} a day), beyond {max_sd:g}; "
            f"{_PERCENT_HINT}{extra}")
    return series


def as_array(
    returns: ArrayLike | pd.Series,
    *,
    min_obs: int = 1,
    max_abs: float = MAX_ABS_RETURN,
    labels: pd.Index | None = None,
    who: str = "this model",
) -> NDArray[np.float64]:
    """A validated 1-D float64 copy of ``returns`` for the models.

    Raises :class:`InvalidReturns` naming the first bad row for NaN, inf,
    implausible magnitudes, wrong shape, or fewer than ``min_obs`` values.
    """
    if isinstance(returns, pd.Series):
        labels = returns.index if labels is None else labels
        returns = returns.to_numpy()
    refuse_non_numbers(returns, who=who, missing_ok=True)  # "0.01", True: not returns
    try:
        x = np.array(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidReturns(f"returns are not numbers: {exc}") from exc
    if x.ndim != 1:
        raise InvalidReturns(
            f"returns must be one series (1-D); got shape {x.shape}. "
            "For several assets build a portfolio with swarmvar.data.portfolio"
        )

    def where(i: int) -> str:
        return f"row {i} ({labels[i]})" if labels is not None else f"row {i}"

    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidReturns(
            f"return at {where(i)} is {float(x[i])!r}; returns must be finite numbers - "
            f"{DROPNA_HINT}, or fill it"
        )
    big = np.abs(x) > max_abs
    if big.any():
        i = int(np.argmax(big))
        raise InvalidReturns(
            f"return at {where(i)} is {float(x[i])!r}, beyond |r| <= {max_abs:g}; {_PERCENT_HINT}"
        )
    if x.size < min_obs:
        raise InvalidReturns(
            f"{x.size} returns, but {who} needs at least {min_obs}; give a longer history"
        )
    return x


#: numpy kinds of real numbers: float, signed and unsigned int (bool ``b`` is not one).
_REAL_KINDS = frozenset("fiu")


# ``infer_dtype`` of object cells that are all real numbers (not bools: "boolean",
# "mixed"); with ``skipna`` None/NA/NaN are skipped, "empty" when nothing is left
_NUMBER_KINDS = frozenset({"floating", "integer", "mixed-integer-float", "empty"})


def refuse_non_numbers(returns: object, *, who: str = "this model",
                       missing_ok: bool = False) -> None:
    """Refuse returns given as text, true/false, None or other non-numbers (one shared check).

    ``np.array(x, dtype=float)`` turns ``"0.01"`` into 0.01 and ``True`` into
    1.0; a row of strings or flags is a caller's mistake, not a return. Float
    and integer arrays pass untouched (the numbers are not converted here).
    Nested lists are looked at element by element, so a ragged list names the
    list it found where a number belongs. Used at the joint agents' boundary
    (:func:`swarmvar.models.joint_base.check_matrix`) and for asset frames
    (:func:`swarmvar.books.check_frame`).

    Parameters
    ----------
    returns : array_like, pandas.DataFrame or pandas.Series
        Returns of any shape, e.g. a row ``(N,)`` or a matrix ``(T, N)``.
    who : str
        The model or table named in the message.
    missing_ok : bool
        Let ``None`` and ``pandas.NA`` through as missing values (a frame's
        gaps, judged by its own NaN rule), not as non-numbers.

    Raises
    ------
    InvalidReturns
        Naming the first offending value, its type and its position.
    """
    if isinstance(returns, np.ndarray):
        arr = returns
    elif hasattr(returns, "to_numpy") and callable(returns.to_numpy):  # pandas
        arr = np.asarray(returns.to_numpy())
    else:
        try:
            arr = np.array(returns, dtype=object)
        except (TypeError, ValueError):
            return  # np.array(dtype=float) refuses it next, with numpy's reason
    if arr.dtype.kind in _REAL_KINDS:
        return
    if arr.dtype.kind == "O":
        flat = arr.reshape(-1)
        if pd.api.types.infer_dtype(flat, skipna=missing_ok) in _NUMBER_KINDS:
            return  # pandas' C scan; the loop below only names the offending cell
        k = next((i for i, v in enumerate(flat) if isinstance(v, (bool, np.bool_))
                  or not (isinstance(v, numbers.Real) or missing_ok and (v is None
                                                                          or v is pd.NA))),
                 None)
        if k is None:
            return
        value: Any = flat[k]
        where = f" at {tuple(int(i) for i in np.unravel_index(k, arr.shape))}" if arr.ndim else ""
    else:
        value = arr.reshape(-1)[0] if arr.size else arr.dtype
        where = ""
    flag = arr.dtype.kind == "b" or isinstance(value, (bool, np.bool_))
    text = arr.dtype.kind in "US" or isinstance(value, (str, bytes))
    kind = ("true/false" if flag else "str" if text
            else type(value).__name__ if arr.dtype.kind == "O" else f"{arr.dtype} values")
    hint = ("convert text with float(...) or pandas.to_numeric first" if text
            else "a return is a log return as a fraction (0.01 = 1%), not a flag" if flag
            else "give a row of floats, one per asset, or a (days, assets) matrix of them")
    shown = repr(value.item() if isinstance(value, np.generic) else value)[:60]
    raise InvalidReturns(
        f"{who}: {'asset ' if arr.ndim > 1 else ''}returns must be numbers (floats), not "
        f"{kind}: {shown}{where}; {hint}")


def portfolio(
    returns: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    positions: Mapping[str, float] | None = None,
    dropna: bool = False,
) -> pd.Series:
    """Portfolio log returns from asset log returns.

    Give either ``weights`` (fractions of value, rebalanced every period; they
    need not sum to one for a levered or hedged book, but must not sum to 0) or
    ``positions`` (currency amounts per asset, negative for shorts). With
    positions the series carries the notional in ``series.attrs["notional"]``
    so that VaR can be stated in currency.

    The portfolio's simple return is ``sum_i w_i (exp(r_i) - 1)``; the result
    is its log, so it stays in swarmvar's unit.
    """
    if not isinstance(returns, pd.DataFrame):
        raise InvalidParameter(
            f"returns must be a pandas DataFrame of asset returns (one column per asset), not "
            f"{type(returns).__name__}")
    if (weights is None) == (positions is None):
        raise InvalidReturns("give exactly one of weights=... or positions=...")
    book = weights if weights is not None else positions
    if not isinstance(book, Mapping):
        raise InvalidParameter(
            f"weights/positions must map asset names to numbers, not {type(book).__name__}")
    given = dict(book)
    if returns.columns.has_duplicates:
        twice = sorted({str(c) for c in returns.columns[returns.columns.duplicated()]})
        raise InvalidReturns(f"asset columns {twice} appear twice; give each asset one column")
    bad_names = [k for k in given if not isinstance(k, str)]
    if bad_names:
        raise InvalidParameter(f"asset names must be strings, not {bad_names[0]!r}")
    if not all(isinstance(c, str) for c in returns.columns):
        returns = returns.rename(columns=str)
    unknown = sorted(set(given) - set(map(str, returns.columns)))
    if unknown:
        raise InvalidReturns(
            f"no asset column for {unknown}; columns are {list(map(str, returns.columns))}"
        )
    if not given:
        raise InvalidReturns("the portfolio has no assets")
    cols = list(given)
    values = [given[c] for c in cols]
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               for v in values):
        raise InvalidParameter(f"weights/positions must be numbers, got {values}")
    vec = np.array(values, dtype=float)
    if not np.all(np.isfinite(vec)) or np.any(np.abs(vec) > 1e15):
        raise InvalidReturns("weights/positions must be finite numbers (below 1e15 in size)")
    total = float(vec.sum())
    if abs(total) < 1e-12 * max(1.0, float(np.abs(vec).max())):
        raise InvalidReturns("weights/positions sum to zero; the portfolio has no net value")
    w = vec / total if positions is not None else vec
    frame = returns[cols].copy()
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame.index = _as_dates(frame.index, "the return index")
    for c in cols:
        validate(frame[c], dropna=dropna)  # names the bad column's first bad row
    frame = frame.astype(float)
    if dropna:
        frame = frame.dropna()
    if len(frame) == 0:
        raise InvalidReturns("no date has every asset's return; give overlapping histories")
    with np.errstate(over="ignore", invalid="ignore"):
        simple = np.expm1(frame.to_numpy()) @ w
    if not np.all(np.isfinite(simple)):
        raise InvalidReturns("the weights/positions are so large that the portfolio return "
                             "overflows; scale them down")
    if np.any(simple <= -1):
        i = int(np.argmax(simple <= -1))
        raise InvalidReturns(f"portfolio loses all its value at {frame.index[i]}")
    out = pd.Series(np.log1p(simple), index=frame.index, name="portfolio")
    if positions is not None:
        out.attrs["notional"] = total
    return validate(out)
