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
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from . import _markov_switching_lik as base
from .risk import t_log_norm

FloatArray = NDArray[np.float64]

AUX_ROWS = 3
JAX_CHUNK = 512
UNROLL = 8
#: Box of the unconstrained coordinates (the prior is zero outside): mu, log sd_1, log k,
#: then per state the additive-log-ratio coordinates, then logit p11, logit p22, log(nu-2).
_HEAD_LOW, _HEAD_HIGH = [-1.0, math.log(1e-9), -12.0], [1.0, math.log(10.0), 4.0]
_TAIL_LOW, _TAIL_HIGH = [-20.0, -20.0, -10.0], [20.0, 20.0, 9.0]
ALR_BOUND = 15.0


class Theta(NamedTuple):
    """Constrained parameters, each ``(S,)`` (``gamma_k = 0`` in the symmetric model)."""

    mu: FloatArray
    omega1: FloatArray
    alpha1: FloatArray
    beta1: FloatArray
    gamma1: FloatArray
    omega2: FloatArray
    alpha2: FloatArray
    beta2: FloatArray
    gamma2: FloatArray
    p11: FloatArray
    p22: FloatArray
    nu: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(p[idx] for p in self))

    @property
    def ergodic(self) -> FloatArray:
        out: FloatArray = (1.0 - self.p22) / (2.0 - self.p11 - self.p22)
        return out

    def persistence(self) -> tuple[FloatArray, FloatArray]:
        """``alpha + gamma / 2 + beta`` of each state ``(S,)``."""
        return (self.alpha1 + 0.5 * self.gamma1 + self.beta1,
                self.alpha2 + 0.5 * self.gamma2 + self.beta2)

    def unconditional(self) -> tuple[FloatArray, FloatArray]:
        """Each state's unconditional variance ``omega / (1 - persistence)`` ``(S,)``."""
        q1, q2 = self.persistence()
        return self.omega1 / (1.0 - q1), self.omega2 / (1.0 - q2)


def _alr_inverse(x: FloatArray) -> FloatArray:
    """Additive-log-ratio inverse: coordinates ``(S, k)`` -> composition ``(S, k + 1)``."""
    z = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    out: FloatArray = z / z.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class Model:
    """The MS-GARCH model, symmetric (GARCH) or asymmetric (GJR) in each state.

    The interface :class:`~swarmvar.models.markov_switching.MarkovSwitching`
    runs on (as :mod:`._markov_switching_lik` offers it for the MS-t).
    """

    asymmetric: bool

    @property
    def per_state(self) -> int:
        """ALR coordinates per state: Dirichlet(1,1,1) or, GJR, Dirichlet(1,1,1,1)."""
        return 3 if self.asymmetric else 2

    @property
    def DIM(self) -> int:  # noqa: N802 - the module-level name of the MS-t model
        return 6 + 2 * self.per_state

    AUX_ROWS = AUX_ROWS

    @property
    def PARAMS(self) -> tuple[str, ...]:  # noqa: N802
        state = ("omega{k}", "alpha{k}", "beta{k}") + (("gamma{k}",) if self.asymmetric else ())
        return ("mu", *(n.format(k=k) for k in (1, 2) for n in state), "p11", "p22", "nu")

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        k = 2 * self.per_state
        return (np.array(_HEAD_LOW + [-ALR_BOUND] * k + _TAIL_LOW),
                np.array(_HEAD_HIGH + [ALR_BOUND] * k + _TAIL_HIGH))

    def draws(self, th: Theta) -> dict[str, FloatArray]:
        full = th._asdict()
        return {k: np.asarray(full[k], dtype=float).copy() for k in self.PARAMS}

    def theta(self, **p: float) -> Theta:
        values = {k: float(p[k]) for k in self.PARAMS}
        values.setdefault("gamma1", 0.0)
        values.setdefault("gamma2", 0.0)
        return Theta(*(np.array([values[k]]) for k in Theta._fields))

    def is_valid(self, th: Theta) -> NDArray[np.bool_]:
        v1, v2 = th.unconditional()
        q1, q2 = th.persistence()
        ok = np.isfinite(th.mu) & np.isfinite(v2) & (v1 < v2) & (th.nu > 2) & np.isfinite(th.nu)
        ok &= (th.p11 > 0) & (th.p11 < 1) & (th.p22 > 0) & (th.p22 < 1)
        for om, a, b, g, q in ((th.omega1, th.alpha1, th.beta1, th.gamma1, q1),
                               (th.omega2, th.alpha2, th.beta2, th.gamma2, q2)):
            ok &= (om > 0) & (a >= 0) & (a + g >= 0) & (b >= 0) & (q < 1)
        if not self.asymmetric:
            ok &= (th.gamma1 == 0) & (th.gamma2 == 0)
        result: NDArray[np.bool_] = ok
        return result

    def _split(self, u: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        k = self.per_state
        return u[:, 3 : 3 + k], u[:, 3 + k : 3 + 2 * k], np.column_stack([u[:, :3], u[:, -3:]])

    def _state(self, x: FloatArray,
               var: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(omega, alpha, beta, gamma)`` from ALR coordinates and the unconditional variance."""
        d = _alr_inverse(x)
        if self.asymmetric:  # (alpha/2, (alpha+gamma)/2, beta, 1 - persistence)
            alpha, gamma, beta = 2.0 * d[:, 0], 2.0 * (d[:, 1] - d[:, 0]), d[:, 2]
        else:  # (alpha, beta, 1 - persistence)
            alpha, beta, gamma = d[:, 0], d[:, 1], np.zeros(x.shape[0])
        return var * d[:, -1], alpha, beta, gamma

    def from_unconstrained(self, u: FloatArray) -> Theta:
        """``u`` ``(S, DIM)`` -> :class:`Theta` (clipped to a margin around the box)."""
        low, high = self.bounds()
        u = np.clip(u, low - 1.0, high + 1.0)
        x1, x2, plain = self._split(u)
        sd1 = np.exp(plain[:, 1])
        sd2 = sd1 * np.exp(np.exp(plain[:, 2]))
        s1 = self._state(x1, sd1 * sd1)
        s2 = self._state(x2, sd2 * sd2)
        return Theta(plain[:, 0].copy(), *s1, *s2, special.expit(plain[:, 3]),
                     special.expit(plain[:, 4]), 2.0 + np.exp(plain[:, 5]))

    def to_unconstrained(self, th: Theta) -> FloatArray:
        v1, v2 = th.unconditional()
        cols = [th.mu, 0.5 * np.log(v1), np.log(0.5 * np.log(v2 / v1))]
        for a, b, g, q in ((th.alpha1, th.beta1, th.gamma1, th.persistence()[0]),
                           (th.alpha2, th.beta2, th.gamma2, th.persistence()[1])):
            c = 1.0 - q
            parts = [a / 2, (a + g) / 2, b] if self.asymmetric else [a, b]
            cols += [np.log(x / c) for x in parts]
        cols += [special.logit(th.p11), special.logit(th.p22), np.log(th.nu - 2.0)]
        return np.column_stack(cols)

    def log_prior_u(self, u: FloatArray) -> FloatArray:
        """Log prior density of ``u`` ``(S, DIM)`` with the Jacobians; ``-inf`` outside."""
        x1, x2, plain = self._split(u)
        out = base.log_prior_u(plain)  # mu, sd_1, k, p's, nu as the MS-t's
        const = math.lgamma(self.per_state + 1.0)  # Dirichlet(1, ..., 1) on k + 1 parts
        with np.errstate(divide="ignore"):
            for x in (x1, x2):
                out = out + np.log(_alr_inverse(x)).sum(axis=1) + const
        low, high = self.bounds()
        inside = np.all((u > low) & (u < high), axis=1)
        result: FloatArray = np.where(inside & np.isfinite(out), out, -np.inf)
        return result

    def sample_prior(self, n: int, rng: np.random.Generator) -> Theta:
        plain = base.to_unconstrained(base.sample_prior(n, rng))
        k = self.per_state
        cols = []
        for _ in (1, 2):
            d = np.clip(rng.dirichlet(np.ones(k + 1), n), 1e-6, None)
            cols.append(np.log(d[:, :k] / d[:, k:]))
        u = np.column_stack([plain[:, :3], *cols, plain[:, 3:]])
        low, high = self.bounds()
        return self.from_unconstrained(np.clip(u, low + 1e-9, high - 1e-9))

    def filter_fast(self, r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
        return filter_fast(r, th)

    def filter_step(self, th: Theta, norm: FloatArray, aux: FloatArray,
                    x: float) -> tuple[FloatArray, FloatArray]:
        return filter_step(th, norm, aux, x)

    def state_scales(self, th: Theta, aux: FloatArray) -> tuple[FloatArray, FloatArray]:
        return state_scales(th, aux)

    def simulate(self, p: dict[str, float], n: int,
                 rng: np.random.Generator) -> tuple[FloatArray, NDArray[np.intp]]:
        return simulate(self.theta(**p), n, rng)

    def simulate_aux_paths(self, th: Theta, aux: FloatArray, steps: int, paths: int,
                           rng: np.random.Generator) -> FloatArray:
        return simulate_aux_paths(th, aux, steps, paths, rng)


SYMMETRIC = Model(asymmetric=False)
ASYMMETRIC = Model(asymmetric=True)


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
    dens, nxt = base.mix_states(g1, g2, pred, norm, th.p11, th.p22)
    neg = x < th.mu
    out = np.stack([np.where(np.isfinite(nxt), nxt, pred),
                    th.omega1 + (th.alpha1 + neg * th.gamma1) * e2 + th.beta1 * h1,
                    th.omega2 + (th.alpha2 + neg * th.gamma2) * e2 + th.beta2 * h2])
    return np.where(np.isfinite(dens), dens, -np.inf), out


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(T,)`` per particle (numpy reference) and the next aux."""
    norm = t_log_norm(th.nu)
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
        pred, h1, h2, acc, mu, om1, a1, b1, om2, a2, b2, half, inv_nm2, c0, c1, n1, n2 = carry
        y, m = inp
        e = y - mu
        e2 = e * e
        g1 = -0.5 * jnp.log(h1) - half * jnp.log1p(e2 * inv_nm2 / h1)
        g2 = -0.5 * jnp.log(h2) - half * jnp.log1p(e2 * inv_nm2 / h2)
        nxt, dens = base.jax_mix_states(g1, g2, pred, c0, c1)
        pred = jnp.where(m, nxt, pred)
        h1 = jnp.where(m, om1 + jnp.where(e < 0, n1, a1) * e2 + b1 * h1, h1)
        h2 = jnp.where(m, om2 + jnp.where(e < 0, n2, a2) * e2 + b2 * h2, h2)
        acc = acc + jnp.where(m, dens, 0.0)
        return (pred, h1, h2, acc, mu, om1, a1, b1, om2, a2, b2, half, inv_nm2, c0, c1, n1,
                n2), None

    def chunk(y, n_valid, *carry):  # type: ignore[no-untyped-def]
        mask = jnp.arange(JAX_CHUNK) < n_valid
        (pred, h1, h2, acc, *_), _ = jax.lax.scan(body, carry, (y, mask), unroll=UNROLL)
        return pred, h1, h2, acc

    return base.compile_chunk(chunk, n_particles, 17)


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
                 1.0 / (th.nu - 2.0), 1.0 - th.p22, th.p11 + th.p22 - 1.0,
                 th.alpha1 + th.gamma1, th.alpha2 + th.gamma2]
        args = [np.asarray(c, dtype=f32) for c in carry]
    fn = _chunk_fn(s)
    pred, h1, h2, acc = args[:4]
    rest = args[4:]
    for c in range(chunks):
        valid = np.int32(min(JAX_CHUNK, n - c * JAX_CHUNK))
        pred, h1, h2, acc = fn(y[c * JAX_CHUNK : (c + 1) * JAX_CHUNK], valid, pred, h1, h2, acc,
                               *rest)
    ll = (np.asarray(acc, dtype=float) + n * (t_log_norm(th.nu) - math.log(scale)
                                             - 0.5 * np.log((th.nu - 2.0) / th.nu)))
    aux = np.stack([np.asarray(pred, dtype=float), np.asarray(h1, dtype=float) * s2,
                    np.asarray(h2, dtype=float) * s2])
    ok = np.all(np.isfinite(aux), axis=0) & (aux[1] > 0) & (aux[2] > 0)
    ll = np.where(np.isfinite(ll) & ok, ll, -np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        aux = np.where(ok, aux, np.nan_to_num(start_aux(th), nan=1.0, posinf=1.0))
    aux[0] = np.clip(aux[0], 0.0, 1.0)
    return ll, aux


def simulate(th: Theta, n: int, rng: np.random.Generator) -> tuple[FloatArray,
                                                                     NDArray[np.intp]]:
    """``n`` returns and states at one parameter vector ``th`` (first state ergodic, variances
    unconditional)."""
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
        neg = e < 0
        h1 = col["omega1"] + (col["alpha1"] + neg * col["gamma1"]) * e * e + col["beta1"] * h1
        h2 = col["omega2"] + (col["alpha2"] + neg * col["gamma2"]) * e * e + col["beta2"] * h2
    return out, states
