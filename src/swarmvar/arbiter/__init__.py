"""The arbiter (layer 3): each beat's decisions about a portfolio's swarm of VaR agents.

The design documents' VENOM arbiter, mapped onto risk decisions: the T_Λ
pulse paces beats (:mod:`.pulse`); four cores read the beat's anomaly
signals (:mod:`.signals`, :mod:`.cores`); ``decide`` picks QUARANTINE /
ALERT / APPLY_BALANCE / APPLY_OPTIMIZE / NOOP by thresholds (:mod:`.decide`);
a genomic PID closes the loop on the measured beat time (:mod:`.pid`); a
logistic threat model scores the anomalies (:mod:`.threat`), versioned in
the evolution registry (:mod:`.versions`). :func:`step` is the pure beat;
:class:`Arbiter` the stateful observer the runtime calls; :class:`Drift` and
:func:`drill` inject a drifting agent into a replay (:mod:`.drill`). See docs/arbiter.md.
"""

from .arbiter import QUARANTINE_BREAKER, Arbiter, Retraining, threat_labels
from .cores import (
    CoreOutputs,
    DecisionVector,
    aggregate_recommendations,
    balance_core,
    entropy_core,
    optimize_core,
    regen_core,
    run_cores,
)
from .decide import SEED_THRESHOLDS, AlertEpisode, BalanceTarget, Thresholds, decide
from .drill import Drift, DrillResult, drifted, drill
from .history import BeatHistory, cached_history
from .pid import Genome, PidGains, PidState, PidStep, recalibrate, seed_error
from .pulse import Cadence, Pulse, t_lambda
from .signals import AgentSignals, BeatSignals, SignalConfig, SignalMemory, read_beat
from .step import ArbiterConfig, ArbiterState, StepOutput, observe_step, step
from .threat import (
    FEATURES,
    SEED_MODEL,
    AucComparison,
    ThreatModel,
    block_bootstrap_auc_difference,
    compare_auc,
    fit_threat_model,
    roc_auc,
)
from .versions import ThreatVersions

__all__ = [
    "FEATURES", "QUARANTINE_BREAKER", "SEED_MODEL", "SEED_THRESHOLDS", "AgentSignals",
    "AlertEpisode", "AucComparison", "block_bootstrap_auc_difference", "compare_auc",
    "Arbiter", "ArbiterConfig", "ArbiterState", "BalanceTarget", "BeatHistory", "BeatSignals",
    "Cadence",
    "CoreOutputs", "DecisionVector", "Drift", "DrillResult", "drifted", "drill",
    "Genome", "PidGains", "PidState", "PidStep", "Pulse",
    "Retraining", "SignalConfig", "SignalMemory", "StepOutput", "ThreatModel",
    "ThreatVersions", "Thresholds", "aggregate_recommendations", "balance_core",
    "cached_history", "decide", "entropy_core", "fit_threat_model", "observe_step",
    "optimize_core", "read_beat", "recalibrate", "regen_core", "roc_auc", "run_cores",
    "seed_error", "step", "t_lambda", "threat_labels",
]
