"""Why non-overlapping h-day windows suffice for the h-day weights (docs/validation.md).

Known truth: iid t(4) returns; three agents forecast the true 10-day VaR/ES at
0.99 and 0.975, or both scaled by 0.8 or 1.25. Over 1,000 days the mean joint
FZ0 loss of the 100 non-overlapping 10-day windows has the same expectation
as that of the 1,000 overlapping ones, and a standard deviation only ~1.2
times theirs (overlapping windows share their returns: variance ratio ~2/3).
"""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.consensus.weights import fz0_loss

pytestmark = pytest.mark.slow

H, DAYS, NU, REPS = 10, 1000, 4, 400
ALPHAS = (0.99, 0.975)
SCALES = (1.0, 0.8, 1.25)


def _mean_losses(ret: np.ndarray, truth: dict[float, tuple[float, float]]) -> np.ndarray:
    out = []
    for s in SCALES:
        total = np.zeros(ret.size)
        for a in ALPHAS:
            v, e = truth[a]
            total += fz0_loss(ret, np.full((ret.size, 1), s * v), np.full((ret.size, 1), s * e),
                              a)[:, 0]
        out.append(total.mean())
    return np.array(out)


def test_non_overlapping_windows_score_the_same_gap_with_little_more_noise() -> None:
    rng = np.random.default_rng(0)
    sd = 0.01 * np.sqrt((NU - 2) / NU)
    losses = -(sd * rng.standard_t(NU, (400_000, H))).sum(axis=1)
    truth = {}
    for a in ALPHAS:
        v = float(np.quantile(losses, a))
        truth[a] = (v, float(losses[losses >= v].mean()))
    over, apart = [], []
    for _ in range(REPS):
        cum = np.convolve(sd * rng.standard_t(NU, DAYS + H - 1), np.ones(H), mode="valid")
        over.append(_mean_losses(cum, truth))
        apart.append(_mean_losses(cum[::H], truth))
    o, d = np.array(over), np.array(apart)
    for k in (1, 2):  # the wrong agents' gap to the right one
        gap_o, gap_d = o[:, k] - o[:, 0], d[:, k] - d[:, 0]
        assert gap_o.mean() > 0 and gap_d.mean() > 0
        # the same expected gap (within 3 standard errors of the difference)
        se = np.sqrt(gap_o.var() / REPS + gap_d.var() / REPS)
        assert abs(gap_o.mean() - gap_d.mean()) < 3 * se
        ratio = gap_d.std() / gap_o.std()
        assert 1.0 < ratio < 1.45, ratio  # sqrt(3/2) = 1.22 in theory, not sqrt(10) = 3.16
