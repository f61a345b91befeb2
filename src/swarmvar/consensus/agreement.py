"""Approximate agreement (Dolev, Lynch, Pinter, Stark, Weihl 1986), synchronous rounds.

In each round every node sends its value to all ``n`` nodes and replaces its
own value by

    ``mean(select_f(reduce^f(V)))``

where ``V`` is the multiset it received (``n`` values; a value that did not
arrive is replaced by a default, here the receiver's own value),
``reduce^f`` drops the ``f`` smallest and ``f`` largest, and ``select_f``
keeps every ``f``-th of what is left, starting from the smallest. With
``n >= 3f + 1`` and at most ``f`` Byzantine nodes (who may send different
values to different receivers) every honest new value lies in the range of
the honest old values, and the honest spread shrinks each round by at least

    ``c(n - 2f, f) = floor((n - 2f - 1) / f) + 1``.

:func:`agreement_round` is the round as one function of the values received,
so it runs unchanged over any transport; :func:`run_agreement` drives rounds
among in-process nodes until the honest spread is below ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, NotEnoughAgents

FloatArray = NDArray[np.float64]

#: ``adversary(round, honest_values)`` -> shape ``(h, f)``: what the ``f``
#: Byzantine nodes send to each of the ``h`` honest receivers (NaN = silent).
Adversary = Callable[[int, FloatArray], FloatArray]


def min_nodes(f: int) -> int:
    """Smallest number of nodes that tolerates ``f`` Byzantine ones: ``3f + 1``."""
    return 3 * f + 1


def convergence_factor(n: int, f: int) -> float:
    """The paper's per-round shrink factor ``c(n - 2f, f)``; ``inf`` for ``f = 0``.

    With ``f = 0`` and every value delivered, every node averages the same ``n``
    values, so one round agrees exactly: no finite factor. JSON faces (the mesh
    ``status``) show it as ``null``.
    """
    _check(n, f)
    if f == 0:
        return math.inf
    return float((n - 2 * f - 1) // f + 1)


def _check(n: int, f: int) -> None:
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise InvalidParameter(f"f must be an int >= 0, got {f!r}")
    if n < min_nodes(f):
        raise NotEnoughAgents(
            f"approximate agreement tolerating f={f} Byzantine nodes needs n >= {min_nodes(f)}, "
            f"got n={n}"
        )


def agreement_round(received: ArrayLike, f: int, *, default: float) -> float:
    """One node's new value from the ``n`` values it received this round.

    Parameters
    ----------
    received : array_like, shape (n,)
        One value per node (the receiver's own included); NaN marks a value
        that did not arrive and is replaced by ``default``.
    f : int
        Byzantine nodes tolerated; needs ``n >= 3f + 1``.
    default : float
        Stand-in for missing values (use the receiver's own value).
    """
    v = np.asarray(received, dtype=np.float64)
    if v.ndim != 1:
        raise InvalidParameter(f"received must be 1-D, got shape {v.shape}")
    _check(v.size, f)
    if not math.isfinite(default):
        raise InvalidParameter(f"default must be finite, got {default}")
    v = np.where(np.isnan(v), default, v)
    if np.any(np.isinf(v)):
        raise InvalidParameter("received values must not be infinite (send NaN for missing)")
    v = np.sort(v)
    kept = v[f : v.size - f]
    chosen = kept if f == 0 else kept[::f]
    # dividing first cannot overflow; the clip only undoes rounding (a mean lies in its range)
    return float(np.clip(np.sum(chosen / chosen.size), chosen[0], chosen[-1]))


@dataclass(frozen=True)
class AgreementResult:
    """Outcome of :func:`run_agreement`.

    Attributes
    ----------
    values : ndarray, shape (h,)
        Honest nodes' final values.
    rounds : int
        Rounds run.
    spreads : tuple of float
        Honest spread (max - min) before round 1, after round 1, ...
    factor : float
        The guaranteed per-round shrink ``c(n - 2f, f)``.
    converged : bool
        Whether the final spread is at most the target.
    target : float
        Absolute spread target.
    """

    values: FloatArray
    rounds: int
    spreads: tuple[float, ...]
    factor: float
    converged: bool
    target: float


def rounds_needed(spread: float, target: float, n: int, f: int) -> int:
    """Rounds the paper's bound guarantees suffice to bring ``spread`` to ``<= target``."""
    c = convergence_factor(n, f)
    if spread <= target:
        return 0
    if math.isinf(c):
        return 1
    return math.ceil(math.log(spread / target) / math.log(c))


def run_agreement(
    honest: ArrayLike,
    f: int,
    *,
    eps: float,
    relative: bool = True,
    adversary: Adversary | None = None,
    max_rounds: int = 1000,
) -> AgreementResult:
    """Run synchronous rounds among ``h`` honest in-process nodes and ``f`` Byzantine ones.

    Parameters
    ----------
    honest : array_like, shape (h,)
        Honest nodes' initial values.
    f : int
        Byzantine nodes in the system (``n = h + f`` must be ``>= 3f + 1``).
    eps : float
        Stop when the honest spread is ``<= eps`` (times ``max |honest|`` of
        the initial values if ``relative``).
    adversary : callable, optional
        What the Byzantine nodes send (see :data:`Adversary`); silent if None.
    max_rounds : int
        Give up after this many rounds (``converged=False``).
    """
    values = np.asarray(honest, dtype=np.float64).copy()
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise InvalidParameter("honest values must be a non-empty 1-D array of finite numbers")
    if not eps > 0:
        raise InvalidParameter(f"eps must be > 0, got {eps}")
    h = values.size
    n = h + f
    c = convergence_factor(n, f)
    target = eps * float(np.max(np.abs(values))) if relative else eps
    spreads = [float(np.ptp(values))]
    rounds = 0
    while spreads[-1] > target and rounds < max_rounds:
        if adversary is None:
            sent = np.full((h, f), np.nan)
        else:
            sent = np.asarray(adversary(rounds, values.copy()), dtype=np.float64)
        if sent.shape != (h, f):
            raise InvalidParameter(f"adversary must return shape ({h}, {f}), got {sent.shape}")
        new = np.empty(h)
        for i in range(h):
            received = np.concatenate([values, sent[i]])
            new[i] = agreement_round(received, f, default=float(values[i]))
        values = new
        rounds += 1
        spreads.append(float(np.ptp(values)))
    return AgreementResult(
        values=values,
        rounds=rounds,
        spreads=tuple(spreads),
        factor=c,
        converged=spreads[-1] <= target,
        target=target,
    )
