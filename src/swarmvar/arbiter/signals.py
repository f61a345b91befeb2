"""A beat's anomaly signals: what the arbiter reads from a :class:`~swarmvar.types.BeatReport`.

Per agent: its VaR breaches at each level, the drift of its trailing
breach rate (an exponentially weighted rate's z-score against ``1 - α``:
the tail of the PIT at the levels the beat reports), its trailing log score
against the swarm's median, whether its VaR lies outside the others'
credible intervals (below the lowest lower bound or above the highest
upper bound of the others), and whether it was rejected, missing or failed its
convergence diagnostics (:func:`fit_failed`: MCMC's absolute ESS, the particle
weights' ESS as a share of their cloud). For the swarm: the consensus's breaches and
breach-rate drift (and its absence, when the swarm could not agree), the
regime probability and lateness. The trailing
quantities live in a small frozen :class:`SignalMemory`, so reading a beat
is a pure function ``(memory, report) -> (memory, signals)``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..errors import InvalidSignal
from ..models.base import check_real
from ..types import WEIGHTS_MIN_SHARE, BeatReport, Consensus, Diagnostics, Forecast
from .history import CONSENSUS
from .threat import FEATURES

#: A log score of -inf (an agent that called the return impossible) counts as this (nats).
LOG_SCORE_FLOOR = -50.0


@dataclass(frozen=True)
class SignalConfig:
    """How signals are read: EWMA spans (beats) and the anomaly cut-offs.

    A fit fails its diagnostics (:func:`fit_failed`) past ``max_rhat`` (split R-hat), below
    ``min_ess`` bulk or tail ESS (Vehtari et al. 2021's 400: MCMC chains, and the
    particle agents' runs read as chains), or with particle weights whose ESS is below
    ``min_ess_fraction`` of their cloud (:attr:`~swarmvar.types.Diagnostics.ess_fraction`:
    of ``particles``, else of the fit's ``draws``; ``min_ess`` itself when the diagnostics
    give neither). Its default, ``types.WEIGHTS_MIN_SHARE`` (0.05), is also the runtime's
    guards' cut (``RoleConfig.guard_min_ess``), the agents' fit warning's and the share
    below which the particle agents themselves stop trusting a reweighted cloud
    (``REFIT_MIN_ESS``); they resample below half their cloud, so a healthy cloud
    drifts between half and all of it between rejuvenations (GarchT's 500 particles:
    ESS 250-500, 0.5-1 of the cloud), which the absolute 400 called failed on 100 of
    250 demo beats.
    """

    coverage_span: float = 250.0
    score_span: float = 60.0
    coverage_z: float = 2.0
    score_gap: float = 0.10
    regime: float = 0.5
    max_rhat: float = 1.01
    min_ess: float = 400.0
    min_ess_fraction: float = WEIGHTS_MIN_SHARE

    def __post_init__(self) -> None:
        # a span of n beats weighs the past by 1 - 1/n: below 1 beat there is no memory
        for name in ("coverage_span", "score_span"):
            check_real(name, getattr(self, name), 1.0, 1e9, low_open=True)
        check_real("coverage_z", self.coverage_z, 0.0, 1e6)
        check_real("score_gap", self.score_gap, 0.0, 1e6)
        check_real("regime", self.regime, 0.0, 1.0)
        check_real("max_rhat", self.max_rhat, 1.0, 1e6)
        check_real("min_ess", self.min_ess, 0.0, 1e12)
        check_real("min_ess_fraction", self.min_ess_fraction, 0.0, 1.0)


@dataclass(frozen=True)
class AgentMemory:
    """An agent's exponentially weighted breach rates (one per level) and log score."""

    rates: tuple[float, ...]
    score: float | None = None


@dataclass(frozen=True)
class SignalMemory:
    """Trailing state per agent (and ``"consensus"``) of one portfolio."""

    alphas: tuple[float, ...] = ()
    agents: Mapping[str, AgentMemory] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentSignals:
    """One agent's signals at one beat."""

    agent: str
    breaches: tuple[bool, ...]
    coverage_z: tuple[float, ...]
    score_gap: float
    outside_low: bool
    outside_high: bool
    failed: bool
    drifting: bool
    lagging: bool
    #: Anomaly count: breaches + coverage drift + outside + score lag + failure.
    anomalies: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "anomalies", (
            sum(self.breaches) + int(self.drifting) + int(self.outside_low or self.outside_high)
            + int(self.lagging) + int(self.failed)))

    #: Per level, the binomial tail probability of the agent's exponentially weighted
    #: breach count (:func:`breach_tail_p`); 1.0 unless the level's coverage z exceeds
    #: ``coverage_z`` (only then is p computed).
    tail_p: tuple[float, ...] = ()
    #: Per level, ``(α, k, n)``: the level, the exponentially weighted breach count and
    #: the window's effective size behind ``tail_p``.
    tail_counts: tuple[tuple[float, float, float], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"agent": self.agent, "breaches": list(self.breaches),
                "coverage_z": list(self.coverage_z), "score_gap": self.score_gap,
                "outside_low": self.outside_low, "outside_high": self.outside_high,
                "failed": self.failed, "anomalies": self.anomalies}


@dataclass(frozen=True)
class BeatSignals:
    """Everything the cores read at one beat; ``features`` is ordered as
    :data:`~swarmvar.arbiter.threat.FEATURES`."""

    portfolio: str
    seq: int
    as_of_s: float
    agents: tuple[AgentSignals, ...]
    consensus_breaches: tuple[bool, ...]
    consensus_z: tuple[float, ...]
    regime: float
    late: bool
    features: tuple[float, ...]

    @property
    def anomalies(self) -> int:
        return int(self.features[0])

    def agent(self, name: str) -> AgentSignals:
        for a in self.agents:
            if a.agent == name:
                return a
        raise KeyError(name)


def _z(rate: float, p: float, lam: float) -> float:
    sd = math.sqrt(p * (1.0 - p) * (1.0 - lam) / (1.0 + lam))
    return (rate - p) / sd


def effective_window(lam: float) -> float:
    """The effective sample size (Kish) of exponential weights ``λ^i``: ``(1 + λ) / (1 - λ)``
    beats (499 for a span of 250)."""
    return (1.0 + lam) / (1.0 - lam)


def breach_tail_p(rate: float, p: float, lam: float) -> tuple[float, float, float]:
    """An exponentially weighted breach rate as a binomial exceedance test.

    The rate (weights ``(1 - λ) λ^i``) is read as ``k = rate · n`` breaches in
    ``n =`` :func:`effective_window` beats; returns ``(P(X >= k), k, n)`` for
    ``X ~ Binomial(n, p)`` (the regularized incomplete beta, so ``k`` need not be
    whole): Kupiec's one-sided question on the trailing window. ``1.0`` when
    ``k <= n p`` (no excess).
    """
    n = effective_window(lam)
    k = rate * n
    if k <= n * p:
        return 1.0, k, n
    from scipy.special import betainc

    return float(betainc(k, n - k + 1.0, p)), k, n


def fit_failed(d: Diagnostics, config: SignalConfig = SignalConfig()) -> bool:
    """Whether a fit's diagnostics say its forecast is not to be trusted: any doubt of
    :meth:`~swarmvar.types.Diagnostics.doubts` (the agents' fit warning's rule) at the
    config's ``max_rhat``, ``min_ess`` and ``min_ess_fraction`` (see :class:`SignalConfig`):
    split R-hat above ``max_rhat``; a bulk or tail ESS below ``min_ess``; the particle
    weights' ESS below ``min_ess_fraction`` of their cloud (``particles``, else ``draws``;
    below ``min_ess`` when neither is given). A value that is not a number (NaN: a
    collapsed cloud's R-hat) fails. Diagnostics with no R-hat (exact posteriors, online
    updates that report only their weights) are judged on what they give; with nothing to
    judge, a fit passes.

    Raises
    ------
    TypeError
        A diagnostics field holding something other than numbers (:func:`read_beat`
        names the report's field).
    """
    return bool(d.doubts(config.max_rhat, config.min_ess, config.min_ess_fraction))


def _finite(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidSignal(f"{what} is {value!r}; beat signals must be finite numbers")
    return float(value)


def _diagnostics_fault(d: Diagnostics) -> str | None:
    """What is wrong with the numbers of a report's diagnostics (None: nothing): ``ess`` a
    number > 0 or NaN (a collapsed cloud's: the fit fails, as a NaN R-hat does), ``draws``
    and ``particles`` whole numbers > 0 (where given, booleans refused); the per-parameter
    R-hat and ESS numbers (NaN let through: the fit fails). numpy's numbers are numbers."""
    real = (int, float, np.integer, np.floating)
    if d.ess is not None and (isinstance(d.ess, bool) or not isinstance(d.ess, real)
                              or math.isinf(d.ess) or d.ess <= 0):
        return f"ess is {d.ess!r}, not a number > 0"
    for what, count in (("draws", d.draws), ("particles", d.particles)):
        if count is not None and (isinstance(count, bool)
                                  or not isinstance(count, (int, np.integer)) or count <= 0):
            return f"{what} is {count!r}, not a whole number > 0"
    for what, values in (("rhat", d.rhat), ("ess_bulk", d.ess_bulk), ("ess_tail", d.ess_tail)):
        if not isinstance(values, Mapping) or not all(
                isinstance(v, real) and not isinstance(v, bool) for v in values.values()):
            return f"{what} is {values!r}, not parameter names mapped to numbers"
    return None


def _check_report(report: BeatReport) -> None:
    """The report's fields have the types the arbiter reads (a BeatReport does not check)."""
    if not isinstance(report.portfolio, str) or not report.portfolio:
        raise InvalidSignal(f"the report's portfolio must be a name, not {report.portfolio!r}")
    if isinstance(report.seq, bool) or not isinstance(report.seq, int) or report.seq < 0:
        raise InvalidSignal(f"the report's seq must be a whole number >= 0, not {report.seq!r}")
    if not isinstance(report.as_of, datetime):
        raise InvalidSignal(f"the report's as_of must be a datetime, not {report.as_of!r}")
    if not isinstance(report.late, bool):
        raise InvalidSignal(f"the report's late flag must be True or False, not "
                            f"{report.late!r}")
    for what, value, kind in (("breaches", report.breaches, tuple),
                              ("log_scores", report.log_scores, (int, float)),
                              ("forecasts", report.forecasts, Forecast),
                              ("diagnostics", report.diagnostics, Diagnostics),
                              ("rejected", report.rejected, str)):
        if not isinstance(value, Mapping):
            raise InvalidSignal(f"the report's {what} must map agent names to values, not "
                                f"{type(value).__name__}")
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidSignal(f"the report's {what} names an agent {name!r}; agent names "
                                    "are strings")
            if not isinstance(item, kind) or isinstance(item, bool) and kind == (int, float):
                raise InvalidSignal(f"the report's {what} of {name} is {item!r}, not a "
                                    + (kind.__name__ if isinstance(kind, type) else "number"))
            if isinstance(item, tuple) and not all(isinstance(b, (bool, np.bool_)) for b in item):
                raise InvalidSignal(f"the report's breaches of {name} must be booleans, not "
                                    f"{item!r}")
            fault = _diagnostics_fault(item) if isinstance(item, Diagnostics) else None
            if fault is not None:
                raise InvalidSignal(f"the diagnostics of {name}: {fault}")
    if not isinstance(report.consensus, tuple) or not all(
            isinstance(c, Consensus) for c in report.consensus):
        raise InvalidSignal("the report's consensus must be a tuple of Consensus (one per "
                            "level)")


def _scalars(report: BeatReport) -> float:
    """The report's realized return and regime probability checked finite (the latter in
    [0, 1]); returns the regime probability."""
    _finite("the realized return", report.realized)
    regime = _finite("regime_probability", report.regime_probability)
    if not 0.0 <= regime <= 1.0:
        raise InvalidSignal(f"regime_probability {regime} is outside [0, 1]")
    return regime


def check_beat(report: BeatReport) -> None:
    """Every field of ``report`` checked as :func:`read_beat` would (types, a finite realized
    return and regime probability), for a beat that is not read (e.g. one without levels).

    Raises
    ------
    InvalidSignal
        Naming the field at fault.
    """
    if not isinstance(report, BeatReport):
        raise InvalidSignal(f"the arbiter observes BeatReport objects, not {type(report).__name__}")
    _check_report(report)
    _scalars(report)


def levels_of(memory: SignalMemory, report: BeatReport) -> tuple[float, ...]:
    """The levels a beat is read at: its consensus levels; without a consensus, the levels
    of earlier beats (``memory``) or of its first forecast; ``()`` when there are none (every
    agent refused the portfolio's first beats).

    Raises
    ------
    InvalidSignal
        The report's consensus or forecasts are not what a BeatReport holds.
    """
    try:
        alphas = tuple(c.alpha for c in report.consensus)
        if alphas:
            return alphas
        return memory.alphas or next((fc.alphas for fc in report.forecasts.values()), ())
    except (TypeError, AttributeError) as exc:
        _check_report(report)
        raise InvalidSignal(f"beat report could not be read: {exc!r}") from exc


def read_beat(memory: SignalMemory, report: BeatReport, config: SignalConfig = SignalConfig()
              ) -> tuple[SignalMemory, BeatSignals]:
    """This beat's signals and the memory updated by it.

    Raises
    ------
    InvalidSignal
        A non-finite return, VaR, interval, log score or regime probability;
        breach flags of the wrong length; no consensus levels; diagnostics whose weights'
        ESS, draws or cloud size is not a number > 0 (named: "the diagnostics of X").
    """
    if not isinstance(report, BeatReport):
        raise InvalidSignal(f"the arbiter observes BeatReport objects, not {type(report).__name__}")
    if not isinstance(memory, SignalMemory):
        raise InvalidSignal(f"memory must be a SignalMemory, not {type(memory).__name__}")
    if not isinstance(config, SignalConfig):
        raise InvalidSignal(f"config must be a SignalConfig, not {type(config).__name__}")
    # The whole report is checked field by field only when reading it fails (naming the
    # field at fault); what a read would take silently is checked on the way (cheap).
    try:
        return _read(memory, report, config)
    except InvalidSignal:
        raise  # the read's own refusals name what was wrong already
    except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
        _check_report(report)
        raise InvalidSignal(f"beat report could not be read: {exc!r}") from exc


def _read(memory: SignalMemory, report: BeatReport, config: SignalConfig
          ) -> tuple[SignalMemory, BeatSignals]:
    """:func:`read_beat` on checked arguments; the report's fields are checked as read."""
    checked = False

    def check_all() -> None:  # once per read at most (a subclass passes it: valid)
        nonlocal checked
        if not checked:
            _check_report(report)
            checked = True

    if (type(report.portfolio) is not str or not report.portfolio
            or type(report.seq) is not int or report.seq < 0
            or type(report.as_of) is not datetime
            or type(report.late) is not bool or type(report.consensus) is not tuple
            or type(report.breaches) is not dict or type(report.log_scores) is not dict
            or type(report.forecasts) is not dict or type(report.diagnostics) is not dict
            or type(report.rejected) is not dict
            or not all(type(c) is Consensus for c in report.consensus)
            or not all(type(v) is str for v in report.rejected.values())
            or not all(type(k) is str and type(d) is Diagnostics and _diagnostics_fault(d) is None
                       for k, d in report.diagnostics.items())):
        check_all()  # names the field (a subclass, or a Mapping, is let through)
    regime = _scalars(report)
    no_consensus = not report.consensus  # the swarm could not agree: itself an anomaly
    alphas = levels_of(memory, report)
    if not alphas:
        raise InvalidSignal(f"beat {report.seq} of {report.portfolio} has neither consensus "
                            "levels nor forecasts (and no earlier beat to take levels from)")
    if memory.alphas and memory.alphas != alphas:
        raise InvalidSignal(f"beat {report.seq} has levels {alphas}; earlier beats had "
                            f"{memory.alphas}")
    lam_c = 1.0 - 1.0 / config.coverage_span
    lam_s = 1.0 - 1.0 / config.score_span
    names = sorted(set(report.forecasts) | set(report.rejected) | set(report.log_scores)
                   | {a for a in report.breaches if a != CONSENSUS} | {
                       a for a in memory.agents if a != CONSENSUS})
    if not all(type(n) is str for n in names):
        check_all()
    new: dict[str, AgentMemory] = {}

    def absorb(name: str, flags: tuple[bool, ...]) -> tuple[float, ...]:
        if type(flags) is not tuple or not all(
                f is True or f is False or type(f) is np.bool_ for f in flags):
            check_all()
        if len(flags) not in (0, len(alphas)):
            raise InvalidSignal(f"breaches of {name} hold {len(flags)} flags; the beat has "
                                f"{len(alphas)} levels")
        old = memory.agents.get(name)
        rates = old.rates if old is not None else tuple(1.0 - a for a in alphas)
        if flags:
            rates = tuple(lam_c * r + (1.0 - lam_c) * float(f) for r, f in zip(
                rates, flags, strict=True))
        new[name] = AgentMemory(rates, old.score if old is not None else None)
        return tuple(_z(r, 1.0 - a, lam_c) for r, a in zip(rates, alphas, strict=True))

    # scores first: the swarm's median needs every agent's
    scores: dict[str, float] = {}
    for name, ls in report.log_scores.items():  # -inf: the agent called the return
        scores[name] = (LOG_SCORE_FLOOR  # impossible (a float -inf only: no look-alikes)
                        if isinstance(ls, float) and ls == -math.inf
                        else _finite(f"the log score of {name}", ls))
    level0 = alphas[0]
    points: dict[str, tuple[float, float, float]] = {}
    for name, fc in report.forecasts.items():
        if type(fc) is not Forecast:
            check_all()
        try:
            m = fc.at(level0)
        except KeyError as exc:
            raise InvalidSignal(f"the forecast of {name} has no level {level0:g}") from exc
        for v in (m.var, m.es, *m.var_interval):
            _finite(f"the forecast of {name}", v)
        points[name] = (m.var, m.var_interval[0], m.var_interval[1])

    zs = {name: absorb(name, report.breaches.get(name, ())) for name in names}
    cz = absorb(CONSENSUS, report.breaches.get(CONSENSUS, ()))
    for name in names:
        got = scores.get(name)
        if got is not None:
            prev = new[name].score
            score = got if prev is None else lam_s * prev + (1.0 - lam_s) * got
            new[name] = AgentMemory(new[name].rates, score)
    scored = [m.score for n, m in new.items() if n != CONSENSUS and m.score is not None]
    median_score = statistics.median(scored) if scored else 0.0

    agents = []
    n_eff = effective_window(lam_c)  # the p-value only where it can be small (cheap)
    for name in names:
        flags = tuple(bool(b) for b in report.breaches.get(name, ()))
        others = [p for n, p in points.items() if n != name]
        low = high = False
        if name in points and others:
            lo = min(o[1] for o in others)
            hi = max(o[2] for o in others)
            low, high = points[name][0] < lo, points[name][0] > hi
        d = report.diagnostics.get(name)
        failed = (name in report.rejected or name not in report.forecasts
                  or d is not None and fit_failed(d, config))
        own = new[name].score
        gap = 0.0 if own is None else own - median_score
        tails = [(a, *(breach_tail_p(r, 1.0 - a, lam_c) if z > config.coverage_z
                       else (1.0, r * n_eff, n_eff)))
                 for r, a, z in zip(new[name].rates, alphas, zs[name], strict=True)]
        agents.append(AgentSignals(
            name, flags, zs[name], gap, low, high, failed,
            drifting=max(zs[name]) > config.coverage_z, lagging=gap < -config.score_gap,
            tail_p=tuple(t[1] for t in tails),
            tail_counts=tuple((t[0], t[2], t[3]) for t in tails)))
    cflags = tuple(bool(b) for b in report.breaches.get(CONSENSUS, ()))
    total = (sum(a.anomalies for a in agents) + sum(cflags) + int(regime > config.regime)
             + int(report.late) + int(no_consensus))
    features = (
        float(total), float(sum(cflags)), float(sum(sum(a.breaches) for a in agents)),
        float(sum(a.drifting for a in agents)), min(5.0, max(-3.0, max(cz))),
        float(sum(a.outside_low or a.outside_high for a in agents)),
        float(sum(a.lagging for a in agents)), float(sum(a.failed for a in agents)), regime)
    assert len(features) == len(FEATURES)
    signals = BeatSignals(report.portfolio, report.seq, report.as_of.timestamp(), tuple(agents),
                          cflags, cz, regime, report.late, features)
    return SignalMemory(alphas, new), signals
