"""What a backtest row is, and the driver's checks of its arguments.

:class:`Forecaster` is what :func:`~.backtest.backtest` needs of a row (the
:class:`~swarmvar.models.base.Agent` life cycle), :class:`StudentTPredictive`
a row whose predictive loss is a scaled Student t (exact ES-test simulation),
:data:`Combiner` a callable consensus row, and :class:`Baseline` the arch
rows the driver can add. The checks run at the start of ``backtest``, before
any fit: ``_whole`` (whole-number arguments), ``_baselines`` (the
``baseline=`` argument), ``_named`` (the agents, named and deep-copied) and
``_check_window`` (a window long enough for every agent).

No state: the checks read their arguments and return new values (``_named``
copies the caller's agents, which stay as they were).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter
from ..models.base import Seed
from ..models.registry import neediest
from ..types import Forecast
from .baseline import GarchTBaseline


class Forecaster(Protocol):
    """What the driver needs of a row: the :class:`~swarmvar.models.base.Agent` life cycle."""

    @property
    def name(self) -> str: ...

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Any: ...

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Any: ...

    def update(self, r: float) -> float: ...

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast: ...


@runtime_checkable
class StudentTPredictive(Protocol):
    """A forecaster whose predictive loss is ``loc + scale * T_df`` (exact ES-test simulation)."""

    def predictive_t(self, horizon: int = 1) -> tuple[float, float, float]: ...


#: A consensus: combines the agents' forecasts of one day into one forecast.
Combiner = Callable[[Mapping[str, Forecast]], Forecast]


class Baseline(enum.Enum):
    """Baseline rows the driver can add: arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t."""

    ARCH = "arch"
    ARCH_GJR = "arch-gjr"

    def forecaster(self) -> GarchTBaseline:
        return GarchTBaseline(asymmetric=self is Baseline.ARCH_GJR)


def _baselines(baseline: object) -> list[Baseline]:
    """``None``, one baseline or a sequence of them, as distinct :class:`Baseline` members."""
    if baseline is None:
        return []
    items = [baseline] if isinstance(baseline, (str, Baseline)) else baseline
    if not isinstance(items, (list, tuple)):
        raise InvalidParameter(f"baseline must be a Baseline, its name or a list of them, "
                               f"not {baseline!r}")
    out: list[Baseline] = []
    for item in items:
        try:
            b = Baseline(item)
        except ValueError as exc:
            known = ", ".join(repr(b.value) for b in Baseline)
            raise InvalidParameter(f"unknown baseline {item!r}; use {known} or None") from exc
        if b not in out:
            out.append(b)
    return out


def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidParameter(f"{name} must be a whole number >= {low}, not {value!r}")
    return int(value)


def _named(agents: Mapping[str, Forecaster] | Sequence[Forecaster]) -> dict[str, Forecaster]:
    items = agents.items() if isinstance(agents, Mapping) else (
        (getattr(a, "name", type(a).__name__), a) for a in agents
    )
    out: dict[str, Forecaster] = {}
    for name, agent in items:
        for method in ("fit", "refit", "update", "forecast"):
            if not callable(getattr(agent, method, None)):
                raise InvalidParameter(f"agent {name!r} has no {method}(); it is not an Agent")
        key, k = str(name), 2
        while key in out:
            key, k = f"{name} #{k}", k + 1
        out[key] = copy.deepcopy(agent)  # the caller's agents stay as they were
    return out


def _check_window(window: int, rows: Mapping[str, Forecaster]) -> None:
    """Refuse a fitting ``window`` shorter than an agent's ``min_observations`` (rows
    without one, such as custom forecasters, are not checked), before any fit runs."""
    needs = [(name, int(m)) for name, row in rows.items()
             if isinstance(m := getattr(row, "min_observations", None), (int, np.integer))
             and not isinstance(m, bool)]
    if not needs:
        return
    need, agent = neediest(needs)
    if window < need:
        raise InvalidParameter(
            f"a window of {window} returns (window={window} in Python, --window {window} on "
            f"the command line) is too short: {agent} needs at least {need} returns to fit; "
            f"give a window of at least {need}")
