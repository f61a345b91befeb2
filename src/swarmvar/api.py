"""One call for the whole swarm: ``swarmvar.var(returns, ...)``.

It does from Python what ``swarmvar var`` does on the command line (without
the ledger): fits every agent, forecasts VaR/ES with credible intervals,
builds each agent's out-of-sample track record and combines the signed
estimates into the swarm's robust consensus. Same seed, same numbers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidParameter, SwarmVarError
from .types import Consensus, Forecast, RiskMeasure

if TYPE_CHECKING:
    import pandas as pd
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from numpy.typing import ArrayLike

    from .consensus import Policy, TrackRecord
    from .models import Agent
    from .swarm import AgentRun

#: Called as ``progress(stage, done, total)``: stage "fit" (agents) or "track" (days).
Progress = Callable[[str, int, int], None]

#: Returns needed for a track record: the driver's smallest window.
_MIN_TRACK_WINDOW = 250
#: Days between the track record's refits (the swarm's schedule).
_TRACK_REFIT = 20


@dataclass(frozen=True)
class VarResult:
    """The swarm's view of the next ``horizon`` days: each agent's forecast and the consensus.

    Attributes
    ----------
    forecasts : mapping agent -> Forecast
        Agents that produced a forecast (VaR/ES as positive losses, fractions
        of value, with credible intervals).
    errors : mapping agent -> str
        Agents that failed, with why.
    agreed : tuple of Consensus
        The consensus of each level (weights, trimmed and rejected agents),
        empty when there is none.
    as_of : datetime or None
        Date of the last return used (UTC); ``None`` for undated arrays.
    horizon : int
    alphas : tuple of float
    seed : int
    note : str
        Why there is no consensus, or how its weights were made (e.g. ``"consensus: equal
        weights (no track record: track_days=0)"``); ``""`` only without a consensus asked
        for.
    record : int or None
        Scored forecasts behind the consensus's weights; ``None`` when the weights are
        equal (an equal-weight policy, or its fallback without a track record).
    runs : tuple of AgentRun
        Every agent's run (fit time, diagnostics, convergence notes).
    """

    forecasts: Mapping[str, Forecast]
    errors: Mapping[str, str]
    agreed: tuple[Consensus, ...]
    as_of: datetime | None
    horizon: int
    alphas: tuple[float, ...]
    seed: int
    note: str
    runs: tuple[AgentRun, ...]
    record: int | None = None

    @property
    def consensus(self) -> Forecast | None:
        """The consensus as a :class:`Forecast` (model ``"consensus"``), or ``None``."""
        if not self.agreed:
            return None
        return Forecast("consensus", self.horizon, tuple(
            RiskMeasure(c.alpha, c.var, c.es, c.var_interval, c.es_interval)
            for c in self.agreed), as_of=self.as_of)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame, one line per (agent or "consensus", level).

        Columns: agent, alpha, var, es, var_lo, var_hi, es_lo, es_hi (losses,
        fractions of value over the horizon), weight (the agent's consensus
        weight at that level; NaN when it was not used, 1 for the consensus
        line), as_of, horizon.
        """
        import pandas as pd

        weights = {c.alpha: c.weights for c in self.agreed}
        parts = []
        for name, fc in self.forecasts.items():
            frame = fc.to_frame().rename(columns={"model": "agent"})
            frame["agent"] = name
            frame["weight"] = [float(weights.get(a, {}).get(name, float("nan")))
                               for a in frame["alpha"]]
            parts.append(frame)
        if self.consensus is not None:
            frame = self.consensus.to_frame().rename(columns={"model": "agent"})
            frame["weight"] = 1.0
            parts.append(frame)
        columns = ["agent", "alpha", "var", "es", "var_lo", "var_hi", "es_lo", "es_hi",
                   "weight", "as_of", "horizon"]
        if not parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(parts, ignore_index=True)[columns]

    def summary(self) -> str:
        """A printable table like arch's ``summary()``: every agent, then the consensus."""
        when = f" as of {self.as_of:%Y-%m-%d}" if self.as_of is not None else ""
        head = (f"swarmvar: {self.horizon}-day VaR and ES{when}, seed {self.seed} "
                "(losses in % of value, [90% credible interval])")
        rule = "=" * 96
        lines = [rule, head, rule,
                 f"{'agent':<20}{'alpha':>7}{'VaR':>9}{'VaR CI':>20}{'ES':>9}{'ES CI':>20}"
                 f"{'weight':>9}", "-" * 96]
        frame = self.to_frame()
        for rec in frame.itertuples(index=False):
            w = "" if rec.weight != rec.weight else f"{rec.weight:.2f}"  # NaN: not used
            if rec.agent == "consensus" and rec.alpha == frame["alpha"].iloc[0]:
                lines.append("-" * 96)
            lines.append(
                f"{rec.agent:<20}{rec.alpha:>7g}{100 * rec.var:>8.3f}%"
                f"  [{100 * rec.var_lo:>7.3f},{100 * rec.var_hi:>7.3f}]"
                f"{100 * rec.es:>8.3f}%  [{100 * rec.es_lo:>7.3f},{100 * rec.es_hi:>7.3f}]"
                f"{w:>9}")
        for name, why in self.errors.items():
            lines.append(f"{name:<20} failed: {why}")
        if self.agreed:
            lines += [rule, f"consensus: {self.agreed[0].method}"]
        if self.note:
            lines.append(self.note)
        lines.append(rule)
        return "\n".join(lines)


def _instance_track(
    x: Any, agents: Mapping[str, Agent | None], alphas: tuple[float, ...], *, days: int,
    window: int, horizon: int, seed: int, workers: int,
    on_day: Callable[[int, int], None] | None, cache: str | Path | None = None,
    log_scores: bool = False,
) -> tuple[dict[float, TrackRecord], bool]:
    """The agents' out-of-sample track record over the last ``days`` returns, per level.

    The backtest driver (no baseline) with the swarm's refit schedule, for
    agents given by name
    (``None``: the registry's default agent) or as instances (their own
    parameters, e.g. a champion variant's). At ``horizon`` h > 1 the record
    scores the non-overlapping h-day windows of those days (every h-th
    day, the last window ending on the last return; the agents still refit
    and absorb every day): ``ceil(days / h)`` independent h-day losses, the
    same expected loss per forecast as overlapping windows at an h-th of the
    forecasts (docs/validation.md, "h-day track records").

    With a ``cache`` directory the record is read from there when a verified
    copy of it exists (:mod:`~swarmvar.validation.track_cache`: keyed by the
    returns, agents and their parameters, levels, schedule, seed and the
    code), and written there when built. Returns the record and whether it
    came from the cache.

    ``log_scores`` (BMA weights; ``horizon`` 1 only): each record also holds every
    agent's predictive log density of each day's return, ``log p_i(r_t | past)``, from
    the same backtest. A record built at horizon 1 writes them to the cache whatever the
    weighting, and a BMA call reads them from there; a cached file without them (none
    past horizon 1) is rebuilt for BMA. Other weightings' records carry none, read or
    built (without a cache they are not formed).

    Raises
    ------
    InvalidParameter
        Fewer returns than the record needs, or ``log_scores`` at ``horizon`` > 1.
    """
    import numpy as np

    from .consensus import TrackRecord
    from .models import agent_class
    from .validation import backtest

    if log_scores and horizon != 1:
        raise InvalidParameter(f"a track record has log scores at horizon 1 only, not "
                               f"{horizon}")
    scored = -(-days // horizon)  # forecast days, h apart
    need = (scored - 1) * horizon + window + horizon
    if x.size < need:
        raise InvalidParameter(f"a {days}-day track record with a {window}-day window needs "
                               f"{need} returns, got {x.size}")
    roster = {n: a if a is not None else agent_class(n)() for n, a in agents.items()}
    names = tuple(agents)
    key = ""
    if cache is not None:
        from .validation.track_cache import load_track, track_key

        key = track_key(
            x[-need:], {n: (f"{type(a).__module__}.{type(a).__qualname__}", a.params())
                        for n, a in roster.items()}, alphas, days=days, window=window,
            horizon=horizon, step=horizon, refit_every=_TRACK_REFIT, seed=seed)
        cached = load_track(cache, key, names, alphas, log_scores=log_scores)
        if cached is not None:
            if on_day is not None:
                on_day(scored * len(names), scored * len(names))
            return cached, True
    # x was judged by var (or is returns computed from prices): not judged again here
    result = backtest(x[-need:], roster, window=window, refit_every=_TRACK_REFIT,
                      alphas=alphas, horizon=horizon, baseline=None, seed=seed, progress=False,
                      n_sim=10, on_day=on_day, workers=workers, step=horizon,
                      judge_prices=False)
    # every agent's log p_i(r_t | past) at horizon 1 (the driver has them then only): for
    # BMA, and kept in the cache for any weighting, so that a later BMA call reads the same
    # record; neither asked for nor cached, they are not built
    scores = (np.column_stack([result.logscore[n] for n in names])
              if horizon == 1 and (log_scores or cache is not None) else None)
    track = {a: TrackRecord(agent_ids=names, returns=result.returns, alpha=a,
                            var=np.column_stack([result.series[n][a].var for n in names]),
                            es=np.column_stack([result.series[n][a].es for n in names]),
                            log_scores=scores)
             for a in result.alphas}
    if cache is not None:
        from .validation.track_cache import save_track

        try:
            save_track(cache, key, track)
        except OSError:  # a cache that cannot be written only costs the next call time
            pass
    if scores is not None and not log_scores:  # cached only: as a cached record reads
        track = {a: dataclasses.replace(rec, log_scores=None) for a, rec in track.items()}
    return track, False


def max_workers() -> int:
    """Most worker processes one call may start: 4 per CPU, at least 8 (a typo such as
    99999 is refused, not thousands of processes started)."""
    import os

    return max(8, 4 * (os.cpu_count() or 1))


def _check_roster(agents: object) -> list[Any]:
    """Agents as a non-empty list of names or Agent instances, or InvalidParameter."""
    from .models import DEFAULT_AGENTS
    from .models.base import Agent

    if agents is None:
        return list(DEFAULT_AGENTS)
    if isinstance(agents, (str, bytes, Mapping)) or not isinstance(agents, Sequence) or (
            not agents):
        raise InvalidParameter("agents must be a non-empty list of agent names or agents, "
                               f"not {agents!r}")
    for a in agents:
        if not isinstance(a, (str, Agent)):
            raise InvalidParameter(f"agents must be agent names or Agent instances; {a!r} is "
                                   f"a {type(a).__name__}")
    return list(agents)


def _check_options(*, keys: object, seq: object, policy: object, portfolio: object,
                   progress: object) -> None:
    """The plain-type arguments of :func:`var` (names in the message)."""
    from .consensus import Policy
    from .models.base import check_whole

    check_whole("seq", seq, 0)
    if policy is not None and not isinstance(policy, Policy):
        raise InvalidParameter(f"policy must be a consensus Policy or None, not {policy!r}")
    if portfolio is not None and (not isinstance(portfolio, str) or not portfolio.strip()
                                  or len(portfolio) > 200):
        raise InvalidParameter(f"portfolio must be a non-empty name (at most 200 characters) "
                               f"or None, not {portfolio!r}")
    if progress is not None and not callable(progress):
        raise InvalidParameter(f"progress must be a callable progress(stage, done, total) or "
                               f"None, not {progress!r}")
    if keys is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not isinstance(keys, Mapping) or not all(
                isinstance(k, str) and isinstance(v, Ed25519PrivateKey) for k, v in keys.items()):
            raise InvalidParameter("keys must map agent names to Ed25519 private keys (or be "
                                   "None for fresh ones)")


def var(
    returns: ArrayLike | pd.Series,
    agents: Sequence[str | Agent] | None = None,
    *,
    alphas: Sequence[float] = (0.99, 0.975),
    horizon: int = 1,
    seed: int = 0,
    consensus: bool = True,
    track_days: int | None = None,
    workers: int = 1,
    keys: Mapping[str, Ed25519PrivateKey] | None = None,
    seq: int = 0,
    policy: Policy | None = None,
    portfolio: str | None = None,
    progress: Progress | None = None,
    track_cache: str | Path | None = None,
) -> VarResult:
    """Run the swarm on a return series: every agent's VaR/ES and the robust consensus.

    Parameters
    ----------
    returns : pandas.Series or array ``(n,)``
        Daily log returns (fractions, 0.01 = 1%), oldest first; a Series'
        last date becomes ``as_of``.
    agents : sequence of names or Agent instances, optional
        Default: every agent swarmvar ships (``swarmvar.models.DEFAULT_AGENTS``).
    alphas : sequence of float
        Confidence levels, e.g. ``(0.99, 0.975)``.
    horizon : int
        Days ahead; losses are of the cumulative log return.
    seed : int
        Root seed: the same seed gives the same numbers.
    consensus : bool
        Combine the agents (needs 3 or more that succeed).
    track_days : int, optional
        Out-of-sample days behind the consensus weights (default 500; 0 for
        equal weights; fewer if the series is short).
    workers : int
        Processes building the track record.
    keys : mapping agent -> Ed25519 private key, optional
        The agents' signing keys; fresh ones (in memory) by default. The
        numbers do not depend on the keys.
    seq : int
        First message number of the signed estimates.
    policy : Policy, optional
        The consensus rule (default: the swarm's, ``swarm.consensus.SWARM_POLICY``).
        BMA weights (``Weighting.BMA``) score each agent's predictive log density of
        every day of the track record, which it has at ``horizon`` 1 only.
    portfolio : str, optional
        Portfolio name on the estimates (default: the Series' name or "portfolio").
    progress : callable, optional
        ``progress(stage, done, total)`` as agents are fitted and track-record days run.
    track_cache : str or Path, optional
        A directory keeping the track record (e.g. ``<home>/cache``): a call with
        the same returns, agents, levels, horizon, seed and code reads it back
        (verified; a damaged file is rebuilt) instead of backtesting again.

    Returns
    -------
    VarResult
        ``.summary()``, ``.to_frame()``, ``.consensus``, ``.as_of``, ``.forecasts``.

    Raises
    ------
    InvalidParameter
        An argument out of its bounds (named in the message), an agent given twice, a
        missing signing key, or BMA weights asked for over a track record at ``horizon``
        above 1 (the agents give no h-day density to score; the message says what to use).

    Examples
    --------
    >>> import swarmvar
    >>> from swarmvar import data
    >>> res = swarmvar.var(data.load("sp500"), agents=["nig", "bootstrap", "garch-t"],
    ...                    alphas=(0.99,), track_days=0)            # doctest: +SKIP
    >>> res.consensus.at(0.99).var                                 # doctest: +SKIP
    """
    import pandas as pd

    from .consensus import Weighting
    from .data import as_array
    from .models import canonical_name
    from .models.base import MAX_HORIZON, check_whole
    from .swarm import run_agents
    from .swarm.consensus import SWARM_POLICY, TRACK_DAYS, swarm_consensus
    from .validation._checks import named_alphas as check_levels

    x = as_array(returns, who="swarmvar.var")
    levels = check_levels(alphas)
    horizon = check_whole("horizon", horizon, 1, MAX_HORIZON)
    seed = check_whole("seed", seed, 0)
    workers = check_whole("workers", workers, 1, max_workers())
    _check_options(keys=keys, seq=seq, policy=policy, portfolio=portfolio, progress=progress)
    days = TRACK_DAYS if track_days is None else check_whole("track_days", track_days, 0)
    if track_cache is not None and not isinstance(track_cache, (str, Path)):
        raise InvalidParameter(f"track_cache must be a directory path or None, not "
                               f"{track_cache!r}")
    if not isinstance(consensus, bool):
        raise InvalidParameter(f"consensus must be True or False, not {consensus!r}")
    rule = SWARM_POLICY if policy is None else policy
    bma = rule.weighting is Weighting.BMA
    if consensus and bma and days > 0 and horizon > 1:
        from .consensus.series import bma_horizon_words

        raise InvalidParameter(bma_horizon_words(horizon, equal="track_days=0"))
    roster: list[str | Agent] = _check_roster(agents)
    named = [canonical_name(a) if isinstance(a, str) else getattr(a, "name", "") for a in roster]
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:
        raise InvalidParameter(f"agent(s) given more than once: {', '.join(twice)} "
                               "(each agent votes once)")
    as_of: datetime | None = None
    if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex):
        stamp = returns.index[-1]
        as_of = (stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
                 ).to_pydatetime()
    name = portfolio or (str(returns.name) if isinstance(returns, pd.Series)
                         and returns.name is not None else "portfolio")

    done = 0

    def on_agent(agent: str, event: str) -> None:
        nonlocal done
        if event == "done":
            done += 1
        if progress is not None:
            progress("fit", done, len(roster))

    # unfitted copies of agents given as instances (e.g. champion variants), for their own
    # track record: run_agents fits the instances themselves
    given = {n: copy.deepcopy(a) for n, a in zip(named, roster, strict=True)
             if not isinstance(a, str)}
    runs = run_agents(x, roster, alphas=levels, horizon=horizon, seed=seed, progress=on_agent)
    runs = [dataclasses.replace(r, forecast=dataclasses.replace(r.forecast, as_of=as_of))
            if r.forecast is not None else r for r in runs]
    good = [r.name for r in runs if r.ok]
    agreed: list[Consensus] = []
    note = ""
    record: int | None = None
    need = rule.aggregator.min_agents(rule.f)
    if consensus and len(good) < need:
        note = (f"no consensus: {len(good)} agent{'s' if len(good) != 1 else ''} produced a "
                f"forecast, and {rule.describe(len(good))}")
    elif consensus:
        track: dict[float, TrackRecord] | None = None
        from_cache = False
        if days > 0 and rule.weighting is not Weighting.EQUAL:
            window = min(1000, x.size - days - horizon + 1)
            if window < _MIN_TRACK_WINDOW:
                note = (f"{rule.weights_note(None)} ({x.size} returns are too few for a "
                        f"{days}-day track record)")
            else:
                on_day = None if progress is None else (lambda d, t: progress("track", d, t))
                try:
                    track, from_cache = _instance_track(
                        x, {n: given.get(n) for n in good}, levels, days=days, window=window,
                        horizon=horizon, seed=seed, workers=workers, on_day=on_day,
                        cache=track_cache, log_scores=bma)
                except SwarmVarError as exc:
                    note = f"{rule.weights_note(None)} (no track record: {exc})"
        if keys is None:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            keys = {n: Ed25519PrivateKey.generate() for n in good}
        lacking = [n for n in good if n not in keys]
        if lacking:
            raise InvalidParameter(f"keys has no signing key for agent(s) {', '.join(lacking)}; "
                                   "give one per agent (or keys=None for fresh ones)")
        stamp_time = as_of if as_of is not None else datetime(1970, 1, 1, tzinfo=UTC)
        try:
            agreed = swarm_consensus(runs, {n: keys[n] for n in good}, as_of=stamp_time,
                                     policy=rule,
                                     seq=seq, portfolio=name, horizon=horizon, track=track)
        except SwarmVarError as exc:
            note = f"no consensus: {exc}"
        if track is not None and agreed:
            scored = len(next(iter(track.values())).returns)
            record = scored if rule.window is None else min(scored, rule.window)
            note = note or rule.weights_note(scored, horizon)
            if from_cache:
                note += "; track record read from the cache"
        elif agreed and rule.weighting is Weighting.EQUAL:
            note = note or f"{rule.weights_note(None)} (the policy's)"
        elif agreed and days == 0:
            note = note or f"{rule.weights_note(None)} (no track record: track_days=0)"
    return VarResult(
        forecasts={r.name: r.forecast for r in runs if r.forecast is not None},
        errors={r.name: str(r.error) for r in runs if not r.ok},
        agreed=tuple(agreed),
        as_of=as_of,
        horizon=horizon,
        alphas=levels,
        seed=seed,
        note=note,
        runs=tuple(runs),
        record=record,
    )
