"""Bayesian generalized Pareto tail: a grid posterior of ``(xi, beta)`` and its loss family.

Peaks over threshold: excesses ``y = x - u > 0`` of a loss ``x`` over a
threshold ``u`` are modelled as GPD(``xi``, ``beta``) with survival function
``(1 + xi y / beta)^(-1/xi)`` (``exp(-y / beta)`` at ``xi = 0``), the
parameterization of ``scipy.stats.genpareto(c=xi, scale=beta)``.

Posterior: a grid over ``(xi, log beta)`` with flat priors, and a Jeffreys posterior
of the exceedance probability ``p_u`` (:mod:`._gpd_posterior` says how).

:class:`GPDTailFamily` is the conditional loss law per posterior draw for
:func:`~swarmvar.models.risk.risk_measures`: ``L = loc + scale * X`` where
``X`` is empirical below ``u`` and GPD above it (McNeil & Frey 2000), with
closed-form tail probability, quantile and expected excess;
:func:`tail_level_measures_block` solves several such families (days) at once
where they stay in their smooth GPD tails (``GarchEVT.forecast_block``).

Where each concept lives (this module re-exports every name, public and
private, so ``from swarmvar.models.gpd import ...`` keeps working):

* :mod:`._gpd_law`: the GPD law, :func:`gpd_logpdf`, :func:`gpd_survival`
  and ``_TINY_XI`` (the ``xi ~ 0`` cut-off every GPD module uses);
* :mod:`._gpd_grid`: the grid log-likelihood, :func:`grid_loglik` (the
  tabulated sums ``_log1p_sums``, ``_log1p_grid_sums``, ``_TABLE_STEP``)
  and one excess's ``_grid_logpdf``;
* :mod:`._gpd_posterior`: :class:`GPDPosterior`, :func:`gpd_posterior`
  (the fit), the grid constants ``XI_RANGE``, ``XI_STEP``,
  ``LOG_BETA_HALF_WIDTH``, ``LOG_BETA_NODES`` and ``_check_excesses``;
* :mod:`._gpd_tail_family`: :class:`GPDTailFamily` and
  :func:`body_suffix_sums` (GarchEVT's forecasts);
* :mod:`._gpd_tail_block`: :func:`tail_level_measures_block` and its
  solver ``_tail_solve``, ``_Rows`` (GarchEVT's ``forecast_block``).

The constants are read where they are defined: a test that monkeypatches one
must patch it in its own module (patching ``gpd.XI_STEP`` changes nothing).
The classes' ``__module__`` is their new module; nothing saves it (GarchEVT's
state holds arrays and scalars only).
"""

from __future__ import annotations

from ._gpd_grid import _TABLE_STEP as _TABLE_STEP
from ._gpd_grid import _grid_logpdf as _grid_logpdf
from ._gpd_grid import _log1p_grid_sums as _log1p_grid_sums
from ._gpd_grid import _log1p_sums as _log1p_sums
from ._gpd_grid import grid_loglik as grid_loglik
from ._gpd_law import _TINY_XI as _TINY_XI
from ._gpd_law import FloatArray as FloatArray
from ._gpd_law import gpd_logpdf as gpd_logpdf
from ._gpd_law import gpd_survival as gpd_survival
from ._gpd_posterior import LOG_BETA_HALF_WIDTH as LOG_BETA_HALF_WIDTH
from ._gpd_posterior import LOG_BETA_NODES as LOG_BETA_NODES
from ._gpd_posterior import XI_RANGE as XI_RANGE
from ._gpd_posterior import XI_STEP as XI_STEP
from ._gpd_posterior import GPDPosterior as GPDPosterior
from ._gpd_posterior import _check_excesses as _check_excesses
from ._gpd_posterior import gpd_posterior as gpd_posterior
from ._gpd_tail_block import _Rows as _Rows
from ._gpd_tail_block import _tail_solve as _tail_solve
from ._gpd_tail_block import tail_level_measures_block as tail_level_measures_block
from ._gpd_tail_family import GPDTailFamily as GPDTailFamily
from ._gpd_tail_family import body_suffix_sums as body_suffix_sums
