"""Files in: CSV and Parquet tables read and checked, every failure named.

:func:`read` gives one validated series, :func:`read_table` a date-indexed
table of asset returns; both share every check of the file itself
(:func:`_read_table`) and read dates through :func:`._dates._as_dates`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InvalidParameter, InvalidReturns, SwarmVarError
from ._dates import RowName, _as_dates, _first_line, row_name, when
from ._returns import prices_to_returns, validate

#: Largest file :func:`read` opens (bytes): 50 years of daily rows are ~1 MB.
MAX_FILE_BYTES = 1 << 30


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
    where = file_lines(p)
    with naming(p.name, "a return series"):
        dates = _date_column(frame)
        frame = _date_indexed(frame, p.name, where)
        series = _pick_column(frame, column, p.name, dates, where)
        if kind == "price":
            return validate(prices_to_returns(series, dropna=dropna, where=where),
                            min_obs=min_obs, from_prices=True)
        return validate(series, dropna=dropna, min_obs=min_obs, kind_hint=True, where=where)


def file_lines(p: Path) -> RowName:
    """Names data row ``i`` of a table read from ``p`` by its line in the file (header: line 1).

    A CSV file's line numbers are found only when a message asks for one:
    the file is read again then by :mod:`csv`, record by record, skipping
    blank lines as the reader does; a record is named by the line it starts
    on, so a quoted field spanning lines (``"a<newline>b"``) does not shift
    the rows after it. A Parquet file has no lines, and its rows are named
    ``row N`` from 1, as is a row beyond the records found.
    """
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return row_name
    found: list[list[int]] = []

    def where(i: int) -> str:
        if not found:
            try:
                found.append(_record_lines(p, suffix))
            except (OSError, EOFError, zlib.error, csv.Error, InvalidReturns):
                found.append([])
        lines = found[0]
        return f"line {lines[i + 1]}" if 0 <= i and i + 1 < len(lines) else row_name(i)
    return where


def _record_lines(p: Path, suffix: str) -> list[int]:
    """The line each non-blank CSV record of ``p`` starts on (header first), from 1."""
    encoding = _encoding(p, suffix)
    opener = gzip.open if suffix == ".gz" else open
    out: list[int] = []
    with opener(p, "rt", encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        last = 0  # csv's line_num: the lines read so far, a record's last line after it
        for _ in range(MAX_FILE_BYTES):  # bounded: a record takes at least one byte
            try:
                record = next(reader)
            except StopIteration:
                break
            if len(record) > 1 or (record and record[0].strip()):
                out.append(last + 1)
            last = reader.line_num
    return out


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
    where = file_lines(p)
    with naming(p.name, "a table of returns"):
        frame = _date_indexed(frame, p.name, where)
        if frame.index.isna().any():
            raise InvalidReturns(f"{p.name}: no date at {where(int(np.argmax(frame.index.isna())))}"
                                 "; every row needs a date")
        if frame.shape[1] == 0:
            raise InvalidReturns(f"{p.name} has a date column but no value column; give one "
                                 "column of returns per asset")
        names = [str(c) for c in frame.columns]  # repeated names refused by _read_table
        frame.columns = pd.Index(names)
        columns = {c: _number_cells(frame.iloc[:, j], c, p.name, where)
                   for j, c in enumerate(names)}
        out = pd.DataFrame(columns, index=frame.index)
        return out


def _number_cells(col: pd.Series, name: str, source: str,
                  where: RowName = row_name) -> pd.Series:
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
            f"{source}: {cells.iloc[i]!r} at {when(col.index[i])} in column {name!r} "
            f"is not a number ({where(i)}); write returns as numbers such as 0.0123 (leave a "
            "cell blank for a missing return)")
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
    # a Parquet file keeps pandas' attrs (attrs["from_prices"] too): only ``kind`` says
    # what a file holds
    frame.attrs = {}
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


def _whole(label: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise InvalidParameter(f"{label} must be a whole number >= {least}, not {value!r}")
    return int(value)


def _date_column(frame: pd.DataFrame) -> str | None:
    """The name of the column :func:`_date_indexed` reads the dates from (the index's name
    if the frame is already date-indexed)."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return None if frame.index.name is None else str(frame.index.name)
    return str(_date_label(frame))


def _date_label(frame: pd.DataFrame) -> object:
    """The dates' column label as it is in ``frame`` (a column called date, datetime, time or
    timestamp, else the first)."""
    date_names = ("date", "datetime", "time", "timestamp")
    names = [c for c in frame.columns if str(c).lower() in date_names]
    return names[0] if names else frame.columns[0]


def _date_indexed(frame: pd.DataFrame, source: str, where: RowName = row_name
                  ) -> pd.DataFrame:
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    date_col = _date_label(frame)
    index = _as_dates(frame[date_col], f"{source}: column {date_col!r}", where)
    return frame.drop(columns=[date_col]).set_index(index)


def _pick_column(frame: pd.DataFrame, column: str | None, source: str,
                 dates: str | None = None, where: RowName = row_name) -> pd.Series:
    """The value column ``column`` (or the one numeric column) of a date-indexed frame;
    ``dates`` names the file's date column, for the message when it is asked for."""
    if column is not None:
        if column not in frame.columns:
            values = list(map(str, frame.columns))
            if dates is not None and column.casefold() == dates.casefold():
                raise InvalidReturns(
                    f"{source}: {dates!r} is the file's date column (the dates of the rows), "
                    f"not a value column; name one of {values} (--column on the command "
                    "line, column=... in Python)")
            raise InvalidReturns(f"{source}: no column {column!r}; columns are {values}")
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
    return _number_cells(series, str(series.name), source, where).rename(str(series.name))
