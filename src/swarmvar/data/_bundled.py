"""The bundled real data sets: the ones that ship inside the ``arch`` package.

Yahoo Finance daily Adj Close, 1999-2018; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..errors import UnknownDataset
from ._returns import prices_to_returns

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
