"""MCMC convergence diagnostics: rank-normalized split R-hat, bulk and tail ESS.

Definitions from Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", Bayesian Analysis 16(2), as implemented in
the R package ``posterior`` and in ArviZ. The tests check agreement with
ArviZ to 1e-8 on constructed chains.

They live with the models because the agents check their own fits with them
(layering: models sit below validation, which re-exports them).

All functions take ``draws`` of shape ``(chains, draws_per_chain)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from ..errors import InvalidParameter
from ..types import Diagnostics

FloatArray = NDArray[np.float64]


def _chains(draws: ArrayLike) -> FloatArray:
    x = np.asarray(draws, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] < 4:
        raise InvalidParameter(f"draws must be (chains, draws) with at least 4 draws; got "
                               f"{x.shape}")
    return x


def split_chains(draws: ArrayLike) -> FloatArray:
    """Split each chain in two halves (dropping the middle draw when odd)."""
    x = _chains(draws)
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def rank_normalize(draws: ArrayLike) -> FloatArray:
    """Normal scores of pooled average ranks: ``Φ⁻¹((r − 3/8) / (S + 1/4))``."""
    x = np.asarray(draws, dtype=float)
    ranks = stats.rankdata(x, method="average").reshape(x.shape)
    return np.asarray(special.ndtri((ranks - 0.375) / (x.size + 0.25)))


def _rhat_basic(x: FloatArray) -> float:
    """Split R-hat of ``(chains, draws)``: NaN when no chain varies and all agree (a collapsed
    cloud: 0/0), inf when no chain varies but they differ; quietly (the fit-health rule,
    ``Diagnostics.doubts``, fails on either)."""
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt((between / within + n - 1) / n))


def rhat(draws: ArrayLike) -> float:
    """Rank-normalized split R-hat: the max of the bulk and the folded (tail) R-hat."""
    x = split_chains(draws)
    bulk = _rhat_basic(rank_normalize(x))
    tail = _rhat_basic(rank_normalize(np.abs(x - np.median(x))))
    return max(bulk, tail)


def _autocov(x: FloatArray) -> FloatArray:
    n = x.shape[1]
    m = 1 << (2 * n - 1).bit_length()
    centered = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(centered, n=m, axis=1)
    return np.asarray(np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n] / n)


def ess_basic(x: ArrayLike) -> float:
    """ESS of chains ``(m, n)`` by Geyer's initial monotone sequence (no splitting)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    m, n = x.shape
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho_even, rho[0] = 1.0, 1.0
    rho_odd = 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[1] = rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        rho_odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:  # make the paired sums monotone
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = m * n
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def ess_bulk(draws: ArrayLike) -> float:
    """Bulk ESS: ESS of the rank-normalized split chains."""
    return ess_basic(rank_normalize(split_chains(draws)))


def ess_tail(draws: ArrayLike) -> float:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators."""
    x = _chains(draws)
    out = []
    for p in (0.05, 0.95):
        q = np.quantile(x, p)
        out.append(ess_basic(split_chains((x <= q).astype(float))))
    return min(out)


def summarize(samples: dict[str, ArrayLike]) -> tuple[dict[str, float], dict[str, float],
                                                      dict[str, float]]:
    """R-hat, bulk ESS and tail ESS for each named ``(chains, draws)`` array."""
    r, b, t = {}, {}, {}
    for name, value in samples.items():
        r[name], b[name], t[name] = rhat(value), ess_bulk(value), ess_tail(value)
    return r, b, t


def smc_diagnostics(fit: Mapping[str, Mapping[str, float]], *, ess: float, acceptance: float,
                    draws: int, seconds: float, particles: int | None = None) -> Diagnostics:
    """The :class:`~swarmvar.types.Diagnostics` of a particle agent's fit.

    ``fit`` holds the per-parameter ``"rhat"``, ``"ess_bulk"`` and ``"ess_tail"``
    across the SMC runs (what the agents' fits record); ``ess`` is the current
    particle weights' effective sample size, ``particles`` the cloud they weigh (its
    share is what the fit-health rule judges), ``draws`` the fit's ``runs x particles``.
    """
    return Diagnostics(method="smc", rhat=dict(fit["rhat"]), ess_bulk=dict(fit["ess_bulk"]),
                       ess_tail=dict(fit["ess_tail"]), ess=ess, acceptance=acceptance,
                       draws=draws, seconds=seconds, particles=particles)


def fit_record(saved: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, float]]:
    """A particle agent's saved fit record (``"rhat"``, ``"ess_bulk"``, ``"ess_tail"``, each
    parameter -> value) read back from state JSON, as :func:`smc_diagnostics` takes it.

    Raises ``KeyError``, ``TypeError``, ``ValueError`` or ``AttributeError`` on a malformed
    record (the agents' ``_set_state`` turn those into ``InvalidState``).
    """
    return {k: {str(p): float(v) for p, v in saved[k].items()}  # type: ignore[arg-type]
            for k in ("rhat", "ess_bulk", "ess_tail")}
