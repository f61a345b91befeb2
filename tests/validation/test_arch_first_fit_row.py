"""A non-finite first arch fit is that baseline row's note; the backtest runs on.

``ArchRefits`` refuses a first fit with a non-finite parameter (its forecasts would be
NaN); the backtest used to stop on it, losing every other row. Now the row is kept with
NaN forecasts and the refusal as its note. Driven through the baseline's own ``fit``
(arch's result made non-finite on the first window), not through ``_take``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from swarmvar.models.nig import NormalInverseGamma
from swarmvar.validation import backtest

sys.path.insert(0, str(Path(__file__).parent))
from _arch_nan import first_fit_nan  # noqa: E402


def test_a_non_finite_first_arch_fit_is_its_row_s_note(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    calls = first_fit_nan(monkeypatch)
    r = 0.01 * np.random.default_rng(3).standard_t(6, 400) * math.sqrt(4 / 6)
    res = backtest(r, [NormalInverseGamma()], window=250, refit_every=50, alphas=(0.99,),
                   baseline=["arch"], seed=0, progress=False, workers=1)
    assert calls["fits"] >= 1
    (arch_row,) = [k for k in res.series if "GARCH" in k]
    (nig,) = [k for k in res.series if k != arch_row]
    assert any("no forecasts" in n and "non-finite" in n for n in res.notes[arch_row]), res.notes
    assert np.all(np.isnan(res.series[arch_row][0.99].var))
    assert np.all(np.isfinite(res.series[nig][0.99].var))  # the other row kept
