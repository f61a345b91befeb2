"""Beta-Skew-t-EGARCH log-likelihood over many particles, compiled with JAX (float64).

The same recursion and the same numbers as :func:`._score_driven_lik.loglik`
(the numpy reference; they agree to ~1e-12 on a log-likelihood of thousands),
in ``m = -2 lambda``::

    z_t = A_t exp(m_t),   m_{t+1} = phi m_t + B_t + D_t / (1 + z_t)
    log L = n c + sum m_t / 2 - (nu + 1) / 2 * sum log(1 + z_t)

with ``A_t = (p0 + sgn(-e_t) p1) e_t^2``, ``B_t = b0 + sgn(-e_t) b1``,
``D_t = d0 + sgn(-e_t) d1`` formed inside the step from the day's return
and per-particle constants. One ``jax.lax.scan`` over a ``CHUNK`` of days,
vectorized over the particles, carries ``m``, ``sum m`` and ``sum log(1 +
z)``; a history of any length is a sequence of chunk calls (the last one
masked), so one compilation per particle count serves every window. It is
compiled ahead of time through the persistent compilation cache of
:mod:`._garch_lik` (:func:`._garch_lik.compilation_cache`), in float64
under ``jax.enable_x64`` for these calls only (the rest of the process keeps
JAX's default float32).

XLA's float64 ``log``/``log1p`` on CPU are scalar library calls (~5-10 ns an
element, against ~1 ns for its vectorized ``exp``), so the step does not
take one a day: each factor ``1 + z_t`` is split (bit operations, exact) into
its power of two, summed, and its mantissa in ``[1/2, 1)``, multiplied into a
running product ``P`` that is brought back to ``[1/2, 1)`` every
``LOG_EVERY`` days (only the exponent moves). ``P`` stays within ``[2^-5, 1)``
and cannot overflow; the one ``log`` is taken at the end. A factor that is
infinite or NaN (``exp(m)`` overflowed: a particle whose scale collapsed) is
flagged and gives ``-inf``, as the reference's ``log1p`` does.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

from . import _score_driven_lik as lik
from ._garch_lik import _compiling, compilation_cache

FloatArray = NDArray[np.float64]

#: Days per compiled call (the last call of a history is masked).
CHUNK = 256
#: Days between renormalizations of the running product of ``1 + z`` (divides CHUNK).
LOG_EVERY = 4
#: Scan iterations unrolled per loop trip (each is LOG_EVERY days): more is slower here.
SCAN_UNROLL = 1
MANTISSA = (1 << 52) - 1
HALF_EXPONENT = 1022 << 52


@functools.lru_cache(maxsize=16)
def _chunk_fn(n_particles: int) -> jax.stages.Compiled:
    """Compiled pass over one ``CHUNK`` of returns for ``n_particles`` particles.

    Arguments: returns ``(CHUNK,)``, valid days ``()`` int32, then the
    constants ``mu, phi`` and the coefficients ``A, B, D`` after a fall and
    after a rise (``e_t < 0``, ``e_t >= 0``), and the carry ``m, sum m, P,
    exponent of P, flag`` (each ``(S,)``; the flag 0, or 2 for an infinite or NaN
    factor, as float64).
    Returns the carry.
    """

    def block(carry, inp):  # type: ignore[no-untyped-def]
        m, msum, prod, expo, flag, mu, phi, a_neg, a_pos, b_neg, b_pos, d_neg, d_pos = carry
        xs, valid = inp
        for j in range(LOG_EVERY):
            e = mu - xs[j]  # -e_t: a fall is e > 0 here
            fall = e > 0.0
            a = jnp.where(fall, a_neg, a_pos) * (e * e)
            z = a * jnp.exp(m)
            u = z + 1.0
            nxt = m * phi + jnp.where(fall, b_neg, b_pos) + jnp.where(fall, d_neg, d_pos) / u
            v = valid[j]
            msum = jnp.where(v, msum + m, msum)
            # u's exponent to expo, its mantissa (in [1/2, 1)) to prod: prod never overflows
            ub = jax.lax.bitcast_convert_type(u, jnp.int64)
            expo = jnp.where(v, expo + ((ub >> 52) - 1022).astype(u.dtype), expo)
            um = jax.lax.bitcast_convert_type((ub & MANTISSA) | HALF_EXPONENT, jnp.float64)
            prod = jnp.where(v, prod * um, prod)
            # an infinite or NaN factor: the reference's log-likelihood is then -inf or NaN
            flag = jnp.where(v & ~(u < jnp.inf), 2.0, flag)
            m = jnp.where(v, nxt, m)
        # frexp by hand (prod is a finite normal >= 1/2 unless flagged): exponent out,
        # mantissa back to [1/2, 1); exact, and cheaper than jnp.frexp here
        bits = jax.lax.bitcast_convert_type(prod, jnp.int64)
        expo = expo + ((bits >> 52) - 1022).astype(prod.dtype)
        prod = jax.lax.bitcast_convert_type((bits & MANTISSA) | HALF_EXPONENT, jnp.float64)
        return (m, msum, prod, expo, flag, mu, phi, a_neg, a_pos, b_neg, b_pos, d_neg,
                d_pos), None

    def chunk(x, n_valid, *args):  # type: ignore[no-untyped-def]
        consts, carry = args[:8], args[8:]
        valid = jnp.arange(CHUNK) < n_valid
        xs = (x.reshape(CHUNK // LOG_EVERY, LOG_EVERY), valid.reshape(CHUNK // LOG_EVERY,
                                                                      LOG_EVERY))
        carry = (*carry, *consts)
        (m, msum, prod, expo, flag, *_), _ = jax.lax.scan(block, carry, xs,
                                                          unroll=SCAN_UNROLL)
        return m, msum, prod, expo, flag

    spec = jax.ShapeDtypeStruct
    vec = spec((n_particles,), np.float64)  # type: ignore[no-untyped-call]
    shapes = (spec((CHUNK,), np.float64), spec((), np.int32),  # type: ignore[no-untyped-call]
              *[vec] * 13)
    with _compiling(compilation_cache()), jax.enable_x64(True):
        return jax.jit(chunk).lower(*shapes).compile()


def capacity(n_particles: int) -> int:
    """The compiled particle count serving ``n_particles``: eight sizes per octave.

    ``n`` (at least 64) rounded up to a multiple of ``2^(bit_length(n) - 3)`` (at most 25%
    padding; 1,000 -> 1,024, 4,000 -> 4,096), so that the particle counts of
    tests and settings share a few compilations.
    """
    n = max(int(n_particles), 64)
    step = 1 << (n.bit_length() - 3)
    return -(-n // step) * step


def _padded(x: FloatArray, size: int) -> FloatArray:
    """``x`` ``(S,)`` as float64 ``(size,)``, the padding a copy of its first entry."""
    out = np.empty(size)
    out[: x.size] = x
    out[x.size :] = x[0]
    return out


def loglik(r: FloatArray, th: lik.Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of ``r`` ``(n,)`` at each of ``S`` parameter vectors, and ``lambda_{n+1}``.

    The same contract and numbers as :func:`._score_driven_lik.loglik`:
    ``(ll (S,), lam_next (S,))``, ``ll`` ``-inf`` where it is NaN.
    """
    st = lik.Step.of(th)
    s = st.mu.size
    nu, nu1, ks = st.nu1 - 1.0, st.nu1, th.kappa_star
    p0, p1 = 0.5 * (st.inv_nu_neg + st.inv_nu_pos), 0.5 * (st.inv_nu_neg - st.inv_nu_pos)
    b0, b1 = -2.0 * (th.omega * (1.0 - th.phi) + th.kappa * nu), -2.0 * ks * nu1
    d0, d1 = 2.0 * th.kappa * nu1, 2.0 * ks * nu1
    # the reference's x0 + sgn(-e) x1, formed once per particle (the same roundings; at
    # e = 0 its sgn is 0 and z = 0, where b1 + d1 = 0 makes the step the same to rounding)
    cap = capacity(s)
    consts = tuple(_padded(c, cap) for c in (
        st.mu, st.phi, p1 + p0, -p1 + p0, b1 + b0, -b1 + b0, d1 + d0, -d1 + d0))
    n = r.size
    chunks = max(1, -(-n // CHUNK))
    y = np.zeros(chunks * CHUNK)
    y[:n] = r
    fn = _chunk_fn(cap)
    carry = (_padded(-2.0 * np.asarray(th.omega, dtype=float), cap), np.zeros(cap),
             np.ones(cap), np.zeros(cap), np.zeros(cap))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), jax.enable_x64(True):
        for c in range(chunks):
            valid = np.int32(min(CHUNK, n - c * CHUNK))
            carry = fn(y[c * CHUNK : (c + 1) * CHUNK], valid, *consts, *carry)
        m, msum, prod, expo, flag = (np.asarray(v)[:s] for v in carry)
        pen = np.log(prod) + expo * math.log(2.0)
        ll = n * st.const + 0.5 * msum - st.half_nu1 * pen
    ll = np.where(np.isnan(ll) | (flag == 2.0), -np.inf, ll)
    return ll, -0.5 * m
