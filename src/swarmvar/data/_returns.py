"""Return series checked at the door: validation, prices to returns, portfolios.

Convention: a *return* in swarmvar is a daily **log return as a fraction**
(0.01 = 1%), ``r_t = log(P_t / P_{t-1})``. Everything that enters a model
passes :func:`validate` (labelled series) or :func:`as_array` (plain arrays)
first, so bad input is refused naming the first bad row.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import numbers
import os
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidReturns
from ..types import weights_gross
from ._dates import RowName, _as_dates, _first_line, check_dates, row_name, when

#: A daily log return beyond this (|r| > 1, i.e. a move of -63% / +172%) is
#: treated as a unit mistake, usually percent instead of fractions.
MAX_ABS_RETURN = 1.0
#: The widest daily log return of a *book* (a portfolio computed from asset returns, each
#: within MAX_ABS_RETURN) that its agents take once widened for books
#: (:meth:`swarmvar.models.base.Agent.take_book_returns`): with leverage a book's return
#: can pass MAX_ABS_RETURN legitimately (-1.05 is a 65% loss of its net value). 5 is a
#: one-day loss of 99.3% or a gain of 147 times the value; beyond it the book is refused.
MAX_BOOK_RETURN = 5.0
#: A labelled series whose standard deviation exceeds this (10% a day, ~160% a
#: year) is taken for percent: a percent-scaled equity series has sd ~1, far
#: below MAX_ABS_RETURN's reach (the most volatile assets run at ~5% a day).
MAX_DAILY_SD = 0.1


#: What to tell a user about missing values, on the command line and in Python.
DROPNA_HINT = "drop rows with missing values (--dropna on the command line, dropna=True in Python)"
#: What to tell a user whose returns look like percent (the data layer's and the runtime's ticks').
PERCENT_HINT = "returns are fractions (0.01 = 1%) - if these are percent, divide them by 100"
#: A value this large is a price (or an index level), never a daily return in percent.
PRICE_LIKE = 100.0
#: Consecutive values that differ by less than this fraction of the one before (in median)
#: move like a price, not like returns (which change sign and size from day to day).
PRICE_STEP = 0.1
#: What to tell a user whose returns look like prices (the data layer's and the runtime's ticks').
TO_RETURNS_HINT = "give daily log returns as fractions, log(P_t / P_t-1), not the prices"
_READ_AS_PRICES = ("read the column as prices (--kind price on the command line, kind='price' "
                   "in Python)")
#: Fewest values :func:`moves_like_prices` judges: below this a window is too short to tell.
PRICE_MIN_OBS = 20
#: Smallest median size of the values :func:`moves_like_prices` judges (5% a period): a
#: price or rate is usually above it (EUR/GBP 0.85, USD per CAD 0.73, a penny stock 0.45),
#: while one-signed, smooth *returns* below it are real (a money-market fund or a T-bill
#: accruing, a crawling peg, appraisal-smoothed real estate, a steady loss streak).
PRICE_FLOOR = 0.05
#: A lag-1 autocorrelation at least this high, with the small steps of PRICE_STEP, is a
#: level's (a random walk's: ~0.8 in median over 20 values, ~0.98 over 250), not noise
#: around a constant (a streak of limit-up days, rounded: ~0).
PRICE_AUTOCORR = 0.5
#: Values whose range is below this fraction of their median size are (nearly) constant:
#: no moves to judge, left to the models' own rule (a constant is refused there).
PRICE_FLAT = 1e-4
#: Values of one sign, above PRICE_FLOOR, whose standard deviation is below this fraction of
#: their mean sit at one level: a pegged price or rate (USD per SAR 0.26662 +- 0.00002: 0.0075%;
#: a stablecoin 0.9997 +- 0.0002: 0.02%; USD per HKD in its band: ~0.2%), not returns -
#: unless they are a streak of limit moves (:data:`LIMIT_MOVES`).
PRICE_PEG_CV = 0.01
#: Daily price limits (5% for China's ST shares, 10% China/Taiwan/Thailand, 20% China's
#: STAR/ChiNext, 30% Korea), up and down: a streak of them is one repeated log return
#: (rounded prices as noise), a real return series that sits at one level.
LIMIT_MOVES = tuple(math.log1p(s * lim) for lim in (0.05, 0.1, 0.2, 0.3) for s in (1, -1))
#: How near (a fraction of the level) a mean must be to a limit move to be taken for one (a
#: rounded streak's is within 0.02%; USD per SAR, 0.26662, is 1.6% from log(1.3) = 0.2624).
LIMIT_TOLERANCE = 0.01
#: The ``attrs`` key that marks a Series or DataFrame of returns computed from prices
#: (:func:`prices_to_returns`, ``validate(from_prices=True)``, ``books.prices_to_returns``):
#: carried with the data, so that no later check (:func:`as_array`, :func:`validate`,
#: ``books.book_returns``) judges it for looking like prices again. Its value is a digest
#: of the values it was given to (:func:`mark_from_prices`, :func:`is_from_prices`).
FROM_PRICES_MARK = "swarmvar.from_prices"
#: The key the mark had before it was tied to the values: ``attrs["from_prices"] = True``
#: is not honoured (it survived ``cumsum``, ``exp`` and Parquet files); kept as a name only.
FROM_PRICES = "from_prices"

_Frame = TypeVar("_Frame", pd.Series, pd.DataFrame)


def _values_digest(data: object) -> str | None:
    """A digest of a Series' or DataFrame's values and shape (None: not numbers)."""
    to_numpy = getattr(data, "to_numpy", None)
    if to_numpy is None:
        return None
    try:
        values = np.ascontiguousarray(to_numpy(dtype=np.float64))
    except (TypeError, ValueError):
        return None
    h = hashlib.blake2b(repr(values.shape).encode(), digest_size=16)
    h.update(values.tobytes())
    return h.hexdigest()


def mark_from_prices(data: _Frame) -> _Frame:
    """Mark ``data`` (a Series or DataFrame) as returns computed from prices, and return it.

    The mark (``attrs[FROM_PRICES_MARK]``) is a digest of the values as they are now: it
    holds for these values only (:func:`is_from_prices`). pandas carries ``attrs``
    through operations that change the values (``cumsum``, ``exp``, ``* 100``,
    ``shift``, a slice) and through a Parquet file; the digest no longer matches
    them, so what they make is judged as any data is.
    """
    data.attrs[FROM_PRICES_MARK] = _values_digest(data)
    _mark_buffer(data)  # its plain values (``to_numpy()``, a window of them) are not judged
    return data


class _JudgedRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to an array that owns judged memory, with the byte ranges marked in it.

    ``whole``: all of the owner's memory is marked (:func:`as_array`'s copy, a whole
    Series' values: no address is needed to judge a view of it); else ``starts``/``ends``:
    the marked byte ranges ``[start, end)``, sorted and merged (addresses), and
    ``layouts``: the exact layouts of the marked arrays that are not one block of memory
    (the :data:`_MAX_LAYOUTS` most recently marked; a layout marked again counts as new):
    such an array asked about as it is is found at once, and one too scattered to list
    as ranges (:data:`MAX_MARKED_RUNS`) only so.
    """

    __slots__ = ("key", "whole", "starts", "ends", "layouts")
    key: int
    whole: bool
    starts: list[int]
    ends: list[int]
    layouts: dict[tuple[int, tuple[int, ...], tuple[int, ...], int], None]


#: The plain arrays judged where they entered, or deliberately not (:func:`mark_judged`):
#: ``id`` of the array that owns the memory -> a weak reference to it (gone with the array)
#: that holds the byte ranges marked in that memory (a view marks its own bytes only).
_JUDGED: dict[int, _JudgedRef] = {}
#: Guards :data:`_JUDGED` (marks, look-ups and the weak references' callbacks, from any
#: thread; re-entrant: a callback may run while its own thread holds it).
_JUDGED_LOCK = threading.RLock()
#: True inside :func:`judged_inputs`: a driver's scope whose data was judged where it entered.
_JUDGED_SCOPE: ContextVar[bool] = ContextVar("swarmvar_judged_inputs", default=False)
#: The most contiguous byte runs one marked array is recorded as (a window of a frame's
#: columns is one run per column): a more scattered array (a strided view) is recorded by
#: its exact layout, so that it, and only it, is judged.
MAX_MARKED_RUNS = 4096
#: The most exact layouts kept per owner (beyond it, the one marked longest ago is dropped).
_MAX_LAYOUTS = 64

_Layout = tuple[int, tuple[int, ...], tuple[int, ...], int]


def _after_fork() -> None:
    """In a forked child: a fresh :data:`_JUDGED_LOCK` (the fork may copy one held by
    another thread of the parent, which the child would wait on for ever)."""
    global _JUDGED_LOCK
    _JUDGED_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_after_fork)


def _owner(x: NDArray[Any]) -> NDArray[Any]:
    """The array that owns ``x``'s memory (``x`` itself, or the last array in its ``base``s)."""
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def _contiguous(x: NDArray[Any]) -> bool:
    """Whether ``x``'s elements fill one block of memory (C or Fortran order)."""
    return bool(x.flags.c_contiguous or x.flags.f_contiguous)


def _address(x: NDArray[Any]) -> int:
    """The address of ``x``'s first element."""
    return int(x.__array_interface__["data"][0])


def _layout(x: NDArray[Any]) -> _Layout:
    """Where ``x``'s elements are: first address, shape, strides, item size."""
    return _address(x), tuple(x.shape), tuple(x.strides), x.itemsize


def _extent(x: NDArray[Any]) -> tuple[int, int]:
    """The bytes ``[low, high)`` from ``x``'s lowest to its highest element (``byte_bounds``)."""
    low = high = _address(x)
    for n, s in zip(x.shape, x.strides, strict=True):
        if s < 0:
            low += s * (n - 1)
        else:
            high += s * (n - 1)
    return low, high + x.itemsize


def _runs(x: NDArray[Any]) -> list[tuple[int, int]] | None:
    """The contiguous byte ranges ``[start, end)`` ``x``'s elements occupy, sorted and merged.

    None when there would be more than :data:`MAX_MARKED_RUNS` (a scattered strided view).
    """
    if x.size == 0:
        return []
    if _contiguous(x):
        lo, hi = _extent(x)
        return [(lo, hi)]
    start = _address(x)
    axes: list[tuple[int, int]] = []
    for n, s in zip(x.shape, x.strides, strict=True):
        if n == 1 or s == 0:  # one element, or the same one repeated (broadcast)
            continue
        if s < 0:  # the same bytes, walked from the other end
            start += s * (n - 1)
            s = -s
        axes.append((s, n))
    axes.sort()
    block, i = x.itemsize, 0
    while i < len(axes) and axes[i][0] == block:  # the inner axes laid end to end
        block *= axes[i][1]
        i += 1
    if math.prod(n for _, n in axes[i:]) > MAX_MARKED_RUNS:
        return None
    offsets = np.zeros(1, dtype=np.int64)
    for s, n in axes[i:]:
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64) * s).reshape(-1)
    return _merged([(start + o, start + o + block) for o in sorted(offsets.tolist())])


def _merged(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted byte ranges with the overlapping and touching ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _forget(ref: _JudgedRef) -> None:
    """Drop a judged array's entry when the array goes (the weak reference's callback)."""
    with _JUDGED_LOCK:
        if _JUDGED.get(ref.key) is ref:
            del _JUDGED[ref.key]


def _remember(x: NDArray[Any]) -> None:
    """Mark the bytes of ``x`` (an array or a view) as judged, in the array that owns them."""
    owner = _owner(x)
    whole = x is owner or (x.nbytes == owner.nbytes and _contiguous(x) and _contiguous(owner))
    runs = None if whole else _runs(x)
    # a scattered view (a window of a frame's columns) is asked about as it is, most often
    layout = _layout(x) if not whole and not _contiguous(x) else None
    with _JUDGED_LOCK:
        key = id(owner)
        ref = _JUDGED.get(key)
        if ref is None or ref() is not owner:
            ref = _JudgedRef(owner, _forget)
            ref.key, ref.whole, ref.starts, ref.ends, ref.layouts = key, False, [], [], {}
            _JUDGED[key] = ref
        if whole:
            ref.whole = True
        if ref.whole:
            return  # every view lies inside memory marked whole
        if layout is not None:
            ref.layouts.pop(layout, None)  # marked again: the most recent (kept the longest)
            ref.layouts[layout] = None
            if len(ref.layouts) > _MAX_LAYOUTS:
                del ref.layouts[next(iter(ref.layouts))]
        if runs:
            merged = _merged([*zip(ref.starts, ref.ends, strict=True), *runs])
            # new lists, swapped in whole: a reader holds the old pair or the new one
            ref.starts, ref.ends = [lo for lo, _ in merged], [hi for _, hi in merged]


def _marked(x: NDArray[Any]) -> bool:
    """Whether every byte of ``x`` lies in a range marked judged (or ``x`` was marked as is)."""
    owner = _owner(x)
    with _JUDGED_LOCK:
        ref = _JUDGED.get(id(owner))
        if ref is None or ref() is not owner:
            return False
        if ref.whole:
            return True  # a view lies inside its owner's memory
        starts, ends, layouts = ref.starts, ref.ends, ref.layouts

    def inside(lo: int, hi: int) -> bool:
        k = bisect.bisect_right(starts, lo) - 1
        return k >= 0 and hi <= ends[k]

    if x.size == 0:
        return True  # no bytes, of marked memory
    if inside(*_extent(x)):
        return True  # the common case: a window of a marked array
    if layouts and _layout(x) in layouts:
        return True
    if _contiguous(x):
        return False
    runs = _runs(x)
    return runs is not None and all(inside(lo, hi) for lo, hi in runs)


def mark_judged(x: NDArray[Any]) -> NDArray[Any]:
    """Mark a plain array's memory (its views' too) as judged for price-likeness; return it.

    The agents' public ``fit`` (:meth:`swarmvar.models.base.Agent.fit`,
    :meth:`swarmvar.models.joint_base.JointAgent.fit`) judges a plain array
    as :func:`as_array` does (:func:`moves_like_prices`), unless its memory
    carries this mark: the drivers hand the agents windows (views) of data
    judged where it entered, and judging each window again would refuse
    returns computed from prices that the door let through on purpose.
    :func:`as_array` marks what it returns, and :func:`mark_from_prices` the
    values of the Series or frame it marks. The mark covers the bytes of
    ``x`` only (their ranges in the array that owns them): a view marks its
    own window, not the rest of the array (another column of the same
    frame, earlier days). It lives as long as the array that owns the
    memory, in this process (a copy, an array made from it, or one sent to
    another process is judged again); it is tied to the memory, not to the
    values, so values written into a marked array in place are not judged.

    Parameters
    ----------
    x : ndarray
        The array or view whose bytes are marked.

    Returns
    -------
    ndarray
        ``x``, unchanged.

    Raises
    ------
    InvalidParameter
        ``x`` is not a numpy array (a list has no memory to mark: pass it
        through :func:`as_array`, which judges it and returns a marked array).
    """
    if not isinstance(x, np.ndarray):
        raise InvalidParameter(
            f"mark_judged marks a numpy array's memory, not a {type(x).__name__}; pass the "
            "values through swarmvar.data.as_array (it judges them and returns a marked array)")
    _remember(x)
    return x


def _plain_values(data: object) -> NDArray[Any] | None:
    """A Series' or frame's ``to_numpy()`` (None: not pandas, or not convertible)."""
    if not isinstance(data, (pd.Series, pd.DataFrame)):
        return None
    try:
        values = data.to_numpy()
    except (TypeError, ValueError):
        return None
    return values if isinstance(values, np.ndarray) else None


def is_judged(data: object) -> bool:
    """Whether an agent's ``fit`` takes ``data`` as judged already (:func:`mark_judged`).

    True inside :func:`judged_inputs`; for a numpy array every byte of which
    lies in marked memory (a marked array, a window of one); and for a
    pandas Series or DataFrame whose ``to_numpy()`` does (a slice of a
    Series or frame :func:`mark_from_prices` marked: ``rets.iloc[-100:]``).
    False for anything else (lists; a copy; another column of a frame one
    column of which was marked).

    The mark is the memory's, not the values': values written in place into
    marked memory are not judged again, for a Series or frame as for a plain
    array (``rets.iloc[:] = rate`` or ``frame.loc[:, "B"] = rate`` after
    :func:`mark_from_prices` or ``books.check_returns``: ``to_numpy()`` is still
    the marked memory, so an agent's ``fit`` takes them). The doors judge such
    data again (:func:`validate`, :func:`as_array`, ``books.check_returns`` judge
    the values; a from-prices mark no longer matches them, and the refusal adds
    :data:`STALE_MARK_HINT`).
    """
    if _JUDGED_SCOPE.get():
        return True
    values = _plain_values(data) if not isinstance(data, np.ndarray) else data
    return values is not None and _marked(values)


@contextmanager
def judged_inputs() -> Iterator[None]:
    """A driver's scope: the data every agent's ``fit`` is handed inside was judged already.

    For a driver whose data reaches the agents in another process (a
    backtest's worker, a sandbox), where :func:`mark_judged`'s mark does not
    travel: the data was judged where it entered, in the caller. Per thread
    and per task (a :class:`contextvars.ContextVar`).
    """
    token = _JUDGED_SCOPE.set(True)
    try:
        yield
    finally:
        _JUDGED_SCOPE.reset(token)


def _mark_buffer(data: object) -> None:
    """Mark the memory a Series' or frame's plain values live in (when ``to_numpy`` shares it).

    ``to_numpy()`` is the data's own memory when two calls share it (a view in
    pandas 3, the Series' own array in pandas 2, whose ``base`` is None); a
    fresh copy each time (mixed dtypes) is left alone.
    """
    values = _plain_values(data)
    if values is None or values.size == 0:
        return
    again = _plain_values(data)
    if again is not None and (again is values or np.may_share_memory(values, again)):
        _remember(values)


#: What to add to a refusal of marked returns whose values no longer match the mark.
STALE_MARK_HINT = ("(a window of returns worked out from prices: mark it again with "
                   "`data.mark_from_prices`, or pass judge_prices=False where the entry point "
                   "takes it)")


def stale_mark_hint(data: object) -> str:
    """:data:`STALE_MARK_HINT` (with a leading space) when ``data`` carries a mismatched mark.

    For the end of a refusal of ``data`` for moving like prices (``as_array``,
    ``books.check_returns``, a joint agent's ``fit``): returns worked out from
    prices whose values no longer match :func:`mark_from_prices`'s digest (a
    window of them) are told how to mark them again.

    Parameters
    ----------
    data : object
        What the caller was handed (a Series or DataFrame; anything else has no mark).

    Returns
    -------
    str
        ``" " + STALE_MARK_HINT``, or ``""`` (no mark, or a mark that matches).
    """
    attrs = getattr(data, "attrs", None)
    if not isinstance(attrs, dict) or not isinstance(attrs.get(FROM_PRICES_MARK), str):
        return ""
    return "" if is_from_prices(data) else f" {STALE_MARK_HINT}"


def is_from_prices(data: object) -> bool:
    """Whether ``data`` (a Series or DataFrame) carries :data:`FROM_PRICES_MARK` for its values.

    True only when the mark's digest matches ``data``'s current values and shape
    (:func:`mark_from_prices`): a marked series turned into something else (a
    cumulative sum, levels, a window of it) is not from prices.
    """
    attrs = getattr(data, "attrs", None)
    if not isinstance(attrs, dict):
        return False
    mark = attrs.get(FROM_PRICES_MARK)
    return isinstance(mark, str) and mark == _values_digest(data)


def looks_like_prices(x: NDArray[np.float64], value: float) -> bool:
    """Whether values refused as returns (``value`` beyond ``|r| <= 1``) are prices.

    Yes when ``|value| >= PRICE_LIKE`` (no daily return is 100% or more, even
    in percent), or when every finite value is positive and consecutive ones
    differ by less than ``PRICE_STEP`` (10%) of the one before in median, as
    daily prices do; returns in percent change sign and size from day to day.
    """
    if abs(value) >= PRICE_LIKE:
        return True
    v = x[np.isfinite(x)]
    if v.size < 3 or not np.all(v > 0):
        return False
    with np.errstate(over="ignore"):  # a subnormal value: an infinite step, not a warning
        return float(np.median(np.abs(np.diff(v)) / v[:-1])) < PRICE_STEP


def moves_like_prices(x: NDArray[np.float64]) -> str | None:
    """Why finite values within ``|r| <= 1`` are prices or rates, not returns (else None).

    A price or rate that stays below 1 (EUR/GBP ~0.85, USD per CAD ~0.73, a
    penny stock at 0.45) passes ``|r| <= 1``; read as returns it gives a
    meaningless VaR. Such a column is told by how it moves; every condition
    must hold:

    * at least ``PRICE_MIN_OBS`` (20) values, **every one of one sign**;
    * a median size of at least ``PRICE_FLOOR`` (5% a period);
    * not (nearly) constant: a range of at least ``PRICE_FLAT`` (0.01%) of
      the median size (a constant has no moves to judge; the models refuse
      it, :func:`swarmvar.models.base.check_variation`);
    * a median change from one value to the next below ``PRICE_STEP`` (10%)
      of the level, **and** a lag-1 autocorrelation of at least
      ``PRICE_AUTOCORR`` (0.5): a level that wanders, as a price does;
      **or** a standard deviation below ``PRICE_PEG_CV`` (1%) of the mean, a
      mean not within ``LIMIT_TOLERANCE`` (1%) of a limit move
      (:data:`LIMIT_MOVES`, log(1 +- 5/10/20/30%)): a level that sits still,
      as a pegged rate does (USD per SAR 0.26662 +- 0.00002).

    Why real returns pass: a return series whose median size is 5% a period
    or more and that never changes sign over 20 periods is implausible,
    except a streak of limit moves (20 days at China's +10% limit: ~0.0953
    every day, the rounding of the limit price as noise), which the
    autocorrelation rule leaves to be returns. Below the floor are the real
    one-signed, smooth return series: a money-market fund or T-bill accruing
    (~0.1% a day even at 44% a year, Mondays carrying three days), a crawling
    peg (0.25% a day), monthly T-bill returns, appraisal-smoothed monthly
    real-estate returns, a streak of growing losses of a few percent a day.
    The limits: a price or rate below the floor (a token at 0.005) is read
    as returns; a series of one-signed returns of 5% or more a period that
    moves smoothly (a hyperinflation's monthly price index returns) is refused.
    Returns computed from prices are not judged (:func:`validate` with
    ``from_prices``): they were given as prices.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Finite values, every one within ``|r| <= 1``.

    Returns
    -------
    str or None
        What gives the values away as prices, for the message; None for returns.
    """
    if x.size < PRICE_MIN_OBS or not (x[0] > 0 and x.min() > 0 or x[0] < 0 and x.max() < 0):
        return None  # (one reduction: most return series fail here, in a few microseconds)
    level = np.abs(x)
    size = float(np.median(level))
    if size < PRICE_FLOOR or float(np.ptp(x)) < PRICE_FLAT * size:
        return None  # small returns (accruals, pegs, streaks); a (near) constant
    sign = "positive" if x[0] > 0 else "negative"
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # a subnormal level makes a step of inf (a warning, not a refusal: it is a big step)
        step = float(np.median(np.abs(np.diff(x)) / level[:-1]))
        rho = float(np.corrcoef(x[:-1], x[1:])[0, 1])
    if step >= PRICE_STEP or not rho >= PRICE_AUTOCORR:  # NaN (a constant part) too
        return _pegged(x, sign)
    return (f"all {x.size} values are {sign} ({float(x.min()):.4g} to {float(x.max()):.4g}), "
            f"change by {step:.2%} of their level from one day to the next in median and "
            f"follow the day before (lag-1 autocorrelation {rho:.2f}): the column moves like a "
            "price (returns change sign and size from day to day)")


def _pegged(x: NDArray[np.float64], sign: str) -> str | None:
    """Why one-signed values above the floor that sit at one level are a peg (else None)."""
    mean, sd = float(np.mean(x)), float(np.std(x))
    if sd >= PRICE_PEG_CV * abs(mean) or any(
            abs(mean - lim) <= LIMIT_TOLERANCE * abs(lim) for lim in LIMIT_MOVES):
        return None
    return (f"all {x.size} values are {sign} and sit at one level ({mean:.5g}, sd {sd:.2g}: "
            f"{sd / abs(mean):.2%} of it), as a pegged price or rate does; returns of 5% or "
            "more a period do not repeat one size (but for a streak of limit moves)")


def prices_to_returns(prices: pd.Series, *, dropna: bool = False,
                      where: RowName = row_name) -> pd.Series:
    """Log returns from a price series, after checking the prices.

    The result carries the mark of :func:`mark_from_prices`: no later check judges it
    for looking like prices (:func:`as_array`). ``where`` names a row of the
    prices in a message (``row N`` from 1 by default; a file's line for
    :func:`read`).
    """
    prices = _check_index(_floats(prices, "price"), what="price", dropna=dropna, where=where)
    bad = ~(prices > 0)
    if bad.any():
        first = prices.index[int(np.argmax(bad.to_numpy()))]
        raise InvalidReturns(
            f"price at {when(first)} is {float(prices.loc[first])!r}; prices must be positive. "
            "If the column holds returns, read it as returns (--kind return on the command "
            "line, kind='return' in Python)"
        )
    if not np.all(np.isfinite(prices.to_numpy())):
        first = prices.index[int(np.argmax(~np.isfinite(prices.to_numpy())))]
        raise InvalidReturns(
            f"price at {when(first)} is {float(prices.loc[first])!r}; prices must be finite")
    values = np.log(prices.to_numpy())
    returns = pd.Series(np.diff(values), index=prices.index[1:], name=prices.name)
    return mark_from_prices(returns)  # not judged for looking like prices (they were)


def _floats(series: pd.Series, what: str) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise InvalidParameter(f"expected a pandas Series of {what}s, not {type(series).__name__}")
    try:
        return series.astype(float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidReturns(f"the {what}s are not numbers ({_first_line(exc)})") from exc


def _check_index(series: pd.Series, *, what: str, dropna: bool,
                 where: RowName = row_name) -> pd.Series:
    if not isinstance(series.index, pd.DatetimeIndex):
        series = series.copy()
    series.index = check_dates(series.index, what, where)
    missing = series.isna()
    if missing.any():
        if dropna:
            series = series[~missing]
        else:
            first = series.index[int(np.argmax(missing.to_numpy()))]
            raise InvalidReturns(f"{what} at {when(first)} is missing (NaN); {DROPNA_HINT}")
    return series


def validate(
    returns: pd.Series,
    *,
    min_obs: int = 2,
    dropna: bool = False,
    max_abs: float = MAX_ABS_RETURN,
    max_sd: float = MAX_DAILY_SD,
    from_prices: bool = False,
    kind_hint: bool = False,
    where: RowName = row_name,
    judge_prices: bool = True,
) -> pd.Series:
    """Check a labelled return series and return it as float64.

    Refuses an index that is not dates (numbers are not read as dates), NaN
    (unless ``dropna``), inf, duplicate or non-increasing dates, fewer than
    ``min_obs`` observations, and two signs of percent instead of fractions:
    ``|r| > max_abs`` or a standard deviation above ``max_sd`` (10% a day),
    and a column that moves like a price or a rate below 1
    (:func:`moves_like_prices`), named by the series' name; that last rule is
    skipped for returns computed from prices (``from_prices``, or a series
    carrying the mark of :func:`mark_from_prices` for its values: they were given as
    prices; the result then carries that mark on, for :func:`as_array` and the models) or when
    ``judge_prices`` is false. ``from_prices``
    adds to the standard-deviation message that a price column may hold returns;
    ``kind_hint`` (a file read as returns) that values looking like prices can be
    read as prices (:func:`looks_like_prices`), rather than converted first.
    A message names a row by its date (``2016-08-12``), and an index's bad row
    by ``where`` too (``row N`` from 1 by default, a file's line for :func:`read`).
    """
    from_prices = from_prices or is_from_prices(returns)
    series = _check_index(_floats(returns, "return"), what="return", dropna=dropna,
                          where=where)
    x = as_array(series, min_obs=min_obs, max_abs=max_abs, labels=series.index,
                 kind_hint=kind_hint, name=None if series.name is None else str(series.name),
                 judge_prices=judge_prices and not from_prices)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    if sd > max_sd:
        extra = ("; if the column holds returns rather than prices, read it as returns (--kind "
                 "return on the command line, kind='return' in Python)") if from_prices else ""
        raise InvalidReturns(
            f"the returns' standard deviation is {sd:.3g} ({sd:.1%} a day), beyond {max_sd:g}; "
            f"{PERCENT_HINT}{extra}")
    return mark_from_prices(series) if from_prices else series


def as_array(
    returns: ArrayLike | pd.Series,
    *,
    min_obs: int = 1,
    max_abs: float = MAX_ABS_RETURN,
    labels: pd.Index | None = None,
    who: str = "this model",
    kind_hint: bool = False,
    name: str | None = None,
    judge_prices: bool = True,
) -> NDArray[np.float64]:
    """A validated 1-D float64 copy of ``returns`` for the models.

    Raises :class:`InvalidReturns` naming the first bad row for NaN, inf,
    implausible magnitudes, wrong shape, or fewer than ``min_obs`` values.
    A row is named by its label (a date prints as ``2016-08-12``), else by its
    0-based index. Values beyond ``max_abs`` that look like prices
    (:func:`looks_like_prices`) are told so - to be read as prices when
    ``kind_hint`` (a file's column), else converted to returns - others are
    taken for percent. Values within ``|r| <= 1`` that move like a price or a
    rate (:func:`moves_like_prices`: 20 or more, all of one sign, ...) are
    refused the same way, naming the column ``name`` when given, unless
    ``judge_prices`` is false or ``returns`` is a Series carrying
    the mark of :func:`mark_from_prices` for its values (returns computed from prices).
    The copy returned carries :func:`mark_judged`'s mark: the windows of it a
    driver hands to an agent's ``fit`` are not judged again.
    """
    stale = stale_mark_hint(returns)  # a window of marked returns: its refusal names the way out
    if isinstance(returns, pd.Series):
        judge_prices = judge_prices and not is_from_prices(returns)
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
        return when(labels[i]) if labels is not None else f"index {i}"

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
        hint = (f"it looks like a price, not a return; "
                f"{_READ_AS_PRICES if kind_hint else TO_RETURNS_HINT}"
                if looks_like_prices(x, float(x[i])) else PERCENT_HINT)
        raise InvalidReturns(
            f"return at {where(i)} is {float(x[i])!r}, beyond |r| <= {max_abs:g}; {hint}")
    why = moves_like_prices(x) if judge_prices else None
    if why is not None:
        column = "the returns look" if name is None else f"column {name!r} looks"
        raise InvalidReturns(
            f"{column} like prices or rates, not returns: {why}; "
            f"{_READ_AS_PRICES if kind_hint else TO_RETURNS_HINT}{stale}")
    if x.size < min_obs:
        raise InvalidReturns(
            f"{x.size} returns, but {who} needs at least {min_obs}; give a longer history"
        )
    _remember(x)  # a fresh copy, judged (or deliberately not): its windows are not judged again
    return x


def judge_asset_columns(values: NDArray[np.float64], names: Sequence[object] | None = None, *,
                        kind_hint: bool = False, stale: str = "") -> None:
    """Refuse the first column of ``values`` ``(T, N)`` that moves like prices or rates.

    The one column rule and wording of a book's asset returns
    (``books.check_returns``) and of a joint agent's ``fit``
    (``models.joint_base.judge_columns``): :func:`moves_like_prices` on each
    column's finite values, the message naming the column and ending as
    :func:`as_array`'s does.

    Parameters
    ----------
    values : ndarray, shape (T, N)
        Asset returns, one column per asset (missing values are skipped).
    names : sequence, optional
        The columns' names (a frame's); ``asset j`` (from 0) without.
    kind_hint : bool
        The values entered as a table that can be read as prices (``kind``):
        the message says so, as :func:`as_array` does for a file's column.
    stale : str
        What to add for a frame whose mark of returns from prices no longer
        matches its values (:data:`STALE_MARK_HINT`, with a leading space).

    Raises
    ------
    InvalidReturns
        Naming the first column that moves like prices and what gave it away.
    """
    for j in range(values.shape[1]):
        column = values[:, j]
        why = moves_like_prices(column[np.isfinite(column)])
        if why is not None:
            col = f"asset {j}" if names is None else str(names[j])
            raise InvalidReturns(
                f"the returns of {col} look like prices or rates, not returns: {why}; "
                f"{_READ_AS_PRICES if kind_hint else TO_RETURNS_HINT}{stale}")


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


#: A book whose amounts sum to less than this fraction of its largest one (in size, and of 1)
#: has no net value: the sum is rounding noise, and a return divided by it means nothing.
ZERO_NET_TOLERANCE = 1e-12
#: Why a book whose amounts sum to zero cannot be measured as a return, and what to do instead.
ZERO_NET = (
    "{what} must be finite and must not sum to zero; these sum to zero, so the book has no "
    "net value, and its return is a fraction of the net value (the P&L divided by it), and so "
    "is its VaR. Give {what} with a non-zero sum, or measure a dollar-neutral book's VaR in "
    "currency: swarmvar.books in Python; on the command line swarmvar var --data "
    "ASSET_RETURNS.csv --kind return --positions AAPL=500000,MSFT=-500000 (the joint agents' "
    "VaR/ES in currency)")


# MAX_WEIGHT_GROSS and WEIGHTS_HINT live beside Book (..types), whose from_weights asks them


def position_fractions(amounts: ArrayLike, *, positions: bool = True,
                       what: str = "positions") -> tuple[NDArray[np.float64], float]:
    """A book's value fractions and its absolute net value: the one zero-net rule.

    Positions (currency amounts, negative for shorts) become fractions of the
    absolute net value ``|sum_i p_i|``, so that a loss is a fall of the return
    for a net-short book as for a long one (dividing by a negative sum would
    turn its losses into gains, and its VaR would read the wrong tail).
    Weights (``positions=False``) are value fractions already and come back
    as given, once their gross size ``sum_i |w_i|`` is at most
    :data:`MAX_WEIGHT_GROSS` (10): weights typed in percent (60 and 40) are
    refused rather than read as a book 100 times levered. Used by
    :func:`portfolio` and by the runtime's portfolios (``swarm.ticks.PortfolioSpec``).

    Parameters
    ----------
    amounts : array_like, shape (n,)
        Finite positions (currency) or weights (fractions), one per asset.
    positions : bool
        Currency positions (True) or weights (False).
    what : str
        What the amounts are called in the message (e.g. ``"weights"``).

    Returns
    -------
    fractions : ndarray, shape (n,)
        ``p / |sum p|`` for positions; the weights as given.
    net : float
        ``|sum|``: the net value in currency for positions (> 0); for weights, the
        size of their sum (1 for a fully invested book).

    Raises
    ------
    InvalidReturns
        No amounts, a non-finite one, a sum within ``ZERO_NET_TOLERANCE * max(1, max |a|)``
        of zero (:data:`ZERO_NET`), or weights whose gross size passes
        ``MAX_WEIGHT_GROSS`` (:data:`WEIGHTS_HINT`).
    """
    vec = np.array(amounts, dtype=float).reshape(-1)
    if not np.all(np.isfinite(vec)):
        raise InvalidReturns(f"{what} must be finite numbers; {vec.tolist()!r} holds a "
                             "non-finite one")
    if vec.size == 0:
        raise InvalidReturns(f"the book has no assets; give {what} of one or more")
    with np.errstate(over="ignore"):  # finite amounts whose sum passes the largest float
        total = float(vec.sum())
    if not math.isfinite(total):  # each finite (checked above), their sum past any float
        raise InvalidReturns(f"the {what} {vec.tolist()!r} sum past the largest float "
                             f"({sys.float_info.max:.3g}); give them in a smaller unit")
    net = abs(total)
    if net < ZERO_NET_TOLERANCE * max(1.0, float(np.abs(vec).max())):
        raise InvalidReturns(ZERO_NET.format(what=what))
    if not positions:  # the one percent-weights rule (Book.from_weights asks it too)
        weights_gross(vec.tolist(), InvalidReturns,
                      f"{what} {vec.tolist()!r} sum to {total:.4g}, with")
    return (vec / net if positions else vec), net


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
    positions the returns are of the absolute net value ``|sum_i p_i|`` (a
    net-short book's loss is a fall of its return, as a long book's), and the
    series carries that value in ``series.attrs["notional"]`` so that VaR can
    be stated in currency.

    The portfolio's simple return is ``sum_i w_i (exp(r_i) - 1)``; the result
    is its log, so it stays in swarmvar's unit.

    Each asset column is checked as :func:`validate` checks a series (percent
    refused: ``|r| > 1`` or a standard deviation above 10% a day). The book's
    own return is computed from them, and with leverage it may pass those
    rules legitimately (a 65% one-day loss of the net value is -1.05): it is
    held only to ``|r| <=`` :data:`MAX_BOOK_RETURN` (a loss of 99.3% or a gain
    of 147 times in a day), what agents widened for books take
    (:meth:`swarmvar.models.base.Agent.take_book_returns`).

    Raises
    ------
    InvalidParameter
        ``returns`` not a DataFrame; weights/positions not a mapping of names to numbers.
    InvalidReturns
        An asset column's bad row (named by its date), both or neither of weights and
        positions, unknown or doubled asset columns, amounts that sum to zero, no common
        date, a day on which the book loses all its value or moves beyond
        ``MAX_BOOK_RETURN``.
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
    w, net = position_fractions(vec, positions=positions is not None,
                                what="positions" if positions is not None else "weights")
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
        raise InvalidReturns(f"portfolio loses all its value at {when(frame.index[i])}")
    out = pd.Series(np.log1p(simple), index=frame.index, name="portfolio")
    beyond = np.abs(out.to_numpy()) > MAX_BOOK_RETURN
    if beyond.any():
        i = int(np.argmax(beyond))
        move = (f"loses {-simple[i]:.2%} of" if simple[i] < 0
                else f"gains {simple[i]:.3g} times")
        raise InvalidReturns(
            f"portfolio {move} its value at {when(frame.index[i])} (a log return of "
            f"{float(out.iloc[i]):.3g}), beyond |r| <= {MAX_BOOK_RETURN:g} that a book's "
            "agents take; give less leverage")
    if positions is not None:
        out.attrs["notional"] = net
    # the percent rules (|r| > 1, sd > 10%) were the assets' (each column above): the
    # book's own return is computed, and with leverage can pass them legitimately
    return validate(out, max_abs=MAX_BOOK_RETURN, max_sd=math.inf)
