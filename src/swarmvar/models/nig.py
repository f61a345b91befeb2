"""``NormalInverseGamma``: conjugate Normal model with exponential forgetting.

Model. ``r_t | mu, sigma^2 ~ N(mu, sigma^2)`` with the Normal-inverse-gamma
prior ``sigma^2 ~ InvGamma(a0, b0)``, ``mu | sigma^2 ~ N(m0, sigma^2/kappa0)``.
Before each observation the posterior is flattened by the forgetting factor
``lam`` (West & Harrison discounting: ``kappa, a, b <- lam*kappa, lam*a,
lam*b``), so old returns fade with weight ``lam^k`` and the model tracks
volatility; ``lam = 1`` is the exact iid posterior. Then the conjugate step

    kappa' = kappa + 1,  m' = (kappa m + r) / kappa',
    a' = a + 1/2,        b' = b + kappa (r - m)^2 / (2 kappa').

Predictive. ``r_{t+1} ~ t_{2a}(m, b (kappa + 1) / (a kappa))``, so VaR is one
Student-t quantile and ES has the closed form
``ES = -m + s g(t_q) (nu + t_q^2) / ((nu - 1)(1 - alpha))``. Over ``h`` days the
sum of iid normals given ``(mu, sigma)`` has predictive
``t_{2a}(h m, b (h + h^2/kappa) / a)``: exact, no simulation.

Credible intervals. Given ``(mu, sigma)`` the conditional VaR is
``-mu + sigma c`` with ``c = Phi^{-1}(alpha)``; under the posterior that is
``-m + sqrt(b) W`` with ``W = (c + eta) / sqrt(G)``, ``eta ~ N(0, 1/kappa)``,
``G ~ Gamma(a, 1)``. The law of ``W`` depends only on ``(a, kappa, c)``, so its
5% and 95% quantiles are computed once by quadrature and cached; in steady
state (``kappa -> 1/(1-lam)``, ``a -> 1/(2(1-lam))``) every tick hits the cache
and an update plus a forecast is a handful of float operations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING
from functools import lru_cache
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from ..data import MAX_ABS_RETURN
from ..errors import InvalidParameter, InvalidState
from ..types import Forecast, RiskMeasure
from .base import MAX_HORIZON, Agent, Seed, check_real, rng_from
from .risk import check_alphas

_QUAD_NODES = 256


@lru_cache(maxsize=64)
def _t_constants(nu: float, alpha: float) -> tuple[float, float]:
    """(t quantile at 1-alpha, ES factor) of the standard Student-t with ``nu`` dof."""
    tq = float(special.stdtrit(nu, 1.0 - alpha))
    log_g = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
    g = math.exp(log_g - (nu + 1) / 2 * math.log1p(tq * tq / nu))
    return tq, g * (nu + tq * tq) / ((nu - 1) * (1.0 - alpha))


@lru_cache(maxsize=64)
def _t_log_norm(nu: float) -> float:
    return float(
        special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
    )


@lru_cache(maxsize=1)
def _legendre() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss-Legendre nodes and weights on [0, 1] (``roots_legendre``: no eigen-solver)."""
    x, w = special.roots_legendre(_QUAD_NODES)
    return 0.5 * (x + 1.0), 0.5 * w


@lru_cache(maxsize=64)
def _root_gamma_nodes(a: float) -> NDArray[np.float64]:
    """``sqrt(G)`` at the quadrature nodes of the probability scale of ``G ~ Gamma(a, 1)``."""
    root: NDArray[np.float64] = np.sqrt(special.gammaincinv(a, _legendre()[0]))
    return root


@lru_cache(maxsize=256)
def _w_quantiles(a: float, kappa: float, c: float, probs: tuple[float, ...]) -> tuple[float, ...]:
    """Quantiles of ``W = (c + eta)/sqrt(G)``, ``eta ~ N(0, 1/kappa)``, ``G ~ Gamma(a, 1)``.

    ``P(W <= w) = E_G[Phi(sqrt(kappa) (w sqrt(G) - c))]``, integrated by
    Gauss-Legendre quadrature over the probability scale of ``G``, and
    inverted by Newton's method with the exact density (tens of microseconds
    per miss), safeguarded by a bracket and Brent's method.
    """
    _, wts = _legendre()
    root_g = _root_gamma_nodes(a)
    sk = math.sqrt(kappa)
    skg = sk * root_g
    skc = sk * c

    def cdf(w: float) -> float:
        return float(wts @ special.ndtr(skg * w - skc))

    centre = c / math.sqrt(a)
    spread = (abs(c) + 10.0 / sk) * 10.0 / math.sqrt(a) + 1.0
    out = []
    for p in probs:
        lo, hi = centre - spread, centre + spread
        w = centre
        for _ in range(30):
            x = skg * w - skc
            f = float(wts @ special.ndtr(x)) - p
            if f > 0:
                hi = w
            else:
                lo = w
            dens = float(wts @ (skg * np.exp(-0.5 * x * x))) / math.sqrt(2.0 * math.pi)
            step = f / dens if dens > 0 else math.inf
            new = w - step
            if not lo < new < hi:
                new = 0.5 * (lo + hi)
            if abs(new - w) <= 1e-13 * max(1.0, abs(w)):
                w = new
                break
            w = new
        else:
            w = float(optimize.brentq(lambda v, p=p: cdf(v) - p, centre - spread,
                                      centre + spread, xtol=1e-13, rtol=1e-12))
        out.append(w)
    return tuple(out)


def _key(x: float) -> float:
    # The quantile tables are smooth in (a, kappa); rounding to 9 decimals lets
    # the steady state hit the cache despite last-bit float drift.
    return round(x, 9)


@lru_cache(maxsize=256)
def _level_constants(
    nu: float, a: float, kappa: float, alpha: float
) -> tuple[float, float, float, float, float, float]:
    """Per-level constants: t quantile, t ES factor, and the W quantiles for VaR and ES."""
    tq, es_factor = _t_constants(nu, alpha)
    v_lo, v_hi = _w_quantiles(a, kappa, _normal_quantile(alpha), (0.05, 0.95))
    e_lo, e_hi = _w_quantiles(a, kappa, _normal_es(alpha), (0.05, 0.95))
    return tq, es_factor, v_lo, v_hi, e_lo, e_hi


#: The largest posterior shape a state may hold (a = a0 + n/2, kappa = kappa0 + n).
MAX_SHAPE = 1e9

class NormalInverseGamma(Agent):
    """Conjugate Normal with unknown mean and variance and exponential forgetting.

    Parameters
    ----------
    forgetting : float
        Discount ``lam`` in (0, 1]; the effective memory is ``1/(1-lam)``
        returns (33 for the default 0.97). 1.0 is the exact iid posterior.
    prior_mean, prior_kappa, prior_shape, prior_scale : float
        Normal-inverse-gamma prior ``(m0, kappa0, a0, b0)``. The default
        ``b0/(a0-1) = 1e-4`` puts the prior mean variance at a 1% daily vol.
    """

    name = "NormalInverseGamma"
    min_observations = 2
    cost_hint = (0.04, 0.01)  # ms: a backtest day at h = 1, a 10-day forecast

    def __init__(
        self,
        forgetting: float = 0.97,
        prior_mean: float = 0.0,
        prior_kappa: float = 1.0,
        prior_shape: float = 2.0,
        prior_scale: float = 1e-4,
    ) -> None:
        forgetting = check_real("forgetting", forgetting, 0.0, 1.0, low_open=True)
        prior_mean = check_real("prior_mean", prior_mean, -MAX_ABS_RETURN, MAX_ABS_RETURN)
        prior_kappa = check_real("prior_kappa", prior_kappa, 0.0, 1e12, low_open=True)
        prior_scale = check_real("prior_scale", prior_scale, 0.0, 1e6, low_open=True)
        if not (isinstance(prior_shape, (int, float, np.integer, np.floating))
                and not isinstance(prior_shape, bool) and 1.0 < float(prior_shape) <= 1e12):
            raise InvalidParameter(
                f"prior_shape must be a number above 1 (so that the predictive has a finite "
                f"ES) and at most 1e12, not {prior_shape!r}"
            )
        self.forgetting = float(forgetting)
        self.prior_mean = float(prior_mean)
        self.prior_kappa = float(prior_kappa)
        self.prior_shape = float(prior_shape)
        self.prior_scale = float(prior_scale)
        self._reset()

    def _reset(self) -> None:
        self._memo: tuple[float, float, int, object, tuple[tuple[float, ...], ...]] | None = None
        self.m, self.kappa = self.prior_mean, self.prior_kappa
        self.a, self.b = self.prior_shape, self.prior_scale
        self.n = 0
        self._seed = 0

    # --- posterior -------------------------------------------------------------

    def _absorb(self, r: float) -> None:
        lam = self.forgetting
        kappa, a, b = lam * self.kappa, lam * self.a, lam * self.b
        kappa1 = kappa + 1.0
        diff = r - self.m
        self.m += diff / kappa1
        self.b = b + kappa * diff * diff / (2.0 * kappa1)
        self.kappa, self.a = kappa1, a + 0.5
        self.n += 1

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior after the prior has absorbed ``returns`` in order."""
        x = self._history(returns)
        fit_seed = int(rng_from(seed).integers(0, 2**31 - 1)) if seed is not None else 0
        self._reset()
        self._seed = fit_seed
        for r in x.tolist():
            self._absorb(r)
        self._fitted = True
        return self

    def update(self, r: float) -> float:
        """Absorb ``r``; return ``log p(r | past)`` under the Student-t predictive."""
        self._require_fitted()
        value = self._check_return(r)
        nu = 2.0 * self.a
        s2 = self.b * (self.kappa + 1.0) / (self.a * self.kappa)
        z2 = (value - self.m) ** 2 / s2
        logpdf = _t_log_norm(_key(nu)) - 0.5 * math.log(s2) - (nu + 1) / 2 * math.log1p(z2 / nu)
        self._absorb(value)
        return logpdf

    def predictive(self, horizon: int = 1) -> tuple[float, float, float]:
        """``(loc, scale, df)`` of the Student-t predictive of the ``horizon``-day sum."""
        self._require_fitted()
        h = self._check_horizon(horizon)
        scale2 = self.b * (h + h * h / self.kappa) / self.a
        return h * self.m, math.sqrt(scale2), 2.0 * self.a

    # --- forecast ---------------------------------------------------------------

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """Closed-form VaR/ES of the Student-t predictive, with cached interval tables.

        In the discount steady state ``a`` and ``kappa`` stop changing, so the
        per-level constants of the last forecast are kept with the ``(a,
        kappa, horizon, alphas)`` they were looked up for and reused while
        those are unchanged: a tick is then the update's few float operations,
        the scale, and the measures (the same numbers as a table lookup).
        """
        if type(horizon) is int and 1 <= horizon <= MAX_HORIZON and self._fitted:
            h = horizon  # the checks of predictive(), for the common case
            loc, nu = h * self.m, 2.0 * self.a
            scale = math.sqrt(self.b * (h + h * h / self.kappa) / self.a)
        else:
            loc, scale, nu = self.predictive(horizon)
            h = int(horizon)
        memo = self._memo
        if memo is not None and memo[0] == self.a and memo[1] == self.kappa and memo[2] == h \
                and memo[3] == alphas:
            constants = memo[4]
        else:
            levels_in = check_alphas(alphas)
            nu_key, a_key, k_key = _key(nu), _key(self.a), _key(self.kappa / h)
            constants = tuple((alpha, *_level_constants(nu_key, a_key, k_key, alpha))
                              for alpha in levels_in)
            if type(alphas) is tuple:  # hashable and immutable: safe to compare later
                self._memo = (self.a, self.kappa, h, alphas, constants)
        root_bh = math.sqrt(self.b * h)
        shift = -loc
        levels = tuple(
            _measure(alpha, shift - scale * tq, shift + scale * es_factor,
                     (shift + root_bh * v_lo, shift + root_bh * v_hi),
                     (shift + root_bh * e_lo, shift + root_bh * e_hi))
            for alpha, tq, es_factor, v_lo, v_hi, e_lo, e_hi in constants
        )
        return _forecast(self.name, h, levels)

    # --- generative side ----------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        rng = rng_from(seed)
        sigma2 = self.prior_scale / rng.gamma(self.prior_shape, 1.0, size=n)
        mu = rng.normal(self.prior_mean, np.sqrt(sigma2 / self.prior_kappa))
        return {"mu": mu, "sigma2": sigma2}

    def simulate(
        self, params: Mapping[str, float], n: int, *, seed: Seed = None
    ) -> NDArray[np.float64]:
        rng = rng_from(seed)
        return rng.normal(float(params["mu"]), math.sqrt(float(params["sigma2"])), size=n)

    def posterior_draws(self, n: int = 4000) -> dict[str, NDArray[np.float64]]:
        """Exact draws from the current NIG posterior (seeded by the fit seed)."""
        self._require_fitted()
        rng = np.random.default_rng(self._seed)
        sigma2 = self.b / rng.gamma(self.a, 1.0, size=n)
        mu = rng.normal(self.m, np.sqrt(sigma2 / self.kappa))
        return {"mu": mu, "sigma2": sigma2}

    # --- state -----------------------------------------------------------------

    def sufficient(self) -> tuple[float, float, float, float]:
        """Posterior hyper-parameters ``(m, kappa, a, b)``."""
        return self.m, self.kappa, self.a, self.b

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return (
            {"m": self.m, "kappa": self.kappa, "a": self.a, "b": self.b, "n": self.n,
             "seed": self._seed},
            {},
        )

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            self.m, self.kappa = float(scalars["m"]), float(scalars["kappa"])
            self.a, self.b = float(scalars["a"]), float(scalars["b"])
            self.n, self._seed = int(scalars["n"]), int(scalars["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"NormalInverseGamma state is incomplete: {exc}") from exc
        if not (self.kappa > 0 and self.a > 0.5 and self.b > 0 and math.isfinite(self.m)):
            raise InvalidState("NormalInverseGamma state has non-positive kappa, a or b")
        if not (self.a <= MAX_SHAPE and self.kappa <= MAX_SHAPE):
            # a = a0 + n/2 and kappa = kappa0 + n: beyond 1e9 no series of returns reaches,
            # and the Student-t quantiles lose the digits that keep ES >= VaR
            raise InvalidState(f"NormalInverseGamma state has a = {self.a:g}, kappa = "
                               f"{self.kappa:g}: above {MAX_SHAPE:g}, more returns than any "
                               "series holds")


def _plain(cls: type) -> bool:
    """Whether ``cls`` is a frozen dataclass that its fields' ``__dict__`` fully describes."""
    return "__slots__" not in cls.__dict__ and not hasattr(cls, "__post_init__")


_FAST_MEASURE, _FAST_FORECAST = _plain(RiskMeasure), _plain(Forecast)


def _measure(alpha: float, var: float, es: float, var_interval: tuple[float, float],
             es_interval: tuple[float, float]) -> RiskMeasure:
    """``RiskMeasure(...)`` without the frozen dataclass's per-field ``object.__setattr__``.

    The same object (fields, equality, hash); about 1 us a tick less.
    """
    if not _FAST_MEASURE:
        return RiskMeasure(alpha, var, es, var_interval, es_interval)
    out: RiskMeasure = object.__new__(RiskMeasure)
    out.__dict__.update(alpha=alpha, var=var, es=es, var_interval=var_interval,
                        es_interval=es_interval)
    return out


def _forecast(model: str, horizon: int, levels: tuple[RiskMeasure, ...]) -> Forecast:
    """``Forecast(model, horizon, levels)`` built as :func:`_measure` builds a measure."""
    if not _FAST_FORECAST:
        return Forecast(model=model, horizon=horizon, levels=levels)
    out: Forecast = object.__new__(Forecast)
    out.__dict__.update(_FORECAST_DEFAULTS, model=model, horizon=horizon, levels=levels)
    return out


_FORECAST_DEFAULTS = {name: f.default for name, f in Forecast.__dataclass_fields__.items()
                      if f.default is not MISSING}


@lru_cache(maxsize=64)
def _normal_quantile(alpha: float) -> float:
    return float(special.ndtri(alpha))


@lru_cache(maxsize=64)
def _normal_es(alpha: float) -> float:
    z = float(special.ndtri(alpha))
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / (1.0 - alpha)
