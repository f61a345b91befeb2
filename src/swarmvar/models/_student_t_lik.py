"""The iid location-scale Student-t model's priors and likelihood, vectorized over particles.

Plain numpy, shared by :mod:`.student_t` (SMC, SIR and IBIS) and
:mod:`._nuts_student_t` (the priors). Particles live in unconstrained
coordinates ``theta = (mu, log sigma, log(nu - 2))`` ``(S, 3)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from .risk import t_log_norm

FloatArray = NDArray[np.float64]

#: Priors on the daily-return scale (fractions). See docs/models-student-t-evt.md.
MU_PRIOR_SD = 0.01
SIGMA_PRIOR_SD = 0.05
NU_SHAPE, NU_RATE = 2.0, 0.1  # nu - 2 ~ Gamma(2, rate 0.1): mean 20, mode 10
#: Elements per block when evaluating the likelihood: observations times a block of
#: particles, small enough to stay in cache.
_BLOCK = 1 << 17
#: Likelihood factors ``1 + z^2 / nu`` multiplied together before one log is taken.
_GROUP = 16
#: A particle's factors come from expanding ``(y - mu)^2``; that loses about
#: ``1e-16 * (|y| + |mu|)^2 / (nu sigma^2)`` of each factor, so particles for which
#: this ratio exceeds ``_EXPANDED_RATIO`` (scales ~1000x below the returns' size,
#: prior draws only) take the direct route.
_EXPANDED_RATIO = 1e6


def constrain(theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``mu, sigma, nu`` ``(S,)`` each from unconstrained particles ``(S, 3)``."""
    return theta[:, 0], np.exp(theta[:, 1]), 2.0 + np.exp(theta[:, 2])


def log_const(sigma: FloatArray, nu: FloatArray) -> FloatArray:
    """Per-particle normalizing constant of the t log density ``(S,)``."""
    return np.asarray(t_log_norm(nu) - np.log(sigma))


def t_loglik(mu: FloatArray, sigma: FloatArray, nu: FloatArray, y: FloatArray) -> FloatArray:
    """Iid Student-t log-likelihood of returns ``y (n,)`` for each particle ``(S,)``.

    The cost is the ``S * n`` terms ``log(1 + z^2 / nu)``, so they are
    formed without a pass per operation and logged 16 at a time: the factors
    ``1 + (y - mu)^2 / (nu sigma^2)`` come from one matrix product of the
    data's ``(y^2, y, 1, 1)`` with each particle's ``(1, -2 mu, mu^2, c) / c``
    (``c = nu sigma^2``; padding rows give factor 1), and the log of a product
    of 16 factors (each ``>= 1``, at most ``1e6`` for the particles that take this
    route, so no overflow) stands for the sum of their logs. ~4x faster than
    a log per term (2,000 particles x 1,000 returns: ~1.2 ms against ~5.5
    ms); the result agrees with the direct sum to ~1e-15 relative
    (the expansion and the products round differently), far below anything
    a likelihood ratio can notice. Particles whose scale is tiny beside the
    returns (where the expansion would cancel) take the direct route.
    """
    total = np.empty(mu.shape)
    n = y.size
    if n == 0:
        total[:] = 0.0
        return total
    c = sigma * sigma * nu
    direct = (np.abs(y).max() + np.abs(mu)) ** 2 > _EXPANDED_RATIO * c
    if direct.any():
        total[direct] = _log_factors_direct(mu[direct], sigma[direct] * np.sqrt(nu[direct]), y)
    expanded = np.flatnonzero(~direct)
    if expanded.size:
        total[expanded] = _log_factors_expanded(mu[expanded], c[expanded], y)
    return np.asarray(n * log_const(sigma, nu) - 0.5 * (nu + 1.0) * total)


def _log_factors_expanded(mu: FloatArray, c: FloatArray, y: FloatArray) -> FloatArray:
    """``sum_i log(1 + (y_i - mu)^2 / c)`` per particle ``(S,)``, by grouped products."""
    n = y.size
    m = -(-n // _GROUP) * _GROUP
    data = np.zeros((m, 4))
    data[:n, 0], data[:n, 1], data[:n, 2], data[:, 3] = y * y, y, 1.0, 1.0
    inv = 1.0 / c
    coef = np.vstack([inv, -2.0 * mu * inv, mu * mu * inv, np.ones(mu.size)])
    total = np.empty(mu.size)
    cols = min(max(1, _BLOCK // m), mu.size)
    buf = np.empty(m * cols)
    for start in range(0, mu.size, cols):
        stop = min(start + cols, mu.size)
        b = buf[:m * (stop - start)].reshape(m, stop - start)
        np.matmul(data, coef[:, start:stop], out=b)
        h = m
        while h > m // _GROUP:  # contiguous halves multiplied together
            h //= 2
            b[:h] *= b[h:2 * h]
        np.log(b[:h], out=b[:h])
        total[start:stop] = b[:h].sum(axis=0)
    return total


def _log_factors_direct(mu: FloatArray, scale: FloatArray, y: FloatArray) -> FloatArray:
    """``sum_i log(1 + ((y_i - mu) / scale)^2)`` per particle ``(S,)``, term by term."""
    total = np.empty(mu.shape)
    rows = max(1, _BLOCK // y.size)
    inv = 1.0 / scale
    buf = np.empty((min(rows, mu.size), y.size))
    for start in range(0, mu.size, rows):
        stop = min(start + rows, mu.size)
        b = buf[:stop - start]
        np.subtract(y[None, :], mu[start:stop, None], out=b)
        b *= inv[start:stop, None]
        np.square(b, out=b)
        b += 1.0
        np.log(b, out=b)
        total[start:stop] = b.sum(axis=1)
    return total


def log_prior(theta: FloatArray) -> FloatArray:
    """Log prior density of unconstrained ``(mu, log sigma, log(nu - 2))`` ``(S, 3)``.

    Includes the Jacobians ``sigma`` and ``nu - 2`` of the log transforms.
    """
    mu, sigma, nu = constrain(theta)
    x = nu - 2.0
    return np.asarray(
        -0.5 * (mu / MU_PRIOR_SD) ** 2 - 0.5 * (sigma / SIGMA_PRIOR_SD) ** 2 + theta[:, 1]
        + NU_SHAPE * np.log(NU_RATE) - special.gammaln(NU_SHAPE)
        + NU_SHAPE * np.log(x) - NU_RATE * x
        + np.log(2.0) - np.log(2.0 * np.pi * MU_PRIOR_SD * SIGMA_PRIOR_SD)
    )
