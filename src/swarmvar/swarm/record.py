"""Write a beat's forecasts (and consensus) into the ledger, as one atomic batch.

The runtime composes engines; this is where the swarm's output meets the
ledger, so that neither the models nor the CLI know how entries look.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..ledger import EntryKind, Ledger
from ..types import Consensus
from .local import AgentRun


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
