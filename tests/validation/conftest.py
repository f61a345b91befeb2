"""A small, real Bayesian agent for driving the validation code in tests.

``KnownMeanNormal``: returns ~ Normal(mu, sigma^2) with ``mu`` known and a
conjugate inverse-gamma prior on ``sigma^2``, over a rolling window of the
last ``window`` returns. The posterior is IG(a0 + n/2, b0 + S/2) with ``S``
the sum of squared deviations; the predictive is Student-t with ``2a``
degrees of freedom and scale ``sqrt(b/a)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray
from scipy import special

from swarmvar.models.base import Agent, Seed, rng_from
from swarmvar.models.risk import StudentTFamily, risk_measures
from swarmvar.types import Forecast


class KnownMeanNormal(Agent):
    name = "KnownMeanNormal"
    min_observations = 10

    def __init__(
        self, mu: float = 0.0, a0: float = 3.0, b0: float = 2e-4, window: int = 0,
        draws: int = 400,
    ) -> None:
        self.mu, self.a0, self.b0, self.window, self.draws = mu, a0, b0, window, draws
        self._buf: deque[float] = deque()
        self._ss = 0.0
        self._seed = 0

    @property
    def posterior(self) -> tuple[float, float]:
        return self.a0 + len(self._buf) / 2, self.b0 + self._ss / 2

    def _push(self, r: float) -> None:
        self._buf.append(r)
        self._ss += (r - self.mu) ** 2
        if self.window and len(self._buf) > self.window:
            old = self._buf.popleft()
            self._ss -= (old - self.mu) ** 2

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        x = self._history(returns)
        self._buf, self._ss = deque(), 0.0
        for r in x:
            self._push(float(r))
        self._seed = int(rng_from(seed).integers(2**31))
        self._fitted = True
        return self

    def update(self, r: float) -> float:
        self._require_fitted()
        value = self._check_return(r)
        a, b = self.posterior
        scale = np.sqrt(b / a)
        z = (value - self.mu) / scale
        nu = 2 * a
        logpdf = (
            special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
            - (nu + 1) / 2 * np.log1p(z * z / nu) - np.log(scale)
        )
        self._push(value)
        return float(logpdf)

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        self._require_fitted()
        h = self._check_horizon(horizon)
        a, b = self.posterior
        sigma2 = b / rng_from(seed).gamma(a, 1.0, size=self.draws)
        fam = StudentTFamily(h * self.mu, np.sqrt(h * sigma2), np.inf)
        return Forecast(self.name, h, risk_measures(fam, alphas))

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        return {"sigma2": self.b0 / rng_from(seed).gamma(self.a0, 1.0, size=n)}

    def simulate(
        self, params: Mapping[str, float], n: int, *, seed: Seed = None
    ) -> NDArray[np.float64]:
        return self.mu + np.sqrt(params["sigma2"]) * rng_from(seed).standard_normal(n)

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        self._require_fitted()
        a, b = self.posterior
        return {"sigma2": b / np.random.default_rng(self._seed).gamma(a, 1.0, size=1000)}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"ss": self._ss, "seed": self._seed}, {"buf": np.asarray(self._buf)}

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        self._buf = deque(float(v) for v in arrays["buf"])
        self._ss, self._seed = float(scalars["ss"]), int(scalars["seed"])


@pytest.fixture(scope="session")
def known_mean_normal() -> type[KnownMeanNormal]:
    return KnownMeanNormal
