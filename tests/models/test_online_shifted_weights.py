"""A loaded state's log weights need not peak at 0: the agents' numbers are shift-free.

Every state the agents write holds log weights whose largest entry is 0, but a
state is a file, and ``from_state`` keeps its log weights exactly. The log
predictive density of an update divides two sums of ``exp``: taken from the
unshifted weights, ``exp(logw + 800)`` overflowed and ``exp(logw - 800)``
underflowed (``inf``, or a ``ZeroDivisionError`` that is no ``SwarmVarError``).
The sums are now of ``exp(logw - max(logw))``, so a shifted state forecasts and
updates as the state it shifts (to rounding).
"""

from __future__ import annotations

import functools
import io
import warnings

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning
from swarmvar.models._online_agent import OnlineAgent
from swarmvar.models.garch_t import GarchT
from swarmvar.models.har_arch import HarArch
from swarmvar.models.score_driven import BetaSkewTEgarch

AGENTS: dict[str, type[OnlineAgent]] = {
    "BetaSkewTEgarch": BetaSkewTEgarch, "GarchT": GarchT, "HarArch": HarArch}


@functools.cache
def _state(name: str) -> bytes:
    r = load("sp500").to_numpy()[-300:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds: R-hat may doubt
        return AGENTS[name](particles=100, runs=2).fit(r, seed=1).state()


def _shifted(state: bytes, shift: float) -> bytes:
    with np.load(io.BytesIO(state), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert np.max(arrays["logw"]) == 0.0  # as every state the agents write
    arrays["logw"] = arrays["logw"] + shift
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("shift", [800.0, -800.0])
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_a_state_with_shifted_log_weights_forecasts_and_updates_as_the_state(
        name: str, shift: float) -> None:
    cls = AGENTS[name]
    plain = cls.from_state(_state(name))
    shifted = cls.from_state(_shifted(_state(name), shift))
    assert np.max(shifted._logw) == shift  # kept exactly, not re-normalized
    days = np.r_[0.001, -0.03, 0.004]
    want, want_dens = plain.forecast_block(days, (0.99,), seeds=[0, 1, 2])
    got, got_dens = shifted.forecast_block(days, (0.99,), seeds=[0, 1, 2])
    assert np.all(np.isfinite(got_dens))
    np.testing.assert_allclose(got_dens, want_dens, rtol=1e-9)
    for a, b in zip(want, got, strict=True):
        assert b.levels[0].var == pytest.approx(a.levels[0].var, rel=1e-9)
        assert b.levels[0].es == pytest.approx(a.levels[0].es, rel=1e-9)
    assert shifted.update(-0.02) == pytest.approx(plain.update(-0.02), rel=1e-9)
