"""A portfolio's agents spread over several hosts: the groups sign, the runtime combines.

``Swarm(..., spread=K)`` (``swarmvar run --spread K``) splits each
portfolio's agents into ``K`` groups, agent ``i`` (its row in the portfolio)
into group ``i mod K``, each group hosted like a portfolio on its own host
(:func:`~.executors.place`): there its agents update, refit, forecast and
*sign* their estimates for the portfolio, seeded by their rows in the
portfolio (so the numbers are the unspread portfolio's). The portfolio's
consensus moves to the runtime (:class:`SpreadConsensus`): it scores the
last forecasts of every agent into the online track record (the tempered
weights), keeps the builders' windows, vets what each group sent (they
crossed a process boundary, :meth:`SpreadConsensus.vet`: only its own
agents' items, only estimates signed for this tick that verify, only
forecasts equal to what their agents signed; the rest refused and recorded)
and combines the admitted estimates with
:func:`~swarmvar.consensus.combine` under the portfolio's policy — the same
code path as an unspread beat (:meth:`PortfolioSwarm._vote`), so with every
host up the consensus is the unspread portfolio's.

When a group's host is lost, the portfolio beats on with the groups that
answered: the consensus of the ``m`` live agents, ``available = m`` of
``total = n``, ``degraded``, each interval widened by the partition rule
for the missing agents (``combine(total=n)``); the lost agents are
``rejected`` ("host lost") in the report. The missed days enter the track
record as every missing forecast does (:class:`~.beat.OnlineTrackRecord`):
the lost agents' entries are filled with the median of the live agents'
forecasts of that day, neither rewarded nor punished, and are not rescored
when the restored group replays them; what the group forecast while
catching up is ledgered as its own (late) estimates.

The partition rule widens by the *live* agents' disagreement, which is
smaller than the whole swarm's when the lost agents were the outliers: on
its own it would claim more certainty with fewer agents. So each interval
of a degraded beat is also held at least as wide, around the live point, as
the same level's interval at the last beat where every agent answered, aged
by the partition rule's staleness term (``h' = sqrt(h^2 + z^2 (kappa *
point)^2 d)``, ``d`` days since then — what the runtime served for a lost
portfolio before spreading); the method says so. This floor is the swarm's
(``swarm/``), not the consensus engine's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ..consensus import KeyRing, Rejection, RejectionReason, malformation
from ..consensus.signing import estimate_record
from ..errors import InvalidParameter, NotEnoughAgents
from ..types import BeatReport, Consensus, Diagnostics, Estimate, Forecast
from .beat import CONSENSUS, BeatInput, BeatOutcome, PortfolioConfig, PortfolioSwarm, is_time
from .consensus import uncrossed
from .roles import RoleRecord

#: The report reason of an agent whose group's host is lost.
HOST_LOST = "host lost"
#: The role record of what a group sent beyond its own agents' signed estimates (refused).
GROUP_REFUSED = ("consensus", "group-refused")


def check_spread(spread: int, *, hosts: int, refit_lag: int = 0,
                 sandboxed: bool = False) -> None:
    """Refuse a spread (``Swarm(spread=...)``) the swarm cannot run.

    Asked by :class:`~.runtime.Swarm` and by ``swarmvar run`` before any work.

    Parameters
    ----------
    spread : int
        Agent groups per portfolio (1: not spread).
    hosts : int
        Hosts the executor places groups on (0: not said; then any number).
    refit_lag : int
        The roles' refit lag: a spread portfolio refits on the beat (0).
    sandboxed : bool
        Agents in sandboxes (a :class:`SandboxSetup` given): not spread yet.

    Raises
    ------
    InvalidParameter
        Not a whole number >= 1, more groups than hosts, a refit lag, or sandboxes.
    """
    if isinstance(spread, bool) or not isinstance(spread, (int, np.integer)) or spread < 1:
        raise InvalidParameter(f"spread must be a whole number >= 1, not {spread!r}")
    if spread == 1:
        return
    if hosts and spread > hosts:  # groups on different hosts (place)
        raise InvalidParameter(f"spread {spread} needs as many hosts, but the executor has "
                               f"{hosts}; give it at least {spread} workers (shards) or "
                               f"spread over at most {hosts}")
    if refit_lag != 0:
        raise InvalidParameter(f"spread {spread} needs refit_lag 0 (a spread portfolio refits "
                               "on the beat); leave out the lag or the spread")
    if sandboxed:
        raise InvalidParameter(f"spread {spread} cannot run sandboxed agents yet; leave out "
                               "the sandbox or the spread")


def group_name(portfolio: str, g: int) -> str:
    """The hosted name of group ``g`` of a spread portfolio."""
    return f"{portfolio}#g{g}"


def spread_groups(config: PortfolioConfig, k: int) -> tuple[PortfolioConfig, ...]:
    """The ``k`` groups of a portfolio: agent ``i`` in group ``i mod k``.

    Each group is hosted like a portfolio (its name :func:`group_name`), signs
    for ``config.portfolio`` and leaves the builders to the runtime (which
    sees every agent's forecast). Raises InvalidParameter if ``k`` is more
    than the agents.
    """
    n = len(config.agents)
    if not 2 <= k <= n:
        raise InvalidParameter(f"spread must be between 2 and the portfolio's {n} agents, "
                               f"not {k}")
    roles = dataclasses.replace(config.roles, builders=False)
    out = []
    for g in range(k):
        rows = tuple(range(g, n, k))
        agents = tuple(config.agents[i] for i in rows)
        out.append(dataclasses.replace(
            config, portfolio=group_name(config.portfolio, g), agents=agents, roles=roles,
            params={a: p for a, p in config.params.items() if a in agents},
            variants={a: v for a, v in config.variants.items() if a in agents},
            spread=k, group_of=config.portfolio, rows=rows))
    return tuple(out)


def routed(tick: BeatInput, group: PortfolioConfig) -> BeatInput:
    """A portfolio's beat input as its group beats it: the refit requests for its agents
    (quarantine and weight factors act on the consensus, in the runtime)."""
    requests = tuple((a, why) for a, why in tick.requests if a == "*" or a in group.agents)
    return BeatInput(tick.seq, tick.as_of, tick.value, requests=requests)


class SpreadConsensus(PortfolioSwarm):
    """The runtime's part of a spread portfolio: no agents, the consensus over its groups.

    Holds what an unspread :class:`PortfolioSwarm` carries between beats for
    the consensus — the online track record of every agent, the builders,
    the last forecasts and consensus — and checkpoints it the same way
    (:meth:`state`), with a configuration whose ``spread`` is ``K``, plus
    ``full``: the consensus of the last beat where every agent answered (the
    floor of a degraded beat's intervals).
    """

    def __init__(self, config: PortfolioConfig) -> None:
        super().__init__(config)
        self.full: list[Consensus] = []
        #: each group's hosted name -> its agents (what the runtime takes from it)
        self.members: dict[str, tuple[str, ...]] = {
            g.portfolio: g.agents for g in spread_groups(config, config.spread)}
        #: the agents' keys without replay state, for the late estimates of catch-up beats
        self._late_ring = KeyRing({a: k.public_key() for a, k in self.keys.items()})

    def state(self, *, rebase: bool = True) -> bytes:
        from . import state as packing
        from .beat import _consensus_dict

        header, arrays = packing.unpack(super().state(rebase=rebase))
        header["full"] = [_consensus_dict(c) for c in self.full]
        return packing.pack(header, arrays)

    @classmethod
    def restore(cls, config: PortfolioConfig, blob: bytes) -> SpreadConsensus:
        from . import state as packing
        from .beat import _consensus_from

        self = super().restore(config, blob)
        assert isinstance(self, SpreadConsensus)
        header, _ = packing.unpack(blob)
        self.full = [_consensus_from(d) for d in header.get("full", [])]
        return self

    def begin(self, history: np.ndarray, as_of: datetime | None,
              forecasts: Mapping[str, Forecast]) -> None:
        """After the groups started: the first forecasts and their consensus (not ledgered;
        what the first beat scores). Signed here with the agents' keys, as a start does."""
        r = np.asarray(history, dtype=np.float64)
        self.t = int(r.size)
        self.returns = r[-self._keep():].copy()
        self.last_as_of = as_of
        self.forecasts = {a: forecasts[a] for a in self.config.agents if a in forecasts}
        self.consensus = self._combine(self.forecasts, frozenset(), {}, as_of)[0]
        self.full = list(self.consensus) if _whole(self.consensus, self.config.alphas) else []

    def compose(self, tick: BeatInput, parts: Mapping[str, BeatOutcome],
                lost: Sequence[str]) -> BeatOutcome:
        """The portfolio's beat from its groups' outcomes (``lost``: agents out with a host).

        Scores the last forecasts (track record, builders, breaches), then
        combines every level from the groups' signed estimates. Each group's
        outcome is vetted first (:meth:`vet`): only its own agents' items, and
        only estimates signed for this tick that verify, are taken; what it
        claimed beyond that is refused, counted in the key ring and recorded
        (a ``consensus``/``group-refused`` role record naming the group, and
        each refused agent in its level's ``rejected``).
        """
        cfg = self.config
        value = float(tick.value)
        breaches = self._absorb_tick(tick, value)
        forecasts: dict[str, Forecast] = {}
        log_scores: dict[str, float] = {}
        diags: dict[str, Diagnostics] = {}
        rejected: dict[str, str] = {}
        records: list[RoleRecord] = []
        scouts_seen = False
        regime = 0.0
        signed: dict[tuple[float, str], Estimate] = {}
        refusals: dict[tuple[float, str], str] = {}
        seconds: dict[str, float] = {}
        for name, part in parts.items():
            vetted = self.vet(name, tick.seq, tick.as_of, part)
            forecasts.update(vetted.forecasts)
            log_scores.update(vetted.log_scores)
            diags.update(vetted.diagnostics)
            rejected.update(vetted.rejected)
            scout = [r for r in vetted.roles if r.role == "scout"]
            if not scouts_seen:  # every group's scouts watch the same returns: one is told
                regime = part.report.regime_probability
                records.extend(scout)
                scouts_seen = True
            records.extend(r for r in vetted.roles if r.role != "scout")
            refused = vetted.record()
            if refused is not None:
                records.append(refused)
            for e in vetted.estimates:
                signed[e.alpha, e.agent_id] = e
            refusals.update(vetted.refused)
            for k, v in part.seconds.items():  # a time (a group says it): is_time
                if is_time(v):
                    seconds[k] = max(seconds.get(k, 0.0), float(v))  # the groups ran in parallel
        for a in lost:
            rejected[a] = HOST_LOST
        self.forecasts = {a: forecasts[a] for a in cfg.agents if a in forecasts}
        validation: Mapping[str, Mapping[float, Any]] = {}
        if cfg.roles.builders and self.absorbed % cfg.refit_every == 0:
            validation = self.builders.current()
            records.append(_validation_record(validation))
        consensus: list[Consensus] = []
        if self.forecasts:
            policy, given, records_ = self._weighing()
            out = []
            try:
                for alpha in cfg.alphas:
                    level = [signed[alpha, a] for a in cfg.agents if (alpha, a) in signed]
                    c = self._vote(level, alpha, tick.excluded, tick.factors, tick.as_of,
                                   policy, given, records_)
                    out.append(_naming(c, {a: why for (al, a), why in refusals.items()
                                           if al == alpha}))
                consensus = uncrossed(out)
            except NotEnoughAgents as exc:
                rejected[CONSENSUS] = str(exc)
        for a in tick.excluded:
            if a in cfg.agents:
                rejected.setdefault(a, "quarantined")
        if lost:  # agents out with a host: the consensus of the live ones, marked degraded
            consensus = [self._floored(c, tick.as_of) for c in consensus]
        elif _whole(consensus, cfg.alphas):
            self.full = list(consensus)
        self.consensus = consensus
        order = [(alpha, a) for alpha in cfg.alphas for a in cfg.agents if (alpha, a) in signed]
        estimates = tuple(signed[key] for key in order)
        report = BeatReport(
            portfolio=cfg.portfolio, seq=tick.seq, as_of=tick.as_of, realized=value,
            breaches=breaches, log_scores=log_scores, forecasts=dict(self.forecasts),
            consensus=tuple(consensus), diagnostics=diags, rejected=rejected,
            quarantined=tuple(sorted(a for a in tick.excluded if a in cfg.agents)),
            regime_probability=regime, events=tuple(r.words() for r in records))
        # the ledger's records of the estimates admitted, written here from what verified
        # (not the group's own texts: they are its claims too), from the bytes the vet
        # verified (vouched into self.own: not written again)
        return BeatOutcome(report, estimates, (), tuple(records), validation, seconds,
                           tuple(estimate_record(e, self.own) for e in estimates))

    def vet(self, group: str, seq: int, as_of: datetime, outcome: BeatOutcome, *,
            late: bool = False) -> Vetted:
        """What the runtime takes from group ``group``'s outcome of tick ``seq`` (``as_of``).

        Only the group's own agents' forecasts, log scores, diagnostics,
        errors and role records; and only estimates of its own agents signed
        for this portfolio, horizon and tick (``as_of``, and the ``seq`` the
        tick's signing gives level ``k``: ``seq * len(alphas) + k``), once per
        level, whose signature verifies (the key ring's check, nothing
        recorded: :meth:`~swarmvar.consensus.KeyRing.screen`). A forecast is
        taken only if its measures at every level are those of its signed
        estimates (what the track record and the builders score). Everything
        else is refused and said in ``notes``; in a beat (not ``late``) each
        refusal is counted in the key ring.

        ``late``: a group's catch-up beat of a tick its portfolio beat without
        it. Its estimates are checked against a ring that keeps no replay
        state (the portfolio's ring has admitted later seqs since): the exact
        ``seq`` and ``as_of`` are what refuse a replay then.
        """
        cfg = self.config
        own = self.members.get(group, ())
        ring = self._late_ring if late else self.ring
        notes: list[str] = []
        counted: list[Rejection] = []

        def foreign(what: str, agent: object) -> None:
            notes.append(f"{what} of {str(agent)[:100]!r}, not an agent of {group}")
            counted.append(Rejection(str(agent)[:200], RejectionReason.MISMATCHED,
                                     f"{what} sent by {group}, not its agent"))

        def mine(items: object, what: str) -> dict[str, Any]:
            kept: dict[str, Any] = {}
            for a, x in (items.items() if isinstance(items, Mapping) else ()):
                if a in own:
                    kept[a] = x
                else:
                    foreign(what, a)
            return kept

        rep = outcome.report
        expected = {alpha: seq * len(cfg.alphas) + k for k, alpha in enumerate(cfg.alphas)}
        admitted: dict[tuple[float, str], Estimate] = {}
        refused: dict[tuple[float, str], str] = {}
        for e in outcome.estimates:
            agent = getattr(e, "agent_id", "?")
            if not isinstance(e, Estimate) or agent not in own:
                foreign("an estimate", agent)
                continue
            why = _misfit(e, cfg, expected, as_of, group)
            key = (e.alpha, agent)  # (hashable once _misfit passed it)
            if why is None and key in admitted:
                why = Rejection(agent, RejectionReason.REPLAYED,
                                f"a second estimate for level {e.alpha:g} from {group}")
            if why is None:
                ok, bad = ring.screen([e], own=self.own)  # verified once: combine reuses it
                why = bad[0] if bad else None
            if why is not None:
                counted.append(why)
                notes.append(f"the estimate of {agent} at {e.alpha!r} from {group}: {why}")
                if isinstance(e.alpha, float) and e.alpha in expected:
                    refused.setdefault(key, str(why))
                continue
            admitted[key] = e
        kept = mine(rep.forecasts, "a forecast") if not late else {}
        forecasts: dict[str, Forecast] = {}
        for a, fc in kept.items():
            differs = _differs(fc, [admitted.get((alpha, a)) for alpha in cfg.alphas])
            if differs is None:
                forecasts[a] = fc
            else:
                notes.append(f"the forecast of {a} from {group}: {differs}; not scored")
                counted.append(Rejection(a, RejectionReason.MISMATCHED,
                                         f"forecast from {group}: {differs}"))
        roles = []
        for r in outcome.roles:
            if isinstance(r, RoleRecord) and all(a in own for a in r.agents):
                roles.append(r)
            else:
                foreign("a role record", ",".join(map(str, getattr(r, "agents", ()))))
        if not late:
            for why in counted:
                ring.count(why.reason)
        return Vetted(
            group=group, forecasts=forecasts,
            log_scores=mine(rep.log_scores, "a log score") if not late else {},
            diagnostics=mine(rep.diagnostics, "diagnostics") if not late else {},
            rejected={a: str(w)[:500] for a, w in mine(rep.rejected, "an error").items()},
            roles=tuple(roles),
            estimates=tuple(admitted[alpha, a] for alpha in cfg.alphas for a in own
                            if (alpha, a) in admitted),
            refused=refused, notes=tuple(notes))

    def _floored(self, c: Consensus, as_of: datetime) -> Consensus:
        """A degraded level: its intervals at least the last full consensus's, aged (above)."""
        from ..consensus import widen_interval

        full = next((f for f in self.full if f.alpha == c.alpha), None)
        if full is None or full.as_of is None:
            return dataclasses.replace(c, degraded=True)
        policy = self.config.policy
        days = max(0.0, (as_of - full.as_of).total_seconds() / 86_400.0)

        def floor(point: float, live: tuple[float, float], old_point: float,
                  old: tuple[float, float]) -> tuple[tuple[float, float], bool]:
            aged = widen_interval(old_point, old, available=1, total=1, spread=0.0,
                                  staleness_days=days, drift=policy.drift,
                                  mass=policy.interval_mass)
            low = min(live[0], point - (old_point - aged[0]))
            high = max(live[1], point + (aged[1] - old_point))
            if live[0] >= 0:
                low = max(low, 0.0)
            return (low, high), (low, high) != live

        vi, v_moved = floor(c.var, c.var_interval, full.var, full.var_interval)
        ei, e_moved = floor(c.es, c.es_interval, full.es, full.es_interval)
        note = (f"; floored at the full swarm's interval of {days:g} days before"
                if v_moved or e_moved else "")
        return dataclasses.replace(c, var_interval=vi, es_interval=ei, degraded=True,
                                   method=c.method + note)


@dataclass(frozen=True)
class Vetted:
    """What the runtime takes from one group's outcome of one tick (:meth:`SpreadConsensus.vet`).

    ``estimates`` the group's own agents' estimates admitted, in level then
    agent order; ``refused`` its own agents' estimates refused, ``(alpha,
    agent) -> why``; ``rejected`` its agents' errors as the group reported
    them (update failed, no forecast); ``notes`` everything refused, in words.
    """

    group: str
    forecasts: Mapping[str, Forecast]
    log_scores: Mapping[str, float]
    diagnostics: Mapping[str, Diagnostics]
    rejected: Mapping[str, str]
    roles: tuple[RoleRecord, ...]
    estimates: tuple[Estimate, ...]
    refused: Mapping[tuple[float, str], str]
    notes: tuple[str, ...]

    def record(self) -> RoleRecord | None:
        """The refusals as a role record naming the group (None: nothing refused)."""
        if not self.notes:
            return None
        return RoleRecord(GROUP_REFUSED[0], GROUP_REFUSED[1], (), {
            "group": self.group, "refused": [n[:300] for n in self.notes[:50]],
            "count": len(self.notes)})


def _misfit(e: Estimate, cfg: PortfolioConfig, expected: Mapping[float, int], as_of: datetime,
            group: str) -> Rejection | None:
    """Why an estimate of a group's own agent is not one signed for this tick, if it is not."""
    agent = e.agent_id
    problem = malformation(e)
    if problem is not None:
        return Rejection(agent, RejectionReason.MALFORMED, problem)
    want = expected.get(e.alpha)
    if e.portfolio != cfg.portfolio or e.horizon != cfg.horizon or want is None:
        return Rejection(agent, RejectionReason.MISMATCHED,
                         f"({e.portfolio}, {e.alpha:g}, {e.horizon}) from {group} is not one "
                         f"of ({cfg.portfolio}, {list(cfg.alphas)}, {cfg.horizon})")
    if e.as_of != as_of or e.seq != want:
        return Rejection(agent, RejectionReason.REPLAYED,
                         f"seq {e.seq} as of {e.as_of.isoformat()} from {group} is not this "
                         f"beat's seq {want} as of {as_of.isoformat()}")
    return None


def _differs(fc: object, signed: Sequence[Estimate | None]) -> str | None:
    """Why a forecast is not the one its agent signed (None: its measures are the estimates')."""
    if not isinstance(fc, Forecast):
        return "not a forecast"
    for e in signed:
        if e is None:
            return "no signed estimate admitted at every level"
        try:
            m = fc.at(e.alpha)
            same = ((float(m.var), float(m.es), tuple(map(float, m.var_interval)),
                     tuple(map(float, m.es_interval)))
                    == (e.var, e.es, e.var_interval, e.es_interval))
        except (KeyError, TypeError, ValueError):
            same = False
        if not same:
            return f"its measures at {e.alpha:g} are not its signed estimate's"
    return None


def _naming(c: Consensus, refused: Mapping[str, str]) -> Consensus:
    """A level's consensus with the agents whose estimates were refused before the vote named
    in its ``rejected`` (as the vote names those it refuses itself)."""
    extra = {a: why for a, why in refused.items()
             if a not in c.rejected and a not in c.used and a not in c.trimmed}
    if not extra:
        return c
    return dataclasses.replace(c, rejected=dict(sorted({**c.rejected, **extra}.items())))


def _whole(consensus: Sequence[Consensus], alphas: Sequence[float]) -> bool:
    """Whether a consensus had every level and every agent (the floor's baseline)."""
    return len(consensus) == len(alphas) and all(c.available == c.total for c in consensus)


def _validation_record(validation: Mapping[str, Mapping[float, object]]) -> RoleRecord:
    """The builders' record, as an unspread beat writes it."""
    return RoleRecord("builder", "validation", (), {
        row: {f"{a:g}": {k: (None if isinstance(x, float) and not math.isfinite(x) else x)
                         for k, x in dataclasses.asdict(v).items()}  # type: ignore[call-overload]
              for a, v in levels.items()}
        for row, levels in validation.items()})
