"""Dates of a return series: text, datetimes or ``YYYYMMDD`` numbers, read one way.

Text ``a/b/yyyy`` dates are read in one day/month order for the whole column
(:func:`_month_first`); :func:`check_dates` is the one rule of a series' or a
frame's index (no missing date, no repeat, increasing).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import InvalidReturns

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def when(label: object) -> str:
    """A row's label for a message: a date at midnight as ``2016-08-12`` (no ``00:00:00``),
    any other label as it prints."""
    if isinstance(label, pd.Timestamp) and not pd.isna(label) and label == label.normalize():
        return str(label.date()) if label.tz is None else f"{label.date()} ({label.tz})"
    return str(label)


#: Names the row at 0-based position ``i`` of a series or file for a message.
RowName = Callable[[int], str]


def row_name(i: int) -> str:
    """The default :data:`RowName`: ``row N``, counted from 1 (the first row of data)."""
    return f"row {i + 1}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _as_dates(values: pd.Series | pd.Index, what: str,
              where: RowName = row_name) -> pd.DatetimeIndex:
    """Dates from text, datetimes or ``YYYYMMDD`` whole numbers; never numbers as nanoseconds.

    Parameters
    ----------
    values : pandas.Series or pandas.Index
        A date column or index ``(T,)``.
    what : str
        What the values are, for the message (``"the return index"``).
    where : callable
        Names the value at 0-based position ``i`` in a message: ``row N`` from 1 by
        default, a file's ``line N`` for a file's column.

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
                    index = pd.DatetimeIndex(pd.to_datetime(_month_first(col, what, where),
                                                            format="mixed"))
        except InvalidReturns:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidReturns(
                f"{what} does not parse as dates ({_first_line(exc)}); put dates such as "
                "2024-01-31 in the first column") from exc
    if index.isna().any():
        i = int(np.argmax(index.isna()))
        raise InvalidReturns(f"{what} has no date at {where(i)}; every row needs a date")
    return index


#: ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (``/``, ``.`` or ``-``; a 2-digit year too): day and
#: month can only be told apart by a value above 12.
_DAY_MONTH = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)"


def _month_first(col: pd.Series, what: str, where: RowName = row_name) -> pd.Series:
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
    where : callable
        Names the value at 0-based position ``i`` (``row N`` from 1, or a file's line).

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
            f"{what}: the dates mix two orders - {text.iloc[d]!r} ({where(d)}) can only be "
            f"day-first (dd/mm) and {text.iloc[m]!r} ({where(m)}) only month-first (mm/dd); a "
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
        f"{what}: the dates are ambiguous - {value!r} ({where(k)}) reads as {readings[0]} "
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


def check_dates(index: pd.Index, what: str, where: RowName = row_name) -> pd.DatetimeIndex:
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
    where : callable
        Names the row at 0-based position ``i``: ``row N`` counted from 1 by default
        (the first row of data), a file's ``line N`` (the header is line 1) when read
        from one.

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
        index = _as_dates(index, f"the {what} index", where)
    if index.isna().any():
        raise InvalidReturns(
            f"the {what} index has no date at {where(int(np.argmax(index.isna())))}; every "
            "row needs a date")
    dup = index.duplicated()
    if dup.any():
        k = int(np.argmax(dup))
        first = int(np.argmax(index[:k] == index[k]))
        raise InvalidReturns(
            f"date {when(index[k])} appears twice ({where(first)} and {where(k)}); remove "
            "duplicate rows")
    steps = np.diff(index.asi8)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise InvalidReturns(
            f"dates are not increasing at {where(i)} ({when(index[i - 1])} then "
            f"{when(index[i])}); sort the series by date")
    return index
