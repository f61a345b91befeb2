"""Portfolios and ticks: what a portfolio is, and which ticks the runtime accepts.

A portfolio is either a single return series (its ticks carry ``value``) or
weights / currency positions over asset columns (its ticks carry ``assets``,
and its return is :func:`swarmvar.data.portfolio`'s: the log of the weighted
simple returns). A tick is refused — :class:`~swarmvar.errors.InvalidTick`
naming what was wrong — when its return is NaN/inf, looks like percent
(``|r| > 1``: a single series' value, each asset's return; a book's own return,
computed, may pass 1 with leverage, up to ``MAX_BOOK_RETURN``), its date is not
after the portfolio's last, or it names an unknown portfolio or misses an asset.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..data import MAX_ABS_RETURN, TO_RETURNS_HINT, position_fractions
from ..data import portfolio as portfolio_returns
from ..data._returns import MAX_BOOK_RETURN, looks_like_prices
from ..errors import (
    InvalidParameter,
    InvalidReturns,
    InvalidTick,
    SwarmVarError,
    UnknownTickPortfolio,
)
from ..types import Tick

#: A tick with ``portfolio=ALL`` and asset returns goes to every asset-defined portfolio.
ALL = "*"

#: How a portfolio's returns are made from its book, recorded in every checkpoint
#: (``returns_rule``) so that a resume knows which rule its agents were fitted under.
#: 2: positions are fractions of the absolute net value ``|sum p|``. 1 (a checkpoint
#: without the field): positions were divided by their signed sum, so a net-short book's
#: every return had the wrong sign. Weights and single series are the same under both.
RETURNS_RULE = 2


@dataclass(frozen=True)
class PortfolioSpec:
    """A portfolio the swarm runs: a single series (no assets), or weights / positions.

    ``weights`` are value fractions rebalanced each period; ``positions``
    currency amounts per asset (negative for shorts). Give at most one.
    """

    name: str
    weights: Mapping[str, float] | None = None
    positions: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or self.name == ALL:
            raise InvalidParameter(f"a portfolio needs a non-empty name (not {ALL!r}), "
                                   f"not {self.name!r}")
        if len(self.name) > 4 and self.name.startswith("__") and self.name.endswith("__"):
            # its state key swarm:<name> would be the run record's or the start's
            # (_records.RUN_KEY, START_KEY)
            raise InvalidParameter(f"portfolio name {self.name!r} is reserved (names of the "
                                   "form __name__ are the swarm's own records): rename it")
        if self.weights is not None and self.positions is not None:
            raise InvalidParameter(f"portfolio {self.name!r}: give weights or positions, not both")
        key = "weights" if self.weights is not None else "positions"
        given = self.weights if self.weights is not None else self.positions
        if given is not None:
            if not isinstance(given, Mapping):
                raise InvalidParameter(f"portfolio {self.name!r}: {key} must map each asset to "
                                       f"a number, e.g. {{\"AAPL\": 0.6}}; not {given!r}")
            if not given:
                raise InvalidParameter(f"portfolio {self.name!r} has no assets")
            values = [self._amount(key, asset, amount) for asset, amount in given.items()]
            if not math.isfinite(sum(values)):  # each finite, their sum past the largest float
                raise InvalidParameter(f"portfolio {self.name!r}: its {key} sum past the largest "
                                       f"number a float holds ({sys.float_info.max:.3g}); give "
                                       "smaller amounts")
            vec = np.array(values)
            try:  # the data layer's one zero-net rule (data.portfolio asks it too)
                position_fractions(vec, positions=self.positions is not None, what=key)
            except InvalidReturns as exc:
                raise InvalidParameter(f"portfolio {self.name!r}: {exc}") from None

    def _amount(self, key: str, asset: object, amount: object) -> float:
        """One asset's weight or position as a finite float.

        Raises
        ------
        InvalidParameter
            Naming the portfolio, the asset and the value: not a real number (a bool, a
            string, a complex number, a time span), or not finite (NaN, inf, an integer
            past the largest float).
        """
        # a numpy real scalar as the number it is (np.float32(inf) reads "inf")
        shown = (repr(amount.item()) if isinstance(amount, (np.floating, np.integer))
                 else repr(amount))
        if len(shown) > 40:  # e.g. 10**400: its size, not its 401 digits
            shown = f"{shown[:12]}... ({len(shown)} characters)"
        where = f"portfolio {self.name!r}: {key}[{asset!r}] is {shown}"
        if (isinstance(amount, (bool, np.bool_, complex, np.complexfloating, np.timedelta64))
                or not isinstance(amount, (int, float, np.number))):
            real = "real " if isinstance(amount, (complex, np.complexfloating)) else ""
            raise InvalidParameter(f"{where}, not a {real}number")
        try:
            value = float(amount)
        except (OverflowError, TypeError, ValueError):  # OverflowError: an int past 1.8e308
            value = math.nan
        if not math.isfinite(value):
            raise InvalidParameter(f"{where}; {key} must be finite")
        return value

    @property
    def assets(self) -> tuple[str, ...]:
        given = self.weights if self.weights is not None else self.positions
        return tuple(given) if given is not None else ()

    @property
    def net_value(self) -> float | None:
        """The absolute net value ``|sum p|`` of a book given by currency positions (its
        returns, and so its VaR/ES in %, are fractions of it); None for weights or a series."""
        if self.positions is None:
            return None
        return position_fractions([float(v) for v in self.positions.values()])[1]

    def _vector(self) -> np.ndarray:
        """Value fractions per asset (``data.position_fractions``: positions over the
        absolute net value, so a net-short book's loss is a fall of its return)."""
        given = self.weights if self.weights is not None else self.positions
        assert given is not None
        return position_fractions([float(given[a]) for a in self.assets],
                                  positions=self.positions is not None)[0]

    def history(self, frame: pd.DataFrame | pd.Series) -> pd.Series:
        """This portfolio's log returns from a single series or an asset-returns frame."""
        if not self.assets:
            if isinstance(frame, pd.DataFrame):
                if self.name in frame.columns:
                    return frame[self.name].astype(float)
                if frame.shape[1] == 1:
                    return frame.iloc[:, 0].astype(float)
                raise InvalidParameter(f"portfolio {self.name!r} has no weights and the data "
                                       f"has no column {self.name!r}")
            return frame.astype(float)
        if not isinstance(frame, pd.DataFrame):
            raise InvalidParameter(f"portfolio {self.name!r} is over assets; give asset returns")
        return portfolio_returns(frame, weights=self.weights, positions=self.positions)

    def value_of(self, assets: Mapping[str, float]) -> float:
        """The portfolio's log return from one day's asset log returns.

        Each asset return is held to ``|r| <= 1`` (:func:`check_return`); the book's
        own, computed, may pass 1 with leverage and is held to ``|r| <=``
        :data:`~swarmvar.data._returns.MAX_BOOK_RETURN` only.

        Raises
        ------
        InvalidTick
            An asset missing or not a number, one beyond ``|r| <= 1``, or a book that
            would lose all its value or move beyond ``MAX_BOOK_RETURN``.
        """
        try:
            x = np.array([float(assets[a]) for a in self.assets])
        except KeyError as exc:
            raise InvalidTick(f"tick for {self.name!r} misses asset {exc.args[0]!r}; it needs "
                              f"{list(self.assets)}") from None
        except (TypeError, ValueError) as exc:
            raise InvalidTick(f"tick for {self.name!r} has a non-numeric asset return: "
                              f"{exc}") from None
        check_return(x, f"an asset return of {self.name!r}")
        simple = float(np.expm1(x) @ self._vector())
        if simple <= -1:
            raise InvalidTick(f"tick for {self.name!r}: the portfolio would lose all its value")
        value = math.log1p(simple)
        if abs(value) > MAX_BOOK_RETURN:  # its assets are within |r| <= 1, the book need not
            move = f"lose {-simple:.2%} of" if simple < 0 else f"gain {simple:.3g} times"
            raise InvalidTick(f"tick for {self.name!r}: the portfolio would {move} its value "
                              f"(a log return of {value:.3g}), beyond |r| <= "
                              f"{MAX_BOOK_RETURN:g} that a book's agents take")
        return value

    @property
    def net_short(self) -> bool:
        """Whether the book is given by positions summing below zero (the one kind of book
        whose returns changed sign with :data:`RETURNS_RULE` 2)."""
        return self.positions is not None and sum(float(v) for v in self.positions.values()) < 0

    def book(self) -> dict[str, Any]:
        """What a checkpoint records of the book: ``{"weights"|"positions": {asset: float}}``
        in the assets' order, or ``{}`` for a single series (see :func:`book_differences`)."""
        given = self.weights if self.weights is not None else self.positions
        if given is None:
            return {}
        return {"weights" if self.weights is not None else "positions":
                {str(a): float(v) for a, v in given.items()}}

    def in_order_of(self, saved: Mapping[str, Any]) -> PortfolioSpec:
        """This spec with its assets in the order of a recorded book holding the same assets
        (the order the returns were summed in, so a resume adds them up as before)."""
        key = "weights" if self.weights is not None else "positions"
        given = self.weights if self.weights is not None else self.positions
        order = list(saved.get(key, {})) if isinstance(saved.get(key), Mapping) else []
        if given is None or order == list(given) or set(order) != set(given):
            return self
        book = {a: given[a] for a in order}
        return PortfolioSpec(self.name, book if key == "weights" else None,
                             book if key == "positions" else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.weights is not None:
            out["weights"] = dict(self.weights)
        if self.positions is not None:
            out["positions"] = dict(self.positions)
        return out


def book_differences(saved: Mapping[str, Any], spec: PortfolioSpec) -> list[str]:
    """How ``spec``'s book differs from a recorded one (:meth:`PortfolioSpec.book`, or the
    ``swarm-start`` entry's ``to_dict``), each as words: ``asset X added``, ``position of
    X: old -> new``, ``weights over [..] -> positions over [..]``; [] when they are the same.

    Amounts are compared as floats, exactly (600000, 600000.0 and 6e5 are one amount); the
    order of the assets is not a difference (:meth:`PortfolioSpec.in_order_of`).
    """
    def kind(d: Mapping[str, Any]) -> str | None:
        return "weights" if d.get("weights") is not None else (
            "positions" if d.get("positions") is not None else None)

    def words(k: str | None, d: Mapping[str, Any]) -> str:
        return "a single series" if k is None else f"{k} over [{', '.join(map(str, d[k]))}]"

    now = spec.book()
    was, new = kind(saved), kind(now)
    if was != new:
        return [f"{words(was, saved)} -> {words(new, now)}"]
    if was is None:
        return []
    one = "weight" if was == "weights" else "position"
    try:
        old = {str(a): float(v) for a, v in saved[was].items()}
    except (AttributeError, TypeError, ValueError):
        return [f"an unreadable record of its {was}, {str(saved[was])[:80]!r}"]
    cur: dict[str, float] = now[was]
    return ([f"asset {a} added ({one} {_amount(cur[a])})" for a in cur if a not in old]
            + [f"asset {a} removed (was {one} {_amount(old[a])})" for a in old if a not in cur]
            + [f"{one} of {a}: {_amount(old[a])} -> {_amount(cur[a])}"
               for a in old if a in cur and old[a] != cur[a]])


def _amount(x: float) -> str:
    """An amount as typed: whole numbers without ``.0``, others exactly (``repr``)."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def check_return(x: Any, what: str) -> None:
    """Refuse NaN, inf and percent-looking values (``|r| > 1``) with :class:`InvalidTick`."""
    arr = np.atleast_1d(np.asarray(x, dtype=float))
    if not np.all(np.isfinite(arr)):
        raise InvalidTick(f"{what} is {float(arr[~np.isfinite(arr)][0])}; returns must be finite")
    if np.any(np.abs(arr) > MAX_ABS_RETURN):
        big = float(arr[np.abs(arr) > MAX_ABS_RETURN][0])
        # the data layer's price test on this one value (its other test, a series of
        # positive values moving slowly, is for a column over time, not one tick's values);
        # its percent hint speaks of a series ("these"), a tick's of one value
        hint = (f"it looks like a price, not a return; {TO_RETURNS_HINT}"
                if looks_like_prices(np.array([big]), big) else
                "returns are fractions (0.01 = 1%) - if this is percent, divide by 100")
        raise InvalidTick(f"{what} is {big}, beyond |r| <= {MAX_ABS_RETURN:g}; {hint}")


def as_utc(when: Any) -> datetime:
    """A timezone-aware datetime (naive ones and dates are taken as UTC)."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError as exc:
            raise InvalidTick(f"as_of {when!r} is not an ISO date or datetime") from exc
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime()
    if not isinstance(when, datetime):
        if hasattr(when, "isoformat") and hasattr(when, "year"):
            when = datetime(when.year, when.month, when.day)
        else:
            raise InvalidTick(f"as_of must be a date or datetime, not {type(when).__name__}")
    out: datetime = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return out


def tick_value(spec: PortfolioSpec, tick: Tick) -> float:
    """The portfolio's return carried by ``tick``, checked; raises :class:`InvalidTick`."""
    if tick.value is not None and tick.assets is not None:
        raise InvalidTick(f"tick for {spec.name!r} carries both a value and asset returns")
    if tick.value is not None:
        if spec.assets:
            raise InvalidTick(f"portfolio {spec.name!r} is over assets {list(spec.assets)}; "
                              "send asset returns, not one value")
        if isinstance(tick.value, bool):
            raise InvalidTick(f"tick value for {spec.name!r} is a bool, not a return")
        try:
            v = float(tick.value)
        except (TypeError, ValueError):
            raise InvalidTick(f"tick value for {spec.name!r} is {tick.value!r}, not a number"
                              ) from None
        check_return(v, f"the return of {spec.name!r}")
        return v
    if tick.assets is not None:
        if not spec.assets:
            if spec.name in tick.assets:  # a column named like the portfolio: its return
                return tick_value(spec, Tick(spec.name, tick.as_of,
                                             value=tick.assets[spec.name]))
            raise InvalidTick(f"portfolio {spec.name!r} is a single series; send value=, not "
                              "asset returns")
        return spec.value_of(tick.assets)
    raise InvalidTick(f"tick for {spec.name!r} carries neither a value nor asset returns")


def route(tick: Any, specs: Mapping[str, PortfolioSpec]) -> list[PortfolioSpec]:
    """The portfolios a tick is for; raises :class:`InvalidTick` / ``UnknownTickPortfolio``."""
    if not isinstance(tick, Tick):
        raise InvalidTick(f"a tick must be a swarmvar.types.Tick, not {type(tick).__name__}")
    if tick.portfolio == ALL:
        if tick.assets is None:
            raise InvalidTick(f"a tick for every portfolio ({ALL!r}) must carry asset returns")
        out = [s for s in specs.values() if s.assets or s.name in tick.assets]
        if not out:
            raise InvalidTick("no portfolio is defined over these assets (nor named like one "
                              "of them); name the portfolio")
        return out
    spec = specs.get(tick.portfolio) if isinstance(tick.portfolio, str) else None
    if spec is None:
        known = ", ".join(sorted(specs)[:10])
        raise UnknownTickPortfolio(f"tick names portfolio {tick.portfolio!r}, which this swarm "
                                   f"does not run; known: {known}")
    return [spec]


def dated_route(tick: Any, specs: Mapping[str, PortfolioSpec]
                ) -> tuple[datetime, list[str]] | None:
    """A tick's date and the names of the portfolios it is for (:func:`route`); None when
    it is refused (the beat says why): what a resume compares a tick to its portfolios'
    resume points by."""
    try:
        names = [s.name for s in route(tick, specs)]
        return as_utc(tick.as_of), names
    except SwarmVarError:
        return None


def specs_from(portfolios: Sequence[PortfolioSpec | str] | Mapping[str, Any]
               ) -> dict[str, PortfolioSpec]:
    """Portfolio specs from names, specs, or ``{name: {"weights"|"positions": {...}}}``."""
    items: list[PortfolioSpec] = []
    if isinstance(portfolios, Mapping):
        for name, body in portfolios.items():
            body = body or {}
            if not isinstance(body, Mapping):
                raise InvalidParameter(f"portfolio {name!r}: expected weights/positions, got "
                                       f"{type(body).__name__}")
            unknown = set(body) - {"weights", "positions"}
            if unknown:
                raise InvalidParameter(f"portfolio {name!r}: unknown keys {sorted(unknown)}; "
                                       "use weights or positions")
            items.append(PortfolioSpec(str(name), body.get("weights"), body.get("positions")))
    else:
        for p in portfolios:
            items.append(p if isinstance(p, PortfolioSpec) else PortfolioSpec(str(p)))
    out: dict[str, PortfolioSpec] = {}
    for spec in items:
        if spec.name in out:
            raise InvalidParameter(f"portfolio {spec.name!r} is given twice")
        out[spec.name] = spec
    if not out:
        raise InvalidParameter("the swarm needs at least one portfolio")
    return out


def ensure_returns(x: Any, what: str) -> np.ndarray:
    """A history as a float array, checked as the models check it."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidReturns(f"{what} is not numbers: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidReturns(f"{what} must be one series, got shape {arr.shape}")
    return arr
