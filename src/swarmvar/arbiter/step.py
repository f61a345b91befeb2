"""The arbiter's beat as one pure function: ``step(state, signals) -> (state, output)``.

Order, as in the design documents: cores (serially or on a pool) ->
``aggregate_recommendations`` -> ``decide`` -> PID recalibration. The PID's
error is the measured beat time against the pulse budget (relative); with
no measurement the controller holds (error 0, which the ε-reset turns into
no correction). Everything in and out is frozen.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from ..errors import InvalidParameter
from ..types import BeatReport, Decision
from .cores import CoreOutputs, DecisionVector, aggregate_recommendations, run_cores
from .decide import AlertEpisode, Quarantined, Thresholds, beat_kinds, decide
from .pid import Genome, PidGains, PidState, PidStep, measured_error, recalibrate
from .pulse import Pulse
from .signals import BeatSignals, SignalConfig, SignalMemory, read_beat
from .threat import ThreatModel


@dataclass(frozen=True)
class ArbiterConfig:
    """Everything a step is tuned by. ``seed_pid`` runs the design's PID mechanics
    (its E rule and renormalization), for reproducing its vectors."""

    pulse: Pulse = field(default_factory=Pulse)
    thresholds: Thresholds = field(default_factory=Thresholds)
    gains: PidGains = field(default_factory=PidGains)
    signals: SignalConfig = field(default_factory=SignalConfig)
    seed_pid: bool = False

    def __post_init__(self) -> None:
        for name, kind in (("pulse", Pulse), ("thresholds", Thresholds), ("gains", PidGains),
                           ("signals", SignalConfig), ("seed_pid", bool)):
            if not isinstance(getattr(self, name), kind):
                raise InvalidParameter(f"the arbiter's {name} must be a {kind.__name__}, not "
                                       f"{getattr(self, name)!r}")


@dataclass(frozen=True)
class ArbiterState:
    """One portfolio's arbiter memory: genome, controller, signal memory, counters and
    the open alert episode, if any."""

    genome: Genome = field(default_factory=Genome)
    pid: PidState = field(default_factory=PidState)
    memory: SignalMemory = field(default_factory=SignalMemory)
    beats: int = 0
    late: int = 0
    episode: AlertEpisode = field(default_factory=AlertEpisode)


@dataclass(frozen=True)
class StepOutput:
    """What one step produced (all of it is recorded in the ledger)."""

    signals: BeatSignals
    cores: CoreOutputs
    vector: DecisionVector
    decision: Decision
    pid: PidStep
    beat_seconds: float | None
    late: bool


def step(state: ArbiterState, signals: BeatSignals, *, config: ArbiterConfig,
         model: ThreatModel, beat_seconds: float | None = None,
         excluded: Collection[str] = (), pool: Executor | None = None,
         quarantined: Mapping[str, Quarantined] | None = None,
         aside: Collection[str] = ()) -> tuple[ArbiterState, StepOutput]:
    """One beat: cores, aggregate, decide (with the open alert episode), recalibrate, and
    the episode moved on (pure; ``pool`` only runs the cores). ``quarantined``: since when
    each excluded agent is quarantined, for the reasons' words; ``aside``: agents held out
    of the consensus otherwise (a sandbox's), left out of a balance (:func:`~.decide.decide`)."""
    cores = run_cores(signals, state.genome, model, config.gains, pool)
    vector = aggregate_recommendations(cores, state.genome)
    decision = decide(vector, signals, excluded, config.thresholds, state.episode,
                      quarantined, aside)
    budget = config.pulse.budget
    error = 0.0 if beat_seconds is None else measured_error(beat_seconds, budget)
    late = beat_seconds is not None and beat_seconds > budget
    genome, pid, pid_step = recalibrate(
        state.genome, state.pid, error, vector.threat, cores.balance.gains,
        seed_beat=state.beats if config.seed_pid else None)
    new = ArbiterState(genome, pid, state.memory, state.beats + 1,
                       state.late + int(late or signals.late),
                       state.episode.after(decision, config.thresholds,
                                           beat_kinds(signals)))
    return new, StepOutput(signals, cores, vector, decision, pid_step, beat_seconds, late)


def observe_step(state: ArbiterState, report: BeatReport, *, config: ArbiterConfig,
                 model: ThreatModel, beat_seconds: float | None = None,
                 excluded: Collection[str] = (), pool: Executor | None = None,
                 quarantined: Mapping[str, Quarantined] | None = None,
                 aside: Collection[str] = ()) -> tuple[ArbiterState, StepOutput]:
    """Read the report's signals (updating the signal memory), then :func:`step` (the same
    ``excluded``, ``pool``, ``quarantined`` and ``aside``)."""
    memory, signals = read_beat(state.memory, report, config.signals)
    return step(replace(state, memory=memory), signals, config=config, model=model,
                beat_seconds=beat_seconds, excluded=excluded, pool=pool,
                quarantined=quarantined, aside=aside)


__all__ = ["AlertEpisode", "ArbiterConfig", "ArbiterState", "Genome", "StepOutput", "Thresholds",
           "observe_step", "step"]
