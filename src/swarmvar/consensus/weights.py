"""Weights from the track record, Bayesian model averaging, and mixture VaR/ES.

Weights are never self-reported: the aggregator computes them from realized
returns and the forecasts each agent made before those returns were known.

* Track record: agent ``i`` scores ``S_i = sum_t loss(r_t, VaR_it, ES_it)``
  over a trailing window, with the pinball (quantile) loss of its VaR or the
  FZ0 loss of its (VaR, ES) pair (Patton, Ziegel & Chen 2019); weights are an
  exponential-weights softmax ``w_i ∝ prior_i exp(-eta S_i)``. For FZ0,
  ``exp(-FZ0)`` is the asymmetric-Laplace quasi-likelihood of the (VaR, ES)
  model, so ``eta = 1`` makes the weights a quasi-posterior; for pinball the
  default ``eta = 1 / sigma`` uses the pooled maximum-likelihood scale
  ``sigma = mean pinball loss`` of the asymmetric Laplace likelihood.
* BMA: ``w_i ∝ prior_i exp(sum_t log p_i(r_t))`` over predictive log scores.

Both are normalized with :func:`scipy.special.logsumexp`, so log-evidence of
any magnitude (1e6 values in [-1e6, 0]) gives finite weights summing to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

from ..errors import InvalidParameter

FloatArray = NDArray[np.float64]


class Loss(Enum):
    """Which scoring rule ranks agents' past forecasts."""

    PINBALL = "pinball"  # VaR only
    FZ0 = "fz0"  # VaR and ES jointly


def _finite(name: str, value: ArrayLike) -> FloatArray:
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise InvalidParameter(f"{name} must be finite (no NaN or inf)")
    return a


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidParameter(f"alpha must be in (0, 1), got {alpha}")


def pinball_loss(returns: ArrayLike, var: ArrayLike, alpha: float) -> FloatArray:
    """Quantile loss of VaR forecasts: ``(alpha - 1{L < VaR}) (L - VaR)`` with ``L = -r``.

    ``returns`` has shape ``(T,)``; ``var`` shape ``(T,)`` or ``(T, n)``
    (positive losses); the result has ``var``'s shape, non-negative.
    """
    _check_alpha(alpha)
    loss = -_finite("returns", returns)
    v = _finite("var", var)
    if v.ndim == 2:
        loss = loss[:, None]
    return np.asarray((alpha - (loss < v)) * (loss - v), dtype=np.float64)


def fz0_loss(returns: ArrayLike, var: ArrayLike, es: ArrayLike, alpha: float) -> FloatArray:
    """FZ0 loss of joint (VaR, ES) forecasts (Patton, Ziegel & Chen 2019).

    With tail probability ``a = 1 - alpha``, ``v = -VaR`` and ``e = -ES``
    (return quantile and tail mean, ``e <= v < 0``)::

        FZ0 = -1{r <= v} (v - r) / (a e) + v / e + log(-e) - 1

    Shapes as in :func:`pinball_loss`; needs ``ES > 0``.
    """
    _check_alpha(alpha)
    r = _finite("returns", returns)
    v = -_finite("var", var)
    e = -_finite("es", es)
    if v.shape != e.shape:
        raise InvalidParameter(f"var and es shapes differ: {v.shape} vs {e.shape}")
    if np.any(e >= 0):
        raise InvalidParameter("FZ0 needs ES > 0 (a positive expected tail loss)")
    if v.ndim == 2:
        r = r[:, None]
    a = 1.0 - alpha
    with np.errstate(all="ignore"):  # subnormal ES: checked below instead
        shortfall = np.where(r <= v, v - r, 0.0)
        out = np.asarray(-shortfall / (a * e) + v / e + np.log(-e) - 1.0, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InvalidParameter("the FZ0 loss overflows: an ES is too small (or a VaR too "
                               "large) for its scale; such forecasts cannot be scored")
    return out


def softmax_log(log_weights: ArrayLike) -> FloatArray:
    """``exp(x - logsumexp(x))``: normalized weights from log-weights of any size.

    ``-inf`` entries get weight 0; at least one entry must be finite.
    """
    x = np.asarray(log_weights, dtype=np.float64)
    if np.any(np.isnan(x)) or np.any(x == np.inf) or not np.any(np.isfinite(x)):
        raise InvalidParameter("log-weights must be finite or -inf, with at least one finite")
    return np.asarray(np.exp(x - special.logsumexp(x)), dtype=np.float64)


def _log_prior(prior: ArrayLike | None, n: int) -> FloatArray:
    if prior is None:
        return np.zeros(n)
    p = _finite("prior", prior)
    if p.shape != (n,) or np.any(p < 0) or p.sum() <= 0:
        raise InvalidParameter(f"prior must be {n} non-negative numbers, not all zero")
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(p), dtype=np.float64)


@dataclass(frozen=True)
class TrackRecordWeights:
    """Weights from realized losses: ``weights (n,)``, ``scores (n,)`` summed losses, ``eta``."""

    weights: FloatArray
    scores: FloatArray
    eta: float


def track_record_weights(
    returns: ArrayLike,
    var: ArrayLike,
    alpha: float,
    *,
    es: ArrayLike | None = None,
    loss: Loss = Loss.PINBALL,
    window: int | None = None,
    eta: float | None = None,
    prior: ArrayLike | None = None,
) -> TrackRecordWeights:
    """Exponential weights from each agent's realized loss over a trailing window.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Realized returns (fractions), oldest first.
    var, es : array_like, shape (T, n)
        Each agent's VaR (and ES, for FZ0) forecast *for* each of those
        returns, made before it was known (positive losses).
    alpha : float
        Confidence level of the forecasts.
    loss : Loss
        Pinball (VaR only) or FZ0 (needs ``es``).
    window : int, optional
        Use only the last ``window`` returns (default: all).
    eta : float, optional
        Inverse temperature; default ``1 / mean pinball loss`` or ``1`` for FZ0.
    prior : array_like, shape (n,), optional
        Prior weights (default uniform).
    """
    r = _finite("returns", returns)
    v = _finite("var", var)
    if r.ndim != 1 or v.ndim != 2 or v.shape[0] != r.size or r.size == 0:
        raise InvalidParameter(
            f"returns must be (T,) and var (T, n) with T >= 1; got {r.shape} and {v.shape}"
        )
    if window is not None:
        if window < 1:
            raise InvalidParameter(f"window must be >= 1, got {window}")
        r, v = r[-window:], v[-window:]
    if loss is Loss.FZ0:
        if es is None:
            raise InvalidParameter("the FZ0 loss needs ES forecasts (es=...)")
        e = _finite("es", es)
        if e.shape[0] != np.asarray(var).shape[0]:
            raise InvalidParameter(f"es must have shape {np.shape(var)}, got {e.shape}")
        e = e[-r.size :]
        losses = fz0_loss(r, v, e, alpha)
        default_eta = 1.0
    else:
        losses = pinball_loss(r, v, alpha)
        sigma = float(losses.mean())
        default_eta = 1.0 / sigma if sigma > 0 else 0.0
    scores = losses.sum(axis=0)
    eta_used = default_eta if eta is None else float(eta)
    if not np.isfinite(eta_used) or eta_used < 0:
        raise InvalidParameter(f"eta must be a finite number >= 0, got {eta_used}")
    log_w = _log_prior(prior, scores.size) - eta_used * scores
    return TrackRecordWeights(weights=softmax_log(log_w), scores=scores, eta=eta_used)


def joint_weights(
    parts: Sequence[TrackRecordWeights], prior: ArrayLike | None = None
) -> FloatArray:
    """One weight per agent from its track record at several confidence levels.

    ``w_i ∝ prior_i exp(-sum_l eta_l S_il)``: the product of the per-level
    exponential weights. The sum of per-level FZ0 (or pinball) losses is a
    consistent score for the vector of VaR/ES at all levels, so the swarm
    weighs an agent by its tail skill as a whole, and every level of one
    beat leans on the same agents.
    """
    if not parts:
        raise InvalidParameter("joint_weights needs at least one level's track record")
    n = parts[0].scores.size
    if any(p.scores.size != n for p in parts):
        raise InvalidParameter("every level's track record must cover the same agents")
    log_w = _log_prior(prior, n) - sum(p.eta * p.scores for p in parts)
    return softmax_log(log_w)


def bma_weights(log_scores: ArrayLike, prior: ArrayLike | None = None) -> FloatArray:
    """Bayesian-model-averaging weights from predictive log scores.

    ``log_scores`` is ``(T, n)`` (``log p_i(r_t | past)``) or ``(n,)`` (already
    summed log evidence); returns ``(n,)`` posterior model probabilities.
    """
    s = np.asarray(log_scores, dtype=np.float64)
    if np.any(np.isnan(s)) or np.any(s == np.inf):
        raise InvalidParameter("log scores must not be NaN or +inf")
    if s.ndim == 2:
        s = s.sum(axis=0)
    if s.ndim != 1 or s.size == 0:
        raise InvalidParameter(
            f"log scores must be (T, n) or (n,), got shape {np.shape(log_scores)}"
        )
    return softmax_log(_log_prior(prior, s.size) + s)


class LossDistribution(Protocol):
    """A predictive distribution of the loss ``L = -r`` (positive = loss)."""

    def ppf(self, p: float) -> float:
        """Quantile of the loss."""
        ...

    def sf(self, x: float) -> float:
        """``P(L > x)``."""
        ...

    def expected_excess(self, x: float) -> float:
        """``E[(L - x)^+]``."""
        ...


@dataclass(frozen=True)
class StudentTLoss:
    """Loss ``L = loc + scale * T`` with ``T`` Student-t(``df``); ``df = inf`` is normal."""

    loc: float
    scale: float
    df: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.loc) and self.scale > 0 and self.df > 1):
            raise InvalidParameter("StudentTLoss needs finite loc, scale > 0 and df > 1")

    def _dist(self) -> stats.rv_continuous:
        return stats.norm if np.isinf(self.df) else stats.t(self.df)

    def ppf(self, p: float) -> float:
        return float(self.loc + self.scale * self._dist().ppf(p))

    def sf(self, x: float) -> float:
        return float(self._dist().sf((x - self.loc) / self.scale))

    def expected_excess(self, x: float) -> float:
        z = (x - self.loc) / self.scale
        dist = self._dist()
        if np.isinf(self.df):
            partial = dist.pdf(z) - z * dist.sf(z)
        else:  # E[(T - z)^+] = (df + z^2) / (df - 1) * pdf(z) - z * sf(z)
            partial = (self.df + z * z) / (self.df - 1.0) * dist.pdf(z) - z * dist.sf(z)
        return float(self.scale * max(partial, 0.0))


@dataclass(frozen=True)
class SampleLoss:
    """Empirical loss distribution of predictive draws ``samples`` (shape ``(S,)``)."""

    samples: FloatArray

    def __post_init__(self) -> None:
        s = np.sort(_finite("samples", self.samples).ravel())
        if s.size == 0:
            raise InvalidParameter("SampleLoss needs at least one sample")
        object.__setattr__(self, "samples", s)

    def ppf(self, p: float) -> float:
        return float(np.quantile(self.samples, p, method="inverted_cdf"))

    def sf(self, x: float) -> float:
        return float(1.0 - np.searchsorted(self.samples, x, side="right") / self.samples.size)

    def expected_excess(self, x: float) -> float:
        return float(np.maximum(self.samples - x, 0.0).mean())


def mixture_var_es(
    components: Sequence[LossDistribution], weights: ArrayLike, alpha: float
) -> tuple[float, float]:
    """VaR and ES of the mixture ``sum_i w_i P_i`` of loss distributions.

    VaR solves ``sum_i w_i P_i(L > v) = 1 - alpha`` by Brent's method inside
    ``[min_i VaR_i, max_i VaR_i]`` (the mixture quantile lies there); ES is
    the Rockafellar-Uryasev value ``v + sum_i w_i E_i[(L - v)^+] / (1 - alpha)``.
    """
    _check_alpha(alpha)
    w = _finite("weights", weights)
    if w.shape != (len(components),) or np.any(w < 0) or w.sum() <= 0:
        raise InvalidParameter(
            f"weights must be {len(components)} non-negative numbers, not all zero"
        )
    w = w / w.sum()
    live = [(c, wi) for c, wi in zip(components, w, strict=True) if wi > 0]
    tail = 1.0 - alpha

    def excess_tail(v: float) -> float:
        return float(sum(wi * c.sf(v) for c, wi in live)) - tail

    quantiles = [c.ppf(alpha) for c, _ in live]
    lo, hi = min(quantiles), max(quantiles)
    if lo == hi or excess_tail(lo) <= 0:
        v = lo
    else:
        v = float(optimize.brentq(excess_tail, lo, hi, xtol=1e-14 * max(abs(hi), 1.0), rtol=1e-15))
    es = v + sum(wi * c.expected_excess(v) for c, wi in live) / tail
    return v, float(es)
