"""R-hat and bulk/tail ESS against ArviZ on constructed chains (Vehtari et al. 2021)."""

from __future__ import annotations

import arviz
import numpy as np
import pytest

from swarmvar.validation import ess_bulk, ess_tail, rhat


def ar1(rho: float, chains: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((chains, n))
    x[:, 0] = rng.standard_normal(chains) / np.sqrt(1 - rho**2)
    eps = rng.standard_normal((chains, n))
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    return x


def chains() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shifted = rng.standard_normal((4, 1000))
    shifted[3] += 1.0
    return {
        "well mixed": rng.standard_normal((4, 1000)),
        "one shifted chain": shifted,
        "AR(1) rho=0.9": ar1(0.9, 4, 2000, 1),
        "heavy tailed": rng.standard_t(2, (4, 1000)),
        "odd length": rng.standard_normal((3, 501)),
        "one chain": rng.standard_normal((1, 800)),
    }


@pytest.mark.parametrize("name", list(chains()))
def test_agree_with_arviz(name: str) -> None:
    x = chains()[name]
    if x.shape[0] > 1:  # ArviZ refuses R-hat of a single chain (it returns NaN)
        assert rhat(x) == pytest.approx(float(arviz.rhat(x, method="rank")), abs=1e-8)
    assert ess_bulk(x) == pytest.approx(float(arviz.ess(x, method="bulk")), abs=1e-8)
    assert ess_tail(x) == pytest.approx(float(arviz.ess(x, method="tail")), abs=1e-8)


def test_what_the_diagnostics_say_about_the_constructed_chains() -> None:
    c = chains()
    assert rhat(c["well mixed"]) < 1.01
    assert ess_bulk(c["well mixed"]) > 3000
    assert rhat(c["one shifted chain"]) > 1.1
    # AR(1): ESS ~ n (1 - rho) / (1 + rho) = 8000 * 0.1 / 1.9 ~ 421
    theory = 8000 * 0.1 / 1.9
    assert ess_bulk(c["AR(1) rho=0.9"]) == pytest.approx(theory, rel=0.25)
    assert rhat(c["AR(1) rho=0.9"]) < 1.05
