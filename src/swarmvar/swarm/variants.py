"""Which variant of each agent runs for a portfolio, and the evidence fed back about it.

The variant lifecycle (:mod:`swarmvar.evolution`) keeps, per agent class, at
most one champion (ACTIVE) and any number of challengers in a canary
release. Here the runtime and the CLI turn that registry into agents:

* :func:`choose_variants` - for each agent class, the canary if the
  portfolio falls in the canary's current share (a deterministic SHA-256
  bucket of variant id and portfolio, :func:`~swarmvar.evolution.routed_to_canary`),
  else the champion, else the class defaults;
* :func:`build_roster` - the agents themselves, built with the chosen
  variant's constructor parameters;
* :func:`record_runs` / :func:`record_backtest` - performance records of each
  chosen variant (success, latency; breach rate, Kupiec p-value and pinball
  loss from a backtest), so that ``variants canary check`` judges evidence.

The layer rule holds: this runtime module imports the models and the
evolution engine; the engines do not import each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evolution import (
    EvolutionHome,
    MetricRecord,
    Variant,
    VariantStatus,
    open_home,
    routed_to_canary,
)
from ..evolution.db import DB_FILE
from ..models import Agent, agent_class, canonical_name

if TYPE_CHECKING:
    from ..validation.result import BacktestResult
    from .local import AgentRun


class Role(Enum):
    """Why an agent runs the parameters it runs."""

    DEFAULT = "default"  # no variant registered for its class
    CHAMPION = "champion"  # the ACTIVE variant of its class
    CANARY = "canary"  # a CANARY variant; this portfolio is in its share


@dataclass(frozen=True)
class VariantChoice:
    """The variant one agent class runs for one portfolio.

    Attributes
    ----------
    agent : str
        Agent class name (``"NormalInverseGamma"``).
    role : Role
    variant_id : str or None
        None for the class defaults.
    parameters : Mapping[str, object]
        Constructor parameters the variant changes (empty for the defaults).
    """

    agent: str
    role: Role
    variant_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> Agent:
        """The agent, constructed with this choice's parameters."""
        cls = agent_class(self.agent)
        return cls(**dict(self.parameters))


def has_registry(home: str | Path) -> bool:
    """True if ``home`` holds a variant registry (a server URL always may)."""
    text = str(home)
    if "://" in text:
        return True
    path = Path(text)
    return (path / DB_FILE).exists() if path.suffix == "" else path.exists()


def choose_from(variants: Sequence[Variant], names: Sequence[str],
                portfolio: str) -> dict[str, VariantChoice]:
    """:func:`choose_variants` over given variants (no store): name -> choice."""
    out: dict[str, VariantChoice] = {}
    for name in names:
        cls = canonical_name(name)
        mine = [v for v in variants if v.agent_class == cls]
        canary = next((v for v in mine if routed_to_canary(v, portfolio)), None)
        champion = next((v for v in mine if v.status is VariantStatus.ACTIVE), None)
        if canary is not None:
            out[cls] = VariantChoice(cls, Role.CANARY, canary.id, dict(canary.parameters))
        elif champion is not None:
            out[cls] = VariantChoice(cls, Role.CHAMPION, champion.id, dict(champion.parameters))
        else:
            out[cls] = VariantChoice(cls, Role.DEFAULT)
    return out


def choose_variants(home: str | Path | EvolutionHome, names: Sequence[str],
                    portfolio: str) -> dict[str, VariantChoice]:
    """For each agent class in ``names``: the variant it runs for ``portfolio``.

    ``home`` is a data home (or an open :class:`EvolutionHome`). A home with
    no registry yet is not created: every agent runs its defaults.
    """
    if isinstance(home, EvolutionHome):
        live = home.variants.list(VariantStatus.ACTIVE) + home.variants.list(VariantStatus.CANARY)
        return choose_from(live, names, portfolio)
    if not has_registry(home):
        return {canonical_name(n): VariantChoice(canonical_name(n), Role.DEFAULT)
                for n in names}
    opened = open_home(home)
    try:
        return choose_variants(opened, names, portfolio)
    finally:
        opened.close()


def build_roster(choices: Mapping[str, VariantChoice]) -> list[str | Agent]:
    """Agents to run: a name for the defaults, a built agent for a variant."""
    return [c.agent if c.role is Role.DEFAULT else c.build() for c in choices.values()]


def describe(choices: Mapping[str, VariantChoice]) -> str:
    """One line naming the agents that run a variant ('' if none do)."""
    parts = [f"{c.agent}: {c.role.value} {c.variant_id[:8]} "
             f"({', '.join(f'{k}={v!r}' for k, v in c.parameters.items())})"
             for c in choices.values() if c.variant_id is not None]
    return "; ".join(parts)


def run_records(choices: Mapping[str, VariantChoice], runs: Sequence[AgentRun],
                now: float) -> list[MetricRecord]:
    """A performance record per chosen variant from one run of the agents."""
    by_name = {r.name: r for r in runs}
    out = []
    for c in choices.values():
        run = by_name.get(c.agent)
        if c.variant_id is None or run is None:
            continue
        latency = float(run.fit_seconds)
        out.append(MetricRecord(c.variant_id, now, 1.0 if run.ok else 0.0,
                                latency if math.isfinite(latency) and latency >= 0 else 0.0))
    return out


def backtest_records(choices: Mapping[str, VariantChoice], result: BacktestResult,
                     now: float) -> list[MetricRecord]:
    """A record per chosen variant and level from a backtest: the realized evidence.

    ``breach_rate`` is the share of days whose loss exceeded VaR, ``kupiec_p``
    Kupiec's POF p-value, ``pinball_loss`` the mean pinball loss; success is
    1, latency the mean seconds per forecast day.
    """
    from ..validation.result import Test

    out = []
    for c in choices.values():
        if c.variant_id is None or c.agent not in result.series:
            continue
        timing = result.timings.get(c.agent)
        days = max(1, len(result.dates))
        latency = 0.0 if timing is None else (timing.fit + timing.update + timing.forecast) / days
        for alpha, level in result.series[c.agent].items():
            ev = result.evaluation[c.agent][alpha]
            kupiec = ev.tests.get(Test.KUPIEC)
            p = None if kupiec is None or not math.isfinite(kupiec.pvalue) else kupiec.pvalue
            pinball = ev.pinball if math.isfinite(ev.pinball) else None
            out.append(MetricRecord(c.variant_id, now, 1.0, latency if math.isfinite(latency)
                                    else 0.0, breach_rate=float(level.hits.mean()),
                                    kupiec_p=p, pinball_loss=pinball))
    return out


def record_metrics(home: str | Path, records: Sequence[MetricRecord]) -> int:
    """Store ``records`` in the registry of ``home`` (nothing when there are none)."""
    if not records:
        return 0
    opened = open_home(home)
    try:
        return opened.metrics.record(records)
    finally:
        opened.close()
