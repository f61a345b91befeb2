"""Emergence, measured: ensemble gain, Model Confidence Set, diversity, weights over time.

The seed's ``E(S) = H(S) - sum_i H(A_i) + I(A_1..A_n)`` is not a usable
quantity: the entropies of forecasters are undefined without a joint model
of their outputs, and with one the expression is not a gain in forecast
quality. What is measured instead (``docs/emergence.md`` maps each name):

* **ensemble gain** per level: the best single agent's mean FZ0 loss minus
  the consensus's (positive: the swarm beats its best member), with the
  Diebold-Mariano test of equal loss (two-sided p, and the one-sided p that
  the consensus is better);
* **Model Confidence Set** (Hansen, Lunde & Nason 2011, ``arch.bootstrap.MCS``)
  of every row's FZ0 losses: each row's MCS p-value and whether it is in
  the set;
* **diversity**: the correlation of the agents' VaR errors (their hit
  residuals ``1{L > VaR} - (1 - alpha)``, or relative errors against a known
  VaR in simulations) and the disagreement between agents relative to their
  own credible intervals;
* **weights**: each day's tempered weights, the effective number of agents
  ``1 / sum w^2`` and the turnover ``sum |w_t - w_{t-1}| / 2``;
* **regimes**: change points of the standardized returns (:mod:`.regimes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from ..consensus import (
    DEFAULT_POLICY,
    LevelForecasts,
    Policy,
    Weighting,
    consensus_levels,
    effective_agents,
    joint_losses,
    tempered_path,
)
from ..errors import InvalidParameter
from ..validation import BacktestResult, diebold_mariano, fz0_loss
from ..validation._checks import aligned, check_whole, float_array, level
from .regimes import run_length_posterior, standardize

FloatArray = NDArray[np.float64]

#: Most bootstrap replications of one Model Confidence Set.
MAX_MCS_REPS = 100_000


@dataclass(frozen=True)
class LevelGain:
    """The consensus against its best agent at one level (mean FZ0 losses, lower is better).

    ``gain = best_loss - consensus_loss``; ``dm_statistic`` is the
    Diebold-Mariano statistic of ``consensus - best`` (negative: consensus
    better), ``dm_pvalue`` two-sided, ``dm_pvalue_better`` one-sided.
    """

    alpha: float
    best_agent: str
    best_loss: float
    consensus_loss: float
    gain: float
    dm_statistic: float
    dm_pvalue: float
    dm_pvalue_better: float


@dataclass(frozen=True)
class EmergenceSummary:
    """What the swarm adds over its members on one backtest.

    Attributes
    ----------
    consensus, agents : row names (``agents`` in weight-column order)
    alphas : confidence levels
    gains : one :class:`LevelGain` per level
    mcs_pvalues : level -> row -> MCS p-value (every agent, consensus and baseline row)
    mcs_size : the MCS test size (rows with p-value >= size are in the set)
    error_correlation : ``(n, n)`` mean over levels of the agents' VaR-error correlation
    disagreement : ``(T,)`` between-agent sd of VaR over the mean credible-interval
        width (first level); > 1 means agents differ more than their own uncertainty
    weights : ``(T, n)`` each day's agent weights (before the robust rule)
    effective_agents : ``(T,)`` ``1 / sum w^2`` of ``weights``
    used_effective_agents : ``(T,)`` the same of each agent's share of the consensus VaR
        after the robust rule (trimmed agents count 0; first level), when the backtest
        recorded it
    turnover : mean daily ``sum |w_t - w_{t-1}| / 2`` (0: fixed weights, 1: all moved)
    prob_change : ``(T,)`` regime-change probability of the standardized returns
    change_points : day indices where a regime change was detected (start of the new regime)
    dates : ``(T,)`` the days
    """

    consensus: str
    agents: tuple[str, ...]
    alphas: tuple[float, ...]
    gains: tuple[LevelGain, ...]
    mcs_pvalues: Mapping[float, Mapping[str, float]]
    mcs_size: float
    error_correlation: FloatArray
    disagreement: FloatArray
    weights: FloatArray
    effective_agents: FloatArray
    used_effective_agents: FloatArray | None
    turnover: float
    prob_change: FloatArray
    change_points: NDArray[np.int64]
    dates: pd.Index

    def in_mcs(self, alpha: float) -> tuple[str, ...]:
        """Rows in the Model Confidence Set at level ``alpha``."""
        return tuple(r for r, p in self.mcs_pvalues[alpha].items() if p >= self.mcs_size)

    def to_frame(self) -> pd.DataFrame:
        """One row per level: gain, DM p-values, MCS p of the consensus, effective agents."""
        mean_error_corr = float(_off_diagonal_mean(self.error_correlation))
        return pd.DataFrame([{
            "alpha": g.alpha, "best agent": g.best_agent, "best FZ0": g.best_loss,
            "consensus FZ0": g.consensus_loss, "gain": g.gain, "DM stat": g.dm_statistic,
            "DM p": g.dm_pvalue, "DM p (consensus better)": g.dm_pvalue_better,
            "MCS p consensus": self.mcs_pvalues[g.alpha][self.consensus],
            "MCS set": ", ".join(self.in_mcs(g.alpha)),
            "effective agents (median)": float(np.median(self.effective_agents)),
            "effective agents (min)": float(np.min(self.effective_agents)),
            "weight turnover": self.turnover, "VaR-error correlation": mean_error_corr,
            "disagreement / interval": float(np.median(self.disagreement)),
            "regime changes": int(self.change_points.size),
        } for g in self.gains]).set_index("alpha")

    def mcs_frame(self) -> pd.DataFrame:
        """MCS p-values, rows x levels."""
        return pd.DataFrame({a: dict(p) for a, p in self.mcs_pvalues.items()})


def _off_diagonal_mean(c: FloatArray) -> float:
    n = c.shape[0]
    if n < 2:
        return float("nan")
    return float((np.nansum(c) - np.nansum(np.diag(c))) / (n * n - n))


def _agent_matrix(x: ArrayLike, what: str, days: int) -> FloatArray:
    """Agents' forecasts ``(T, n)``: finite, ``T = days`` rows, at least one column."""
    m = float_array(x, what)
    if m.ndim != 2 or m.shape[0] != days or m.shape[1] < 1:
        raise InvalidParameter(f"{what} must be ({days}, n): one column per agent, one row per "
                               f"day of losses; got shape {m.shape}")
    return m


def level_gain(losses: FloatArray, var: FloatArray, es: FloatArray, agents: Sequence[str],
               consensus_var: FloatArray, consensus_es: FloatArray, alpha: float) -> LevelGain:
    """:class:`LevelGain` from losses ``(T,)``, agents' ``(T, n)``, the consensus's ``(T,)``."""
    losses, consensus_var, consensus_es = aligned(
        (losses, consensus_var, consensus_es), ("losses", "consensus_var", "consensus_es"))
    var, es = _agent_matrix(var, "var", losses.size), _agent_matrix(es, "es", losses.size)
    if var.shape != es.shape:
        raise InvalidParameter(f"var and es must have one shape (T, n); got {var.shape} and "
                               f"{es.shape}")
    if (isinstance(agents, (str, bytes)) or not isinstance(agents, Sequence)
            or len(agents) != var.shape[1] or not all(isinstance(a, str) for a in agents)):
        raise InvalidParameter(f"agents must be {var.shape[1]} names (one per column of var), "
                               f"not {agents!r}")
    agent_loss = np.column_stack([fz0_loss(losses, var[:, i], es[:, i], alpha)
                                  for i in range(var.shape[1])])
    cons = fz0_loss(losses, consensus_var, consensus_es, alpha)
    best = int(np.argmin(agent_loss.mean(axis=0)))
    dm = diebold_mariano(cons, agent_loss[:, best])
    return LevelGain(alpha=alpha, best_agent=agents[best],
                     best_loss=float(agent_loss[:, best].mean()),
                     consensus_loss=float(cons.mean()),
                     gain=float(agent_loss[:, best].mean() - cons.mean()),
                     dm_statistic=dm.statistic, dm_pvalue=dm.pvalue,
                     dm_pvalue_better=float(stats.norm.cdf(dm.statistic)))


def mcs_pvalues(losses: Mapping[str, ArrayLike], *, size: float = 0.10, reps: int = 1000,
                block_size: int | None = None, seed: int = 0) -> dict[str, float]:
    """Model Confidence Set p-value of each row from its daily losses ``(T,)`` (arch's ``MCS``).

    Rows whose losses are identical share one p-value (the MCS is run on
    one of them).
    """
    from arch.bootstrap import MCS

    if not isinstance(losses, Mapping):
        raise InvalidParameter(f"losses must map each row's name to its daily losses (T,), not "
                               f"{type(losses).__name__}")
    names = list(losses)
    if len(names) < 2:
        raise InvalidParameter("the Model Confidence Set needs at least 2 rows of losses")
    columns = aligned([losses[n] for n in names], [f"losses[{n!r}]" for n in names])
    days = columns[0].size
    if days < 2:
        raise InvalidParameter("the Model Confidence Set needs losses of at least 2 days")
    size = level(size, "size (the MCS test size)")
    reps = check_whole("reps (bootstrap replications)", reps, 1, MAX_MCS_REPS)
    if block_size is not None:
        block_size = check_whole("block_size", block_size, 1, days)
    seed = check_whole("seed", seed, 0)
    frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
    # rows with identical losses (a consensus equal to one agent) make the MCS's loss
    # differences degenerate: test one of each group, give its twins its p-value
    first: dict[bytes, str] = {}
    twin = {n: first.setdefault(frame[n].to_numpy().tobytes(), n) for n in names}
    distinct = list(dict.fromkeys(twin.values()))
    if len(distinct) == 1:
        return dict.fromkeys(names, 1.0)
    mcs = MCS(frame[distinct], size=size, reps=reps, block_size=block_size, seed=seed)
    mcs.compute()
    p = mcs.pvalues.iloc[:, 0]
    return {n: float(p[twin[n]]) for n in names}


def error_correlation(var: ArrayLike, losses: ArrayLike, alpha: float,
                      true_var: ArrayLike | None = None) -> FloatArray:
    """Correlation ``(n, n)`` of the agents' VaR errors.

    With ``true_var (T,)`` (simulations) the errors are ``VaR_i / VaR - 1``;
    otherwise the hit residuals ``1{L > VaR_i} - (1 - alpha)``. An agent
    whose errors never vary gets NaN correlations.
    """
    v = float_array(var, "var")
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise InvalidParameter(f"var must be (T, n): one column per agent; got shape {v.shape}")
    if true_var is not None:
        truth = aligned((true_var,), ("true_var",))[0]
        if truth.size != v.shape[0] or not np.all(truth > 0):
            raise InvalidParameter(f"true_var must be {v.shape[0]} VaRs > 0 (one per row of "
                                   f"var); got shape {truth.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.asarray(v / truth[:, None] - 1.0, dtype=np.float64)
    else:
        a = level(alpha)
        loss = aligned((losses,), ("losses",))[0]
        if loss.size != v.shape[0]:
            raise InvalidParameter(f"losses must be {v.shape[0]} days (one per row of var); got "
                                   f"{loss.size}")
        e = np.asarray((loss[:, None] > v) - (1.0 - a), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        sd = e.std(axis=0)
        c = np.full((v.shape[1], v.shape[1]), np.nan)
        ok = sd > 0
        if ok.sum() >= 1:
            z = (e[:, ok] - e[:, ok].mean(axis=0)) / sd[ok]
            c[np.ix_(ok, ok)] = z.T @ z / e.shape[0]
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(sd))
            and np.all(np.isfinite(c[np.ix_(ok, ok)]))):
        raise InvalidParameter("the VaR errors overflow: var and true_var must be in the same "
                               "(return) units")
    return c


def summarize(
    result: BacktestResult,
    *,
    consensus: str = "consensus",
    agents: Sequence[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    mcs_size: float = 0.10,
    mcs_reps: int = 1000,
    seed: int = 0,
) -> EmergenceSummary:
    """Measure what the consensus row of a backtest adds over its agents.

    Parameters
    ----------
    result : BacktestResult
        A backtest with agent rows and a consensus row.
    consensus : str
        The consensus row's name.
    agents : sequence of str, optional
        The agent rows the consensus combined (default: every row but the
        consensus and the baselines).
    policy : Policy
        The consensus's policy, to recompute each day's weights (tempered or
        track-record weights before the robust rule; equal otherwise).
    mcs_size, mcs_reps, seed
        Model Confidence Set size, bootstrap replications and seed.
    """
    if not isinstance(result, BacktestResult):
        raise InvalidParameter(f"summarize needs a BacktestResult, got {type(result).__name__}")
    if not isinstance(consensus, str):
        raise InvalidParameter(f"consensus must be a row name, not {consensus!r}")
    if agents is not None and (isinstance(agents, (str, bytes)) or not isinstance(
            agents, Sequence) or not all(isinstance(a, str) for a in agents)):
        raise InvalidParameter(f"agents must be a sequence of row names, not {agents!r}")
    if not isinstance(policy, Policy):
        raise InvalidParameter(f"policy must be a consensus Policy, not {policy!r}")
    mcs_size = level(mcs_size, "mcs_size (the MCS test size)")
    if consensus not in result.series:
        raise InvalidParameter(f"no row {consensus!r} in the backtest (rows: {result.rows}); "
                               "run it with a consensus row or pass consensus=<row name>")
    recorded = tuple(getattr(result, "agents", ()))  # the backtest's own agent list
    names = tuple(agents) if agents is not None else recorded or tuple(
        r for r in result.rows if r != consensus and r not in result.baselines)
    unknown = [n for n in names if n not in result.series]
    if unknown or len(names) < 2:
        raise InvalidParameter(f"agents must be >= 2 rows of the backtest; unknown: {unknown}")
    losses = result.losses
    alphas = tuple(result.alphas)
    var = {a: np.column_stack([result.series[n][a].var for n in names]) for a in alphas}
    es = {a: np.column_stack([result.series[n][a].es for n in names]) for a in alphas}
    gains = tuple(level_gain(losses, var[a], es[a], names, result.series[consensus][a].var,
                             result.series[consensus][a].es, a) for a in alphas)
    mcs = {a: mcs_pvalues({r: fz0_loss(losses, result.series[r][a].var,
                                       result.series[r][a].es, a) for r in result.rows},
                          size=mcs_size, reps=mcs_reps, seed=seed) for a in alphas}
    stack = np.stack([error_correlation(var[a], losses, a) for a in alphas])
    seen = np.sum(np.isfinite(stack), axis=0)  # NaN: an agent whose errors never vary
    corr = np.where(seen > 0, np.nansum(stack, axis=0) / np.maximum(seen, 1), np.nan)
    first = alphas[0]
    width = np.column_stack([result.series[n][first].var_hi - result.series[n][first].var_lo
                             for n in names]).mean(axis=1)
    spread = var[first].std(axis=1, ddof=1)
    disagreement = np.where(width > 0, spread / np.where(width > 0, width, 1.0), np.nan)
    weights = _weights(result, names, policy, var, es)
    eff = np.asarray(effective_agents(weights), dtype=np.float64)
    used = getattr(result, "consensus_weights", {}).get(consensus, {}).get(first)
    used_eff = (None if used is None or np.shape(used) != weights.shape
                else np.asarray(effective_agents(np.asarray(used) + 1e-300), dtype=np.float64))
    turnover = float(np.abs(np.diff(weights, axis=0)).sum(axis=1).mean() / 2) \
        if weights.shape[0] > 1 else 0.0
    regimes = run_length_posterior(standardize(result.returns))
    return EmergenceSummary(
        consensus=consensus, agents=names, alphas=alphas, gains=gains, mcs_pvalues=mcs,
        mcs_size=mcs_size, error_correlation=corr, disagreement=disagreement, weights=weights,
        effective_agents=eff, used_effective_agents=used_eff, turnover=turnover,
        prob_change=regimes.prob_change, change_points=regimes.change_points(),
        dates=result.dates)


def _weights(result: BacktestResult, names: Sequence[str], policy: Policy,
             var: Mapping[float, FloatArray], es: Mapping[float, FloatArray]) -> FloatArray:
    alphas = list(var)
    days, n = var[alphas[0]].shape
    if policy.weighting is Weighting.TEMPERED:
        joint = joint_losses(result.returns, np.stack([var[a] for a in alphas]),
                             np.stack([es[a] for a in alphas]), alphas, policy.loss)
        eta = DEFAULT_POLICY.eta if policy.eta is None else policy.eta
        return tempered_path(joint, eta if eta is not None else 0.0, policy.window,
                             lag=result.horizon, loss=policy.loss)
    if policy.weighting is Weighting.EQUAL:
        return np.full((days, n), 1.0 / n)
    # other weightings: each agent's share of the consensus VaR after the robust rule
    levels = {a: LevelForecasts(var[a], es[a]) for a in alphas}
    scores = (np.column_stack([result.logscore[n] for n in names])
              if policy.weighting is Weighting.BMA and all(n in result.logscore for n in names)
              else None)
    path = consensus_levels(result.returns, levels, policy, horizon=result.horizon,
                            log_scores=scores)
    return np.asarray(path[alphas[0]].weights, dtype=np.float64)
