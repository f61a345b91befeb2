"""swarmvar: Bayesian Value-at-Risk from a swarm of model agents.

``swarmvar.var(returns, agents=..., alphas=..., horizon=..., seed=0)`` runs the
swarm and its consensus (:mod:`swarmvar.api`). Everything heavy (numpy,
pandas, the models) is imported on first use, so ``import swarmvar`` is cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Public name -> module it lives in (imported on first access).
_LAZY: dict[str, str] = {
    "var": "swarmvar.api",
    "VarResult": "swarmvar.api",
    "book_var": "swarmvar.book_api",  # books (multi-asset portfolios)
    "BookResult": "swarmvar.book_api",
    "Book": "swarmvar.types",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swarmvar' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Book", "BookResult", "VarResult", "__version__", "book_var", "var"]
