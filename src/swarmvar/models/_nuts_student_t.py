"""NUTS for the iid location-scale Student-t model, compiled once per data size.

The sampler runs on standardized data ``y = (r - center) / spread`` with the
priors mapped exactly through the same affine change of variables, so that
NUTS starts from unit scales whatever the units of the returns; the draws are
mapped back. The data are padded to a multiple of :data:`PAD` with a mask.

Why not ``numpyro.infer.MCMC``: its ``jit_model_args`` caches the kernel but
re-traces and re-compiles the sampling loop on every ``run`` (~5-10 s here).
So the whole run - NUTS warm-up (step size and diagonal mass matrix
adaptation, numpyro's ``hmc`` kernel) and sampling, vectorized over chains by
``vmap`` - is one ``jax.jit`` function, built by an ``lru_cache``'d factory
keyed by the static shapes: a second fit of similar length pays no
compilation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from numpy.typing import NDArray
from numpyro.infer.hmc import hmc

from ._student_t_lik import MU_PRIOR_SD, NU_RATE, NU_SHAPE, SIGMA_PRIOR_SD

FloatArray = NDArray[np.float64]

#: Data arrays are padded to a multiple of this many observations.
PAD = 512

#: Start of every chain in unconstrained standardized coordinates
#: ``(mu_z, log sigma_z, log(nu - 2))``: near where standardized t data put them.
_INIT = (0.0, float(np.log(0.7)), float(np.log(3.0)))


def _potential_gen(y: jax.Array, mask: jax.Array, n: jax.Array, center: jax.Array,
                   spread: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """Negative log posterior (up to a constant) in unconstrained standardized coordinates."""

    def potential(u: jax.Array) -> jax.Array:
        mu_z, log_sz, log_x = u[0], u[1], u[2]
        sigma_z, x = jnp.exp(log_sz), jnp.exp(log_x)
        nu = x + 2.0
        # mu = center + spread * mu_z etc.: the affine maps carry the priors over exactly
        lp = (-0.5 * ((mu_z + center / spread) * spread / MU_PRIOR_SD) ** 2
              - 0.5 * (sigma_z * spread / SIGMA_PRIOR_SD) ** 2 + log_sz
              + NU_SHAPE * log_x - NU_RATE * x)
        z = (y - mu_z) / sigma_z
        total = jnp.sum(mask * jnp.log1p(z * z / nu))
        const = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * jnp.pi)
        return -(lp + n * (const - log_sz) - 0.5 * (nu + 1.0) * total)

    return potential


@functools.lru_cache(maxsize=4)
def _compiled(padded: int, num_warmup: int, num_samples: int, num_chains: int) -> Callable[
        ..., tuple[jax.Array, jax.Array]]:
    """The jitted sampler for one static configuration (``padded`` fixes the data shape)."""
    del padded  # part of the cache key: one compiled shape per entry
    init_kernel, sample_kernel = hmc(potential_fn_gen=_potential_gen, algo="NUTS")

    def one_chain(key: jax.Array, args: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        state = init_kernel(jnp.asarray(_INIT, dtype=jnp.float32), num_warmup,
                            model_args=args, rng_key=key)

        def step(carry: object, _: None) -> tuple[object, tuple[jax.Array, jax.Array]]:
            nxt = sample_kernel(carry, model_args=args)
            return nxt, (nxt.z, nxt.diverging)

        _, (zs, div) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        return zs[num_warmup:], div[num_warmup:]

    def run(key: jax.Array, y: jax.Array, mask: jax.Array, n: jax.Array, center: jax.Array,
            spread: jax.Array) -> tuple[jax.Array, jax.Array]:
        keys = jax.random.split(key, num_chains)
        args = (y, mask, n, center, spread)
        return jax.vmap(one_chain, in_axes=(0, None))(keys, args)

    return jax.jit(run)


@dataclass(frozen=True)
class NutsDraws:
    """Posterior draws by chain, ``(chains, draws)`` each, in return units."""

    mu: FloatArray
    sigma: FloatArray
    nu: FloatArray
    divergences: int


def run_nuts(
    returns: FloatArray, *, seed: int, num_warmup: int, num_samples: int, num_chains: int
) -> NutsDraws:
    """NUTS posterior of ``(mu, sigma, nu)`` for iid Student-t returns.

    Parameters
    ----------
    returns : array ``(n,)``
        Log returns as fractions.
    seed : int
        Seed of the JAX PRNG key.
    """
    n = returns.size
    center = float(np.median(returns))
    spread = float(np.std(returns))
    if not spread > 0:
        spread = 1e-4
    padded = -(-n // PAD) * PAD
    y = np.zeros(padded, dtype=np.float32)
    y[:n] = (returns - center) / spread
    mask = np.zeros(padded, dtype=np.float32)
    mask[:n] = 1.0
    run = _compiled(padded, num_warmup, num_samples, num_chains)
    zs, div = run(jax.random.PRNGKey(seed), jnp.asarray(y), jnp.asarray(mask), jnp.float32(n),
                  jnp.float32(center), jnp.float32(spread))
    u = np.asarray(zs, dtype=np.float64)  # (chains, draws, 3)
    return NutsDraws(
        mu=center + spread * u[..., 0],
        sigma=spread * np.exp(u[..., 1]),
        nu=2.0 + np.exp(u[..., 2]),
        divergences=int(np.asarray(div).sum()),
    )
