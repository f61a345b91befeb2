"""GARCH(1,1)-t and GJR-GARCH(1,1)-t log-likelihoods for many parameter vectors, and priors.

Model (returns as fractions)::

    r_t = mu + sqrt(h_t) * eps_t,      eps_t ~ t_nu scaled to unit variance
    h_t = omega + (alpha + gamma * 1[e_{t-1} < 0]) * e_{t-1}^2 + beta * h_{t-1},  e = r - mu
    h_1 = omega + (alpha + gamma / 2 + beta) * b(mu)

``gamma = 0`` is GARCH(1,1); ``gamma`` free is GJR-GARCH (Glosten, Jagannathan
& Runkle 1993), the leverage effect. Positive variances need ``alpha >= 0``
and ``alpha + gamma >= 0``; with symmetric innovations the variance is
stationary when ``alpha + gamma / 2 + beta < 1``.

``b(mu)`` is arch's backcast: the exponentially weighted (0.94^i, first 75
observations) mean of ``(r_i - mu)^2``. The unit-variance t density is

    log f(e | h, nu) = lgamma((nu+1)/2) - lgamma(nu/2) - log(pi (nu-2))/2
                       - log(h)/2 - (nu+1)/2 * log(1 + e^2 / ((nu-2) h)).

The full-history likelihood runs in JAX in float32 (``lax.scan`` over
blocks of ``BLOCK`` steps, vectorized over particles; float32 is 4x faster
here and its rounding, ~1e-3 on a log-likelihood of thousands, is far below
what moves an acceptance ratio). Inside a block the logs are taken once of a
running product rather than once per step: the work is in scaled units
(returns divided by their standard deviation) so that the products stay far
from under/overflow. Histories are padded to a few
capacities per octave with a mask, so a growing history recompiles rarely.
The per-tick step is plain numpy (no JAX dispatch per tick).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray
from scipy import special

# At import, not at first use: forked backtest workers then find it loaded (~0.1 s each)
from scipy.signal import lfilter

FloatArray = NDArray[np.float64]

BLOCK = 8
CHUNK = 512
#: Blocks per iteration of the compiled loop: 2 makes a pass ~25% cheaper (less loop
#: overhead per step; the same operations, bit for bit) for ~0.1 s more compile time.
SCAN_UNROLL = 2
BACKCAST_LAGS = 75
BACKCAST_DECAY = 0.94
#: Floors and caps inside the float32 block products (scaled units, data variance = 1):
#: they keep 8-step products finite and bind only for absurd parameter values.
H_FLOOR = 1e-4
Q_CAP = 1e4

#: Prior hyper-parameters (fractions, daily scale); see docs/models-garch.md.
MU_SD = 0.01
LOG_OMEGA_MEAN = math.log(1e-6)
LOG_OMEGA_SD = 2.5
NU_SHAPE = 2.0
NU_RATE = 0.1

PARAMS = ("mu", "omega", "alpha", "beta", "nu")
#: The GJR model's parameters (``gamma``: extra response to negative shocks).
GJR_PARAMS = (*PARAMS, "gamma")

_LOG_PRIOR_CONST = (
    -math.log(MU_SD) - math.log(LOG_OMEGA_SD) - math.log(2 * math.pi)
    + NU_SHAPE * math.log(NU_RATE) - math.lgamma(NU_SHAPE)
)


class Theta(NamedTuple):
    """(GJR-)GARCH-t parameters, one entry per particle, each ``(S,)``.

    ``gamma`` is 0 for the symmetric model.
    """

    mu: FloatArray
    omega: FloatArray
    alpha: FloatArray
    beta: FloatArray
    nu: FloatArray
    gamma: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Theta:
        return Theta(*(np.asarray(p)[idx] for p in self))

    def as_dict(self, asymmetric: bool = True) -> dict[str, FloatArray]:
        """By name; ``gamma`` only for the asymmetric model."""
        names = GJR_PARAMS if asymmetric else PARAMS
        return {k: np.asarray(v, dtype=float).copy() for k, v in zip(names, self, strict=False)}

    @property
    def alpha_neg(self) -> FloatArray:
        """Response to a negative shock, ``alpha + gamma`` (>= 0)."""
        result: FloatArray = self.alpha + self.gamma
        return result

    @property
    def persistence(self) -> FloatArray:
        """``alpha + gamma / 2 + beta`` (< 1: stationary)."""
        result: FloatArray = self.alpha + 0.5 * self.gamma + self.beta
        return result


def theta(mu: float, omega: float, alpha: float, beta: float, nu: float,
          gamma: float = 0.0) -> Theta:
    """One parameter vector as a one-particle :class:`Theta`."""
    return Theta(*(np.array([float(v)]) for v in (mu, omega, alpha, beta, nu, gamma)))


def dim(asymmetric: bool) -> int:
    """Number of unconstrained coordinates: 5 (GARCH) or 6 (GJR)."""
    return 6 if asymmetric else 5


# --- transforms and prior --------------------------------------------------


def to_unconstrained(th: Theta, asymmetric: bool = False) -> FloatArray:
    """``(S, 5)`` or ``(S, 6)`` unconstrained coordinates.

    With ``a = alpha + gamma / 2`` (the mean ARCH response) and persistence
    ``p = a + beta``: ``mu, log omega, logit p, logit(a / p), log(nu - 2)``,
    and for the GJR model ``logit(t)`` with ``t = (alpha + gamma) / (2 a)``,
    the share of the ARCH response carried by negative shocks (``t = 1/2``:
    symmetric).
    """
    a = th.alpha + 0.5 * th.gamma
    p = a + th.beta
    cols = [th.mu, np.log(th.omega), _logit(p), _logit(a / p), np.log(th.nu - 2.0)]
    if asymmetric:
        cols.append(_logit(th.alpha_neg / (2.0 * a)))
    return np.stack(cols, axis=1)


def from_unconstrained(u: FloatArray) -> Theta:
    """Inverse of :func:`to_unconstrained` (the column count says which model)."""
    p = special.expit(u[:, 2])
    s = special.expit(u[:, 3])
    a = p * s
    if u.shape[1] == 6:
        t = special.expit(u[:, 5])
        alpha = 2.0 * a * (1.0 - t)
        gamma = 2.0 * a * (2.0 * t - 1.0)
    else:
        alpha, gamma = a, np.zeros_like(a)
    return Theta(u[:, 0].copy(), np.exp(u[:, 1]), alpha, p * (1.0 - s), 2.0 + np.exp(u[:, 4]),
                 gamma)


def _logit(x: FloatArray) -> FloatArray:
    return np.log(x) - np.log1p(-x)


def log_prior_u(u: FloatArray) -> FloatArray:
    """Log prior density in the unconstrained coordinates (Jacobians included), ``(S,)``.

    mu ~ N(0, 0.01^2); log omega ~ N(log 1e-6, 2.5^2); nu - 2 ~ Gamma(2, rate 0.1).
    GARCH: (alpha, beta, 1-alpha-beta) ~ Dirichlet(1, 1, 1), uniform on the
    stationary triangle. GJR (6 columns): (alpha/2, (alpha+gamma)/2, beta,
    1 - alpha - gamma/2 - beta) ~ Dirichlet(1, 1, 1, 1), uniform on the
    stationary region with positive variances, and exchangeable in the
    responses to positive and negative shocks (no prior lean to leverage).
    """
    mu, lw, x1, x2, ln = u[:, :5].T
    lp = -0.5 * (mu / MU_SD) ** 2 - 0.5 * ((lw - LOG_OMEGA_MEAN) / LOG_OMEGA_SD) ** 2
    log_p = -np.logaddexp(0.0, -x1)
    log_1mp = -np.logaddexp(0.0, x1)
    log_s = -np.logaddexp(0.0, -x2)
    log_1ms = -np.logaddexp(0.0, x2)
    if u.shape[1] == 6:
        # Dirichlet(1,1,1,1) density 6 in (alpha/2, (alpha+gamma)/2, beta); (p, s, t) -> those
        # has |J| = p^2 s, and each logit its own x (1 - x).
        x3 = u[:, 5]
        lp = lp + math.log(6.0) + 3.0 * log_p + log_1mp + 2.0 * log_s + log_1ms
        lp = lp - np.logaddexp(0.0, -x3) - np.logaddexp(0.0, x3)
    else:
        # Dirichlet(1,1,1) density is 2 on the triangle; (p, s) -> (alpha, beta) has |J| = p.
        lp = lp + math.log(2.0) + 2.0 * log_p + log_1mp + log_s + log_1ms
    # Gamma(k, rate) on nu - 2 = exp(ln), Jacobian exp(ln)
    lp = lp + NU_SHAPE * ln - NU_RATE * np.exp(ln)
    result: FloatArray = lp + _LOG_PRIOR_CONST
    return result


def sample_prior(n: int, rng: np.random.Generator, asymmetric: bool = False) -> Theta:
    """``n`` parameter vectors drawn from the prior (GJR when ``asymmetric``)."""
    mu = rng.normal(0.0, MU_SD, n)
    omega = np.exp(rng.normal(LOG_OMEGA_MEAN, LOG_OMEGA_SD, n))
    d = rng.dirichlet(np.ones(4 if asymmetric else 3), n)
    nu = 2.0 + rng.gamma(NU_SHAPE, 1.0 / NU_RATE, n)
    if asymmetric:
        alpha = 2.0 * d[:, 0]
        return Theta(mu, omega, alpha, d[:, 2], nu, 2.0 * d[:, 1] - alpha)
    return Theta(mu, omega, d[:, 0], d[:, 1], nu, np.zeros(n))


def is_valid(th: Theta) -> NDArray[np.bool_]:
    """Positive, stationary parameter vectors ``(S,)``: the support of the priors."""
    ok: NDArray[np.bool_] = (
        (th.omega > 0) & (th.alpha >= 0) & (th.alpha_neg >= 0) & (th.beta >= 0)
        & (th.persistence < 1) & (th.nu > 2)
    )
    return ok


# --- full-history likelihood (JAX) -------------------------------------------


def backcast_moments(r: FloatArray) -> FloatArray:
    """``(3,)``: weighted sums of ``1, r, r^2`` so that ``b(mu) = m2 - 2 mu m1 + mu^2 m0``."""
    m = min(r.size, BACKCAST_LAGS)
    w = BACKCAST_DECAY ** np.arange(m)
    w /= w.sum()
    x = r[:m]
    return np.array([w.sum(), w @ x, w @ (x * x)])


#: JAX's persistent compilation cache for the likelihood: this environment variable
#: names its directory, or turns it off (``off``, ``0`` or empty); unset, the
#: directory is ``./.swarmvar/cache/jax`` (the CLI's default home) unless JAX already
#: has one configured (``JAX_COMPILATION_CACHE_DIR``, as ``swarmvar var/backtest`` set).
CACHE_ENV = "SWARMVAR_JAX_CACHE"
DEFAULT_CACHE = Path(".swarmvar") / "cache" / "jax"
_CACHE_OFF = frozenset({"", "0", "off", "no", "false", "none"})
LOCK_NAME = "swarmvar-compile.lock"


def compilation_cache() -> Path | None:
    """The directory of JAX's persistent compilation cache, configuring swarmvar's if none is.

    ``None`` when :data:`CACHE_ENV` turns it off or the directory cannot be
    made. JAX reads the setting at the first compilation of a process: a
    process that compiled something before without a cache keeps compiling.
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in _CACHE_OFF:
        # off wins over a directory configured elsewhere (e.g. by the CLI): JAX would
        # otherwise cache there by itself any compilation slower than its threshold
        # (1 s; the likelihood crosses it on a loaded machine). JAX decides at a
        # process's first compilation; _compiling(None) also refuses the write later.
        _set_config("jax_enable_compilation_cache", False)
        return None
    configured = _config("jax_compilation_cache_dir")
    folder = Path(str(configured)) if configured else Path(value) if value else DEFAULT_CACHE
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not configured:
        _set_config("jax_compilation_cache_dir", str(folder))
    return folder


def _config(name: str) -> object:
    return getattr(jax.config, name)


def _set_config(name: str, value: object) -> None:
    jax.config.update(name, value)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _compiling(folder: Path | None) -> Iterator[None]:
    """Around a compilation of the likelihood: cache it, one process at a time.

    JAX writes a cache entry in place (no rename), so a process reading the
    entry while another writes it would read a truncated file (a warning and
    a recompile); an exclusive lock on the cache directory serializes
    swarmvar's compile-or-load steps. Programs that compile faster than
    JAX's threshold (1 s by default; the likelihood takes ~0.1-0.3 s) are
    not cached: the threshold is lifted for this compilation only. Where the
    lock cannot be taken (no POSIX locks, a read-only directory, a file system
    without flock) the likelihood is compiled and not cached. A process killed
    while writing an entry leaves it truncated: JAX then warns and recompiles
    in every later process until the entry is deleted (the cache directory is
    safe to delete).
    """
    if folder is None:  # no cache: JAX must not write one of its own either
        with _no_cache_write():
            yield
        return
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): compile without the cache
        with _no_cache_write():
            yield
        return
    try:
        handle = open(folder / LOCK_NAME, "a")  # noqa: SIM115 - held across the yield
    except OSError:
        with _no_cache_write():
            yield
        return
    name = "jax_persistent_cache_min_compile_time_secs"
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (ENOLCK): compile, do not cache
            with _no_cache_write():
                yield
            return
        previous = _config(name)
        _set_config(name, 0.0)
        try:
            yield
        finally:
            _set_config(name, previous)


@contextlib.contextmanager
def _no_cache_write() -> Iterator[None]:
    """Around a compilation that must not be cached: no compile time reaches JAX's threshold."""
    name = "jax_persistent_cache_min_compile_time_secs"
    previous = _config(name)
    _set_config(name, math.inf)
    try:
        yield
    finally:
        _set_config(name, previous)


@functools.lru_cache(maxsize=16)
def _chunk_fn(n_particles: int) -> jax.stages.Compiled:
    """Compiled pass over one ``CHUNK`` of returns, carrying ``(h, sum log h, sum log q)``.

    Keyed by the particle count only: any history length is a sequence of
    chunk calls (the last one masked), so a growing history never recompiles.
    Compiled ahead of time for float32 ``(n_particles,)`` parameters, through
    the persistent cache of :func:`compilation_cache`.
    """

    def block_step(carry, inp):  # type: ignore[no-untyped-def]
        # h and sum log h travel as one complex64 (real, imaginary part: exact): XLA
        # fuses each output of the loop body on its own and recomputes the variance
        # recursion in each, so packing two of the three outputs into one saves one
        # of three passes over the recursion (~20% of a likelihood pass), bit for bit
        h_slh, slq, mu, omega, a_pos, a_neg, beta, inv_nm2 = carry
        h, slh = jnp.real(h_slh), jnp.imag(h_slh)
        ys, ms = inp
        ph = jnp.ones_like(h)
        pq = jnp.ones_like(h)
        for j in range(BLOCK):
            e = ys[j] - mu
            e2 = e * e
            m = ms[j]
            ph = ph * jnp.where(m, h, 1.0)
            pq = pq * jnp.where(m, jnp.minimum(1.0 + e2 * inv_nm2 / h, Q_CAP), 1.0)
            arch = jnp.where(e < 0, a_neg, a_pos) * e2
            h = jnp.where(m, jnp.maximum(omega + arch + beta * h, H_FLOOR), h)
        h_slh = jax.lax.complex(h, slh + jnp.log(ph))
        return (h_slh, slq + jnp.log(pq), mu, omega, a_pos, a_neg, beta, inv_nm2), None

    def chunk(y, n_valid, mu, omega, a_pos, a_neg, beta, inv_nm2, h_slh, slq):  # type: ignore[no-untyped-def]
        mask = jnp.arange(CHUNK) < n_valid
        carry = (h_slh, slq, mu, omega, a_pos, a_neg, beta, inv_nm2)
        xs = (y.reshape(CHUNK // BLOCK, BLOCK), mask.reshape(CHUNK // BLOCK, BLOCK))
        (h_slh, slq, *_), _ = jax.lax.scan(block_step, carry, xs,  # type: ignore[arg-type]
                                           unroll=SCAN_UNROLL)
        return h_slh, slq

    spec = jax.ShapeDtypeStruct
    vec = spec((n_particles,), np.float32)  # type: ignore[no-untyped-call]
    shapes = (spec((CHUNK,), np.float32), spec((), np.int32),  # type: ignore[no-untyped-call]
              *[vec] * 6, spec((n_particles,), np.complex64), vec)  # type: ignore[no-untyped-call]
    # Traced and lowered before the lock (~0.1-0.2 s, this process's own work): only the
    # compile-or-load step needs it, so a backtest's other worker starting its own
    # compiled likelihood at the same moment waits for that step alone.
    folder = compilation_cache()  # configured before anything of JAX's runs here
    lowered = jax.jit(chunk).lower(*shapes)
    with _compiling(folder):
        return lowered.compile()


def loglik(r: FloatArray, th: Theta) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood of the history ``r`` ``(n,)`` under each particle.

    Returns
    -------
    ll : ``(S,)``
        ``log p(r_1..r_n | theta_s)``; ``-inf`` where it is not finite.
    h_next : ``(S,)``
        Conditional variance of ``r_{n+1}`` (fraction^2) per particle.
    """
    n = r.size
    scale = float(np.std(r)) or 1.0
    chunks = -(-n // CHUNK)
    y = np.zeros(chunks * CHUNK, dtype=np.float32)
    y[:n] = r / scale
    bm = backcast_moments(r)
    bc = (bm[2] - 2.0 * th.mu * bm[1] + th.mu**2 * bm[0]) / scale**2
    omega_s = th.omega / scale**2
    f32 = np.float32
    args = (
        (th.mu / scale).astype(f32), omega_s.astype(f32), th.alpha.astype(f32),
        th.alpha_neg.astype(f32), th.beta.astype(f32), (1.0 / (th.nu - 2.0)).astype(f32),
    )
    h_slh = np.zeros(th.mu.size, dtype=np.complex64)  # h + i sum log h
    h_slh.real = omega_s + th.persistence * bc
    slq = np.zeros(th.mu.size, dtype=f32)
    fn = _chunk_fn(th.mu.size)
    for c in range(chunks):
        valid = np.int32(min(CHUNK, n - c * CHUNK))
        h_slh, slq = fn(y[c * CHUNK : (c + 1) * CHUNK], valid, *args, h_slh, slq)
    h_slh = np.asarray(h_slh)
    h, slh = h_slh.real, h_slh.imag
    const, half_nu1, _ = t_constants(th.nu)
    ll = n * (const - math.log(scale)) - 0.5 * np.asarray(slh, float) - half_nu1 * np.asarray(
        slq, float
    )
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    return ll, np.asarray(h, dtype=float) * scale**2


# --- one step, in numpy --------------------------------------------------------


def t_constants(nu: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-particle constants of the unit-variance t: ``(log normalizer, (nu+1)/2, 1/(nu-2))``."""
    const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(np.pi * (nu - 2))
    return const, 0.5 * (nu + 1.0), 1.0 / (nu - 2.0)


def step_logpdf(
    e: FloatArray, h: FloatArray, consts: tuple[FloatArray, FloatArray, FloatArray]
) -> FloatArray:
    """Log density of residuals ``e = r - mu`` ``(S,)`` given variances ``h`` ``(S,)``."""
    const, half_nu1, inv_nm2 = consts
    result: FloatArray = const - 0.5 * np.log(h) - half_nu1 * np.log1p(e * e * inv_nm2 / h)
    return result


def variance_path(
    r: FloatArray, mu: float, omega: float, alpha: float, beta: float, gamma: float = 0.0,
    *, moments: FloatArray | None = None,
) -> FloatArray:
    """Conditional variances ``h_1..h_{n+1}`` ``(n+1,)`` for one parameter vector.

    ``moments`` is ``backcast_moments(r)`` if the caller keeps it.
    """
    bm = backcast_moments(r) if moments is None else moments
    bc = bm[2] - 2.0 * mu * bm[1] + mu * mu * bm[0]
    e = r - mu
    # h_{t+1} = omega + (alpha + gamma 1[e_t < 0]) e_t^2 + beta h_t, started at h_1
    h1 = omega + (alpha + 0.5 * gamma + beta) * bc
    drive = omega + np.where(e < 0, alpha + gamma, alpha) * (e * e)
    rest, _ = lfilter([1.0], [1.0, -beta], drive, zi=np.array([beta * h1]))
    return np.concatenate([[h1], rest])


def log_posterior_one(r: FloatArray, u: FloatArray, moments: FloatArray) -> float:
    """Unnormalized log posterior ``log p(u) + log p(r | u)`` of one vector ``u`` ``(d,)``.

    float64 numpy (no floors or caps: the exact model), for the mode search
    of :func:`posterior_mode`; ``moments`` is ``backcast_moments(r)``. The
    variance recursion is LAPACK's banded triangular solve of
    ``h_t - beta h_{t-1} = drive_t`` (the same recursion as
    :func:`variance_path`'s ``lfilter``, to rounding: OpenBLAS fuses the
    multiply-add, so the two differ in the last bits).
    """
    from scipy.linalg import lapack

    uu = u[None, :]
    th = from_unconstrained(uu)
    mu, omega, alpha, beta, gamma = (float(p[0]) for p in th[:4] + th[5:])
    e = r - mu
    e2 = e * e
    h1 = omega + (alpha + 0.5 * gamma + beta) * (
        moments[2] - 2.0 * mu * moments[1] + mu * mu * moments[0])
    drive = np.empty(r.size)
    drive[0] = h1
    drive[1:] = omega + np.where(e[:-1] < 0, alpha + gamma, alpha) * e2[:-1]
    band = np.empty((2, r.size))
    band[0] = 1.0
    band[1] = -beta
    h, info = lapack.dtbtrs(band, drive[:, None], uplo="L")
    h = h[:, 0]
    const, half_nu1, inv_nm2 = (float(c[0]) for c in t_constants(th.nu))
    with np.errstate(all="ignore"):
        ll = r.size * const - 0.5 * np.log(h).sum() - half_nu1 * np.log1p(e2 * inv_nm2 / h).sum()
    value = float(log_prior_u(uu)[0] + ll)
    return value if info == 0 and math.isfinite(value) else -math.inf


#: Mode search: start at persistence 0.95, mean ARCH response 0.08, nu = 8, no leverage.
START_PERSISTENCE = 0.95
START_ARCH = 0.08
START_NU = 8.0
#: Central-difference step of the Hessian, in the search's scaled coordinates.
HESSIAN_STEP = 5e-3


def posterior_mode(r: FloatArray, asymmetric: bool = False) -> tuple[FloatArray, FloatArray] | None:
    """The posterior mode in unconstrained coordinates and the Laplace covariance there.

    Returns ``(mode (d,), covariance (d, d))``: quasi-Newton (BFGS) steps on
    :func:`log_posterior_one` from a typical daily GARCH, then the inverse of
    a central-difference Hessian. ``mu`` is searched in units of its rough
    posterior sd (``std(r) / sqrt(n)``) so that every coordinate has a
    curvature of order one. ``None`` when the search or the Hessian fails
    (not finite, not positive definite): callers start from the prior then.
    """
    from scipy import optimize

    d = dim(asymmetric)
    sd = float(np.std(r)) or 1e-3
    scale = np.ones(d)
    scale[0] = sd / math.sqrt(r.size)
    moments = backcast_moments(r)
    p, a = START_PERSISTENCE, START_ARCH
    u0 = [float(np.mean(r)), math.log(sd * sd * (1.0 - p)), math.log(p / (1.0 - p)),
          math.log(a / (p - a)), math.log(START_NU - 2.0)] + [0.0] * (d - 5)

    def f(v: FloatArray) -> float:
        value = -log_posterior_one(r, v * scale, moments)
        return value if math.isfinite(value) else 1e300

    with np.errstate(all="ignore"):
        res = optimize.minimize(f, np.array(u0) / scale, method="BFGS", options={"gtol": 1e-3})
        v = np.asarray(res.x, dtype=float)
        if not (math.isfinite(float(res.fun)) and float(res.fun) < 1e300):
            return None
        hess = _hessian(f, v, HESSIAN_STEP)
    try:
        cov = np.linalg.inv(hess) * np.outer(scale, scale)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)):
        return None
    return v * scale, cov


def _hessian(f: Callable[[FloatArray], float], x: FloatArray, step: float) -> FloatArray:
    """Central-difference Hessian of ``f`` at ``x`` ``(d,)``: ``(d, d)``, symmetric."""
    d = x.size
    e = np.eye(d) * step
    hess = np.empty((d, d))
    for i in range(d):
        for j in range(i, d):
            hess[i, j] = hess[j, i] = (
                f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])
            ) / (4.0 * step * step)
    return hess


def next_variance(th: Theta, e: FloatArray, h: FloatArray) -> FloatArray:
    """``h_{t+1}`` per particle ``(S,)`` from residuals ``e = r_t - mu`` and variances ``h_t``."""
    result: FloatArray = th.omega + np.where(e < 0, th.alpha_neg, th.alpha) * (e * e) + th.beta * h
    return result
