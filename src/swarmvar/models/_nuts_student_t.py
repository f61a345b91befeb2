"""NUTS for the iid location-scale Student-t model, compiled once per data size.

The sampler runs on standardized data ``y = (r - center) / spread`` with the
priors mapped exactly through the same affine change of variables, so that
NUTS starts from unit scales whatever the units of the returns; the draws are
mapped back. The data are padded to a multiple of :data:`PAD` with a mask, and
the ``numpyro.infer.MCMC`` object is built by an ``lru_cache``'d factory keyed
by the static shapes, so a second fit of similar length reuses the compiled
sampler (``jit_model_args=True``) instead of paying JAX compilation again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpy.typing import NDArray
from numpyro.infer import MCMC, NUTS, init_to_value

FloatArray = NDArray[np.float64]

#: Data arrays are padded to a multiple of this many observations.
PAD = 512

#: Priors on the daily-return scale (fractions). See docs/models-student-t-evt.md.
MU_PRIOR_SD = 0.01
SIGMA_PRIOR_SD = 0.05
NU_SHAPE, NU_RATE = 2.0, 0.1  # nu - 2 ~ Gamma(2, rate 0.1): mean 20, mode 10


def _model(y: jax.Array, mask: jax.Array, n: jax.Array, center: jax.Array,
           spread: jax.Array) -> None:
    # mu = center + spread * mu_z etc.; the affine maps carry the priors over exactly.
    mu_z = numpyro.sample("mu_z", dist.Normal(-center / spread, MU_PRIOR_SD / spread))
    sigma_z = numpyro.sample("sigma_z", dist.HalfNormal(SIGMA_PRIOR_SD / spread))
    nu_m2 = numpyro.sample("nu_m2", dist.Gamma(NU_SHAPE, NU_RATE))
    nu = nu_m2 + 2.0
    z = (y - mu_z) / sigma_z
    total = jnp.sum(mask * jnp.log1p(z * z / nu))
    const = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * jnp.pi)
    numpyro.factor("loglik", n * (const - jnp.log(sigma_z)) - 0.5 * (nu + 1.0) * total)


@functools.lru_cache(maxsize=4)
def _sampler(padded: int, num_warmup: int, num_samples: int, num_chains: int) -> MCMC:
    # ``padded`` is part of the key so that each cache entry holds one compiled shape.
    del padded
    kernel = NUTS(
        _model,
        init_strategy=init_to_value(values={"mu_z": 0.0, "sigma_z": 0.7, "nu_m2": 3.0}),
    )
    return MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=False,
        jit_model_args=True,
    )


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
    mcmc = _sampler(padded, num_warmup, num_samples, num_chains)
    mcmc.run(
        jax.random.PRNGKey(seed),
        jnp.asarray(y),
        jnp.asarray(mask),
        jnp.float32(n),
        jnp.float32(center),
        jnp.float32(spread),
        extra_fields=("diverging",),
    )
    draws = {k: np.asarray(v, dtype=np.float64) for k, v in
             mcmc.get_samples(group_by_chain=True).items()}
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return NutsDraws(
        mu=center + spread * draws["mu_z"],
        sigma=spread * draws["sigma_z"],
        nu=2.0 + draws["nu_m2"],
        divergences=divergences,
    )
