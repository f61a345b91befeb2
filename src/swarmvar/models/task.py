"""Agent work as plain data in, plain data out: what a sandbox (or any worker) can run.

Each function here has the task signature ``fn(params, arrays, seed) ->
(values, arrays)`` with JSON ``params``/``values`` and numpy ``arrays``, so
it can run across a process or sandbox boundary with nothing pickled. The
models know nothing of sandboxes; these are only their entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import numpy as np

from ..data import judged_inputs
from ..errors import InvalidParameter
from .registry import agent_class


def _agent(params: Mapping[str, Any]) -> Any:
    name = params.get("agent")
    options = params.get("options", {})
    if not isinstance(name, str) or not isinstance(options, dict):
        raise InvalidParameter("a task needs params 'agent' (a name) and 'options' (an object)")
    return agent_class(name)(**options)


def fit_forecast(params: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                 seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Fit ``params['agent']`` on ``arrays['returns']`` and forecast.

    ``params``: ``agent``, ``options`` (constructor arguments), ``alphas``
    (default [0.99]), ``horizon`` (default 1). Returns the forecast and the
    diagnostics as JSON values and the fitted state as ``arrays['state']``
    (uint8 bytes of :meth:`~swarmvar.models.Agent.state`).
    """
    if "returns" not in arrays:
        raise InvalidParameter("a fit task needs arrays['returns']")
    agent = _agent(params)
    agent.fit(np.asarray(arrays["returns"], dtype=float), seed=seed)
    alphas = tuple(float(a) for a in params.get("alphas", [0.99]))
    forecast = agent.forecast(alphas, int(params.get("horizon", 1)), seed=seed)
    diag = agent.diagnostics
    values = {"forecast": forecast.to_dict(),
              "diagnostics": None if diag is None else diag.summary()}
    return values, {"state": np.frombuffer(agent.state(), dtype=np.uint8)}


def forecast_path(params: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                  seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A backtest row: fit on the first ``window`` returns, then forecast-then-update each day.

    ``params``: ``agent``, ``options``, ``alphas``, ``window``, ``refit_every``,
    and ``judged`` (default false): true when the caller judged the returns
    where they entered (:func:`swarmvar.data.as_array`, as the canary's
    ``validate_variant`` does) - the mark of that does not travel into a
    sandbox, so the fits run inside :func:`swarmvar.data.judged_inputs` and
    the windows of returns worked out from prices are not refused for
    looking like prices; without it each fit judges its window.
    Returns ``arrays['var']`` and ``arrays['es']`` of shape (days, levels),
    the one-day VaR/ES made before each day's return is seen.

    Raises
    ------
    InvalidParameter
        A window or refit interval out of range, ``judged`` not true/false,
        or no agent named.
    InvalidReturns
        The agent refused a window (a window that looks like prices, unless
        ``judged``).
    """
    x = np.asarray(arrays["returns"], dtype=float)
    window = int(params.get("window", 1000))
    refit = int(params.get("refit_every", 20))
    alphas = tuple(float(a) for a in params.get("alphas", [0.99]))
    judged = params.get("judged", False)
    if not isinstance(judged, bool):
        raise InvalidParameter(f"forecast_path's 'judged' must be true or false, not {judged!r}")
    if not 2 <= window < x.size or refit < 1:
        raise InvalidParameter("forecast_path needs 2 <= window < len(returns), refit_every >= 1")
    with judged_inputs() if judged else nullcontext():
        return _forecast_path(params, x, window, refit, alphas, seed)


def _forecast_path(params: Mapping[str, Any], x: np.ndarray, window: int, refit: int,
                   alphas: tuple[float, ...], seed: int
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`forecast_path`'s fits and forecasts, its parameters checked."""
    agent = _agent(params)
    agent.fit(x[:window], seed=seed)
    days = x.size - window
    var = np.empty((days, len(alphas)))
    es = np.empty((days, len(alphas)))
    for i in range(days):
        if i and i % refit == 0:
            agent.fit(x[i:window + i], seed=seed + i)
        fc = agent.forecast(alphas, 1, seed=seed + i)
        var[i] = [m.var for m in fc.levels]
        es[i] = [m.es for m in fc.levels]
        agent.update(float(x[window + i]))
    return {"days": days}, {"var": var, "es": es}


# --- live agents: one agent kept in a worker between tasks --------------------

#: The largest number of returns one ``live_agent`` call absorbs.
MAX_UPDATES_PER_CALL = 100_000


def _live_class(params: Mapping[str, Any]) -> Any:
    """A registered agent by name, or a plug-in class by ``"module:Class"`` path.

    A plug-in is imported here, inside the worker (the sandbox), never by the
    host; it must subclass :class:`~swarmvar.models.Agent`.
    """
    import importlib

    from .base import Agent

    plugin = params.get("plugin")
    if plugin is None:
        return agent_class(str(params.get("agent")))
    module, _, name = str(plugin).partition(":")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise InvalidParameter(f"plug-in {plugin!r} is not a swarmvar Agent class")
    return cls


def live_agent(params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], seed: int,
               session: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One step of an agent the worker keeps alive between tasks (its ``session``).

    ``params['op']``: ``fit`` (on ``arrays['returns']``), ``restore`` (from
    ``arrays['state']``), ``update`` (each of ``arrays['returns']``; values
    ``log_densities``), ``forecast`` (``alphas``, ``horizon``) or ``state``
    (``arrays['state']``). ``params['handle']`` names the agent; an unknown
    handle (a recycled worker) is reported as ``KeyError`` so the host restores
    it from its last state and replays the returns since.
    """
    op, handle = params.get("op"), str(params.get("handle"))
    agents = session.setdefault("agents", {})
    if op in ("fit", "restore"):
        cls = _live_class(params)
        if op == "fit":
            agent = cls(**dict(params.get("options", {})))
            agent.fit(np.asarray(arrays["returns"], dtype=float), seed=seed)
        else:
            agent = cls.from_state(arrays["state"].tobytes())
        agents[handle] = agent
        return {"name": agent.name}, {}
    if handle not in agents:
        raise KeyError(f"no live agent {handle!r} in this worker")
    agent = agents[handle]
    if op == "update":
        returns = np.asarray(arrays["returns"], dtype=float)
        if returns.size > MAX_UPDATES_PER_CALL:
            raise InvalidParameter(f"at most {MAX_UPDATES_PER_CALL} returns per update call")
        return {}, {"log_densities": np.array([agent.update(float(r)) for r in returns])}
    if op == "forecast":
        alphas = tuple(float(a) for a in params.get("alphas", [0.99]))
        forecast = agent.forecast(alphas, int(params.get("horizon", 1)), seed=seed)
        return {"forecast": forecast.to_dict()}, {}
    if op == "state":
        return {}, {"state": np.frombuffer(agent.state(), dtype=np.uint8)}
    raise InvalidParameter(f"unknown live_agent op {op!r}")
