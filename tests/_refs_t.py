"""Student-t VaR/ES references shared by the ``test_refs_*`` modules (``from _refs_t
import ...``: ``tests/conftest.py`` puts ``tests/`` on ``sys.path``).

* :func:`t_var_es`: the closed-form VaR and ES of a Student-t loss (scipy's
  ``t``, not standardized); ``tests/validation/test_refs_es.py`` checks it
  against scipy's quadrature of the tail.
* :func:`arch_tail_mean`: the ES of arch's unit-variance standardized t
  (``arch.univariate.StudentsT``), by quadrature of arch's own density, with
  arch's ``ppf`` checked against that density on the way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.univariate import StudentsT
from scipy import integrate, stats

ARCH_T = StudentsT()


def t_var_es(scale: np.ndarray | float, df: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES at ``alpha`` of ``scale * T`` with ``T ~ t(df)`` as the loss (``df > 1``)."""
    q = stats.t.ppf(alpha, df)
    es = stats.t.pdf(q, df) * (df + q * q) / ((df - 1) * (1 - alpha))
    return scale * q, scale * es


def arch_tail_mean(nu: float, alpha: float) -> float:
    """ES of a unit-variance t loss at ``alpha``: ``-E[z | z <= ppf(1 - alpha)]`` by quadrature."""
    q = float(np.asarray(ARCH_T.ppf(np.array([1.0 - alpha]), np.array([nu])))[0])

    def density(z: float) -> float:
        return math.exp(float(np.asarray(ARCH_T.loglikelihood(
            np.array([nu]), np.array([z]), np.ones(1), individual=True))[0]))

    mass = integrate.quad(density, -np.inf, q, epsabs=1e-14, epsrel=1e-12)[0]
    assert mass == pytest.approx(1.0 - alpha, rel=1e-8)  # arch's ppf and density agree
    return -float(integrate.quad(lambda z: z * density(z), -np.inf, q, epsabs=1e-14,
                                 epsrel=1e-12)[0]) / (1.0 - alpha)
