"""MCMC convergence diagnostics (re-exported from :mod:`swarmvar.models.diagnostics`).

Rank-normalized split R-hat, bulk ESS and tail ESS of Vehtari, Gelman,
Simpson, Carpenter & Bürkner (2021). They are implemented with the models,
which check their own fits with them (models sit below validation); this
module is the validation-facing name. Each takes ``draws`` of shape
``(chains, draws_per_chain)``.
"""

from __future__ import annotations

from ..models.diagnostics import ess_basic, ess_bulk, ess_tail, rank_normalize, rhat, split_chains

__all__ = ["ess_basic", "ess_bulk", "ess_tail", "rank_normalize", "rhat", "split_chains"]
