"""Two-state Markov-switching Student-t volatility: priors, Hamilton filter, simulation.

Model (log returns as fractions)::

    r_t = mu + sigma_{s_t} eps_t,   eps_t = sqrt((nu-2)/nu) T_t,  T_t ~ t_nu (unit variance)
    P(s_{t+1} = 1 | s_t = 1) = p11,  P(s_{t+1} = 2 | s_t = 2) = p22,  sigma_1 < sigma_2

(Hamilton 1989; the switching-variance model of Ardia, Bluteau, Boudt, Catania
& Trottier 2018 with constant variance within a state). The first day's state
is drawn from the chain's ergodic law, ``P(s_1 = 1) = (1 - p22) / (2 - p11 -
p22)`` (as statsmodels' ``MarkovRegression`` starts by default).

Parameters are held unconstrained, ``u = (mu, log sigma_1, log k, logit p11,
logit p22, log(nu - 2))`` with ``k = log(sigma_2 / sigma_1) > 0`` (the
ordering that makes the states identifiable). Priors::

    mu ~ N(0, 0.01^2)                log sigma_1 ~ N(log 0.01, 1.5^2)
    k ~ Gamma(2, rate 2)             (sigma_2 / sigma_1 = e^k: median ~2.3)
    p11, p22 ~ Beta(10, 1)           (persistent states, mean 0.91)
    nu - 2 ~ Gamma(2, rate 0.1)      (as GarchT's)

The filter is vectorized over particles: the per-state log densities of all
days at once, then the two-state recursion on the predicted probability of
state 1, ``pi_{t+1} = (1 - p22) + (p11 + p22 - 1) P(s_t = 1 | r_1..r_t)``,
with each day's densities taken relative to the larger of the two (no day
underflows).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from . import _garch_lik
from .risk import t_log_norm

FloatArray = NDArray[np.float64]

PARAMS = ("mu", "sigma1", "sigma2", "p11", "p22", "nu")
DIM = 6
#: Rows of the filter's per-particle state: the next day's ``P(s = 1)``.
AUX_ROWS = 1
MU_SD = 0.01
LOG_SIGMA_MEAN = math.log(0.01)
LOG_SIGMA_SD = 1.5
K_SHAPE, K_RATE = 2.0, 2.0
P_A, P_B = 10.0, 1.0
NU_SHAPE, NU_RATE = 2.0, 0.1
#: Particles filtered together (keeps the (days, particles) arrays within a few MB).
CHUNK = 1024
#: Bounds of the unconstrained box outside which the prior is taken as zero (numerical
#: safety: sigmas of 1e-9..10, k up to e^4, p within 1e-9 of 0 and 1, nu up to 2 + e^9).
U_LOW = np.array([-1.0, math.log(1e-9), -12.0, -20.0, -20.0, -10.0])
U_HIGH = np.array([1.0, math.log(10.0), 4.0, 20.0, 20.0, 9.0])


class Theta(NamedTuple):
    """Constrained parameters, each ``(S,)``."""

    mu: FloatArray
    sigma1: FloatArray
    sigma2: FloatArray
    p11: FloatArray
    p22: FloatArray
    nu: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    def as_dict(self) -> dict[str, FloatArray]:
        return {k: np.asarray(v, dtype=float).copy() for k, v in zip(PARAMS, self, strict=True)}

    @property
    def ergodic(self) -> FloatArray:
        """``P(s = 1)`` under the chain's stationary law ``(S,)``."""
        out: FloatArray = (1.0 - self.p22) / (2.0 - self.p11 - self.p22)
        return out


def theta(mu: float, sigma1: float, sigma2: float, p11: float, p22: float, nu: float) -> Theta:
    """One parameter vector as a :class:`Theta` of length-1 arrays."""
    return Theta(*(np.array([float(v)]) for v in (mu, sigma1, sigma2, p11, p22, nu)))


def is_valid(th: Theta) -> NDArray[np.bool_]:
    """Inside the model's support: sigma_1 < sigma_2 positive, 0 < p < 1, nu > 2."""
    ok: NDArray[np.bool_] = (
        np.isfinite(th.mu) & (th.sigma1 > 0) & (th.sigma2 > th.sigma1) & np.isfinite(th.sigma2)
        & (th.p11 > 0) & (th.p11 < 1) & (th.p22 > 0) & (th.p22 < 1) & (th.nu > 2)
        & np.isfinite(th.nu))
    return ok


def from_unconstrained(u: FloatArray) -> Theta:
    """``u`` ``(S, 6)`` -> :class:`Theta`.

    ``u`` is first clipped to a margin around the prior's box (outside it the
    prior is zero, so those values are never used, but must not overflow).
    """
    u = np.clip(u, U_LOW - 1.0, U_HIGH + 1.0)
    sigma1 = np.exp(u[:, 1])
    return Theta(u[:, 0].copy(), sigma1, sigma1 * np.exp(np.exp(u[:, 2])),
                 special.expit(u[:, 3]), special.expit(u[:, 4]), 2.0 + np.exp(u[:, 5]))


def to_unconstrained(th: Theta) -> FloatArray:
    """Inverse of :func:`from_unconstrained` ``(S, 6)``."""
    return np.column_stack([th.mu, np.log(th.sigma1), np.log(np.log(th.sigma2 / th.sigma1)),
                            special.logit(th.p11), special.logit(th.p22), np.log(th.nu - 2.0)])


def log_prior_u(u: FloatArray) -> FloatArray:
    """Log prior density of ``u`` ``(S, 6)`` (with the Jacobians), ``-inf`` outside the box."""
    mu, ls, lk, a, b, ln = u.T
    k = np.exp(lk)
    out = (-0.5 * (mu / MU_SD) ** 2 - 0.5 * ((ls - LOG_SIGMA_MEAN) / LOG_SIGMA_SD) ** 2
           + (K_SHAPE - 1.0) * lk - K_RATE * k + lk)  # Gamma(k) dk, dk = k d(log k)
    for x in (a, b):  # Beta(P_A, P_B)(p) dp with dp = p (1 - p) dx
        out = out + P_A * special.log_expit(x) + P_B * special.log_expit(-x)
    out = out + NU_SHAPE * ln - NU_RATE * np.exp(ln)  # Gamma(nu - 2) with the log Jacobian
    inside = np.all((u > U_LOW) & (u < U_HIGH), axis=1)
    result: FloatArray = np.where(inside & np.isfinite(out), out, -np.inf)
    return result


def sample_prior(n: int, rng: np.random.Generator) -> Theta:
    """``n`` draws from the prior (redrawn into the box, which holds ~all of its mass)."""
    u = np.empty((n, DIM))
    todo = np.arange(n)
    for _ in range(100):
        m = todo.size
        draw = np.column_stack([
            rng.normal(0.0, MU_SD, m), rng.normal(LOG_SIGMA_MEAN, LOG_SIGMA_SD, m),
            np.log(rng.gamma(K_SHAPE, 1.0 / K_RATE, m)),
            special.logit(rng.beta(P_A, P_B, m)), special.logit(rng.beta(P_A, P_B, m)),
            np.log(rng.gamma(NU_SHAPE, 1.0 / NU_RATE, m))])
        u[todo] = draw
        bad = ~np.isfinite(log_prior_u(draw))
        todo = todo[bad]
        if not todo.size:
            break
    return from_unconstrained(u)


def scales(th: Theta) -> tuple[FloatArray, FloatArray]:
    """The t scale of each state, ``sigma_k sqrt((nu - 2) / nu)`` ``(S,)`` each."""
    f = np.sqrt((th.nu - 2.0) / th.nu)
    return th.sigma1 * f, th.sigma2 * f


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(T,)`` per particle and the next day's ``P(s = 1)``.

    Returns
    -------
    ll : array ``(S,)``
        ``log p(r_1..r_T | theta)`` by the Hamilton filter from the ergodic law.
    pred : array ``(S,)``
        ``P(s_{T+1} = 1 | r_1..r_T, theta)``.
    """
    s = th.mu.size
    ll, pred = np.empty(s), np.empty(s)
    for a in range(0, s, CHUNK):
        part = th.take(np.arange(a, min(a + CHUNK, s)))
        ll[a : a + CHUNK], pred[a : a + CHUNK] = _filter(r, part, part.ergodic)
    return ll, pred


def _filter(r: FloatArray, th: Theta, start: FloatArray) -> tuple[FloatArray, FloatArray]:
    s1, s2 = scales(th)
    half = 0.5 * (th.nu + 1.0)
    e2 = (r[:, None] - th.mu[None, :]) ** 2  # (T, S)
    q1 = e2 / (th.nu * s1 * s1)
    g1 = -half * np.log1p(q1) - np.log(s1)
    q1 *= (s1 / s2) ** 2
    g2 = -half * np.log1p(q1) - np.log(s2)
    top = np.maximum(g1, g2)
    f1 = np.exp(g1 - top)
    f2 = np.exp(g2 - top)
    d = f1 - f2
    c0 = 1.0 - th.p22
    c1 = th.p11 + th.p22 - 1.0
    lik = np.empty_like(f1)
    pred = start.copy()
    tmp = np.empty_like(pred)
    for t in range(r.size):
        lt = lik[t]
        np.multiply(pred, d[t], out=tmp)
        np.add(tmp, f2[t], out=lt)
        np.multiply(pred, f1[t], out=tmp)
        np.divide(tmp, lt, out=tmp)  # P(s_t = 1 | r_1..r_t)
        np.multiply(tmp, c1, out=pred)
        pred += c0
    with np.errstate(divide="ignore"):
        ll = np.log(lik).sum(axis=0) + top.sum(axis=0) + r.size * t_log_norm(th.nu)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    return ll, np.where(np.isfinite(pred), pred, 0.5)


def step(th: Theta, norm: FloatArray, pred: FloatArray,
         x: float) -> tuple[FloatArray, FloatArray]:
    """One filter step: ``log p(x | past)`` per particle and the next ``P(s = 1)`` ``(S,)``.

    ``norm`` is :func:`t_log_norm` of ``th.nu``; ``pred`` the current ``P(s = 1)``.
    """
    s1, s2 = scales(th)
    half = 0.5 * (th.nu + 1.0)
    e2 = (x - th.mu) ** 2
    g1 = -half * np.log1p(e2 / (th.nu * s1 * s1)) - np.log(s1)
    g2 = -half * np.log1p(e2 / (th.nu * s2 * s2)) - np.log(s2)
    dens, nxt = mix_states(g1, g2, pred, norm, th.p11, th.p22)
    return (np.where(np.isfinite(dens), dens, -np.inf),
            np.where(np.isfinite(nxt), nxt, pred))


def mix_states(g1: FloatArray, g2: FloatArray, pred: FloatArray, norm: FloatArray,
               p11: FloatArray, p22: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Hamilton's step from the two states' log densities of a return ``g1, g2`` (less
    ``norm``) and ``pred = P(s = 1)`` ``(S,)``: ``log p(x | past)`` and the next
    ``P(s = 1)``, unguarded (also the MS-GARCH filter's)."""
    top = np.maximum(g1, g2)
    f1, f2 = np.exp(g1 - top), np.exp(g2 - top)
    lik = f2 + pred * (f1 - f2)
    with np.errstate(divide="ignore", invalid="ignore"):
        post = pred * f1 / lik
        dens = np.log(lik) + top + norm
    nxt = (1.0 - p22) + (p11 + p22 - 1.0) * post
    return dens, nxt


def filtered_path(r: FloatArray, p: dict[str, float]) -> FloatArray:
    """``P(s_t = 1 | r_1..r_{t-1})`` ``(T + 1,)`` at one parameter vector (row 0: ergodic)."""
    th = theta(**p)
    out = np.empty(r.size + 1)
    pred = th.ergodic
    norm = t_log_norm(th.nu)
    for t in range(r.size):
        out[t] = pred[0]
        _, pred = step(th, norm, pred, float(r[t]))
    out[r.size] = pred[0]
    return out


def simulate(p: dict[str, float], n: int, rng: np.random.Generator) -> tuple[FloatArray,
                                                                               NDArray[np.intp]]:
    """``n`` returns and their states (0: calm, 1: turbulent) at ``p``, from the ergodic law."""
    th = theta(**p)
    stay = np.array([p["p11"], p["p22"]])
    sd = np.array([p["sigma1"], p["sigma2"]])
    u = rng.random(n)
    states = np.empty(n, dtype=np.intp)
    s = 0 if rng.random() < float(th.ergodic[0]) else 1
    for t in range(n):
        if t:
            s = s if u[t] < stay[s] else 1 - s
        states[t] = s
    nu = p["nu"]
    eps = rng.standard_t(nu, n) * math.sqrt((nu - 2.0) / nu)
    return p["mu"] + sd[states] * eps, states


def simulate_paths(th: Theta, pred: FloatArray, steps: int, paths: int,
                   rng: np.random.Generator) -> FloatArray:
    """Sums of ``steps`` returns ``(P, paths)`` from particles ``th`` ``(P,)``.

    Each path draws its first state from ``pred`` (``P(s = 1)``) and walks the chain.
    """
    n = th.mu.size
    state = rng.random((n, paths)) >= pred[:, None]  # True: state 2
    f = np.sqrt((th.nu - 2.0) / th.nu)
    total = np.zeros((n, paths))
    for t in range(steps):
        if t:
            stay = np.where(state, th.p22[:, None], th.p11[:, None])
            state = np.where(rng.random((n, paths)) < stay, state, ~state)
        sd = np.where(state, th.sigma2[:, None], th.sigma1[:, None]) * f[:, None]
        total += th.mu[:, None] + sd * rng.standard_t(np.broadcast_to(th.nu[:, None],
                                                                      (n, paths)))
    return total


# --- the compiled filter (fit, refit and moves) ----------------------------------------

#: Returns per compiled call, and steps unrolled in its loop.
JAX_CHUNK = 512
UNROLL = 8


@functools.lru_cache(maxsize=16)
def _chunk_fn(n_particles: int) -> Any:
    """Compiled Hamilton filter over ``JAX_CHUNK`` returns, float32, for ``n_particles``.

    Carries ``(pred, sum log p)``; works in returns scaled by their standard
    deviation. Keyed by the particle count only (the last chunk is masked), so
    any history length reuses it; compiled through GarchT's persistent cache
    helpers (:func:`._garch_lik.compilation_cache`).
    """
    import jax
    import jax.numpy as jnp

    def body(carry, inp):  # type: ignore[no-untyped-def]
        pred, acc, mu, inv1, ratio2, half, ls1, ls2, c0, c1 = carry
        y, m = inp
        e = y - mu
        q1 = e * e * inv1
        g1 = -half * jnp.log1p(q1) - ls1
        g2 = -half * jnp.log1p(q1 * ratio2) - ls2
        nxt, dens = jax_mix_states(g1, g2, pred, c0, c1)
        pred = jnp.where(m, nxt, pred)
        acc = acc + jnp.where(m, dens, 0.0)
        return (pred, acc, mu, inv1, ratio2, half, ls1, ls2, c0, c1), None

    def chunk(y, n_valid, pred, acc, mu, inv1, ratio2, half, ls1, ls2, c0, c1):  # type: ignore[no-untyped-def]
        mask = jnp.arange(JAX_CHUNK) < n_valid
        carry = (pred, acc, mu, inv1, ratio2, half, ls1, ls2, c0, c1)
        (pred, acc, *_), _ = jax.lax.scan(body, carry, (y, mask),  # type: ignore[arg-type]
                                          unroll=UNROLL)
        return pred, acc

    return compile_chunk(chunk, n_particles, 10)


def jax_mix_states(g1: Any, g2: Any, pred: Any, c0: Any, c1: Any) -> tuple[Any, Any]:
    """:func:`mix_states` traced in a compiled filter (``c0 = 1 - p22``, ``c1 = p11 + p22 -
    1``): the next ``P(s = 1)`` and ``log p(x | past)`` less the t's constant."""
    import jax.numpy as jnp

    top = jnp.maximum(g1, g2)
    f1 = jnp.exp(g1 - top)
    f2 = jnp.exp(g2 - top)
    lik = f2 + pred * (f1 - f2)
    return c0 + c1 * (pred * f1 / lik), jnp.log(lik) + top


def compile_chunk(chunk: Any, n_particles: int, vectors: int) -> Any:
    """``chunk(y (JAX_CHUNK,), n_valid, *vectors (n_particles,))`` compiled for float32
    through GarchT's persistent cache helpers (also the MS-GARCH filter's)."""
    import jax

    spec = jax.ShapeDtypeStruct
    vec = spec((n_particles,), np.float32)  # type: ignore[no-untyped-call]
    shapes = (spec((JAX_CHUNK,), np.float32), spec((), np.int32),  # type: ignore[no-untyped-call]
              *[vec] * vectors)
    with _garch_lik._compiling(_garch_lik.compilation_cache()):  # noqa: SLF001
        return jax.jit(chunk).lower(*shapes).compile()


def loglik_fast(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """:func:`loglik` by the compiled float32 filter (~1e-3 absolute on thousands of days)."""
    n, s = r.size, th.mu.size
    scale = float(np.std(r)) or 1.0
    chunks = -(-n // JAX_CHUNK)
    y = np.zeros(chunks * JAX_CHUNK, dtype=np.float32)
    y[:n] = r / scale
    s1, s2 = scales(th)
    s1, s2 = s1 / scale, s2 / scale
    f32 = np.float32
    args = [(th.mu / scale).astype(f32), (1.0 / (th.nu * s1 * s1)).astype(f32),
            ((s1 / s2) ** 2).astype(f32), (0.5 * (th.nu + 1.0)).astype(f32),
            np.log(s1).astype(f32), np.log(s2).astype(f32), (1.0 - th.p22).astype(f32),
            (th.p11 + th.p22 - 1.0).astype(f32)]
    pred = th.ergodic.astype(f32)
    acc = np.zeros(s, dtype=f32)
    fn = _chunk_fn(s)
    for c in range(chunks):
        valid = np.int32(min(JAX_CHUNK, n - c * JAX_CHUNK))
        pred, acc = fn(y[c * JAX_CHUNK : (c + 1) * JAX_CHUNK], valid, pred, acc, *args)
    ll = np.asarray(acc, dtype=float) + n * (t_log_norm(th.nu) - math.log(scale))
    p = np.asarray(pred, dtype=float)
    return np.where(np.isfinite(ll), ll, -np.inf), np.where(np.isfinite(p), np.clip(p, 0, 1), 0.5)


# --- the agent's interface (shared with the MS-GARCH model) -----------------------------


def draws(th: Theta) -> dict[str, FloatArray]:
    """The parameters by name ``(S,)`` each (copies)."""
    return th.as_dict()


def filter_fast(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """``(log-likelihood (S,), filter state (1, S))`` by the compiled filter."""
    ll, pred = loglik_fast(r, th)
    return ll, pred[None, :]


def filter_step(th: Theta, norm: FloatArray, aux: FloatArray,
                x: float) -> tuple[FloatArray, FloatArray]:
    """:func:`step` on the filter state ``aux`` ``(1, S)``."""
    dens, pred = step(th, norm, aux[0], x)
    return dens, pred[None, :]


def state_scales(th: Theta, aux: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The two states' t scales ``(S,)`` (constant: ``aux`` is not needed)."""
    return scales(th)


def simulate_aux_paths(th: Theta, aux: FloatArray, steps: int, paths: int,
                       rng: np.random.Generator) -> FloatArray:
    """:func:`simulate_paths` from the filter state ``aux`` ``(1, P)``."""
    return simulate_paths(th, aux[0], steps, paths, rng)
