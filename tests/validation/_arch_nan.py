"""arch's fit made non-finite on its first window, shared by the arch-row tests (imported via
``sys.path``: with ``--import-mode=importlib`` test files cannot import each other)."""

from __future__ import annotations

import math
from typing import Any


class NanNu:
    """arch's fit result with ``nu`` made non-finite."""

    def __init__(self, res: Any) -> None:
        self._res = res
        self.params = res.params.copy()
        self.params["nu"] = math.nan

    def __getattr__(self, name: str) -> Any:
        return getattr(self._res, name)


def first_fit_nan(monkeypatch: Any) -> dict[str, int]:
    """Every arch model's first fit (process-wide) returns a non-finite ``nu``; returns the
    count of fits made (``{"fits": n}``)."""
    import arch

    real = arch.arch_model
    calls = {"fits": 0}

    def model(*args: Any, **kwargs: Any) -> Any:
        m = real(*args, **kwargs)
        fit = m.fit

        def first_nan(*a: Any, **k: Any) -> Any:
            calls["fits"] += 1
            res = fit(*a, **k)
            return NanNu(res) if calls["fits"] == 1 else res

        m.fit = first_nan
        return m

    monkeypatch.setattr(arch, "arch_model", model)
    return calls
