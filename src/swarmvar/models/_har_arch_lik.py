"""HAR-ARCH with leverage and skewed-t innovations: likelihood for many particles, prior.

Model (log returns as fractions), ``e_t = r_t - mu``, ``n_t = e_t^2 1[e_t < 0]``::

    r_t = mu + sqrt(h_t) z_t,        z_t ~ skewed t(nu, lam), mean 0, variance 1
    h_t = omega + b1 d_t + b5 w_t + b22 m_t + g1 dn_t + g5 wn_t + g22 mn_t

with ``d_t = e_{t-1}^2``, ``w_t`` and ``m_t`` the means of ``e^2`` over the
last 5 and 22 days, and ``dn, wn, mn`` the same of ``n`` (the squared
*negative* shocks): the heterogeneous ARCH of Müller et al. (1997) and
Corsi (2009) on daily squared returns, with the leverage terms at every
horizon of Corsi & Renò (2012). It has no recursion in ``h``: each day's
variance is a fixed linear function of the last 22 squared shocks, so the
likelihood of a whole history is a few cumulative sums, vectorized over
particles and days at once. The first ``LAGS`` returns of a history are
conditioned on (they enter only as lags).

``z`` is Hansen's (1994) skewed t with unit variance: with ``c =
Gamma((nu+1)/2) / (sqrt(pi (nu-2)) Gamma(nu/2))``, ``a = 4 lam c (nu-2)/(nu-1)``
and ``b^2 = 1 + 3 lam^2 - a^2``::

    f(z) = b c (1 + ((b z + a) / (1 -+ lam))^2 / (nu - 2))^(-(nu+1)/2)

with ``1 - lam`` below ``z = -a/b`` and ``1 + lam`` above. ``lam < 0`` puts
more mass in the left (loss) tail.

Priors (unconstrained coordinates ``u`` of :func:`constrain` carry the Jacobians)::

    mu ~ N(0, 0.01^2)                 log omega ~ N(log 1e-6, 2.5^2)
    (b1, b5, b22, g1/2, g5/2, g22/2, 1 - p) ~ Dirichlet(1, ..., 1)
    nu - 2 ~ Gamma(2, rate 0.1)       (lam + 1) / 2 ~ Beta(2, 2)

``p = b1 + b5 + b22 + (g1 + g5 + g22) / 2`` is the persistence: the prior
is uniform on the region ``p < 1`` (covariance stationary for symmetric
innovations, as GJR's ``alpha + gamma/2 + beta < 1``), with no lean towards
either leverage sign.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from .risk import t_log_norm

FloatArray = NDArray[np.float64]

#: Lags of the HAR terms (days) and the longest one.
HORIZONS = (1, 5, 22)
LAGS = 22
PARAMS = ("mu", "omega", "b1", "b5", "b22", "g1", "g5", "g22", "nu", "lam")
DIM = len(PARAMS)
#: Prior hyper-parameters (fractions, daily scale).
MU_SD = 0.01
LOG_OMEGA_MEAN = math.log(1e-6)
LOG_OMEGA_SD = 2.5
NU_SHAPE, NU_RATE = 2.0, 0.1
LAM_BETA = 2.0
#: Particles per likelihood pass (bounds the (particles, days) temporaries to ~8 MB each).
BATCH = 1000
#: Floor of a variance (fraction^2): binds only for absurd parameter values.
H_FLOOR = 1e-12
_SIMPLEX = 7  # b1, b5, b22, g1/2, g5/2, g22/2, 1 - p


class Theta(NamedTuple):
    """Parameters, each ``(S,)`` (fractions; ``omega`` in fraction^2)."""

    mu: FloatArray
    omega: FloatArray
    b1: FloatArray
    b5: FloatArray
    b22: FloatArray
    g1: FloatArray
    g5: FloatArray
    g22: FloatArray
    nu: FloatArray
    lam: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    def as_dict(self) -> dict[str, FloatArray]:
        return {k: np.array(v, dtype=float) for k, v in zip(PARAMS, self, strict=True)}

    @property
    def coefficients(self) -> FloatArray:
        """``(S, 7)``: omega and the six HAR coefficients, in the design's column order."""
        return np.column_stack([self.omega, self.b1, self.b5, self.b22, self.g1, self.g5,
                                self.g22])

    @property
    def persistence(self) -> FloatArray:
        return np.asarray(self.b1 + self.b5 + self.b22 + 0.5 * (self.g1 + self.g5 + self.g22))


def theta(**values: float) -> Theta:
    """A one-particle :class:`Theta` from named values."""
    return Theta(*(np.array([float(values[k])]) for k in PARAMS))


def is_valid(th: Theta) -> NDArray[np.bool_]:
    """Inside the prior's support: omega > 0, coefficients >= 0, p < 1, nu > 2, |lam| < 1."""
    coef = np.stack([th.b1, th.b5, th.b22, th.g1, th.g5, th.g22])
    finite = np.all(np.isfinite(np.stack(list(th))), axis=0)
    return np.asarray(finite & (th.omega > 0) & np.all(coef >= 0, axis=0) & (th.persistence < 1)
                      & (th.nu > 2) & (np.abs(th.lam) < 1))


# --- coordinates and prior -------------------------------------------------------


def constrain(u: FloatArray) -> Theta:
    with np.errstate(over="ignore"):  # far-out proposals: inf, then outside the support
        return _constrain(u)


def _constrain(u: FloatArray) -> Theta:
    """Parameters from unconstrained coordinates ``u (S, 10)``.

    ``u = (mu, log omega, alr_1..alr_6, log(nu - 2), atanh lam)``; the
    simplex is the additive log-ratio transform (last component the base).
    """
    alr = u[:, 2:8]
    top = np.maximum(alr.max(axis=1, keepdims=True), 0.0)
    ex = np.exp(alr - top)
    base = np.exp(-top)
    total = ex.sum(axis=1, keepdims=True) + base
    x = ex / total
    return Theta(u[:, 0].copy(), np.exp(u[:, 1]), x[:, 0], x[:, 1], x[:, 2], 2.0 * x[:, 3],
                 2.0 * x[:, 4], 2.0 * x[:, 5], 2.0 + np.exp(u[:, 8]), np.tanh(u[:, 9]))


def unconstrain(th: Theta) -> FloatArray:
    """Inverse of :func:`constrain` ``(S, 10)``."""
    x = np.column_stack([th.b1, th.b5, th.b22, 0.5 * th.g1, 0.5 * th.g5, 0.5 * th.g22])
    last = 1.0 - x.sum(axis=1)
    return np.column_stack([th.mu, np.log(th.omega), np.log(x) - np.log(last)[:, None],
                            np.log(th.nu - 2.0), np.arctanh(th.lam)])


_LOG_CONST = (-0.5 * math.log(2 * math.pi) - math.log(MU_SD)
              - 0.5 * math.log(2 * math.pi) - math.log(LOG_OMEGA_SD)
              + math.lgamma(_SIMPLEX)
              + NU_SHAPE * math.log(NU_RATE) - math.lgamma(NU_SHAPE)
              - special.betaln(LAM_BETA, LAM_BETA))


def log_prior(u: FloatArray) -> FloatArray:
    """Log prior density of the unconstrained coordinates ``u (S, 10)``, Jacobians included."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _log_prior(u)


def _log_prior(u: FloatArray) -> FloatArray:
    alr = u[:, 2:8]
    top = np.maximum(alr.max(axis=1, keepdims=True), 0.0)
    log_total = top[:, 0] + np.log(np.exp(alr - top).sum(axis=1) + np.exp(-top[:, 0]))
    # Dirichlet(1) density (constant) times the alr Jacobian prod_i x_i (all 7 parts)
    log_simplex = alr.sum(axis=1) - _SIMPLEX * log_total
    v = u[:, 8]  # log(nu - 2): Gamma(shape, rate) on exp(v), Jacobian exp(v)
    log_nu = NU_SHAPE * v - NU_RATE * np.exp(v)
    # Beta on y = (lam + 1)/2 = sigmoid(2 u), dy/du = 2 y (1 - y): logs without overflow
    log_y, log_1my = -np.logaddexp(0.0, -2.0 * u[:, 9]), -np.logaddexp(0.0, 2.0 * u[:, 9])
    log_lam = LAM_BETA * (log_y + log_1my) + math.log(2.0)
    out = (_LOG_CONST - 0.5 * (u[:, 0] / MU_SD) ** 2
           - 0.5 * ((u[:, 1] - LOG_OMEGA_MEAN) / LOG_OMEGA_SD) ** 2
           + log_simplex + log_nu + log_lam)
    return np.asarray(np.where(np.isfinite(out), out, -np.inf))


def sample_prior(n: int, rng: np.random.Generator) -> Theta:
    """``n`` prior draws."""
    x = rng.dirichlet(np.ones(_SIMPLEX), n)
    lam = 2.0 * rng.beta(LAM_BETA, LAM_BETA, n) - 1.0
    return Theta(rng.normal(0.0, MU_SD, n), np.exp(rng.normal(LOG_OMEGA_MEAN, LOG_OMEGA_SD, n)),
                 x[:, 0], x[:, 1], x[:, 2], 2 * x[:, 3], 2 * x[:, 4], 2 * x[:, 5],
                 2.0 + rng.gamma(NU_SHAPE, 1.0 / NU_RATE, n), lam)


# --- Hansen's skewed t ------------------------------------------------------------


class SkewT(NamedTuple):
    """Constants of unit-variance skewed t laws ``(S,)``: ``a``, ``b``, log ``c``, nu, lam."""

    a: FloatArray
    b: FloatArray
    log_c: FloatArray
    nu: FloatArray
    lam: FloatArray

    @property
    def mode_point(self) -> FloatArray:
        """``-a/b``: where the law switches from its left to its right half."""
        return np.asarray(-self.a / self.b)

    def take(self, idx: NDArray[np.intp]) -> SkewT:
        return SkewT(*(p[idx] for p in self))


def skew_t(nu: FloatArray, lam: FloatArray) -> SkewT:
    """The constants of Hansen's unit-variance skewed t for each ``(nu, lam)``."""
    nu, lam = np.asarray(nu, dtype=float), np.asarray(lam, dtype=float)
    log_c = (special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu)
             - 0.5 * np.log(np.pi * (nu - 2)))
    a = 4.0 * lam * np.exp(log_c) * (nu - 2) / (nu - 1)
    b = np.sqrt(1.0 + 3.0 * lam * lam - a * a)
    return SkewT(a, b, log_c, nu, lam)


def skew_t_logpdf(z: FloatArray, st: SkewT) -> FloatArray:
    """Log density of ``z`` (broadcast against the ``(S,)`` or ``(S, 1)`` constants)."""
    bz = st.b * z + st.a
    side = np.where(bz < 0, 1.0 - st.lam, 1.0 + st.lam)
    q = bz / side
    return np.asarray(np.log(st.b) + st.log_c - 0.5 * (st.nu + 1) * np.log1p(q * q / (st.nu - 2)))


def _t_partial_mean(u: FloatArray, nu: FloatArray) -> FloatArray:
    """``E[T 1(T < u)]`` of a standard t(nu): ``-f(u) (nu + u^2) / (nu - 1)``."""
    log_f = t_log_norm(nu) - 0.5 * (nu + 1) * np.log1p(u * u / nu)
    return np.asarray(-np.exp(log_f) * (nu + u * u) / (nu - 1))


def skew_t_cdf_and_partial(c: FloatArray, st: SkewT) -> tuple[FloatArray, FloatArray]:
    """``P(z < c)`` and ``E[z 1(z < c)]`` per particle (``c`` broadcast with ``st``)."""
    sc = np.sqrt((st.nu - 2) / st.nu)
    s_lo, s_hi = 1.0 - st.lam, 1.0 + st.lam
    bc = st.b * c + st.a
    lo = bc < 0
    u = bc / (np.where(lo, s_lo, s_hi) * sc)
    tcdf = special.stdtr(st.nu, u)
    m = _t_partial_mean(u, st.nu)
    m0 = _t_partial_mean(np.zeros_like(st.nu), st.nu)
    cdf_lo = s_lo * tcdf
    part_lo = s_lo * (s_lo * sc / st.b * m - st.a / st.b * tcdf)
    half = s_lo * (s_lo * sc / st.b * m0 - 0.5 * st.a / st.b)
    cdf_hi = 0.5 * s_lo + s_hi * (tcdf - 0.5)
    part_hi = half + s_hi * (s_hi * sc / st.b * (m - m0) - st.a / st.b * (tcdf - 0.5))
    return np.asarray(np.where(lo, cdf_lo, cdf_hi)), np.asarray(np.where(lo, part_lo, part_hi))


def skew_t_cdf(c: FloatArray, st: SkewT) -> FloatArray:
    """``P(z < c)`` per particle: :func:`skew_t_cdf_and_partial`'s first part, alone."""
    sc = np.sqrt((st.nu - 2) / st.nu)
    s_lo, s_hi = 1.0 - st.lam, 1.0 + st.lam
    bc = st.b * c + st.a
    lo = bc < 0
    tcdf = special.stdtr(st.nu, bc / (np.where(lo, s_lo, s_hi) * sc))
    return np.asarray(np.where(lo, s_lo * tcdf, 0.5 * s_lo + s_hi * (tcdf - 0.5)))


def skew_t_ppf(p: float | FloatArray, st: SkewT) -> FloatArray:
    """Quantile of probability ``p`` per particle."""
    sc = np.sqrt((st.nu - 2) / st.nu)
    s_lo, s_hi = 1.0 - st.lam, 1.0 + st.lam
    lo = p < 0.5 * s_lo
    ql = s_lo / st.b * sc * special.stdtrit(st.nu, np.minimum(p / s_lo, 0.5)) - st.a / st.b
    qh = s_hi / st.b * sc * special.stdtrit(
        st.nu, np.clip(0.5 + (p - 0.5 * s_lo) / s_hi, 0.5, 1.0)) - st.a / st.b
    return np.asarray(np.where(lo, ql, qh))


# --- the HAR design and likelihood ----------------------------------------------


def _lag_means(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For ``x (n, S)`` (days down, particles across): the last, 5-day and 22-day means.

    Rows ``t = LAGS..n`` (the means of the days before ``t``), each ``(n - LAGS + 1, S)``:
    slices of one cumulative sum down the days, vectorized across the particles.
    """
    n = x.shape[0]
    c = np.empty((n + 1, x.shape[1]))
    c[0] = 0.0
    np.cumsum(x, axis=0, out=c[1:])
    end = c[LAGS:]
    week = end - c[LAGS - 5 : n + 1 - 5]
    week *= 1.0 / 5.0
    month = end - c[: n + 1 - LAGS]
    month *= 1.0 / 22.0
    return x[LAGS - 1 :], week, month


def _variances_by_day(r: FloatArray, th: Theta) -> FloatArray:
    """``h_t`` ``(n - LAGS + 1, S)`` for ``t = LAGS..n``, days down (the last row is next)."""
    e = r[:, None] - th.mu[None, :]
    e2 = e * e
    neg = np.where(e < 0, e2, 0.0)
    h = np.empty((e.shape[0] - LAGS + 1, e.shape[1]))
    h[:] = th.omega
    for coefs, means in (((th.b1, th.b5, th.b22), _lag_means(e2)),
                         ((th.g1, th.g5, th.g22), _lag_means(neg))):
        for k, m in zip(coefs, means, strict=True):
            h += k * m
    return np.asarray(np.maximum(h, H_FLOOR, out=h))


def variances(r: FloatArray, th: Theta) -> FloatArray:
    """``h_t`` ``(S, n - LAGS + 1)`` for ``t = LAGS..n`` (the last is the next return's)."""
    return np.ascontiguousarray(_variances_by_day(r, th).T)


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r (n,)`` given its first ``LAGS`` returns, and the next variance.

    Returns ``(ll (S,), h_next (S,))``; particles outside the support get
    ``ll = -inf`` (and a finite placeholder variance).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _loglik(r, th)


def _loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    size = th.mu.size
    ll, h_next = np.empty(size), np.empty(size)
    valid = is_valid(th)
    for k in range(0, size, BATCH):
        sl = slice(k, min(k + BATCH, size))
        part = th.take(np.arange(sl.start, sl.stop))
        safe = _safe(part, valid[sl])
        h = _variances_by_day(r, safe)
        st = skew_t(safe.nu, safe.lam)
        past = h[:-1]
        z = (r[LAGS:, None] - safe.mu) / np.sqrt(past)
        ll[sl] = skew_t_logpdf(z, st).sum(axis=0) - 0.5 * np.log(past).sum(axis=0)
        h_next[sl] = h[-1]
    ll = np.where(valid & np.isfinite(ll), ll, -np.inf)
    return np.asarray(ll), h_next


def _safe(th: Theta, valid: NDArray[np.bool_]) -> Theta:
    """``th`` with invalid particles replaced by a harmless valid one (their ll is discarded)."""
    if np.all(valid):
        return th
    filler = {"mu": 0.0, "omega": 1e-6, "b1": 0.1, "b5": 0.1, "b22": 0.1, "g1": 0.1, "g5": 0.1,
              "g22": 0.1, "nu": 8.0, "lam": 0.0}
    return Theta(*(np.where(valid, p, filler[k]) for k, p in zip(PARAMS, th, strict=True)))


def next_variance(tail: FloatArray, th: Theta) -> FloatArray:
    """``h`` ``(S,)`` of the return after ``tail``, the last ``LAGS`` returns ``(LAGS,)``."""
    return np.asarray(_variances_by_day(tail, th)[-1])
