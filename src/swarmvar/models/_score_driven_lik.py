"""Beta-t-EGARCH log-likelihoods for many parameter vectors at once, priors, simulation.

Model (Harvey & Chakravarty 2008; Harvey 2013, ch. 4), log returns as fractions::

    r_t = mu + exp(lambda_t) * T_t,   T_t ~ t_nu (the standard t: unit scale, not unit variance)
    lambda_{t+1} = omega + phi (lambda_t - omega) + kappa u_t + kappa_star sgn(-e_t) (u_t + 1)
    lambda_1 = omega

with ``e_t = r_t - mu``. ``u_t`` is the exact score of the log density with
respect to the log scale ``lambda_t``::

    log f(r_t) = c(nu) - lambda_t - (nu+1)/2 log(1 + e_t^2 / (nu exp(2 lambda_t)))
    u_t = d log f / d lambda_t = (nu + 1) b_t - 1,
    b_t = (e_t^2 / (nu exp(2 lambda_t))) / (1 + e_t^2 / (nu exp(2 lambda_t))) ~ Beta(1/2, nu/2)

with ``c(nu) = lgamma((nu+1)/2) - lgamma(nu/2) - log(pi nu)/2``. So ``u_t``
lies in ``[-1, nu]``, has mean 0 and variance ``2 nu / (nu + 3)``: an
outlier moves ``lambda`` by at most ``kappa nu`` (the t's own robustness),
unlike GARCH's squared return. ``kappa_star sgn(-e)(u+1)`` is Harvey's
leverage term (mean 0 for a symmetric t): with ``kappa_star > 0`` a fall
raises the next scale more than a rise. ``|phi| < 1`` with a bounded score
makes ``lambda`` stationary for every ``kappa, kappa_star``; ``omega`` is the
unconditional mean of ``lambda`` (the log scale, not the log variance: the
variance is ``exp(2 lambda) nu / (nu - 2)``).

Unconstrained coordinates ``u = (mu, omega, atanh(phi), log kappa,
kappa_star, log(nu - 2))``. Priors (documented in docs/models-score-driven.md)::

    mu ~ N(0, 0.01^2)                   omega ~ N(log 0.01, 1.5^2)
    (phi + 1) / 2 ~ Beta(20, 1.5)       log kappa ~ N(log 0.05, 1)
    kappa_star ~ N(0, 0.05^2)           nu - 2 ~ Gamma(2, rate 0.1)

The likelihood is plain numpy: a loop over days, each step a dozen vector
operations over the particles (``(S,)`` arrays, in place).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]

PARAMS = ("mu", "omega", "phi", "kappa", "kappa_star", "nu")
DIM = len(PARAMS)
MU_SD = 0.01
OMEGA_MEAN, OMEGA_SD = math.log(0.01), 1.5
PHI_A, PHI_B = 20.0, 1.5
LOG_KAPPA_MEAN, LOG_KAPPA_SD = math.log(0.05), 1.0
KAPPA_STAR_SD = 0.05
NU_SHAPE, NU_RATE = 2.0, 0.1
#: Bounds of the unconstrained coordinates outside which a particle has zero prior mass
#: (numerically: |atanh(phi)| < 12 keeps 1 - phi^2 > 0 in floats, nu < 2 + e^8).
PHI_U_MAX = 12.0
LOG_NU_MAX = 8.0
LOG_KAPPA_RANGE = (-20.0, 3.0)


class Theta(NamedTuple):
    """Constrained parameters, each ``(S,)``."""

    mu: FloatArray
    omega: FloatArray
    phi: FloatArray
    kappa: FloatArray
    kappa_star: FloatArray
    nu: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    def as_dict(self) -> dict[str, FloatArray]:
        return {k: np.asarray(v, dtype=float).copy() for k, v in zip(PARAMS, self, strict=True)}


def from_unconstrained(u: FloatArray) -> Theta:
    """Parameters from unconstrained coordinates ``u`` ``(S, 6)``."""
    return Theta(u[:, 0].copy(), u[:, 1].copy(), np.tanh(u[:, 2]), np.exp(u[:, 3]),
                 u[:, 4].copy(), 2.0 + np.exp(u[:, 5]))


def to_unconstrained(th: Theta) -> FloatArray:
    """Unconstrained coordinates ``(S, 6)`` of parameters ``th``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([th.mu, th.omega, np.arctanh(th.phi), np.log(th.kappa),
                                th.kappa_star, np.log(th.nu - 2.0)])


def log_prior_u(u: FloatArray) -> FloatArray:
    """Log prior density in unconstrained coordinates (Jacobians included), ``(S,)``.

    ``-inf`` outside the numerically safe box (see the module constants).
    """
    mu, om, a, lk, ks, ln = (u[:, k] for k in range(DIM))
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
          + _normal(lk, LOG_KAPPA_MEAN, LOG_KAPPA_SD) + _normal(ks, 0.0, KAPPA_STAR_SD) + lp_nu)
    inside = ((np.abs(a) < PHI_U_MAX) & (ln < LOG_NU_MAX) & (lk > LOG_KAPPA_RANGE[0])
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
    )


def prior_box(th: Theta) -> NDArray[np.bool_]:
    """Whether each parameter vector lies where the prior has mass, ``(S,)``."""
    return np.isfinite(log_prior_u(to_unconstrained(th)))


def log_norm(nu: FloatArray) -> FloatArray:
    """``c(nu)``: the log normalizing constant of the standard t, ``(S,)``."""
    result: FloatArray = (special.gammaln(0.5 * (nu + 1.0)) - special.gammaln(0.5 * nu)
                          - 0.5 * np.log(np.pi * nu))
    return result


class Step(NamedTuple):
    """Per-particle constants of one filter step (formed once per particle set), each ``(S,)``."""

    mu: FloatArray
    phi: FloatArray
    c_neg: FloatArray  # omega (1 - phi) + kappa_star: intercept after a fall
    c_pos: FloatArray  # omega (1 - phi) - kappa_star
    k_neg: FloatArray  # kappa + kappa_star: score loading after a fall
    k_pos: FloatArray  # kappa - kappa_star
    inv_nu: FloatArray
    nu1: FloatArray  # nu + 1
    half_nu1: FloatArray
    const: FloatArray  # c(nu)

    @classmethod
    def of(cls, th: Theta) -> Step:
        a = th.omega * (1.0 - th.phi)
        nu1 = th.nu + 1.0
        return cls(th.mu, th.phi, a + th.kappa_star, a - th.kappa_star, th.kappa + th.kappa_star,
                   th.kappa - th.kappa_star, 1.0 / th.nu, nu1, 0.5 * nu1, log_norm(th.nu))


def step(st: Step, lam: FloatArray, x: float) -> tuple[FloatArray, FloatArray]:
    """One day: the log density of return ``x`` given ``lam`` ``(S,)``, and the next ``lam``."""
    e = x - st.mu
    with np.errstate(over="ignore"):
        z = e * e * np.exp(-2.0 * lam) * st.inv_nu
    log1pz = np.log1p(z)
    dens = st.const - lam - st.half_nu1 * log1pz
    neg = e < 0.0
    with np.errstate(invalid="ignore"):
        u = st.nu1 * (z / (1.0 + z)) - 1.0  # z = inf (absurd particles): nan, caught below
    u = np.where(np.isfinite(u), u, st.nu1 - 1.0)
    nxt = st.phi * lam + np.where(neg, st.c_neg, st.c_pos) + np.where(neg, st.k_neg, st.k_pos) * u
    return dens, nxt


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(n,)`` at each of ``S`` parameter vectors, and ``lambda_{n+1}``.

    Returns ``(ll (S,), lam_next (S,))``; ``ll`` is ``-inf`` where a density
    underflows. One pass: ``n`` steps of in-place vector operations.
    """
    st = Step.of(th)
    s = st.mu.size
    lam = th.omega.astype(float).copy()
    lam_sum = np.zeros(s)
    pen = np.zeros(s)
    e, z, u, t1, kk = (np.empty(s) for _ in range(5))
    neg = np.empty(s, dtype=bool)
    mu, phi, inv_nu, nu1 = st.mu, st.phi, st.inv_nu, st.nu1
    c_neg, c_pos, k_neg, k_pos = st.c_neg, st.c_pos, st.k_neg, st.k_pos
    with np.errstate(over="ignore", invalid="ignore"):
        for x in r.tolist():
            np.subtract(x, mu, out=e)
            np.less(e, 0.0, out=neg)
            np.multiply(e, e, out=z)
            np.multiply(lam, -2.0, out=t1)
            np.exp(t1, out=t1)
            z *= t1
            z *= inv_nu
            lam_sum += lam
            np.log1p(z, out=t1)
            pen += t1 * st.half_nu1
            # u = nu1 * z / (1 + z) - 1, written as nu1 - nu1 / (1 + z) - 1 (finite at z = inf)
            np.add(z, 1.0, out=u)
            np.divide(nu1, u, out=u)
            np.subtract(nu1, u, out=u)
            u -= 1.0
            np.copyto(kk, k_pos)
            np.copyto(kk, k_neg, where=neg)
            u *= kk
            lam *= phi
            lam += u
            np.copyto(kk, c_pos)
            np.copyto(kk, c_neg, where=neg)
            lam += kk
    ll = r.size * st.const - lam_sum - pen
    ll = np.where(np.isnan(ll), -np.inf, ll)
    return ll, lam


def lambda_path(r: FloatArray, p: dict[str, float]) -> FloatArray:
    """``lambda_1 .. lambda_{n+1}`` ``(n+1,)`` at one parameter vector (scalar loop, reference)."""
    mu, om, phi, ka, ks, nu = (float(p[k]) for k in PARAMS)
    out = np.empty(r.size + 1)
    lam = om
    for t, x in enumerate(r.tolist()):
        out[t] = lam
        e = x - mu
        z = e * e * math.exp(-2.0 * lam) / nu
        u = (nu + 1.0) * z / (1.0 + z) - 1.0
        sgn = 1.0 if e < 0 else (-1.0 if e > 0 else 0.0)
        lam = om + phi * (lam - om) + ka * u + ks * sgn * (u + 1.0)
    out[r.size] = lam
    return out


def simulate(p: dict[str, float], n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` returns from the model at one parameter vector, ``lambda_1 = omega``."""
    mu, om, phi, ka, ks, nu = (float(p[k]) for k in PARAMS)
    shocks = rng.standard_t(nu, n)
    out = np.empty(n)
    lam = om
    for t in range(n):
        e = math.exp(lam) * float(shocks[t])
        out[t] = mu + e
        z = e * e * math.exp(-2.0 * lam) / nu
        u = (nu + 1.0) * z / (1.0 + z) - 1.0
        sgn = 1.0 if e < 0 else (-1.0 if e > 0 else 0.0)
        lam = om + phi * (lam - om) + ka * u + ks * sgn * (u + 1.0)
    return out


def simulate_paths(th: Theta, lam: FloatArray, horizon: int, paths: int,
                   rng: np.random.Generator) -> FloatArray:
    """Sums of ``horizon`` future returns ``(D, paths)`` from ``D`` particles at ``lam (D,)``."""
    st = Step.of(Theta(*(np.asarray(p)[:, None] for p in th)))
    d = lam.size
    ll = np.broadcast_to(lam[:, None], (d, paths)).copy()
    nu = np.broadcast_to(th.nu[:, None], (d, paths))
    total = np.zeros((d, paths))
    for _ in range(horizon):
        z = rng.standard_t(nu)
        e = np.exp(ll) * z
        total += st.mu + e
        zz = z * z * st.inv_nu
        u = st.nu1 * (zz / (1.0 + zz)) - 1.0
        neg = e < 0.0
        ll = st.phi * ll + np.where(neg, st.c_neg, st.c_pos) + np.where(neg, st.k_neg,
                                                                        st.k_pos) * u
    return total
