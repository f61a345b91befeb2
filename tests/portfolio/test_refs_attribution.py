"""Euler attribution against outside references beyond the normal case.

* Multivariate Student-t book (elliptical): VaR and ES are
  ``sqrt(p' Sigma p)`` times the scalar t's, and the Euler components are
  ``p_i (Sigma p)_i / sqrt(p' Sigma p)`` times the same factors (closed
  form; McNeil, Frey & Embrechts, *Quantitative Risk Management*, section
  8.5 for the elliptical allocation).
* On the same scenarios, the point ES and component ES are the brute-force
  tail mean of the pooled scenarios (numpy sort), and the marginal ES is the
  numerical derivative ``dES/dp_i`` (central difference of the brute-force
  ES): Euler's theorem, ``sum_i p_i dES/dp_i = ES``, checked without the
  module's own tail weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from _refs_t import t_var_es  # tests/_refs_t.py (on the path: conftest)
from swarmvar.models.attribution import euler
from swarmvar.models.joint_base import Scenarios

SIGMA = np.array([[4.0, 1.2, -0.6], [1.2, 2.25, 0.3], [-0.6, 0.3, 1.0]]) * 1e-4
P = np.array([6e5, -4e5, 3e5])
NU = 5.0


def t_scenarios(draws: int = 20, paths: int = 20_000, seed: int = 0) -> tuple[Scenarios,
                                                                               np.ndarray]:
    """Returns ``log1p(x)``, ``x`` multivariate t(NU, 0, SIGMA): the book loss is ``-x @ p``."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(3), SIGMA, size=(draws, paths))
    w = np.sqrt(NU / rng.chisquare(NU, size=(draws, paths, 1)))
    x = z * w
    return Scenarios(np.log1p(x), np.full(draws, 1 / draws), None, 1), x


def t_closed_form(alpha: float) -> tuple[float, float, np.ndarray]:
    q, es_factor = t_var_es(1.0, NU, alpha)
    sd = float(np.sqrt(P @ SIGMA @ P))
    return q * sd, es_factor * sd, es_factor * P * (SIGMA @ P) / sd


def brute_es(loss: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """ES of equally weighted losses whose tail holds a whole number of them, and its indices."""
    k = int(round((1 - alpha) * loss.size))
    assert abs(k - (1 - alpha) * loss.size) < 1e-6
    top = np.argsort(loss)[-k:]
    return float(loss[top].mean()), top


@pytest.mark.parametrize("alpha", [0.99, 0.975])
def test_euler_matches_the_multivariate_t_closed_form(alpha: float) -> None:
    scen, _ = t_scenarios()
    (att,) = euler(scen, P, (alpha,))
    var, es, ces = t_closed_form(alpha)
    assert att.var == pytest.approx(var, rel=0.03)
    assert att.es == pytest.approx(es, rel=0.04)
    # 4 standard errors alone (no allowance in units of ES, which would swamp the small
    # components); the second line keeps the check able to fail: a component set to zero
    # would be more than 4 standard errors from its closed form.
    assert np.all(np.abs(att.component_es - ces) <= 4 * att.component_es_se)
    assert np.all(np.abs(ces) > 4 * att.component_es_se)
    cvar = ces * var / es  # elliptical: components share the total's VaR/ES ratio
    assert np.all(np.abs(att.component_var - cvar) <= 4 * att.component_var_se)
    assert np.all(np.abs(cvar) > 4 * att.component_var_se)
    assert att.component_es.sum() == pytest.approx(att.es, rel=1e-10)
    assert att.component_var.sum() == pytest.approx(att.var, rel=1e-10)


def test_component_es_is_the_brute_force_tail_mean_and_the_es_gradient() -> None:
    scen, x = t_scenarios(draws=10, paths=10_000, seed=1)
    unit = -x.reshape(-1, 3)  # loss per unit position
    alpha = 0.99
    (att,) = euler(scen, P, (alpha,))
    es, top = brute_es(unit @ P, alpha)
    assert att.es == pytest.approx(es, rel=1e-9)
    np.testing.assert_allclose(att.component_es, P * unit[top].mean(axis=0), rtol=1e-9)
    # Euler: marginal ES = dES/dp_i, by central differences of the brute-force ES
    for i in range(3):
        h = 1e-7 * abs(P[i])  # small enough that no scenario enters or leaves the tail
        up, down = P.copy(), P.copy()
        up[i] += h
        down[i] -= h
        grad = (brute_es(unit @ up, alpha)[0] - brute_es(unit @ down, alpha)[0]) / (2 * h)
        assert att.marginal_es[i] == pytest.approx(grad, rel=1e-5)
    assert float(P @ att.marginal_es) == pytest.approx(att.es, rel=1e-10)
