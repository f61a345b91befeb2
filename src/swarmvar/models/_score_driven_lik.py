"""Beta-Skew-t-EGARCH log-likelihoods for many parameter vectors at once, priors, simulation.

Model (Harvey & Chakravarty 2008; Harvey 2013, ch. 4; with the skewness of
Harvey & Sucarrat 2014), log returns as fractions::

    r_t = mu + exp(lambda_t) * eps_t,   eps_t ~ skew-t(nu, gamma), unit scale
    lambda_{t+1} = omega + phi (lambda_t - omega) + kappa u_t + kappa_star sgn(-e_t) (u_t + 1)
    lambda_1 = omega

with ``e_t = r_t - mu``. The skew-t is Fernandez & Steel's (1998): the
standard t (unit scale, not unit variance) stretched by ``1/gamma`` on the
left and ``gamma`` on the right,

    f(eps) = 2 / (gamma + 1/gamma) * f_t(eps * gamma^(-sgn eps); nu),

so ``gamma = 1`` is the t, ``gamma < 1`` a heavier left tail;
``P(eps < 0) = 1 / (1 + gamma^2)``. ``u_t`` is the exact score of the log
density with respect to the log scale ``lambda_t``::

    log f(r_t) = c(nu) + log(2 / (gamma + 1/gamma)) - lambda_t - (nu+1)/2 log(1 + z_t)
    z_t = e_t^2 gamma^(-2 sgn e_t) / (nu exp(2 lambda_t))
    u_t = d log f / d lambda_t = (nu + 1) b_t - 1,   b_t = z_t / (1 + z_t) ~ Beta(1/2, nu/2)

with ``c(nu) = lgamma((nu+1)/2) - lgamma(nu/2) - log(pi nu)/2``. So ``u_t``
lies in ``[-1, nu]``, has mean 0 and variance ``2 nu / (nu + 3)``: an
outlier moves ``lambda`` by at most ``kappa nu`` (the t's own robustness),
unlike GARCH's squared return. ``kappa_star sgn(-e)(u+1)`` is Harvey's
leverage term: with ``kappa_star > 0`` a fall raises the next scale more
than a rise. ``|phi| < 1`` with a bounded score makes ``lambda`` stationary
for every ``kappa, kappa_star``; ``omega`` is the mean of ``lambda`` when
``gamma = 1`` (the log scale, not the log variance).

Unconstrained coordinates ``u = (mu, omega, atanh(phi), log kappa,
kappa_star, log(nu - 2), log gamma)``. Priors (docs/models-score-driven.md)::

    mu ~ N(0, 0.01^2)                   omega ~ N(log 0.01, 1.5^2)
    (phi + 1) / 2 ~ Beta(20, 1.5)       log kappa ~ N(log 0.05, 1)
    kappa_star ~ N(0, 0.05^2)           nu - 2 ~ Gamma(2, rate 0.1)
    log gamma ~ N(0, 0.25^2)

:func:`loglik` is plain numpy: a loop over days, each step seven vector
operations over the particles (``(S,)`` arrays, in place), the rest formed
for blocks of days at once. It is the reference: the sampler runs the same
recursion compiled (:func:`._score_driven_jax.loglik`, tested against it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from ._location_scale import LocationScaleFamily
from .risk import t_log_norm

FloatArray = NDArray[np.float64]

PARAMS = ("mu", "omega", "phi", "kappa", "kappa_star", "nu", "gamma")
DIM = len(PARAMS)
MU_SD = 0.01
OMEGA_MEAN, OMEGA_SD = math.log(0.01), 1.5
PHI_A, PHI_B = 20.0, 1.5
LOG_KAPPA_MEAN, LOG_KAPPA_SD = math.log(0.05), 1.0
KAPPA_STAR_SD = 0.05
NU_SHAPE, NU_RATE = 2.0, 0.1
LOG_GAMMA_SD = 0.25
#: Bounds of the unconstrained coordinates outside which a particle has zero prior mass
#: (numerically: |atanh(phi)| < 12 keeps 1 - phi^2 > 0 in floats, nu < 2 + e^8).
PHI_U_MAX = 12.0
LOG_NU_MAX = 8.0
LOG_KAPPA_RANGE = (-20.0, 3.0)
LOG_GAMMA_MAX = 3.0


class Theta(NamedTuple):
    """Constrained parameters, each ``(S,)``."""

    mu: FloatArray
    omega: FloatArray
    phi: FloatArray
    kappa: FloatArray
    kappa_star: FloatArray
    nu: FloatArray
    gamma: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    def as_dict(self) -> dict[str, FloatArray]:
        return {k: np.asarray(v, dtype=float).copy() for k, v in zip(PARAMS, self, strict=True)}


def from_unconstrained(u: FloatArray) -> Theta:
    """Parameters from unconstrained coordinates ``u`` ``(S, 7)``."""
    return Theta(u[:, 0].copy(), u[:, 1].copy(), np.tanh(u[:, 2]), np.exp(u[:, 3]),
                 u[:, 4].copy(), 2.0 + np.exp(u[:, 5]), np.exp(u[:, 6]))


def to_unconstrained(th: Theta) -> FloatArray:
    """Unconstrained coordinates ``(S, 7)`` of parameters ``th``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([th.mu, th.omega, np.arctanh(th.phi), np.log(th.kappa),
                                th.kappa_star, np.log(th.nu - 2.0), np.log(th.gamma)])


def log_prior_u(u: FloatArray) -> FloatArray:
    """Log prior density in unconstrained coordinates (Jacobians included), ``(S,)``.

    ``-inf`` outside the numerically safe box (see the module constants).
    """
    mu, om, a, lk, ks, ln, lg = (u[:, k] for k in range(DIM))
    with np.errstate(over="ignore", invalid="ignore"):
        phi = np.tanh(a)
        half = 0.5 * (phi + 1.0)
        # Beta(PHI_A, PHI_B) on (phi+1)/2 times |d((phi+1)/2)/da| = (1 - phi^2) / 2
        lp_phi = ((PHI_A - 1.0) * np.log(half) + (PHI_B - 1.0) * np.log1p(-half)
                  - special.betaln(PHI_A, PHI_B) + np.log1p(-phi * phi) - math.log(2.0))
        # Gamma(shape, rate) on nu - 2 = e^ln, times e^ln
        lp_nu = (NU_SHAPE * math.log(NU_RATE) - math.lgamma(NU_SHAPE) + NU_SHAPE * ln
                 - NU_RATE * np.exp(ln))
    lp = (_normal(mu, 0.0, MU_SD) + _normal(om, OMEGA_MEAN, OMEGA_SD) + lp_phi
          + _normal(lk, LOG_KAPPA_MEAN, LOG_KAPPA_SD) + _normal(ks, 0.0, KAPPA_STAR_SD) + lp_nu
          + _normal(lg, 0.0, LOG_GAMMA_SD))
    inside = ((np.abs(a) < PHI_U_MAX) & (ln < LOG_NU_MAX) & (lk > LOG_KAPPA_RANGE[0])
              & (np.abs(lg) < LOG_GAMMA_MAX)
              & (lk < LOG_KAPPA_RANGE[1]) & np.all(np.isfinite(u), axis=1))
    result: FloatArray = np.where(inside & np.isfinite(lp), lp, -np.inf)
    return result


def _normal(x: FloatArray, m: float, s: float) -> FloatArray:
    result: FloatArray = -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    return result


def sample_prior(n: int, rng: np.random.Generator) -> Theta:
    """``n`` draws from the prior (constrained parameters)."""
    return Theta(
        rng.normal(0.0, MU_SD, n),
        rng.normal(OMEGA_MEAN, OMEGA_SD, n),
        2.0 * rng.beta(PHI_A, PHI_B, n) - 1.0,
        np.exp(rng.normal(LOG_KAPPA_MEAN, LOG_KAPPA_SD, n)),
        rng.normal(0.0, KAPPA_STAR_SD, n),
        2.0 + rng.gamma(NU_SHAPE, 1.0 / NU_RATE, n),
        np.exp(rng.normal(0.0, LOG_GAMMA_SD, n)),
    )


def prior_box(th: Theta) -> NDArray[np.bool_]:
    """Whether each parameter vector lies where the prior has mass, ``(S,)``."""
    return np.isfinite(log_prior_u(to_unconstrained(th)))


class Step(NamedTuple):
    """Per-particle constants of one filter step (formed once per particle set), each ``(S,)``."""

    mu: FloatArray
    phi: FloatArray
    c_neg: FloatArray  # omega (1 - phi) + kappa_star: intercept after a fall
    c_pos: FloatArray  # omega (1 - phi) - kappa_star
    k_neg: FloatArray  # kappa + kappa_star: score loading after a fall
    k_pos: FloatArray  # kappa - kappa_star
    inv_nu_neg: FloatArray  # gamma^2 / nu: z's factor after a fall
    inv_nu_pos: FloatArray  # 1 / (gamma^2 nu)
    nu1: FloatArray  # nu + 1
    half_nu1: FloatArray
    const: FloatArray  # c(nu) + log(2 / (gamma + 1/gamma))

    @classmethod
    def of(cls, th: Theta) -> Step:
        a = th.omega * (1.0 - th.phi)
        nu1 = th.nu + 1.0
        g2 = th.gamma * th.gamma
        return cls(th.mu, th.phi, a + th.kappa_star, a - th.kappa_star, th.kappa + th.kappa_star,
                   th.kappa - th.kappa_star, g2 / th.nu, 1.0 / (g2 * th.nu), nu1, 0.5 * nu1,
                   t_log_norm(th.nu) + np.log(2.0 / (th.gamma + 1.0 / th.gamma)))


def step(st: Step, lam: FloatArray, x: float) -> tuple[FloatArray, FloatArray]:
    """One day: the log density of return ``x`` given ``lam`` ``(S,)``, and the next ``lam``."""
    e = x - st.mu
    neg = e < 0.0
    with np.errstate(over="ignore"):
        z = e * e * np.exp(-2.0 * lam) * np.where(neg, st.inv_nu_neg, st.inv_nu_pos)
    log1pz = np.log1p(z)
    dens = st.const - lam - st.half_nu1 * log1pz
    with np.errstate(invalid="ignore"):
        u = st.nu1 * (z / (1.0 + z)) - 1.0  # z = inf (absurd particles): nan, caught below
    u = np.where(np.isfinite(u), u, st.nu1 - 1.0)
    nxt = st.phi * lam + np.where(neg, st.c_neg, st.c_pos) + np.where(neg, st.k_neg, st.k_pos) * u
    return dens, nxt


#: Days of the likelihood's precomputed rows (``(DAY_BLOCK, S)`` each, cache-sized).
DAY_BLOCK = 16


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(n,)`` at each of ``S`` parameter vectors, and ``lambda_{n+1}``.

    Returns ``(ll (S,), lam_next (S,))``; ``ll`` is ``-inf`` where a density
    underflows. Days-then-particles layout: for ``DAY_BLOCK`` days at a time
    everything that does not depend on ``lambda`` is formed in ``(days, S)``
    arrays at once - ``A_t = e_t^2 gamma^(-2 sgn e_t) / nu`` and the
    sign-dependent coefficients ``B_t``, ``D_t`` (each ``x0 + sgn(-e_t) x1``:
    two operations, where a select is four times dearer) - so that the recursion, in
    ``m = -2 lambda``,

        z_t = A_t exp(m_t),   m_{t+1} = phi m_t + B_t + D_t / (1 + z_t)

    (``B = -2 (c + k nu)``, ``D = 2 k (nu + 1)`` with the intercept ``c`` and
    loading ``k`` of the sign of ``e_t``; that is ``lambda_{t+1} = phi
    lambda_t + c + k u_t``, ``u_t = nu - (nu+1) / (1 + z_t)``) is seven
    vector operations a day; ``sum log1p(z_t)`` and ``sum lambda_t`` are then
    one operation on each block.
    """
    st = Step.of(th)
    s = st.mu.size
    nu, nu1, ks = st.nu1 - 1.0, st.nu1, th.kappa_star
    # the sign-dependent coefficients as x0 + sgn(-e) x1 (at e = 0 the model's sgn is 0,
    # and z = 0, u = -1: lambda's step is the same either way)
    b0, b1 = -2.0 * (th.omega * (1.0 - th.phi) + th.kappa * nu), -2.0 * ks * nu1
    d0, d1 = 2.0 * th.kappa * nu1, 2.0 * ks * nu1
    p0, p1 = 0.5 * (st.inv_nu_neg + st.inv_nu_pos), 0.5 * (st.inv_nu_neg - st.inv_nu_pos)
    phi = st.phi
    rows = min(DAY_BLOCK, max(r.size, 1))
    m = np.empty((rows + 1, s))
    m[0] = -2.0 * th.omega
    zs = np.empty((rows, s))
    ex = np.empty(s)
    m_sum = np.zeros(s)
    pen = np.zeros(s)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for first in range(0, r.size, rows):
            x = r[first : first + rows]
            n = x.size
            e = st.mu - x[:, None]  # -e_t
            sn = np.sign(e)
            a = sn * p1
            a += p0
            a *= e * e
            bb = sn * b1
            bb += b0
            dd = sn * d1
            dd += d0
            for t in range(n):
                np.exp(m[t], out=ex)
                z = np.multiply(a[t], ex, out=zs[t])
                np.add(z, 1.0, out=ex)
                np.divide(dd[t], ex, out=ex)
                nxt = np.multiply(m[t], phi, out=m[t + 1])
                nxt += bb[t]
                nxt += ex
            m_sum += m[:n].sum(axis=0)
            pen += np.log1p(zs[:n]).sum(axis=0)
            m[0] = m[n]
    ll = r.size * st.const + 0.5 * m_sum - st.half_nu1 * pen
    ll = np.where(np.isnan(ll), -np.inf, ll)
    return ll, -0.5 * m[0]


def lambda_path(r: FloatArray, p: dict[str, float]) -> FloatArray:
    """``lambda_1 .. lambda_{n+1}`` ``(n+1,)`` at one parameter vector (scalar loop)."""
    mu, om, phi, ka, ks, nu, g = (float(p[k]) for k in PARAMS)
    out = np.empty(r.size + 1)
    lam = om
    for t, x in enumerate(r.tolist()):
        out[t] = lam
        lam = _next_lambda(x - mu, lam, om, phi, ka, ks, nu, g)
    out[r.size] = lam
    return out


def _next_lambda(e: float, lam: float, om: float, phi: float, ka: float, ks: float, nu: float,
                 g: float) -> float:
    z = e * e * math.exp(-2.0 * lam) * (g * g if e < 0 else 1.0 / (g * g)) / nu
    u = (nu + 1.0) * z / (1.0 + z) - 1.0
    sgn = 1.0 if e < 0 else (-1.0 if e > 0 else 0.0)
    return om + phi * (lam - om) + ka * u + ks * sgn * (u + 1.0)


def skew_t_draws(nu: float | FloatArray, gamma: float | FloatArray, size: tuple[int, ...] | int,
                 rng: np.random.Generator) -> FloatArray:
    """Fernandez-Steel skew-t draws (unit scale): ``-|T| / gamma`` with probability
    ``1 / (1 + gamma^2)``, else ``gamma |T|``."""
    t = np.abs(rng.standard_t(nu, size))
    g = np.asarray(gamma, dtype=float)
    neg = rng.random(size) < 1.0 / (1.0 + g * g)
    result: FloatArray = np.where(neg, -t / g, g * t)
    return result


def simulate(p: dict[str, float], n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` returns from the model at one parameter vector, ``lambda_1 = omega``."""
    mu, om, phi, ka, ks, nu, g = (float(p[k]) for k in PARAMS)
    shocks = skew_t_draws(nu, g, n, rng)
    out = np.empty(n)
    lam = om
    for t in range(n):
        e = math.exp(lam) * float(shocks[t])
        out[t] = mu + e
        lam = _next_lambda(e, lam, om, phi, ka, ks, nu, g)
    return out


def simulate_paths(th: Theta, lam: FloatArray, horizon: int, paths: int,
                   rng: np.random.Generator) -> FloatArray:
    """Sums of ``horizon`` future returns ``(D, paths)`` from ``D`` particles at ``lam (D,)``."""
    st = Step.of(Theta(*(np.asarray(p)[:, None] for p in th)))
    d = lam.size
    ll = np.broadcast_to(lam[:, None], (d, paths)).copy()
    nu = np.broadcast_to(th.nu[:, None], (d, paths))
    g = np.broadcast_to(th.gamma[:, None], (d, paths))
    total = np.zeros((d, paths))
    for _ in range(horizon):
        z = skew_t_draws(nu, g, (d, paths), rng)
        total += st.mu + np.exp(ll) * z
        neg = z < 0.0
        zz = z * z * np.where(neg, st.inv_nu_neg, st.inv_nu_pos)
        u = st.nu1 * (zz / (1.0 + zz)) - 1.0
        ll = st.phi * ll + np.where(neg, st.c_neg, st.c_pos) + np.where(neg, st.k_neg,
                                                                        st.k_pos) * u
    return total


class FernandezSteelSkewTFamily(LocationScaleFamily):
    """Returns ``loc_s + scale_s * eps`` with ``eps`` Fernandez-Steel skew-t(``df_s``, ``gamma_s``).

    A :class:`~swarmvar.models.risk.Family` (per-draw VaR, tail probability and
    expected excess in closed form from the t's CDF and partial moment,
    :class:`._location_scale.LocationScaleFamily`); all arrays ``(S,)``,
    ``df > 1``. Not HarArch's :class:`~swarmvar.models.har_arch.HansenSkewTFamily`
    (another skewed t). Per-draw quantiles are cached per level by the caller
    through ``quantiles`` (a dict kept per particle set).
    """

    def __init__(self, loc: FloatArray, scale: FloatArray, df: FloatArray, gamma: FloatArray,
                 weights: FloatArray, quantiles: dict[float, FloatArray] | None = None) -> None:
        super().__init__(loc, scale, weights)
        self.df, self.gamma = df, gamma
        self._g2 = gamma * gamma
        self._p_neg = 1.0 / (1.0 + self._g2)
        self._quantiles = {} if quantiles is None else quantiles

    def standard_quantile(self, p: float) -> FloatArray:
        """The ``p`` quantile of the unit skew-t per draw ``(S,)``."""
        hit = self._quantiles.get(p)
        if hit is None:
            g, below = self.gamma, p < self._p_neg
            with np.errstate(invalid="ignore", divide="ignore"):
                left = special.stdtrit(self.df, np.minimum(p * (1.0 + self._g2) / 2.0, 0.5)) / g
                right = g * special.stdtrit(
                    self.df, np.clip(1.0 - (1.0 - p) * (1.0 + self._g2) / (2.0 * self._g2),
                                     0.5, 1.0))
            hit = np.asarray(np.where(below, left, right), dtype=float)
            self._quantiles[p] = hit
        return hit

    def level_quantile(self, alpha: float) -> FloatArray:
        return self.standard_quantile(1.0 - alpha)

    def _cdf(self, z: FloatArray) -> FloatArray:
        g = self.gamma
        left = 2.0 / (1.0 + self._g2) * special.stdtr(self.df, np.minimum(z, 0.0) * g)
        if np.all(z < 0.0):  # the left branch only (every VaR of a level above 1/2 as a rule)
            return np.asarray(left, dtype=float)
        right = 1.0 - 2.0 * self._g2 / (1.0 + self._g2) * special.stdtr(
            self.df, -np.maximum(z, 0.0) / g)
        result: FloatArray = np.where(z < 0.0, left, right)
        return result

    def _partial(self, z: FloatArray) -> FloatArray:
        """``E[eps 1{eps < z}]`` per draw."""
        g, df = self.gamma, self.df
        c = t_log_norm(df)

        def lower(q: FloatArray) -> FloatArray:  # int_{-inf}^q t f_t(t) dt
            out: FloatArray = -(df + q * q) / (df - 1.0) * np.exp(
                c - 0.5 * (df + 1.0) * np.log1p(q * q / df))
            return out

        zn, zp = np.minimum(z, 0.0), np.maximum(z, 0.0)
        at0 = 2.0 / (g * (1.0 + self._g2)) * lower(np.zeros_like(g))
        left = 2.0 / (g * (1.0 + self._g2)) * lower(zn * g)
        right = at0 + 2.0 * g * self._g2 / (1.0 + self._g2) * (lower(zp / g) - lower(
            np.zeros_like(g)))
        result: FloatArray = np.where(z < 0.0, left, right)
        return result

    def mixture_var(self, alpha: float) -> float:
        """The mixture's ``alpha`` loss quantile by safeguarded Newton steps.

        Solves ``sum_s w_s P_s(L > v) = 1 - alpha`` from the weighted mean of
        the per-draw VaRs, inside the bracket of their smallest and largest
        (where the mixture quantile lies), bisecting when a step leaves it;
        stops when a step is below ``1e-12 max(1, |v|)`` (the tolerance
        :func:`~swarmvar.models.risk.mixture_var`'s Brent search uses).
        """
        cond = self.var(alpha)
        lo, hi = float(cond.min()), float(cond.max())
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            return hi
        w, target = self._weights, 1.0 - alpha
        v = float(w @ cond)
        for _ in range(100):
            z = (-v - self.loc) / self.scale
            gap = float(w @ self._cdf(z)) - target
            if gap > 0:
                lo = v
            else:
                hi = v
            slope = float(w @ (self._pdf(z) / self.scale))
            nxt = v + gap / slope if slope > 0 else 0.5 * (lo + hi)
            if not lo < nxt < hi:
                nxt = 0.5 * (lo + hi)
            if abs(nxt - v) <= 1e-12 * max(1.0, abs(v)) or hi - lo <= 1e-12 * max(1.0, abs(v)):
                return nxt
            v = nxt
        return v

    def _pdf(self, z: FloatArray) -> FloatArray:
        """The unit skew-t density per draw at ``z``."""
        g, df = self.gamma, self.df
        w = z * np.where(z < 0.0, g, 1.0 / g)
        c = t_log_norm(df)
        result: FloatArray = 2.0 * g / (1.0 + self._g2) * np.exp(
            c - 0.5 * (df + 1.0) * np.log1p(w * w / df))
        return result

    def _cdf_and_partial(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        return self._cdf(z), self._partial(z)
