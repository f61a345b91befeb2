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

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidReturns, UnknownDataset

#: A daily log return beyond this (|r| > 1, i.e. a move of -63% / +172%) is
#: treated as a unit mistake, usually percent instead of fractions.
MAX_ABS_RETURN = 1.0

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
    key = name.lower()
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
    prices = _check_index(prices.astype(float), what="price", dropna=dropna)
    bad = ~(prices > 0)
    if bad.any():
        first = prices.index[int(np.argmax(bad.to_numpy()))]
        raise InvalidReturns(
            f"price at {first} is {prices.loc[first]!r}; prices must be positive. "
            "If the column holds returns, read it with kind='return'"
        )
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
    index. ``column`` picks the value column; it may be omitted when the file
    has exactly one numeric column. ``kind="price"`` turns prices into log
    returns; ``kind="return"`` takes the values as log returns (fractions).
    Missing values raise :class:`InvalidReturns` unless ``dropna=True``.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidReturns(f"no such file: {p}")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(p)
    elif suffix in (".csv", ".txt", ".gz"):
        frame = pd.read_csv(p)
    else:
        raise InvalidReturns(f"{p.name}: unknown file type {suffix!r}; use .csv or .parquet")
    frame = _date_indexed(frame, p.name)
    series = _pick_column(frame, column, p.name)
    if kind == "price":
        return validate(prices_to_returns(series, dropna=dropna), min_obs=min_obs)
    if kind == "return":
        return validate(series, dropna=dropna, min_obs=min_obs)
    raise InvalidReturns(f"kind must be 'price' or 'return', not {kind!r}")


def _date_indexed(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    date_names = ("date", "datetime", "time", "timestamp")
    names = [c for c in frame.columns if str(c).lower() in date_names]
    date_col = names[0] if names else frame.columns[0]
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame[date_col]))
    except (ValueError, TypeError) as exc:
        raise InvalidReturns(
            f"{source}: column {date_col!r} does not parse as dates ({exc}); put dates first"
        ) from exc
    return frame.drop(columns=[date_col]).set_index(index)


def _pick_column(frame: pd.DataFrame, column: str | None, source: str) -> pd.Series:
    if column is not None:
        if column not in frame.columns:
            raise InvalidReturns(
                f"{source}: no column {column!r}; columns are {list(map(str, frame.columns))}"
            )
        series = frame[column]
    else:
        numeric = frame.select_dtypes("number").columns
        if len(numeric) != 1:
            raise InvalidReturns(
                f"{source}: {len(numeric)} numeric columns ({list(map(str, numeric))}); "
                "name one with column=..."
            )
        series = frame[numeric[0]]
    return pd.to_numeric(series, errors="coerce").astype(float).rename(str(series.name))


def _check_index(series: pd.Series, *, what: str, dropna: bool) -> pd.Series:
    if not isinstance(series.index, pd.DatetimeIndex):
        try:
            series = series.copy()
            series.index = pd.DatetimeIndex(series.index)
        except (ValueError, TypeError) as exc:
            raise InvalidReturns(f"the {what} index is not dates: {exc}") from exc
    index = series.index
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
            "sort the series by date"
        )
    missing = series.isna()
    if missing.any():
        if dropna:
            series = series[~missing]
        else:
            first = series.index[int(np.argmax(missing.to_numpy()))]
            raise InvalidReturns(
                f"{what} at {first} is missing (NaN); pass dropna=True to drop missing rows"
            )
    return series


def validate(
    returns: pd.Series,
    *,
    min_obs: int = 2,
    dropna: bool = False,
    max_abs: float = MAX_ABS_RETURN,
) -> pd.Series:
    """Check a labelled return series and return it as float64.

    Refuses NaN (unless ``dropna``), inf, duplicate or non-increasing dates,
    fewer than ``min_obs`` observations, and ``|r| > max_abs`` (a unit
    mistake, typically percent instead of fractions).
    """
    series = _check_index(returns.astype(float), what="return", dropna=dropna)
    as_array(series.to_numpy(), min_obs=min_obs, max_abs=max_abs, labels=series.index)
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
            f"return at {where(i)} is {x[i]!r}; drop or fill it (read(..., dropna=True))"
        )
    big = np.abs(x) > max_abs
    if big.any():
        i = int(np.argmax(big))
        raise InvalidReturns(
            f"return at {where(i)} is {x[i]!r}, beyond |r| <= {max_abs:g}; returns are "
            "fractions (0.01 = 1%) - if these are percent, divide by 100"
        )
    if x.size < min_obs:
        raise InvalidReturns(
            f"{x.size} returns, but {who} needs at least {min_obs}; give a longer history"
        )
    return x


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
    if (weights is None) == (positions is None):
        raise InvalidReturns("give exactly one of weights=... or positions=...")
    given = dict(weights if weights is not None else positions or {})
    unknown = sorted(set(given) - set(map(str, returns.columns)))
    if unknown:
        raise InvalidReturns(
            f"no asset column for {unknown}; columns are {list(map(str, returns.columns))}"
        )
    if not given:
        raise InvalidReturns("the portfolio has no assets")
    cols = list(given)
    vec = np.array([given[c] for c in cols], dtype=float)
    if not np.all(np.isfinite(vec)):
        raise InvalidReturns("weights/positions must be finite numbers")
    total = float(vec.sum())
    if abs(total) < 1e-12:
        raise InvalidReturns("weights/positions sum to zero; the portfolio has no net value")
    w = vec / total if positions is not None else vec
    frame = returns[cols].astype(float)
    for c in cols:
        validate(frame[c], dropna=dropna)
    if dropna:
        frame = frame.dropna()
    simple = np.expm1(frame.to_numpy()) @ w
    if np.any(simple <= -1):
        i = int(np.argmax(simple <= -1))
        raise InvalidReturns(f"portfolio loses all its value at {frame.index[i]}")
    out = pd.Series(np.log1p(simple), index=frame.index, name="portfolio")
    if positions is not None:
        out.attrs["notional"] = total
    return validate(out)
