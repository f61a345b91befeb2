"""Return series in: bundled real data, user files, portfolios, and validation.

Convention: a *return* in swarmvar is a daily **log return as a fraction**
(0.01 = 1%), ``r_t = log(P_t / P_{t-1})``. Losses, VaR and ES are reported in
the same unit. Everything that enters a model passes :func:`validate` (for
labelled series) or :func:`as_array` (for plain arrays) first, so bad input
is refused at the door with a message naming the first bad row.

The bundled data sets are the ones that ship inside the ``arch`` package
(Yahoo Finance daily Adj Close, 1999-2018); nothing is downloaded.
"""

from ..types import MAX_WEIGHT_GROSS, WEIGHTS_HINT
from ._bundled import DATASETS, load
from ._dates import check_dates
from ._returns import (
    DROPNA_HINT,
    FROM_PRICES,
    FROM_PRICES_MARK,
    MAX_ABS_RETURN,
    MAX_DAILY_SD,
    PERCENT_HINT,
    PRICE_LIKE,
    TO_RETURNS_HINT,
    as_array,
    is_from_prices,
    is_judged,
    judge_asset_columns,
    judged_inputs,
    mark_from_prices,
    mark_judged,
    moves_like_prices,
    portfolio,
    position_fractions,
    prices_to_returns,
    refuse_non_numbers,
    stale_mark_hint,
    validate,
)
from ._tables import MAX_FILE_BYTES, naming, read, read_table

__all__ = [
    "DATASETS",
    "DROPNA_HINT",
    "FROM_PRICES",
    "FROM_PRICES_MARK",
    "MAX_ABS_RETURN",
    "MAX_DAILY_SD",
    "MAX_FILE_BYTES",
    "MAX_WEIGHT_GROSS",
    "PERCENT_HINT",
    "PRICE_LIKE",
    "TO_RETURNS_HINT",
    "WEIGHTS_HINT",
    "as_array",
    "check_dates",
    "is_from_prices",
    "is_judged",
    "judge_asset_columns",
    "judged_inputs",
    "mark_from_prices",
    "mark_judged",
    "load",
    "moves_like_prices",
    "naming",
    "portfolio",
    "position_fractions",
    "prices_to_returns",
    "read",
    "read_table",
    "refuse_non_numbers",
    "stale_mark_hint",
    "validate",
]
