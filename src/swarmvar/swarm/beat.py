"""The beat of one portfolio's swarm: update, refit if due, forecast, sign, combine.

:class:`PortfolioSwarm` holds one portfolio's agents and everything the beat
carries between ticks (the online track record, the roles' state, the last
forecasts). Its life mirrors the backtest driver's day for day:

* :meth:`PortfolioSwarm.start` fits every agent on the last ``window``
  returns of the history (seed ``(seed, row, t, 0)``, ``t`` the count of
  history returns, as :func:`~swarmvar.validation.backtest` seeds day ``t``)
  and forecasts the first day (seed ``(seed, row, t, 1)``);
* each :meth:`PortfolioSwarm.beat` absorbs one realized return in every
  agent (``update``: its log predictive score), scores the previous
  forecasts (breaches, the track record, the builders), refits on the
  backtest's rhythm (every ``refit_every`` returns, on the trailing window)
  or when a role or the arbiter asks, forecasts the next day, signs each
  agent's measures with its key and combines them with
  :func:`~swarmvar.consensus.combine` under the swarm's policy — the track
  record updated online, one row per beat.

So with the same seeds, window and refit rhythm the forecasts are the
backtest's, bit for bit (``refit_lag=0``). It runs wherever the executor
puts it (this process, a worker process, a Ray actor) and its whole state
is bytes (:meth:`PortfolioSwarm.state`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import NDArray

from ..canonical import Canonical
from ..consensus import (
    KeyRing,
    Policy,
    TemperedWeights,
    TrackRecord,
    Weighting,
    combine,
    sign_measures,
)
from ..consensus.combine import agent_weights, aggregate_rows
from ..consensus.signing import OwnSignatures, estimate_record
from ..consensus.tempered import TEMPERED_ETA
from ..errors import InvalidParameter, NotEnoughAgents, SandboxViolation, SwarmVarError
from ..models import Agent
from ..types import BeatReport, Consensus, Diagnostics, Estimate, Forecast
from . import state as packing
from .consensus import SWARM_POLICY, agent_keys, uncrossed
from .roles import (
    Builders,
    Guards,
    RefitJob,
    RefitResult,
    RoleConfig,
    RoleRecord,
    Scouts,
    TrailingRows,
    fit_seed,
)
from .sandboxing import AgentHost, SandboxSetup

FloatArray = NDArray[np.float64]
CONSENSUS = "consensus"


@dataclass(frozen=True)
class PortfolioConfig:
    """Everything that fixes one portfolio swarm's numbers (picklable, JSON-able).

    ``params`` maps an agent name to constructor arguments (a variant's), if
    any, and ``variants`` to the variant id its estimates are signed with.
    Both are chosen when the swarm starts; a resumed swarm keeps the agents
    (and parameters) of its checkpoint, so neither is part of the fingerprint.
    """

    portfolio: str
    agents: tuple[str, ...]
    alphas: tuple[float, ...] = (0.99, 0.975)
    horizon: int = 1
    window: int = 1000
    refit_every: int = 20
    seed: int = 0
    home: str = ".swarmvar"
    roles: RoleConfig = field(default_factory=RoleConfig)
    policy: Policy = SWARM_POLICY
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)
    #: where the agents live (None: in the beat's process); not in the fingerprint
    #: (sandboxed agents give the same numbers)
    sandbox: SandboxSetup | None = None
    #: agent groups the portfolio is spread over (:mod:`.spread`; 1: not spread)
    spread: int = 1
    #: a group of a spread portfolio: the portfolio its agents sign for (they sign, the
    #: runtime combines); None: a whole portfolio, combined here
    group_of: str | None = None
    #: the agents' rows in that portfolio (their seeds, as the backtest's); (): 0..n-1
    rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # a deferred refit still pending skips the next scheduled one (_refits): a lag beyond
        # the refit rhythm would drop refits silently, so it is refused
        if (isinstance(self.refit_every, int) and not isinstance(self.refit_every, bool)
                and self.roles.refit_lag > self.refit_every):
            raise InvalidParameter(
                f"refit_lag {self.roles.refit_lag} is longer than refit_every "
                f"{self.refit_every}: each refit would still be pending when the next is due, "
                "and that one would be skipped; give a refit_lag of at most refit_every "
                "(--refit-lag <= --refit-every on the command line)")

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed under this configuration."""
        spread = ({"spread": self.spread, "group_of": self.group_of, "rows": list(self.rows)}
                  if self.spread > 1 else {})
        return {"portfolio": self.portfolio, "agents": list(self.agents),
                "alphas": list(self.alphas), "horizon": self.horizon, "window": self.window,
                "refit_every": self.refit_every, "seed": self.seed,
                "refit_lag": self.roles.refit_lag, "policy": self._policy_in_force(), **spread}

    def row(self, agent: str) -> int:
        """The agent's row in its portfolio (what seeds its fits and forecasts)."""
        k = self.agents.index(agent)
        return self.rows[k] if self.rows else k

    def _policy_in_force(self) -> str:
        """The policy as this roster meets it: f steps it never reaches leave no trace, so a
        home checkpointed before a step existed resumes when its numbers are unchanged."""
        reached = tuple(st for st in self.policy.f_steps if len(self.agents) >= st[0])
        return dataclasses.replace(self.policy, f_steps=reached).method


@dataclass(frozen=True)
class BeatInput:
    """One beat's tick and the instructions that came with it.

    ``excluded`` agents are held out of the consensus (quarantine);
    ``factors`` multiply their weights (APPLY_BALANCE); ``swaps`` are finished
    refits due now; ``requests`` are refits asked for (agent or ``"*"``, reason).
    """

    seq: int
    as_of: datetime
    value: float
    excluded: frozenset[str] = frozenset()
    factors: Mapping[str, float] = field(default_factory=dict)
    swaps: tuple[RefitResult, ...] = ()
    requests: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BeatOutcome:
    """What a beat produced: the report, the signed estimates, refit jobs and role records.

    ``estimate_records`` are the ledger's records of ``estimates``, one each,
    written from the bytes just signed (:func:`~swarmvar.consensus.signing.estimate_record`:
    the canonical JSON of each estimate's payload and signature, not written again).
    """

    report: BeatReport
    estimates: tuple[Estimate, ...]
    jobs: tuple[RefitJob, ...] = ()
    roles: tuple[RoleRecord, ...] = ()
    validation: Mapping[str, Mapping[float, Any]] = field(default_factory=dict)
    seconds: Mapping[str, float] = field(default_factory=dict)
    estimate_records: tuple[Canonical, ...] = ()


def _median_fill(row: FloatArray) -> FloatArray:
    """Missing entries (NaN) of one day's forecasts replaced by the others' median."""
    bad = ~np.isfinite(row)
    if bad.any() and (~bad).any():
        row = row.copy()
        row[bad] = float(np.median(row[~bad]))
    return row


class OnlineTrackRecord:
    """The agents' realized record, one row per beat, trailing ``window`` rows.

    ``push`` adds the forecasts made for a day and the return that came;
    :meth:`records` gives the :class:`~swarmvar.consensus.TrackRecord` of each
    level that :func:`~swarmvar.consensus.combine` weights with. Rows are
    appended, never recomputed from history.

    Under tempered weighting (the swarm's default) each push also scores the
    row in a :class:`~swarmvar.consensus.TemperedWeights` (``O(agents)``), and
    :meth:`weights` gives the agents' weights from it: the numbers
    :func:`~swarmvar.consensus.agent_weights` computes from :meth:`records`
    (to rounding; online equals batch is tested), without re-scoring the
    whole window at every beat. The accumulator travels in :meth:`arrays`,
    so a resumed swarm continues from the same sums, bit for bit.
    """

    def __init__(self, agents: Sequence[str], alphas: Sequence[float], window: int | None,
                 *, policy: Policy | None = None) -> None:
        self.agents = tuple(agents)
        self.alphas = tuple(alphas)
        self.window = window
        n = len(self.agents)
        self.returns = np.zeros(0)
        self.var = {a: np.zeros((0, n)) for a in self.alphas}
        self.es = {a: np.zeros((0, n)) for a in self.alphas}
        self.policy = policy
        self.tempered = self._fresh_tempered()
        # the trailing rows, appended without copying the window at every beat
        self._rings = {("returns", None): TrailingRows(self.returns, window)} | {
            (kind, a): TrailingRows(getattr(self, kind)[a], window)
            for kind in ("var", "es") for a in self.alphas}

    def _fresh_tempered(self) -> TemperedWeights | None:
        """An empty accumulator for the policy, or None when its weights are not tempered."""
        p = self.policy
        if (p is None or p.weighting is not Weighting.TEMPERED or p.window is None
                or p.window != self.window or not 1 <= p.window <= 100_000):
            return None
        return TemperedWeights(self.agents, self.alphas, window=p.window, loss=p.loss,
                               eta=TEMPERED_ETA if p.eta is None else p.eta)

    def __len__(self) -> int:
        return int(self.returns.size)

    def push(self, realized: float, var: Mapping[float, FloatArray],
             es: Mapping[float, FloatArray]) -> None:
        rings = self._rings
        self.returns = rings["returns", None].append(self.returns, realized)
        filled_var = [_median_fill(var[a]) for a in self.alphas]
        filled_es = [_median_fill(es[a]) for a in self.alphas]
        for a, fv, fe in zip(self.alphas, filled_var, filled_es, strict=True):
            self.var[a] = rings["var", a].append(self.var[a], fv)
            self.es[a] = rings["es", a].append(self.es[a], fe)
        if self.tempered is not None:
            try:
                self.tempered.update(realized, np.stack(filled_var), np.stack(filled_es))
            except InvalidParameter:  # a row it cannot score (NaN, ES <= 0): the batch path
                self.tempered = None  # says so at combine, as it always did

    def weights(self) -> dict[str, float] | None:
        """Each agent's tempered weight now, or None (no row yet, or not tempered)."""
        if self.tempered is None or len(self) == 0:
            return None
        return dict(zip(self.agents, self.tempered.weights().tolist(), strict=True))

    def records(self) -> list[TrackRecord] | None:
        if len(self) == 0:
            return None
        return [TrackRecord(self.agents, self.returns.copy(), a, self.var[a].copy(),
                            self.es[a].copy()) for a in self.alphas]

    def arrays(self) -> dict[str, NDArray[Any]]:
        out: dict[str, NDArray[Any]] = {"track_returns": self.returns}
        for i, a in enumerate(self.alphas):
            out[f"track_var_{i}"] = self.var[a]
            out[f"track_es_{i}"] = self.es[a]
        if self.tempered is not None:
            # the state carries the running sums: a resumed run continues bit for bit
            out["track_tempered"] = packing.as_bytes_array(self.tempered.to_state())
        return out

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.returns = np.asarray(arrays["track_returns"], dtype=np.float64)
        for i, a in enumerate(self.alphas):
            self.var[a] = np.asarray(arrays[f"track_var_{i}"], dtype=np.float64)
            self.es[a] = np.asarray(arrays[f"track_es_{i}"], dtype=np.float64)
        self.tempered = self._fresh_tempered()
        if self.tempered is None:
            return
        blob = arrays.get("track_tempered")
        if blob is not None:  # the sums as they were: continues bit for bit
            # checkpoints of format-1 states kept the running sums beside them
            old_sums = arrays.get("track_tempered_sum")
            restored = TemperedWeights.from_state(
                np.asarray(blob).tobytes(),
                sums=None if old_sums is None else np.asarray(old_sums, dtype=np.float64))
            if ((restored.agent_ids, restored.alphas, restored.window, restored.eta,
                 restored.loss) == (self.tempered.agent_ids, self.tempered.alphas,
                                    self.tempered.window, self.tempered.eta,
                                    self.tempered.loss)):
                self.tempered = restored
                return
        try:  # a checkpoint from before the accumulator: score the rows it holds again
            for t in range(len(self)):
                self.tempered.update(float(self.returns[t]),
                                     np.stack([self.var[a][t] for a in self.alphas]),
                                     np.stack([self.es[a][t] for a in self.alphas]))
        except InvalidParameter:
            self.tempered = None


class PortfolioSwarm:
    """One portfolio's agents and the beat over them (see the module docstring)."""

    def __init__(self, config: PortfolioConfig) -> None:
        if len(config.agents) < 1:
            raise InvalidParameter("a portfolio swarm needs at least one agent")
        self.config = config
        self.agents: dict[str, Agent | None] = {}
        #: makes the agents: in process, or in their sandboxes (:mod:`.sandboxing`)
        self.host = AgentHost(config.sandbox, config.params, config.home)
        #: this beat's sandbox violations: agent -> what it tried (held out of the consensus)
        self.violations: dict[str, SandboxViolation] = {}
        self.keys = agent_keys(Path(config.home), config.agents)
        self.ring = KeyRing({a: k.public_key() for a, k in self.keys.items()})
        #: the signatures this swarm made: its own estimates are not verified again on the
        #: beat (verify at trust boundaries: see OwnSignatures); anything else always is;
        #: two beats' worth are remembered (each beat's are combined as soon as made)
        self.own = OwnSignatures(limit=max(16, 2 * len(config.agents) * len(config.alphas)))
        self.track = OnlineTrackRecord(config.agents, config.alphas, config.policy.window,
                                       policy=config.policy)
        self.builders = Builders((*config.agents, CONSENSUS), config.alphas,
                                 config.roles.builder_window)
        self.guards = Guards(config.agents, config.roles)
        self.scouts: Scouts | None = None
        self.forecasts: dict[str, Forecast] = {}
        self.consensus: list[Consensus] = []
        #: forecasts (and consensus) of the last beats whose horizon has not passed yet
        self.outstanding: list[tuple[dict[str, Forecast], list[Consensus]]] = []
        self.returns = np.zeros(0)  # trailing returns, enough for a window and a swap's catch-up
        self._returns_ring = TrailingRows(self.returns, self._keep())
        self.t = 0  # absolute index of the next return (history length + returns absorbed)
        self.absorbed = 0
        self.seq = 0
        self.last_as_of: datetime | None = None
        self.pending: dict[str, int] = {}  # agent -> absorbed count its running refit launched at
        self.cpu_seconds: dict[str, float] = {}  # the last beat's (see beat())

    # --- start ---------------------------------------------------------------------

    def start(self, history: FloatArray, as_of: datetime | None) -> None:
        """Fit every agent on the history's last ``window`` returns and forecast the next day."""
        cfg = self.config
        r = np.asarray(history, dtype=np.float64)
        if r.size < cfg.window:
            raise InvalidParameter(
                f"portfolio {cfg.portfolio!r}: {r.size} history returns, but the window is "
                f"{cfg.window}; give a longer history or a shorter window")
        self.t = int(r.size)
        self.returns = r[-self._keep():].copy()
        self.last_as_of = as_of
        for name in cfg.agents:
            try:
                agent = self.host.new(name)
                agent.fit(r[-cfg.window:], seed=fit_seed(cfg.seed, cfg.row(name), self.t))
                self.agents[name] = agent
            except SwarmVarError as exc:
                self._note(name, exc)
                self.agents[name] = None
        if cfg.roles.scouts:
            self.scouts = Scouts(float(np.std(r[-cfg.window:], ddof=1)), cfg.roles)
            self.scouts.warm(r[-cfg.roles.scout_warmup:] if cfg.roles.scout_warmup else r[:0])
        self.forecasts = self._forecast_all()
        self.consensus = self._combine(self.forecasts, frozenset(), {}, as_of)[0]

    def _keep(self) -> int:
        return 2 * self.config.window + self.config.roles.refit_lag + 1

    # --- the beat ------------------------------------------------------------------

    def beat(self, tick: BeatInput) -> BeatOutcome:
        """Absorb one return, score, refit if due, forecast, sign and combine."""
        import time

        cfg = self.config
        clock, cpu = time.perf_counter, time.thread_time
        begin, begin_cpu = clock(), cpu()
        value = float(tick.value)
        log_scores: dict[str, float] = {}
        rejected: dict[str, str] = {}
        for name, agent in self.agents.items():
            if agent is None:
                continue
            try:
                log_scores[name] = float(agent.update(value))
            except SwarmVarError as exc:
                self._note(name, exc)
                self.agents[name] = None
                rejected[name] = f"update failed: {exc}"
        agents_seconds, agents_cpu = clock() - begin, cpu() - begin_cpu
        breaches = self._absorb_tick(tick, value)
        records: list[RoleRecord] = []
        # swaps first: a refit launched earlier replaces the live agent at this boundary
        for result in tick.swaps:
            records.append(self._swap(result))
        # roles that watch the returns
        regime = 0.0
        asks: list[tuple[str, str]] = list(tick.requests)
        if self.scouts is not None:
            regime, flag = self.scouts.observe(value)
            if flag is not None:
                records.append(flag)
                if cfg.roles.scout_refits:
                    asks.append(("*", "regime"))
        diags = self._diagnostics()
        if cfg.roles.guards:
            for found in self.guards.check(self.absorbed, log_scores, diags, cfg.refit_every):
                records.append(found)
                if cfg.roles.guard_refits:
                    asks.extend((a, "guard") for a in found.agents)
        # foragers: the backtest's rhythm, then what was asked
        due = [(name, "schedule") for name in cfg.agents] if (
            self.absorbed % cfg.refit_every == 0) else []
        for who, why in asks:
            names = cfg.agents if who == "*" else (who,)
            due.extend((n, why) for n in names if n in cfg.agents)
        # an agent that failed at this beat is fitted again at once, from its window
        due.extend((n, "revive") for n in cfg.agents if n in rejected)
        jobs, refit_seconds = self._refits(due, records)
        validation: dict[str, Any] = {}
        if cfg.roles.builders and self.absorbed % cfg.refit_every == 0:
            # the windows are current every beat; their tests are read on the refit rhythm
            validation = self.builders.current()
            records.append(RoleRecord("builder", "validation", (), {
                row: {f"{a:g}": {k: (None if isinstance(x, float) and not math.isfinite(x)
                                     else x) for k, x in dataclasses.asdict(v).items()}
                      for a, v in levels.items()}
                for row, levels in validation.items()}))
        begin, begin_cpu = clock(), cpu()
        self.forecasts = self._forecast_all()
        agents_seconds += clock() - begin
        agents_cpu += cpu() - begin_cpu
        begin, begin_cpu = clock(), cpu()
        # an agent that broke its sandbox at this beat is held out of this beat's consensus
        violated = frozenset(self.violations)
        for name, broke in self.violations.items():
            records.append(RoleRecord("sandbox", "violation", (name,), {
                "violation": broke.violation.value, "detail": str(broke)[:500]}))
        self.violations = {}
        consensus, estimates, missing = self._combine(self.forecasts, tick.excluded | violated,
                                                      tick.factors, tick.as_of)
        rejected.update(missing)
        for name in violated:
            rejected[name] = "sandbox violation"
        self.consensus = consensus
        written = tuple(estimate_record(e, self.own) for e in estimates)
        combine_seconds = clock() - begin
        #: this beat's CPU time of this thread (what a loaded machine cannot add to), for
        #: benchmarks: the agents' update + forecast, and signing + combine
        self.cpu_seconds = {"agents": agents_cpu, "combine": cpu() - begin_cpu}
        report = BeatReport(
            portfolio=cfg.portfolio, seq=tick.seq, as_of=tick.as_of, realized=value,
            breaches=breaches, log_scores=log_scores, forecasts=dict(self.forecasts),
            consensus=tuple(consensus), diagnostics=diags, rejected=rejected,
            quarantined=tuple(sorted(a for a in tick.excluded | violated
                                     if a in cfg.agents)),
            regime_probability=regime, events=tuple(r.words() for r in records))
        return BeatOutcome(report, tuple(estimates), tuple(jobs), tuple(records),
                           validation,
                           {"agents": agents_seconds, "refit": refit_seconds,
                            "combine": combine_seconds}, written)

    def _absorb_tick(self, tick: BeatInput, value: float) -> dict[str, tuple[bool, ...]]:
        """Score the last forecasts on ``value``, then advance the return ring and counters."""
        breaches = self._score(value)
        self.returns = self._returns_ring.append(self.returns, value)
        self.t += 1
        self.absorbed += 1
        self.seq = tick.seq
        self.last_as_of = tick.as_of
        return breaches

    def _score(self, value: float) -> dict[str, tuple[bool, ...]]:
        """Score the forecasts ``value`` completes; feed the track record and builders.

        A forecast for ``h`` days made before return ``t`` is scored when
        return ``t + h - 1`` arrives, against the ``h``-day return (so the
        track record, as the backtest's ``h``-day weights, sees only realized
        losses); with ``h = 1`` that is the previous beat's forecast and ``value``.
        """
        cfg = self.config
        if not self.forecasts:
            return {}
        self.outstanding.append((self.forecasts, self.consensus))
        if len(self.outstanding) < cfg.horizon:
            return {}
        forecasts, consensus = self.outstanding.pop(0)
        realized = value if cfg.horizon == 1 else value + float(
            np.sum(self.returns[-(cfg.horizon - 1):]))
        return self._scored(realized, forecasts, consensus)

    def _scored(self, value: float, forecasts: Mapping[str, Forecast],
                consensus: Sequence[Consensus]) -> dict[str, tuple[bool, ...]]:
        cfg = self.config
        loss = -value
        nan = math.nan
        # plain lists first, one array per level at the end (the same float64 values)
        var_rows = {a: [nan] * len(cfg.agents) for a in cfg.alphas}
        es_rows = {a: [nan] * len(cfg.agents) for a in cfg.alphas}
        breaches: dict[str, tuple[bool, ...]] = {}
        for k, name in enumerate(cfg.agents):
            fc = forecasts.get(name)
            if fc is None:
                continue
            hits = []
            for a in cfg.alphas:
                m = fc.at(a)
                var_rows[a][k], es_rows[a][k] = m.var, m.es
                hits.append(bool(loss > m.var))
            breaches[name] = tuple(hits)
        var = {a: np.array(v, dtype=np.float64) for a, v in var_rows.items()}
        es = {a: np.array(e, dtype=np.float64) for a, e in es_rows.items()}
        if any(np.isfinite(var[a]).any() for a in cfg.alphas):
            self.track.push(value, var, es)
        whole = bool(consensus) and len(consensus) == len(cfg.alphas)
        if whole:
            breaches[CONSENSUS] = tuple(bool(loss > c.var) for c in consensus)
        if cfg.roles.builders:
            cv = {a: np.array([*var_rows[a], consensus[i].var if whole else nan],
                              dtype=np.float64) for i, a in enumerate(cfg.alphas)}
            ce = {a: np.array([*es_rows[a], consensus[i].es if whole else nan],
                              dtype=np.float64) for i, a in enumerate(cfg.alphas)}
            self.builders.add(value, cv, ce)
        return breaches

    def _diagnostics(self) -> dict[str, Diagnostics]:
        out = {}
        for name, agent in self.agents.items():
            if agent is not None:
                try:
                    out[name] = agent.diagnostics
                except SwarmVarError:
                    continue
        return out

    def _forecast_all(self) -> dict[str, Forecast]:
        cfg = self.config
        out = {}
        for name in cfg.agents:
            agent = self.agents.get(name)
            if agent is None:
                continue
            try:
                out[name] = agent.forecast(cfg.alphas, cfg.horizon, seed=np.random.default_rng(
                    [cfg.seed, cfg.row(name), self.t, 1]))
            except SwarmVarError as exc:
                self._note(name, exc)
                self.agents[name] = None
        return out

    def _note(self, name: str, exc: SwarmVarError) -> None:
        """Remember a sandbox violation (the beat records it and holds the agent out)."""
        if isinstance(exc, SandboxViolation):
            self.violations.setdefault(name, exc)

    def close(self) -> None:
        """Kill the agents' sandboxes (nothing to do for agents in this process)."""
        self.host.close()

    # --- foragers ------------------------------------------------------------------

    def _refits(self, due: list[tuple[str, str]], records: list[RoleRecord]
                ) -> tuple[list[RefitJob], float]:
        """Refit now (``refit_lag`` 0) or hand out jobs; a dead agent is refitted from scratch."""
        import time

        cfg = self.config
        seen: set[str] = set()
        jobs: list[RefitJob] = []
        seconds = 0.0
        window = self.returns[-cfg.window:]
        for name, why in due:
            if name in seen or name in self.pending:
                continue
            seen.add(name)
            row = cfg.row(name)
            agent = self.agents.get(name)
            # a sandboxed agent refits in its own sandbox, at once (a forager outside
            # would run its code unwalled)
            if cfg.roles.refit_lag == 0 or agent is None or self.host.sandboxed(name):
                begin = time.perf_counter()
                try:
                    if agent is None:
                        agent = self.host.new(name)
                        agent.fit(window, seed=fit_seed(cfg.seed, row, self.t))
                    else:
                        agent.refit(window, seed=fit_seed(cfg.seed, row, self.t))
                    self.agents[name] = agent
                except SwarmVarError as exc:
                    self._note(name, exc)
                    self.agents[name] = None
                    records.append(RoleRecord("forager", "refit-failed", (name,),
                                              {"reason": why, "error": str(exc)}))
                    continue
                seconds += time.perf_counter() - begin
                if why != "schedule":
                    records.append(RoleRecord("forager", "refit-done", (name,), {"reason": why}))
                continue
            self.pending[name] = self.absorbed
            jobs.append(RefitJob(cfg.portfolio, name, row, self.t, self.absorbed,
                                 self.absorbed + cfg.roles.refit_lag, agent.state(),
                                 window.copy(), cfg.seed, why))
            records.append(RoleRecord("forager", "refit-started", (name,),
                                      {"reason": why, "launched": self.absorbed,
                                       "swap_at": self.absorbed + cfg.roles.refit_lag}))
        return jobs, seconds

    def _swap(self, result: RefitResult) -> RoleRecord:
        """Put a finished refit in place, caught up on the returns absorbed since its cut."""
        name = result.agent
        self.pending.pop(name, None)
        if result.state is None:
            return RoleRecord("forager", "refit-failed", (name,),
                              {"reason": result.reason, "error": result.error or ""})
        behind = self.absorbed - result.launched
        if behind < 0 or behind >= self.returns.size:
            return RoleRecord("forager", "refit-dropped", (name,),
                              {"reason": result.reason, "behind": behind})
        agent = self.host.restored(name, result.state)
        if behind:
            for x in self.returns[-behind:].tolist():
                agent.update(x)
        self.agents[name] = agent
        return RoleRecord("forager", "refit-swapped", (name,),
                          {"reason": result.reason, "launched": result.launched,
                           "swapped": self.absorbed, "seconds": round(result.seconds, 6)})

    # --- consensus -----------------------------------------------------------------

    def _combine(self, forecasts: Mapping[str, Forecast], excluded: frozenset[str],
                 factors: Mapping[str, float], as_of: datetime | None
                 ) -> tuple[list[Consensus], list[Estimate], dict[str, str]]:
        """Sign every live agent's measures, combine each level, uncross the levels."""
        cfg = self.config
        missing = {a: "no forecast" for a in cfg.agents if a not in forecasts}
        if as_of is None or not forecasts:
            return [], [], missing
        policy, given, records = self._weighing()
        estimates: list[Estimate] = []
        out: list[Consensus] = []
        names = [a for a in cfg.agents if a in forecasts]
        for k, alpha in enumerate(cfg.alphas):
            # a group of a spread portfolio signs for it; the runtime combines (.spread)
            signed = sign_measures([(a, forecasts[a].at(alpha)) for a in names], self.keys,
                                   portfolio=cfg.group_of or cfg.portfolio, horizon=cfg.horizon,
                                   as_of=as_of, seq=self.seq * len(cfg.alphas) + k,
                                   variant_ids=cfg.variants, own=self.own)
            estimates.extend(signed)
            if cfg.group_of is not None:
                continue
            try:
                c = self._vote(signed, alpha, excluded, factors, as_of, policy, given, records)
            except NotEnoughAgents as exc:
                missing[CONSENSUS] = str(exc)
                return [], estimates, missing
            out.append(c)
        for a in excluded:
            if a in cfg.agents:
                missing.setdefault(a, "quarantined")
        return uncrossed(out), estimates, missing

    def _weighing(self) -> tuple[Policy, Mapping[str, float] | None, list[TrackRecord] | None]:
        """The policy as this beat can meet it, and the agents' weights or track records."""
        policy = self.config.policy
        # tempered weights kept online (O(agents) a beat); other weightings read the record
        given = self.track.weights() if policy.weighting is not Weighting.EQUAL else None
        records = self.track.records() if given is None else None
        if given is None and records is None and policy.weighting is not Weighting.EQUAL:
            policy = dataclasses.replace(policy, weighting=Weighting.EQUAL)
        return policy, given, records

    def _vote(self, signed: Sequence[Estimate], alpha: float, excluded: frozenset[str],
              factors: Mapping[str, float], as_of: datetime, policy: Policy,
              given: Mapping[str, float] | None, records: list[TrackRecord] | None
              ) -> Consensus:
        """One level's consensus of the signed estimates (quarantined agents held out)."""
        cfg = self.config
        voting = [e for e in signed if e.agent_id not in excluded]
        c = combine(voting, policy, keyring=self.ring, now=as_of, total=len(cfg.agents),
                    track_record=records, weights=given, portfolio=cfg.portfolio,
                    alpha=alpha, horizon=cfg.horizon, own=self.own)
        if factors:
            c = self._rebalanced(c, voting, policy, records, given, factors)
        return c

    def _rebalanced(self, c: Consensus, voting: Sequence[Estimate], policy: Policy,
                    records: list[TrackRecord] | None, given: Mapping[str, float] | None,
                    factors: Mapping[str, float]) -> Consensus:
        """The level again with each agent's weight multiplied by its factor (APPLY_BALANCE)."""
        agents = sorted(a for a in (*c.used, *c.trimmed))
        by = {e.agent_id: e for e in voting}
        rows = np.array([[by[a].var, by[a].es, *by[a].var_interval, *by[a].es_interval]
                         for a in agents], dtype=np.float64)
        if given is None:
            prior = agent_weights(agents, policy, records)
        else:  # as agent_weights maps a record's weights onto the agents used
            known = np.array(list(given.values()), dtype=np.float64)
            mean = float(np.mean(known))
            prior = np.array([given.get(a, mean) for a in agents], dtype=np.float64)
            prior = (prior / prior.sum() if prior.sum() > 0
                     else np.full(len(agents), 1.0 / len(agents)))
        scale = np.array([min(1.0, max(0.0, float(factors.get(a, 1.0)))) for a in agents])
        w = prior * scale
        if not w.sum() > 0:
            return c
        w = w / w.sum()
        var, es, vi, ei, contribution = aggregate_rows(rows, policy, w, total=c.total,
                                                       staleness=c.staleness)
        return dataclasses.replace(
            c, var=var, es=es, var_interval=vi, es_interval=ei,
            method=c.method + ", balanced",
            used=tuple(a for a, x in zip(agents, contribution, strict=True) if x > 0),
            trimmed=tuple(a for a, x in zip(agents, contribution, strict=True) if x <= 0),
            weights={a: float(x) for a, x in zip(agents, contribution, strict=True) if x > 0})

    # --- state ---------------------------------------------------------------------

    def state(self, *, rebase: bool = True) -> bytes:
        """Everything :meth:`restore` needs to continue bit for bit, as one checksummed blob.

        With ``rebase`` (what checkpoints do) each live agent is replaced by
        its own restored copy, so the running swarm and one restored from
        this blob continue from identical objects: an agent whose caches do
        not survive ``state()``/``from_state`` (StudentT's node cache moves
        an ES by ~1e-16 relative) cannot make a resumed run drift from an
        uninterrupted one.
        """
        cfg = self.config
        header: dict[str, Any] = {
            "config": cfg.fingerprint(), "t": self.t, "absorbed": self.absorbed,
            "seq": self.seq,
            "last_as_of": None if self.last_as_of is None else self.last_as_of.isoformat(),
            "alive": [a for a in cfg.agents if self.agents.get(a) is not None],
            "pending": dict(self.pending),
            "forecasts": {a: f.to_dict() for a, f in self.forecasts.items()},
            "consensus": [_consensus_dict(c) for c in self.consensus],
            "outstanding": [[{a: f.to_dict() for a, f in fc.items()},
                             [_consensus_dict(c) for c in cs]] for fc, cs in self.outstanding],
            "scout_flag": bool(self.scouts.flag) if self.scouts else False,
            "scout_scale": self.scouts.scale if self.scouts else None,
            "quiet_until": self.guards.quiet_until.tolist(),
        }
        arrays: dict[str, NDArray[Any]] = {"returns": self.returns,
                                           "guard_scores": self.guards.scores,
                                           **self.track.arrays(), **self.builders.arrays()}
        for name, agent in list(self.agents.items()):
            if agent is not None:
                data = agent.state()
                arrays[f"agent:{name}"] = packing.as_bytes_array(data)
                if rebase:
                    self.agents[name] = self.host.rebased(name, agent, data)
        if self.scouts is not None:
            arrays["scouts"] = packing.as_bytes_array(self.scouts.state())
        return packing.pack(header, arrays)

    @classmethod
    def restore(cls, config: PortfolioConfig, blob: bytes) -> PortfolioSwarm:
        """A swarm from :meth:`state` bytes, under the same configuration."""
        from ..errors import ResumeMismatch

        header, arrays = packing.unpack(blob)
        if header["config"] != json_roundtrip(config.fingerprint()):
            raise ResumeMismatch(
                f"portfolio {config.portfolio!r}: the checkpoint was made with "
                f"{header['config']}, not {config.fingerprint()}; use the same settings or "
                "another --home")
        self = cls(config)
        self.t, self.absorbed, self.seq = header["t"], header["absorbed"], header["seq"]
        self.last_as_of = (None if header["last_as_of"] is None
                           else datetime.fromisoformat(header["last_as_of"]))
        self.pending = {k: int(v) for k, v in header["pending"].items()}
        self.returns = np.asarray(arrays["returns"], dtype=np.float64)
        self.track.restore(arrays)
        self.builders.restore(arrays)
        self.guards.scores = np.asarray(arrays["guard_scores"], dtype=np.float64)
        self.guards.quiet_until = np.asarray(header["quiet_until"], dtype=np.int64)
        for name in config.agents:
            data = arrays.get(f"agent:{name}")
            self.agents[name] = (None if data is None
                                 else self.host.restored(name, data.tobytes()))
        if "scouts" in arrays:
            self.scouts = Scouts(float(header["scout_scale"]), config.roles)
            self.scouts.restore(arrays["scouts"].tobytes(), bool(header["scout_flag"]))
        self.forecasts = {a: _forecast_from(d) for a, d in header["forecasts"].items()}
        self.consensus = [_consensus_from(d) for d in header["consensus"]]
        self.outstanding = [({a: _forecast_from(d) for a, d in fc.items()},
                             [_consensus_from(d) for d in cs])
                            for fc, cs in header.get("outstanding", [])]
        return self


def json_roundtrip(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def _consensus_dict(c: Consensus) -> dict[str, Any]:
    from .record import consensus_record

    return consensus_record(c)


def _consensus_from(d: Mapping[str, Any]) -> Consensus:
    return Consensus(
        alpha=d["alpha"], horizon=d["horizon"], var=d["var"], es=d["es"],
        var_interval=(d["var_interval"][0], d["var_interval"][1]),
        es_interval=(d["es_interval"][0], d["es_interval"][1]),
        method=d["method"], used=tuple(d["used"]), trimmed=tuple(d["trimmed"]),
        rejected=dict(d["rejected"]), weights=dict(d["weights"]), available=d["available"],
        total=d["total"], staleness=d["staleness"], degraded=d["degraded"],
        as_of=None if d["as_of"] is None else datetime.fromisoformat(d["as_of"]))


def _forecast_from(d: Mapping[str, Any]) -> Forecast:
    from ..types import RiskMeasure

    return Forecast(d["model"], d["horizon"], tuple(
        RiskMeasure(m["alpha"], m["var"], m["es"], (m["var_interval"][0], m["var_interval"][1]),
                    (m["es_interval"][0], m["es_interval"][1]))
        for m in d["levels"]), d["interval_mass"],
        **({"as_of": datetime.fromisoformat(d["as_of"])} if d.get("as_of") else {}))


def finite(x: float) -> bool:
    return math.isfinite(x)


def is_time(value: object) -> TypeGuard[float]:
    """Whether a reported timing is a time: a finite number of seconds >= 0 (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)
