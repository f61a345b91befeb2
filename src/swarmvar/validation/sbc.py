"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For a Bayesian agent whose prior, likelihood and posterior are coherent, the
rank of a parameter drawn from the prior among ``L`` posterior draws given
data simulated from it is uniform on ``0..L``. Each replication:

1. ``theta ~ prior`` (``agent.sample_prior(1)``),
2. ``y ~ p(y | theta)`` (``agent.simulate(theta, n_obs)``),
3. fit, take ``L`` draws thinned evenly from ``agent.posterior_draws()``,
4. rank = number of draws below ``theta`` (ties broken at random).

The ranks are binned into a histogram and tested for uniformity with
Pearson's chi-square test; a miscalibrated posterior shows up as a U
(too narrow), a hump (too wide) or a slope (biased).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from ..errors import InvalidParameter
from ..models.base import Agent, check_whole
from .intervals import _agent

#: Most replications (each fits an agent) and posterior draws ranked against.
MAX_SIMS = 100_000

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SBCResult:
    """Ranks, rank histograms and uniformity p-values per parameter.

    Attributes
    ----------
    ranks : mapping name -> array ``(n_sims,)`` of ints in ``0..n_draws``
    histograms : mapping name -> array ``(bins,)`` of counts
    pvalues : mapping name -> chi-square uniformity p-value
    n_draws : int
        Posterior draws ranked against (``L``); ranks take ``L + 1`` values.
    bins : int
    """

    ranks: Mapping[str, IntArray]
    histograms: Mapping[str, IntArray]
    pvalues: Mapping[str, float]
    n_draws: int
    bins: int

    def passed(self, level: float = 0.01) -> bool:
        """Every parameter's uniformity p-value exceeds ``level``."""
        return all(p > level for p in self.pvalues.values())


def rank_of(truth: float, draws: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Rank of ``truth`` among ``draws``: the count below it, ties broken uniformly."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def thin(draws: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``n`` draws taken evenly across the chain (reduces autocorrelation)."""
    if draws.size < n:
        raise InvalidParameter(
            f"the agent returned {draws.size} posterior draws; SBC with n_draws={n} needs at "
            "least that many - lower n_draws or raise the agent's draw count"
        )
    idx = np.linspace(0, draws.size - 1, n).round().astype(np.int64)
    return draws[idx]


def uniformity(ranks: IntArray, n_draws: int, bins: int) -> tuple[IntArray, float]:
    """Histogram of ranks in ``bins`` equal bins over ``0..n_draws`` and its chi-square p-value."""
    counts = np.bincount(ranks * bins // (n_draws + 1), minlength=bins).astype(np.int64)
    expected = np.full(bins, ranks.size / bins)
    return counts, float(stats.chisquare(counts, expected).pvalue)


def sbc(
    make_agent: Callable[[], Agent],
    *,
    n_sims: int = 200,
    n_obs: int = 250,
    n_draws: int = 99,
    bins: int = 10,
    seed: int = 0,
) -> SBCResult:
    """Run simulation-based calibration for an agent.

    Parameters
    ----------
    make_agent : callable
        Builds a fresh, unfitted agent (same configuration every call).
    n_sims : int
        Replications (prior draw, simulated data set, fit).
    n_obs : int
        Returns simulated per replication.
    n_draws : int
        Posterior draws each truth is ranked among; ``n_draws + 1`` must be
        divisible by ``bins`` so that every bin holds equally many rank values.
    bins : int
        Histogram bins for the chi-square test.
    seed : int
        Seed of all randomness (prior, data, fit, tie-breaks).
    """
    checks = (("n_sims", n_sims), ("n_obs", n_obs), ("n_draws", n_draws), ("bins", bins))
    for label, value in checks:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidParameter(f"{label} must be a positive whole number, not {value!r}")
    if n_sims > MAX_SIMS or n_draws > MAX_SIMS or n_obs > 10_000_000:
        raise InvalidParameter(f"n_sims and n_draws must be at most {MAX_SIMS} and n_obs at most "
                               f"10000000 (one fit per replication); got {n_sims}, {n_draws}, "
                               f"{n_obs}")
    seed = check_whole("seed", seed, 0)
    if not callable(make_agent):
        raise InvalidParameter(f"make_agent must be a callable building an agent, not "
                               f"{type(make_agent).__name__}")
    if (n_draws + 1) % bins:
        raise InvalidParameter(f"n_draws + 1 = {n_draws + 1} must be divisible by bins = {bins}")
    root = np.random.SeedSequence(seed)
    ranks: dict[str, list[int]] = {}
    for child in root.spawn(n_sims):
        rng = np.random.default_rng(child)
        agent = _agent(make_agent)
        prior = agent.sample_prior(1, seed=rng)
        truth = {}
        for name, v in prior.items():
            arr = np.asarray(v, dtype=float)
            if arr.size != 1:
                raise InvalidParameter(
                    f"SBC ranks scalar parameters; {agent.name}'s prior draw of {name!r} has "
                    f"shape {arr.shape} (one draw should be a single number)"
                )
            truth[name] = float(arr.reshape(-1)[0])
        data = agent.simulate(truth, n_obs, seed=rng)
        agent.fit(data, seed=rng)
        posterior = agent.posterior_draws()
        for name, true_value in truth.items():
            if name not in posterior:
                raise InvalidParameter(
                    f"{agent.name}.posterior_draws() has no {name!r}, which sample_prior draws"
                )
            draws = thin(np.asarray(posterior[name], dtype=float).reshape(-1), n_draws)
            ranks.setdefault(name, []).append(rank_of(true_value, draws, rng))
    rank_arrays = {k: np.asarray(v, dtype=np.int64) for k, v in ranks.items()}
    hists: dict[str, IntArray] = {}
    pvalues: dict[str, float] = {}
    for name, r in rank_arrays.items():
        hists[name], pvalues[name] = uniformity(r, n_draws, bins)
    return SBCResult(rank_arrays, hists, pvalues, n_draws, bins)
