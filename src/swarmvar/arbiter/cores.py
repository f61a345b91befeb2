"""The four cores (Regen, Balance, Entropy, Optimize) and their weighted aggregate.

Each core is a pure function of the beat's :class:`~.signals.BeatSignals`
and the genome; they can run serially or on a thread pool (the design's
four workers) with the same outputs. :func:`aggregate_recommendations`
weights them by the genome into a :class:`DecisionVector`.

Mapping of the design's undefined decision inputs: ``repair`` is the Regen
core's urgency ``min(0.9, anomalies / 100)``; ``stability`` is the Balance
core's conservation score, the share of agents with no anomaly at this beat.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from .pid import Genome, PidGains
from .signals import BeatSignals
from .threat import ThreatModel

DEFAULT_GAINS = PidGains()


@dataclass(frozen=True)
class RegenOutput:
    """Repair urgency ``min(0.9, anomalies/100)`` and cost (share of agents a repair touches)."""

    urgency: float
    cost: float


@dataclass(frozen=True)
class BalanceOutput:
    """Conservation score (share of clean agents) and the PID gains it hands the controller."""

    conserve: float
    gains: PidGains


@dataclass(frozen=True)
class EntropyOutput:
    """Threat score from the threat model, its per-feature explanation and the model version."""

    threat: float
    explanation: tuple[tuple[str, float], ...]
    version: str


@dataclass(frozen=True)
class OptimizeOutput:
    """Expected gain ``min(0.5, O * 0.12)`` of optional work (the design's formula)."""

    expected_gain: float


@dataclass(frozen=True)
class CoreOutputs:
    regen: RegenOutput
    balance: BalanceOutput
    entropy: EntropyOutput
    optimize: OptimizeOutput

    def to_json(self) -> dict[str, dict[str, object]]:
        return {
            "R": {"urgency": self.regen.urgency, "cost": self.regen.cost},
            "B": {"conserve": self.balance.conserve, "kp": self.balance.gains.kp,
                  "ki": self.balance.gains.ki, "kd": self.balance.gains.kd},
            "E": {"threat": self.entropy.threat, "version": self.entropy.version,
                  "explanation": dict(self.entropy.explanation)},
            "O": {"expected_gain": self.optimize.expected_gain},
        }


@dataclass(frozen=True)
class DecisionVector:
    """The raw scores :func:`~.decide.decide` compares with its thresholds, and the
    genome-weighted emphasis ``w_c * score_c`` of each core (the largest names the
    dominant core, :attr:`dominant`; no rule reads it, and the reasons no longer say it:
    the ledger's flow entries hold each core's score and the genome weights).

    :func:`aggregate_recommendations` builds it from checked signals and genome, so it
    checks nothing itself (a beat's cost; the fuzz tests hold those values finite). A
    vector built by hand and given to :func:`~.decide.decide` is taken as it is: NaN
    scores decide nothing sensible, non-numbers raise where compared."""

    threat: float
    stability: float
    repair: float
    gain: float
    emphasis: tuple[float, float, float, float]

    @property
    def dominant(self) -> str:
        return "RBEO"[max(range(4), key=lambda i: self.emphasis[i])]


def regen_core(signals: BeatSignals, genome: Genome) -> RegenOutput:
    n = len(signals.agents)
    touched = sum(a.anomalies > 0 for a in signals.agents)
    return RegenOutput(min(0.9, signals.anomalies / 100.0), touched / n if n else 0.0)


def balance_core(signals: BeatSignals, genome: Genome, gains: PidGains) -> BalanceOutput:
    n = len(signals.agents)
    clean = sum(a.anomalies == 0 for a in signals.agents)
    return BalanceOutput(clean / n if n else 0.0, gains)


def entropy_core(signals: BeatSignals, model: ThreatModel) -> EntropyOutput:
    x = signals.features
    return EntropyOutput(model.score(x), tuple(model.explain(x).items()), model.version)


def optimize_core(genome: Genome) -> OptimizeOutput:
    return OptimizeOutput(min(0.5, genome.o * 0.12))


def run_cores(signals: BeatSignals, genome: Genome, model: ThreatModel,
              gains: PidGains = DEFAULT_GAINS, pool: Executor | None = None) -> CoreOutputs:
    """The four cores, serially or on ``pool`` (same outputs either way)."""
    if pool is None:
        return CoreOutputs(regen_core(signals, genome), balance_core(signals, genome, gains),
                           entropy_core(signals, model), optimize_core(genome))
    jobs = (pool.submit(regen_core, signals, genome),
            pool.submit(balance_core, signals, genome, gains),
            pool.submit(entropy_core, signals, model), pool.submit(optimize_core, genome))
    return CoreOutputs(jobs[0].result(), jobs[1].result(), jobs[2].result(), jobs[3].result())


def aggregate_recommendations(outputs: CoreOutputs, genome: Genome) -> DecisionVector:
    """The decision vector: raw scores and their genome-weighted emphasis."""
    r, b = outputs.regen.urgency, outputs.balance.conserve
    e, o = outputs.entropy.threat, outputs.optimize.expected_gain
    return DecisionVector(e, b, r, o, (genome.r * r, genome.b * b, genome.e * e, genome.o * o))
