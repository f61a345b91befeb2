"""Write a beat's forecasts (and consensus), or a backtest, into the ledger as one atomic batch.

The runtime composes engines; this is where the swarm's output meets the
ledger, so that neither the models nor the CLI know how entries look.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ledger import EntryKind, Ledger
from ..types import Consensus
from .local import AgentRun

if TYPE_CHECKING:
    from ..validation import BacktestResult


def consensus_record(c: Consensus) -> dict[str, Any]:
    """Plain-JSON form of a consensus for the ledger."""
    return {
        "alpha": c.alpha,
        "horizon": c.horizon,
        "var": c.var,
        "es": c.es,
        "var_interval": list(c.var_interval),
        "es_interval": list(c.es_interval),
        "method": c.method,
        "used": list(c.used),
        "trimmed": list(c.trimmed),
        "rejected": dict(c.rejected),
        "weights": dict(c.weights),
        "available": c.available,
        "total": c.total,
        "staleness": c.staleness,
        "degraded": c.degraded,
        "as_of": c.as_of.isoformat() if c.as_of else None,
    }


def record_beat(
    ledger: Ledger,
    runs: Sequence[AgentRun],
    *,
    source: str,
    as_of: datetime,
    consensus: Sequence[Consensus] = (),
) -> range:
    """Append one FORECAST entry per agent and one CONSENSUS entry per level, atomically."""
    batch: list[tuple[EntryKind, dict[str, Any]]] = []
    for run in runs:
        record: dict[str, Any] = {
            "agent": run.name,
            "source": source,
            "as_of": as_of.isoformat(),
            "fit_seconds": run.fit_seconds,
        }
        if run.forecast is not None:
            record["forecast"] = run.forecast.to_dict()
            if run.diagnostics is not None:
                record["diagnostics"] = run.diagnostics.summary()
        else:
            record["error"] = run.error
        batch.append((EntryKind.FORECAST, record))
    for c in consensus:
        batch.append((EntryKind.CONSENSUS, {"source": source, **consensus_record(c)}))
    return ledger.add_entries(batch)


def _num(x: float | None) -> float | None:
    """A JSON number, or None for a NaN (an undefined test; a row without forecasts, such as
    an arch baseline whose first fit was refused): the ledger refuses NaN."""
    return None if x is None or not math.isfinite(x) else float(x)


def _day_label(d: Any) -> str:
    return d.date().isoformat() if hasattr(d, "date") else str(d)


def record_backtest(
    ledger: Ledger,
    result: BacktestResult,
    *,
    source: str,
    config: Mapping[str, Any] | None = None,
) -> range:
    """Append a backtest: its daily forecasts, each row's tests, and a summary, atomically.

    Entries, in order: one FORECAST per forecast day (every row's VaR, ES and
    intervals at every level, and the realized loss), one BACKTEST per row
    and level (hits, each test's statistic/p-value/df, traffic light,
    pinball and FZ0 losses, seconds), and one BACKTEST summary (run id,
    configuration, days, SHA3-256 of the realized returns). All share the
    run id, so ``swarmvar ledger show`` can find a run's entries. A value that
    is not finite (the NaN forecasts of a row without forecasts, an undefined
    test) is written as null.
    """
    run = uuid.uuid4().hex
    batch: list[tuple[EntryKind, dict[str, Any]]] = []
    losses = result.losses
    for i, day in enumerate(result.dates):
        rows = {
            name: {
                f"{alpha:g}": [_num(float(s.var[i])), _num(float(s.es[i])),
                               _num(float(s.var_lo[i])), _num(float(s.var_hi[i])),
                               _num(float(s.es_lo[i])), _num(float(s.es_hi[i]))]
                for alpha, s in levels.items()
            }
            for name, levels in result.series.items()
        }
        batch.append((EntryKind.FORECAST, {
            "backtest": run, "source": source, "day": _day_label(day), "horizon": result.horizon,
            "loss": _num(float(losses[i])), "columns": ["var", "es", "var_lo", "var_hi", "es_lo",
                                                  "es_hi"],
            "rows": rows,
        }))
    for name, levels in result.evaluation.items():
        for alpha, ev in levels.items():
            hits = result.series[name][alpha].hits
            light = ev.traffic_light
            batch.append((EntryKind.BACKTEST, {
                "backtest": run, "row": name, "alpha": alpha, "hits": int(hits.sum()),
                "days": int(hits.size),
                "tests": {t.value: {"statistic": _num(r.statistic), "pvalue": _num(r.pvalue),
                                    "df": _num(r.df)} for t, r in ev.tests.items()},
                "traffic_light": None if light is None else {
                    "zone": light.zone.value, "exceptions": light.exceptions,
                    "days": light.days, "multiplier": light.multiplier},
                "pinball": _num(ev.pinball), "fz0": _num(ev.fz0),
                "seconds": result.timings[name].total,
            }))
    digest = hashlib.sha3_256(np.ascontiguousarray(result.returns, "<f8").tobytes()).hexdigest()
    batch.append((EntryKind.BACKTEST, {
        "backtest": run, "summary": True, "source": source,
        "first": _day_label(result.dates[0]), "last": _day_label(result.dates[-1]),
        "days": len(result.dates), "rows": list(result.rows), "baseline": result.baseline,
        "alphas": list(result.alphas), "horizon": result.horizon, "window": result.window,
        "refit_every": result.refit_every, "returns_sha3_256": digest, **dict(config or {}),
    }))
    return ledger.add_entries(batch)
