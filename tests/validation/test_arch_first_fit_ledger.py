"""A backtest whose arch row has no forecasts is recorded: its NaNs are written as null.

The row runner keeps an arch baseline whose first fit is refused, with NaN forecasts
(test_arch_first_fit_row.py); ``record_backtest`` wrote ``float(nan)`` into the ledger's
canonical JSON, which refuses NaN ("entry data is not canonical JSON"): ``swarmvar
backtest`` exited 2 without its report. A refusal after the first fit still stops the run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar.errors import InvalidReturns
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.models._arch_refits import ArchRefits
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.swarm.record import record_backtest
from swarmvar.validation import backtest
from swarmvar.validation._backtest_days import _run_any_row

sys.path.insert(0, str(Path(__file__).parent))
from _arch_nan import first_fit_nan as _first_fit_nan  # noqa: E402


def _returns() -> np.ndarray:
    return 0.01 * np.random.default_rng(3).standard_t(6, 400) * math.sqrt(4 / 6)


def test_a_row_without_forecasts_is_ledgered_as_null(monkeypatch: pytest.MonkeyPatch) -> None:
    _first_fit_nan(monkeypatch)
    res = backtest(_returns(), [NormalInverseGamma()], window=250, refit_every=50,
                   alphas=(0.99,), baseline=["arch"], seed=0, progress=False, workers=1)
    (arch_row,) = [k for k in res.series if "GARCH" in k]
    assert np.all(np.isnan(res.series[arch_row][0.99].var))
    ledger = Ledger.in_memory()
    entries = record_backtest(ledger, res, source="test")
    assert len(entries) == len(res.dates) + 2 * 1 + 1  # days, 2 rows x 1 level, summary
    days = [e for e in ledger.entries() if e.kind is EntryKind.FORECAST]
    assert len(days) == len(res.dates)
    rows = days[0].data["rows"]
    assert rows[arch_row]["0.99"] == [None] * 6
    nig = [k for k in rows if k != arch_row][0]
    assert all(isinstance(v, float) and math.isfinite(v) for v in rows[nig]["0.99"])


class _LaterRefusal(ArchRefits):
    """A fitted arch row (parameters kept) whose refit is then refused."""

    name = "later"

    def __init__(self) -> None:
        super().__init__()
        self._params = (0.0, 0.01, 0.05, 0.0, 0.9, 8.0)  # as after a first fit

    def fit(self, returns: Any, *, seed: Any = None) -> _LaterRefusal:
        raise InvalidReturns("refused on a later window")


def test_a_refusal_after_the_first_fit_stops_the_run() -> None:
    """Only a refused *first* fit becomes the row's note; a later one is not swallowed."""
    r = _returns()
    with pytest.raises(InvalidReturns, match="later window"):
        _run_any_row(_LaterRefusal(), r, 250, 50, (0.99,), 1, 150, 1, (0, 0), 10)
