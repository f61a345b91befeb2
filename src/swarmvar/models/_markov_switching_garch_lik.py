"""Two-state Markov-switching GARCH(1,1)-t (Haas, Mittnik & Paolella 2004): priors and filter.

Model (log returns as fractions), ``e_t = r_t - mu``::

    r_t = mu + sqrt(h_{s_t, t}) eps_t,   eps_t unit-variance Student-t(nu)
    h_{k, t} = omega_k + alpha_k e_{t-1}^2 + beta_k h_{k, t-1}     (k = 1, 2, both every day)
    s_t a two-state Markov chain staying with probabilities p11, p22

Each state keeps its own GARCH variance, driven by the common returns, so the
variances do not depend on the state path and Hamilton's filter is exact
(Haas et al. 2004, the specification Ardia et al. 2018 find competitive). The
variances start at their unconditional values ``v_k = omega_k / (1 - alpha_k -
beta_k)``; the states are ordered ``v_1 < v_2``.

Unconstrained ``u = (mu, log sd_1, log k, a_1, b_1, a_2, b_2, logit p11, logit
p22, log(nu - 2))``: ``sd_k = sqrt(v_k)``, ``sd_2 = sd_1 e^k``, and ``(alpha_k,
beta_k, 1 - alpha_k - beta_k)`` is the additive-log-ratio inverse of ``(a_k,
b_k)``. Priors: as :mod:`._markov_switching_lik` for ``mu, sd_1, k, p, nu``
and Dirichlet(1, 1, 1) on each state's ``(alpha, beta, 1 - alpha - beta)``
(GarchT's, uniform on the stationary triangle).

The filter's auxiliary state per particle is ``(pi, h_1, h_2)`` of the next
day ``(3, S)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from . import _garch_lik
from . import _markov_switching_lik as base

FloatArray = NDArray[np.float64]

PARAMS = ("mu", "omega1", "alpha1", "beta1", "omega2", "alpha2", "beta2", "p11", "p22", "nu")
DIM = 10
AUX_ROWS = 3
U_LOW = np.array([-1.0, math.log(1e-9), -12.0, -15.0, -15.0, -15.0, -15.0, -20.0, -20.0, -10.0])
U_HIGH = np.array([1.0, math.log(10.0), 4.0, 15.0, 15.0, 15.0, 15.0, 20.0, 20.0, 9.0])
JAX_CHUNK = 512
UNROLL = 8


class Theta(NamedTuple):
    """Constrained parameters, each ``(S,)``."""

    mu: FloatArray
    omega1: FloatArray
    alpha1: FloatArray
    beta1: FloatArray
    omega2: FloatArray
    alpha2: FloatArray
    beta2: FloatArray
    p11: FloatArray
    p22: FloatArray
    nu: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    def as_dict(self) -> dict[str, FloatArray]:
        return {k: np.asarray(v, dtype=float).copy() for k, v in zip(PARAMS, self, strict=True)}

    @property
    def ergodic(self) -> FloatArray:
        out: FloatArray = (1.0 - self.p22) / (2.0 - self.p11 - self.p22)
        return out

    def unconditional(self) -> tuple[FloatArray, FloatArray]:
        """Each state's unconditional variance ``omega / (1 - alpha - beta)`` ``(S,)``."""
        return (self.omega1 / (1.0 - self.alpha1 - self.beta1),
                self.omega2 / (1.0 - self.alpha2 - self.beta2))


def theta(**p: float) -> Theta:
    """One parameter vector (keywords :data:`PARAMS`) as length-1 arrays."""
    return Theta(*(np.array([float(p[k])]) for k in PARAMS))


def is_valid(th: Theta) -> NDArray[np.bool_]:
    v1, v2 = th.unconditional()
    ok: NDArray[np.bool_] = (
        np.isfinite(th.mu) & (th.omega1 > 0) & (th.omega2 > 0) & (th.alpha1 >= 0)
        & (th.alpha2 >= 0) & (th.beta1 >= 0) & (th.beta2 >= 0)
        & (th.alpha1 + th.beta1 < 1) & (th.alpha2 + th.beta2 < 1) & (v1 < v2)
        & (th.p11 > 0) & (th.p11 < 1) & (th.p22 > 0) & (th.p22 < 1) & (th.nu > 2)
        & np.isfinite(th.nu) & np.isfinite(v2))
    return ok


def _alr_inverse(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    top = np.maximum(np.maximum(a, b), 0.0)
    ea, eb, ec = np.exp(a - top), np.exp(b - top), np.exp(-top)
    total = ea + eb + ec
    return ea / total, eb / total, ec / total


def from_unconstrained(u: FloatArray) -> Theta:
    """``u`` ``(S, 10)`` -> :class:`Theta` (clipped to a margin around the prior's box)."""
    u = np.clip(u, U_LOW - 1.0, U_HIGH + 1.0)
    sd1 = np.exp(u[:, 1])
    sd2 = sd1 * np.exp(np.exp(u[:, 2]))
    a1, b1, c1 = _alr_inverse(u[:, 3], u[:, 4])
    a2, b2, c2 = _alr_inverse(u[:, 5], u[:, 6])
    return Theta(u[:, 0].copy(), sd1 * sd1 * c1, a1, b1, sd2 * sd2 * c2, a2, b2,
                 special.expit(u[:, 7]), special.expit(u[:, 8]), 2.0 + np.exp(u[:, 9]))


def to_unconstrained(th: Theta) -> FloatArray:
    v1, v2 = th.unconditional()
    c1 = 1.0 - th.alpha1 - th.beta1
    c2 = 1.0 - th.alpha2 - th.beta2
    return np.column_stack([
        th.mu, 0.5 * np.log(v1), np.log(0.5 * np.log(v2 / v1)),
        np.log(th.alpha1 / c1), np.log(th.beta1 / c1), np.log(th.alpha2 / c2),
        np.log(th.beta2 / c2), special.logit(th.p11), special.logit(th.p22),
        np.log(th.nu - 2.0)])


def log_prior_u(u: FloatArray) -> FloatArray:
    """Log prior density of ``u`` ``(S, 10)`` with the Jacobians; ``-inf`` outside the box."""
    plain = base.log_prior_u(np.column_stack([u[:, :3], u[:, 7:]]))  # mu, sd1, k, p's, nu
    inside = np.all((u > U_LOW) & (u < U_HIGH), axis=1)
    with np.errstate(divide="ignore"):
        out = plain
        for j in (3, 5):  # Dirichlet(1,1,1) in ALR coordinates: log a + log b + log c (+ log 2)
            a, b, c = _alr_inverse(u[:, j], u[:, j + 1])
            out = out + np.log(a) + np.log(b) + np.log(c) + math.log(2.0)
    result: FloatArray = np.where(inside & np.isfinite(out), out, -np.inf)
    return result


def sample_prior(n: int, rng: np.random.Generator) -> Theta:
    plain = base.to_unconstrained(base.sample_prior(n, rng))
    u = np.empty((n, DIM))
    u[:, :3], u[:, 7:] = plain[:, :3], plain[:, 3:]
    for j in (3, 5):
        d = rng.dirichlet(np.ones(3), n)
        d = np.clip(d, 1e-6, None)
        u[:, j], u[:, j + 1] = np.log(d[:, 0] / d[:, 2]), np.log(d[:, 1] / d[:, 2])
    u = np.clip(u, U_LOW + 1e-9, U_HIGH - 1e-9)
    return from_unconstrained(u)


def state_scales(th: Theta, aux: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The two states' t scales ``sqrt(h_k (nu - 2) / nu)`` from ``aux`` ``(..., 3, S)``."""
    f = (th.nu - 2.0) / th.nu
    return np.sqrt(aux[..., 1, :] * f), np.sqrt(aux[..., 2, :] * f)


def start_aux(th: Theta) -> FloatArray:
    v1, v2 = th.unconditional()
    return np.stack([th.ergodic, v1, v2])


def filter_step(th: Theta, norm: FloatArray, aux: FloatArray,
                x: float) -> tuple[FloatArray, FloatArray]:
    """``log p(x | past)`` per particle and the next ``(pi, h_1, h_2)`` ``(3, S)``."""
    pred, h1, h2 = aux
    e2 = (x - th.mu) ** 2
    half = 0.5 * (th.nu + 1.0)
    nm2 = th.nu - 2.0
    g1 = -0.5 * np.log(h1 * nm2 / th.nu) - half * np.log1p(e2 / (nm2 * h1))
    g2 = -0.5 * np.log(h2 * nm2 / th.nu) - half * np.log1p(e2 / (nm2 * h2))
    top = np.maximum(g1, g2)
    f1, f2 = np.exp(g1 - top), np.exp(g2 - top)
    lik = f2 + pred * (f1 - f2)
    with np.errstate(divide="ignore", invalid="ignore"):
        post = pred * f1 / lik
        dens = np.log(lik) + top + norm
    nxt = (1.0 - th.p22) + (th.p11 + th.p22 - 1.0) * post
    out = np.stack([np.where(np.isfinite(nxt), nxt, pred),
                    th.omega1 + th.alpha1 * e2 + th.beta1 * h1,
                    th.omega2 + th.alpha2 * e2 + th.beta2 * h2])
    return np.where(np.isfinite(dens), dens, -np.inf), out


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(T,)`` per particle (numpy reference) and the next aux."""
    norm = base.t_log_norm(th.nu)
    aux = start_aux(th)
    ll = np.zeros(th.mu.size)
    for x in r.tolist():
        dens, aux = filter_step(th, norm, aux, x)
        ll = ll + dens
    return np.where(np.isfinite(ll), ll, -np.inf), aux


@functools.lru_cache(maxsize=16)
def _chunk_fn(n_particles: int) -> Any:
    """Compiled filter over ``JAX_CHUNK`` scaled returns, float32 (as the MS-t one)."""
    import jax
    import jax.numpy as jnp

    def body(carry, inp):  # type: ignore[no-untyped-def]
        pred, h1, h2, acc, mu, om1, a1, b1, om2, a2, b2, half, inv_nm2, c0, c1 = carry
        y, m = inp
        e = y - mu
        e2 = e * e
        g1 = -0.5 * jnp.log(h1) - half * jnp.log1p(e2 * inv_nm2 / h1)
        g2 = -0.5 * jnp.log(h2) - half * jnp.log1p(e2 * inv_nm2 / h2)
        top = jnp.maximum(g1, g2)
        f1 = jnp.exp(g1 - top)
        f2 = jnp.exp(g2 - top)
        lik = f2 + pred * (f1 - f2)
        nxt = c0 + c1 * (pred * f1 / lik)
        pred = jnp.where(m, nxt, pred)
        h1 = jnp.where(m, om1 + a1 * e2 + b1 * h1, h1)
        h2 = jnp.where(m, om2 + a2 * e2 + b2 * h2, h2)
        acc = acc + jnp.where(m, jnp.log(lik) + top, 0.0)
        return (pred, h1, h2, acc, mu, om1, a1, b1, om2, a2, b2, half, inv_nm2, c0, c1), None

    def chunk(y, n_valid, *carry):  # type: ignore[no-untyped-def]
        mask = jnp.arange(JAX_CHUNK) < n_valid
        (pred, h1, h2, acc, *_), _ = jax.lax.scan(body, carry, (y, mask), unroll=UNROLL)
        return pred, h1, h2, acc

    spec = jax.ShapeDtypeStruct
    vec = spec((n_particles,), np.float32)  # type: ignore[no-untyped-call]
    shapes = (spec((JAX_CHUNK,), np.float32), spec((), np.int32),  # type: ignore[no-untyped-call]
              *[vec] * 15)
    with _garch_lik._compiling(_garch_lik.compilation_cache()):  # noqa: SLF001
        return jax.jit(chunk).lower(*shapes).compile()


def filter_fast(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """:func:`loglik` by the compiled float32 filter: ``(ll (S,), aux (3, S))``."""
    n, s = r.size, th.mu.size
    scale = float(np.std(r)) or 1.0
    s2 = scale * scale
    chunks = -(-n // JAX_CHUNK)
    y = np.zeros(chunks * JAX_CHUNK, dtype=np.float32)
    y[:n] = r / scale
    f32 = np.float32
    v1, v2 = th.unconditional()
    with np.errstate(over="ignore", invalid="ignore"):
        carry = [th.ergodic, v1 / s2, v2 / s2, np.zeros(s), th.mu / scale, th.omega1 / s2,
                 th.alpha1, th.beta1, th.omega2 / s2, th.alpha2, th.beta2, 0.5 * (th.nu + 1.0),
                 1.0 / (th.nu - 2.0), 1.0 - th.p22, th.p11 + th.p22 - 1.0]
        args = [np.asarray(c, dtype=f32) for c in carry]
    fn = _chunk_fn(s)
    pred, h1, h2, acc = args[:4]
    rest = args[4:]
    for c in range(chunks):
        valid = np.int32(min(JAX_CHUNK, n - c * JAX_CHUNK))
        pred, h1, h2, acc = fn(y[c * JAX_CHUNK : (c + 1) * JAX_CHUNK], valid, pred, h1, h2, acc,
                               *rest)
    ll = (np.asarray(acc, dtype=float) + n * (base.t_log_norm(th.nu) - math.log(scale)
                                             - 0.5 * np.log((th.nu - 2.0) / th.nu)))
    aux = np.stack([np.asarray(pred, dtype=float), np.asarray(h1, dtype=float) * s2,
                    np.asarray(h2, dtype=float) * s2])
    ok = np.all(np.isfinite(aux), axis=0) & (aux[1] > 0) & (aux[2] > 0)
    ll = np.where(np.isfinite(ll) & ok, ll, -np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        aux = np.where(ok, aux, np.nan_to_num(start_aux(th), nan=1.0, posinf=1.0))
    aux[0] = np.clip(aux[0], 0.0, 1.0)
    return ll, aux


def simulate(p: dict[str, float], n: int, rng: np.random.Generator) -> tuple[FloatArray,
                                                                               NDArray[np.intp]]:
    """``n`` returns and states at ``p`` (first state ergodic, variances unconditional)."""
    th = theta(**p)
    paths, states = _walk(th, start_aux(th), n, 1, rng)
    return paths[0, 0], states[0]


def simulate_aux_paths(th: Theta, aux: FloatArray, steps: int, paths: int,
                       rng: np.random.Generator) -> FloatArray:
    """Sums of ``steps`` returns ``(P, paths)`` from particles ``th`` at ``aux`` ``(3, P)``."""
    out, _ = _walk(th, aux, steps, paths, rng)
    result: FloatArray = out.sum(axis=2)
    return result


def _walk(th: Theta, aux: FloatArray, steps: int, paths: int,
          rng: np.random.Generator) -> tuple[FloatArray, NDArray[np.intp]]:
    n = th.mu.size
    col = {k: v[:, None] for k, v in th._asdict().items()}
    state = rng.random((n, paths)) >= aux[0][:, None]  # True: state 2
    h1 = np.repeat(aux[1][:, None], paths, axis=1)
    h2 = np.repeat(aux[2][:, None], paths, axis=1)
    f = np.sqrt((col["nu"] - 2.0) / col["nu"])
    out = np.empty((n, paths, steps))
    states = np.empty((n, steps), dtype=np.intp)
    for t in range(steps):
        if t:
            stay = np.where(state, col["p22"], col["p11"])
            state = np.where(rng.random((n, paths)) < stay, state, ~state)
        eps = f * rng.standard_t(np.broadcast_to(col["nu"], (n, paths)))
        e = np.sqrt(np.where(state, h2, h1)) * eps
        out[:, :, t] = col["mu"] + e
        states[:, t] = state[:, 0]
        h1 = col["omega1"] + col["alpha1"] * e * e + col["beta1"] * h1
        h2 = col["omega2"] + col["alpha2"] * e * e + col["beta2"] * h2
    return out, states
