"""EmpiricalFamily of equally weighted paths (the agents' h-day forecasts): the value sort and
the partition give the numbers of the argsort path bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from swarmvar.models import risk


class ArgsortFamily(risk.EmpiricalFamily):
    """The reference: rows ordered by a stable argsort, the mixture VaR by the pooled sort."""

    def __init__(self, samples: Any, sample_weights: Any = None, weights: Any = None) -> None:
        super().__init__(samples, sample_weights, weights)
        x = np.asarray(samples, dtype=float)
        if x.ndim == 2 and sample_weights is None:
            order = np.argsort(-x, axis=1, kind="stable")
            self.losses = np.take_along_axis(-x, order, axis=1)
        self._even = False


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    ties = np.round(rng.standard_normal((40, 50)) * 0.01, 3)  # many ties
    zeros = rng.standard_normal((30, 40)) * 0.01
    zeros[:, :5] = 0.0
    zeros[:3, 5:9] = -0.0  # signed zeros among the ties
    lump = np.where(rng.random((50, 60)) < 0.5, 0.0, rng.standard_normal((50, 60)))
    lump[::2, ::3] = -0.0
    return [rng.standard_t(4, (200, 500)) * 0.03, ties, zeros, lump,
            rng.standard_normal((1, 30)), rng.standard_normal((7, 1))]


@pytest.mark.parametrize("case", range(6))
def test_equal_weights_give_the_argsort_paths_numbers(case: int) -> None:
    x = _cases()[case]
    new, old = risk.EmpiricalFamily(x), ArgsortFamily(x)
    assert new._even and not old._even  # noqa: SLF001 - the two paths
    np.testing.assert_array_equal(new.losses, old.losses)
    assert np.array_equal(np.signbit(new.losses), np.signbit(old.losses))
    for alpha in (0.05, 0.5, 0.6, 0.9, 0.975, 0.99, 0.999):
        a, b = new.mixture_var(alpha), old.mixture_var(alpha)
        assert a == b and np.signbit(a) == np.signbit(b), (alpha, a, b)
        np.testing.assert_array_equal(new.var(alpha), old.var(alpha))
    assert risk.risk_measures(new, (0.99, 0.975)) == risk.risk_measures(old, (0.99, 0.975))


def test_weighted_families_keep_the_sorted_path() -> None:
    rng = np.random.default_rng(1)
    x, sw, w = rng.standard_normal((20, 30)), rng.random((20, 30)), rng.random(20)
    for args in ((x, sw), (x, None, w), (x, sw, w)):
        fam = risk.EmpiricalFamily(*args)
        assert not fam._even  # noqa: SLF001
        assert risk.risk_measures(fam, (0.99, 0.9)) == risk.risk_measures(
            ArgsortFamily(*args), (0.99, 0.9))
