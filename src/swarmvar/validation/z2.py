"""The Acerbi-Szekely ``Z2`` statistic and its censored Monte Carlo count.

``Z2 = sum_t L_t I_t / (T tau ES_t) - 1`` (:func:`z2_statistic`). With a
sampler censored at the very VaRs (``student_t_sampler(..., above=var)``,
a :class:`~swarmvar.validation.t_predictive.CensoredStudentT`),
:func:`~swarmvar.validation.es_tests.acerbi_szekely_z2` counts
``#{Z2* >= Z2}`` from the draws beyond VaR alone, mostly without their t
quantiles, bit for bit the count of the whole array (``_tail_z2_at_least``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter
from .t_predictive import CensoredStudentT, FloatArray, IntArray, _QuantileGrid


def z2_statistic(losses: FloatArray, var: FloatArray, es: FloatArray, alpha: float) -> FloatArray:
    """``Z2`` for one or many loss paths; ``losses`` ``(T,)`` or ``(M, T)``."""
    tau = 1.0 - alpha
    n = var.shape[-1]
    contrib = np.where(losses > var, losses, 0.0) / es
    return np.asarray(contrib.sum(axis=-1) / (n * tau) - 1.0)


def _censored_at_least(
    sampler: CensoredStudentT, rng: np.random.Generator, n_sim: int, chunk: int,
    var: FloatArray, es: FloatArray, alpha: float, observed: float,
) -> int:
    """``#{Z2* >= observed}`` over ``n_sim`` censored paths drawn ``chunk`` at a time."""
    grid = _QuantileGrid.of(sampler.df, sampler.normal, sampler.keep)
    size = (min(chunk, n_sim), var.size)
    u, tail = np.empty(size), np.empty(size, dtype=bool)  # reused by every chunk
    at_least = done = 0
    while done < n_sim:
        m = min(chunk, n_sim - done)
        at_least += _tail_z2_at_least(sampler, grid, (u[:m], tail[:m]), rng, m, var, es,
                                      alpha, observed)
        done += m
    return at_least


def _tail_z2_at_least(
    sampler: CensoredStudentT,
    grid: _QuantileGrid | None,
    buffers: tuple[FloatArray, NDArray[np.bool_]],
    rng: np.random.Generator,
    m: int,
    var: FloatArray,
    es: FloatArray,
    alpha: float,
    observed: float,
) -> int:
    """``#{Z2* >= observed}`` over ``m`` censored paths, from their tail draws alone.

    The same count as ``z2_statistic(sampler(rng, m), ...) >= observed``, with
    the same random numbers, without the ``(m, T)`` array and mostly without
    the t quantiles:

    1. a censored path's ``Z2`` sums only its draws beyond the VaR (the floor
       draws equal it and add 0);
    2. each draw's quantile is first bracketed from ``grid`` (the t quantile
       rises with the uniform and falls with ``df``), which brackets every
       path's sum; a path whose bracket lies on one side of ``observed`` is
       decided;
    3. the other paths' draws get their exact quantile
       (``scipy.special.stdtrit``, as the sampler computes them), and their
       sums (``np.bincount``) add the same quotients as ``z2_statistic`` in
       another order: both lie within ``T * eps * sum |terms|`` of the exact
       sum (Higham 2002, section 4.2) and ``S -> S / (T tau) - 1`` is monotone
       in floating point, so a bracket ``S +- 4 T eps sum |terms|`` on one side
       of ``observed`` decides the path as ``z2_statistic`` does;
    4. paths still straddling ``observed`` (ties) are decided by
       ``z2_statistic`` itself on their rebuilt rows.
    """
    s_idx, t_idx, u = sampler.uniforms(rng, m, buffers)
    exact = np.ones(u.shape, dtype=bool) if grid is None else ~grid.covers(t_idx, u)
    q_lo, q_hi = np.empty_like(u), np.empty_like(u)
    q_lo[exact] = q_hi[exact] = sampler.quantile(t_idx[exact], u[exact])
    if grid is not None:
        q_lo[~exact], q_hi[~exact] = grid.bracket(t_idx[~exact], u[~exact])
    x_lo, x_hi = sampler.losses(t_idx, q_lo), sampler.losses(t_idx, q_hi)
    if not (np.all(np.isfinite(x_lo)) and np.all(np.isfinite(x_hi))):
        exact = _refine(sampler, s_idx, t_idx, u, x_lo, x_hi, exact,
                        ~(np.isfinite(x_lo) & np.isfinite(x_hi)))
        if not np.all(np.isfinite(x_lo)):
            raise InvalidParameter(
                f"the sampler must return finite losses of shape ({m}, {var.size}); "
                "got non-finite draws"
            )
    above, unsure = _decide(s_idx, t_idx, x_lo, x_hi, m, var, es, alpha, observed)
    if unsure.any() and not exact.all():
        exact = _refine(sampler, s_idx, t_idx, u, x_lo, x_hi, exact, unsure[s_idx])
        above_exact, unsure_exact = _decide(s_idx, t_idx, x_lo, x_hi, m, var, es, alpha, observed)
        above[unsure] = above_exact[unsure]
        unsure &= unsure_exact
    if unsure.any():  # every draw of these paths is exact: x_lo == x_hi there
        sims = np.broadcast_to(sampler.floor, (m, var.size)).copy()
        sims[s_idx, t_idx] = x_lo  # other paths' rows are not read
        above[unsure] = (z2_statistic(sims, var, es, alpha) >= observed)[unsure]
    return int(np.count_nonzero(above))


def _refine(
    sampler: CensoredStudentT, s_idx: IntArray, t_idx: IntArray, u: FloatArray,
    x_lo: FloatArray, x_hi: FloatArray, exact: NDArray[np.bool_], want: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """The exact loss of the draws in ``want`` not yet exact, into ``x_lo`` and ``x_hi``."""
    pick = want & ~exact
    x_lo[pick] = x_hi[pick] = sampler.losses(t_idx[pick], sampler.quantile(t_idx[pick], u[pick]))
    return exact | pick


def _decide(
    s_idx: IntArray, t_idx: IntArray, x_lo: FloatArray, x_hi: FloatArray, m: int,
    var: FloatArray, es: FloatArray, alpha: float, observed: float,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Paths surely at or above ``observed``, and paths undecided, from losses within brackets.

    A draw's term in ``Z2``'s sum is ``x / es`` if ``x > var`` else 0 (the
    quotient rounds monotonically in ``x``); the floor is the VaR, so a draw
    never falls below it.
    """
    e = es[t_idx]
    over_lo = x_lo > var[t_idx]
    term_lo = np.where(over_lo, x_lo / e, np.minimum(var[t_idx] / e, 0.0))
    term_hi = np.where(x_hi > var[t_idx], np.maximum(x_hi / e, 0.0), 0.0)
    size = np.maximum(np.abs(term_lo), np.abs(term_hi))
    band = 4.0 * var.size * np.finfo(float).eps * np.bincount(s_idx, size, minlength=m)
    n_tau = var.size * (1.0 - alpha)
    low = (np.bincount(s_idx, term_lo, minlength=m) - band) / n_tau - 1.0
    high = (np.bincount(s_idx, term_hi, minlength=m) + band) / n_tau - 1.0
    above = low >= observed  # a path without a draw beyond its VaR: exactly -1 either way
    return above, ~above & (high >= observed)
