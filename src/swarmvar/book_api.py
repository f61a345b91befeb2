"""One call for a book: ``swarmvar.book_var(prices, book, ...)``, and its backtest.

It composes the parts (books in, joint agents, attribution, the swarm's
signed consensus, optionally the ledger) and owns no statistics:

* each joint agent (:data:`~swarmvar.models.DEFAULT_BOOK_AGENTS`) is fitted on the
  book's assets and draws predictive scenarios once; the book's VaR/ES
  (exact currency losses), its Euler contributions, marginal risk and the
  incremental risk of a proposed trade all come from those scenarios;
* RiskMetrics (EWMA, delta-normal) is the baseline row beside them;
* the agents' forecasts are signed and combined by
  :func:`~swarmvar.swarm.consensus.swarm_consensus` (equal weights: a book
  has no track record yet); the consensus contributions are the
  consensus-weighted contributions of the agents it used;
* with ``home``, the beat (forecasts, consensus, attributions) is one atomic
  batch in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InvalidBook, InvalidParameter, SwarmVarError
from .types import Book, Consensus, Forecast, RiskMeasure

if TYPE_CHECKING:
    import pandas as pd

    from .models.attribution import Attribution, Incremental
    from .validation import BacktestResult

CONSENSUS = "consensus"
BASELINE = "RiskMetrics"


@dataclass(frozen=True)
class BookResult:
    """The swarm's view of a book: each agent's VaR/ES and attribution, and the consensus.

    Amounts are in the book's currency, losses positive. ``attributions`` and
    ``incremental`` map a row (agent, ``"consensus"``, ``"RiskMetrics"``) to one
    entry per level. ``note`` says why there is no consensus, or how its weights were
    made (as ``swarmvar.var``'s); ``record`` is the number of scored forecasts behind the
    consensus's weights, ``min(track_days, SWARM_POLICY.window)`` (``None``: equal
    weights).
    """

    book: Book
    assets: tuple[str, ...]
    positions: tuple[float, ...]
    as_of: datetime | None
    horizon: int
    alphas: tuple[float, ...]
    forecasts: Mapping[str, Forecast]
    attributions: Mapping[str, tuple[Attribution, ...]]
    incremental: Mapping[str, tuple[Incremental, ...]] = field(default_factory=dict)
    agreed: tuple[Consensus, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
    seconds: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    ledger_entries: tuple[int, int] | None = None
    record: int | None = None

    def rows(self) -> list[str]:
        """Row names in display order: agents, consensus, baseline."""
        agents = [n for n in self.forecasts if n != BASELINE]
        return [*agents, *([CONSENSUS] if self.agreed else []),
                *([BASELINE] if BASELINE in self.forecasts else [])]

    def measure(self, row: str, alpha: float) -> RiskMeasure:
        """VaR/ES of a row at a level."""
        alpha = self._level(alpha)
        if not isinstance(row, str):
            raise InvalidParameter(f"row must be a row name such as {CONSENSUS!r}, not {row!r}")
        if row == CONSENSUS:
            for c in self.agreed:
                if abs(c.alpha - alpha) < 1e-12:
                    return RiskMeasure(c.alpha, c.var, c.es, c.var_interval, c.es_interval)
            raise InvalidParameter(f"no consensus at alpha={alpha:g}")
        if row not in self.forecasts:
            raise InvalidParameter(f"no row {row!r}; rows are {self.rows()}")
        try:
            return self.forecasts[row].at(alpha)
        except KeyError:
            raise InvalidParameter(f"no alpha={alpha:g} in row {row!r}; levels are "
                                   f"{self.alphas}") from None

    def _level(self, alpha: object) -> float:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer,
                                                             np.floating)):
            raise InvalidParameter(f"alpha must be one of the levels {self.alphas}, not "
                                   f"{alpha!r}")
        return float(alpha)

    def to_frame(self) -> pd.DataFrame:
        """One row per (model, alpha): VaR, ES and their credible intervals, in currency."""
        import pandas as pd

        records = []
        for row in self.rows():
            for alpha in self.alphas:
                m = self.measure(row, alpha)
                records.append({"model": row, "alpha": alpha, "var": m.var, "es": m.es,
                                "var_lo": m.var_interval[0], "var_hi": m.var_interval[1],
                                "es_lo": m.es_interval[0], "es_hi": m.es_interval[1]})
        return pd.DataFrame.from_records(records)

    def contributions(self, row: str = CONSENSUS, alpha: float | None = None) -> pd.DataFrame:
        """Per asset: position, component/marginal VaR and ES with errors and intervals."""
        import pandas as pd

        a = self.alphas[0] if alpha is None else self._level(alpha)
        if not isinstance(row, str) or row not in self.attributions:
            raise InvalidParameter(f"no attribution for {row!r}; rows with one are "
                                   f"{list(self.attributions)}")
        att = next((x for x in self.attributions[row] if abs(x.alpha - a) < 1e-12), None)
        if att is None:
            raise InvalidParameter(f"no attribution at alpha={a:g}; levels are {self.alphas}")
        frame = pd.DataFrame({
            "position": att.positions,
            "component_var": att.component_var, "component_var_se": att.component_var_se,
            "component_var_lo": att.component_var_interval[:, 0],
            "component_var_hi": att.component_var_interval[:, 1],
            "component_es": att.component_es, "component_es_se": att.component_es_se,
            "component_es_lo": att.component_es_interval[:, 0],
            "component_es_hi": att.component_es_interval[:, 1],
            "marginal_var": att.marginal_var, "marginal_es": att.marginal_es,
        }, index=pd.Index(att.assets, name="asset"))
        frame["share_es"] = frame["component_es"] / att.es if att.es else np.nan
        return frame

    def summary(self, top: int = 5) -> str:
        """A plain-text summary: every row's VaR/ES, then the top contributors of the consensus."""
        from .models.base import check_whole

        check_whole("top", top, 0)
        lines = [f"book of {len(self.assets)} assets, gross {self.book.gross:,.0f}, net "
                 f"{self.book.net:,.0f}; {self.horizon}-day horizon"
                 + (f", as of {self.as_of.date()}" if self.as_of else "")]
        for row in self.rows():
            for alpha in self.alphas:
                m = self.measure(row, alpha)
                lines.append(f"  {row:<22} {alpha:<6g} VaR {m.var:>14,.0f} "
                             f"[{m.var_interval[0]:,.0f}, {m.var_interval[1]:,.0f}]  "
                             f"ES {m.es:>14,.0f} "
                             f"[{m.es_interval[0]:,.0f}, {m.es_interval[1]:,.0f}]")
        for row, why in self.errors.items():
            lines.append(f"  {row}: failed: {why}")
        lead = CONSENSUS if CONSENSUS in self.attributions else next(iter(self.attributions), None)
        if lead is not None:
            att = self.attributions[lead][0]
            lines.append(f"top contributors to ES at {att.alpha:g} ({lead}):")
            for name, value in att.top(top):
                i = att.assets.index(name)
                lines.append(f"  {name:<10} {value:>14,.0f}  ({100 * value / att.es:.1f}% of ES; "
                             f"90% CI {att.component_es_interval[i, 0]:,.0f} to "
                             f"{att.component_es_interval[i, 1]:,.0f})")
        for row, incs in self.incremental.items():
            if row == CONSENSUS or (CONSENSUS not in self.incremental and row == lead):
                for inc in incs:
                    lines.append(f"trade: incremental VaR {inc.var:+,.0f} "
                                 f"[{inc.var_interval[0]:+,.0f}, {inc.var_interval[1]:+,.0f}],"
                                 f" ES {inc.es:+,.0f} at "
                                 f"{inc.alpha:g} ({row})")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _returns_frame(data: Any, kind: str) -> pd.DataFrame:
    import pandas as pd

    from . import books

    if isinstance(data, (str, Path)):
        if str(data) in books.STOCK_DATASETS:
            return books.load_stocks(str(data))
        return books.read_assets(data, kind=kind)  # type: ignore[arg-type]
    if isinstance(data, pd.DataFrame):
        return books.asset_returns(data, kind=kind)  # type: ignore[arg-type]
    raise InvalidBook(f"data must be a DataFrame of asset prices/returns, a file path or "
                      f"{sorted(books.STOCK_DATASETS)}, not {type(data).__name__}")


def _check_common(*, kind: object, agents: object, seed: object,
                  flags: Mapping[str, object]) -> int:
    """Arguments ``book_var`` and ``book_backtest`` share (names in the message); the seed
    as an int."""
    if not isinstance(kind, str) or kind not in ("price", "return"):
        raise InvalidParameter(f"kind must be 'price' or 'return', not {kind!r}")
    if agents is not None and (isinstance(agents, (str, bytes, Mapping))
                               or not isinstance(agents, Sequence) or not agents
                               or not all(isinstance(a, str) for a in agents)):
        raise InvalidParameter(f"agents must be a non-empty list of joint agent names (or "
                               f"None for the default ones), not {agents!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InvalidParameter(f"{name} must be True or False, not {value!r}")
    from .models.base import check_whole

    return check_whole("seed", seed, 0)


def _book_frame(data: Any, book: Book, kind: str, extra: tuple[str, ...]
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """The book's asset returns ``(T, N)`` and positions from a frame, a file or a bundled set."""
    import pandas as pd

    from . import books
    if isinstance(data, pd.DataFrame):
        frame, pos = books.book_returns(data, book, kind=kind,  # type: ignore[arg-type]
                                        extra=extra, min_obs=30)
    else:
        # returns worked out from prices (or the bundled stocks, from prices) are not judged
        # for looking like prices again; book_matrix/book_returns mark what they did not
        # judge (a digest of the values), for the track record's backtest (_track_records)
        from_prices = kind == "price" or str(data) in books.STOCK_DATASETS
        frame, pos = books.book_matrix(_returns_frame(data, kind), book, extra=extra,
                                       min_obs=30, judge_prices=not from_prices)
    return frame, pos


def _trade_vector(trade: Mapping[str, float] | None, assets: Sequence[str]) -> np.ndarray | None:
    if trade is None:
        return None
    if not trade:
        raise InvalidBook("the trade is empty; give {asset: amount}")
    from .types import check_amount

    d = np.zeros(len(assets))
    where = {a: i for i, a in enumerate(assets)}
    for name, amount in trade.items():
        if name not in where:
            raise InvalidBook(f"the trade names {str(name)[:60]!r}, not an asset of the book's "
                              f"data ({', '.join(list(assets)[:5])}...)")
        d[where[name]] = check_amount(amount, f"trade amount of {name!r}")
    return d


def consensus_attribution(agreed: Consensus, atts: Mapping[str, Attribution]) -> Attribution:
    """The consensus-weighted contributions of the agents the consensus used.

    Components, marginals and interval bounds are the weighted means of the
    used agents' (weights normalized over them); if the consensus VaR/ES
    differs from the weighted mean of the agents' (levels rearranged), the
    components are scaled to sum to the consensus. Standard errors combine
    as ``sqrt(sum w^2 se^2)``.
    """
    from .models.attribution import Attribution

    used = [a for a in agreed.used if a in atts]
    if not used:
        raise InvalidParameter("the consensus used no agent with an attribution")
    raw = np.array([agreed.weights.get(a, 1.0) for a in used], dtype=float)
    w = raw / raw.sum()
    parts = [atts[a] for a in used]

    def mix(attr: str) -> Any:
        return sum(wk * getattr(p, attr) for wk, p in zip(w, parts, strict=True))

    def se(attr: str) -> Any:
        return np.sqrt(sum((wk * getattr(p, attr)) ** 2 for wk, p in zip(w, parts, strict=True)))

    var_mix, es_mix = float(mix("var")), float(mix("es"))
    kv = agreed.var / var_mix if var_mix else 1.0
    ke = agreed.es / es_mix if es_mix else 1.0
    first = parts[0]
    return Attribution(
        alpha=agreed.alpha, assets=first.assets, positions=first.positions,
        var=agreed.var, es=agreed.es, var_se=float(se("var_se")), es_se=float(se("es_se")),
        component_var=kv * mix("component_var"), component_es=ke * mix("component_es"),
        component_var_se=kv * se("component_var_se"), component_es_se=ke * se("component_es_se"),
        component_var_interval=kv * mix("component_var_interval"),
        component_es_interval=ke * mix("component_es_interval"),
        marginal_var=kv * mix("marginal_var"), marginal_es=ke * mix("marginal_es"),
        marginal_var_interval=kv * mix("marginal_var_interval"),
        marginal_es_interval=ke * mix("marginal_es_interval"))


def _baseline_attribution(agent: Any, p: np.ndarray, alphas: tuple[float, ...], h: int,
                          assets: tuple[str, ...]) -> tuple[Attribution, ...]:
    from .models.attribution import Attribution

    out = []
    zero = np.zeros_like(p)
    for alpha in alphas:
        var, es, cv, ce = agent.delta_normal(p, alpha, h)
        mv = np.divide(cv, p, out=np.zeros_like(p), where=p != 0)
        me = np.divide(ce, p, out=np.zeros_like(p), where=p != 0)
        out.append(Attribution(alpha, assets, p, var, es, 0.0, 0.0, cv, ce, zero, zero,
                               np.stack([cv, cv], 1), np.stack([ce, ce], 1), mv, me,
                               np.stack([mv, mv], 1), np.stack([me, me], 1)))
    return tuple(out)


def book_var(
    data: Any,
    book: Book,
    *,
    kind: Literal["price", "return"] = "price",
    agents: Sequence[str] | None = None,
    alphas: Sequence[float] = (0.99,),
    horizon: int = 1,
    window: int = 1000,
    seed: int = 0,
    trade: Mapping[str, float] | None = None,
    consensus: bool = True,
    baseline: bool = True,
    home: str | Path | None = None,
    track_days: int = 0,
) -> BookResult:
    """VaR/ES of a book in currency, its attribution, and the swarm's consensus.

    Parameters
    ----------
    data : DataFrame, path or ``"sp500-stocks"``
        Asset prices (``kind="price"``) or log returns, one column per asset, dated rows.
    book : Book
        Currency positions (long, short, hedged or dollar-neutral).
    agents : joint agent names (default :data:`~swarmvar.models.DEFAULT_BOOK_AGENTS`).
    alphas, horizon : confidence levels, days.
    window : the last ``window`` days the agents fit on.
    seed : root seed (each agent's seed is spawned from it).
    trade : ``{asset: amount}`` a proposed trade, for incremental VaR/ES (assets
        may be outside the book if the data hold them).
    consensus, baseline : add the consensus and the RiskMetrics row.
    home : data directory: record the beat in its ledger (None: no ledger).
    track_days : days of out-of-sample track record behind the consensus weights
        (the agents backtested on the book's last ``track_days`` days, each fit on
        the ``window`` days before; 0: equal weights). The record scores 1-day
        forecasts (``book_backtest`` is horizon 1), so for ``horizon`` > 1 the weights
        rank the agents by their 1-day losses. The weights use the last
        ``min(track_days, SWARM_POLICY.window)`` of them (``BookResult.record``; the note
        names that number).
    """
    from .models import DEFAULT_BOOK_AGENTS, book_agent_class
    from .models.attribution import euler, incremental
    from .models.base import check_whole
    from .models.book_baselines import RiskMetrics
    from .models.risk import risk_measures
    from .swarm import AgentRun
    from .validation._checks import named_alphas as check_levels

    levels = check_levels(alphas)
    horizon = check_whole("horizon", horizon, 1, 250)
    window = check_whole("window", window, 30)
    seed = _check_common(kind=kind, agents=agents, seed=seed,
                         flags={"consensus": consensus, "baseline": baseline})
    track_days = check_whole("track_days", track_days, 0)
    if home is not None and not isinstance(home, (str, Path)):
        raise InvalidParameter(f"home must be a directory path or None, not {home!r}")
    if trade is not None and not isinstance(trade, Mapping):
        raise InvalidBook(f"trade must map assets to amounts, e.g. {{'AAPL': 1e5}}, not "
                          f"{trade!r}")
    frame, pos = _book_frame(data, book, kind, tuple(trade or ()))
    assets = tuple(str(c) for c in frame.columns)
    d = _trade_vector(trade, assets)
    from .data import mark_judged

    # the frame was judged where it entered (_book_frame): its window is not judged again
    x = mark_judged(frame.to_numpy()[-window:])
    as_of = frame.index[-1].to_pydatetime().replace(tzinfo=UTC)
    names = list(agents) if agents is not None else list(DEFAULT_BOOK_AGENTS)
    classes = [book_agent_class(n) for n in names]
    if len({c.name for c in classes}) != len(classes):
        raise InvalidParameter("an agent is given more than once")
    if baseline and RiskMetrics not in classes:
        classes.append(RiskMetrics)
    seeds = np.random.SeedSequence(seed).spawn(len(classes))
    forecasts: dict[str, Forecast] = {}
    atts: dict[str, tuple[Attribution, ...]] = {}
    incs: dict[str, tuple[Incremental, ...]] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    runs = []
    for cls, child in zip(classes, seeds, strict=True):
        agent_seed = int(child.generate_state(1)[0])
        start = time.perf_counter()
        try:
            agent = cls(positions=tuple(pos.tolist()))  # type: ignore[call-arg]
            agent.fit(x, seed=agent_seed)
            if isinstance(agent, RiskMetrics):
                fc = agent.forecast(levels, horizon)
                atts[cls.name] = _baseline_attribution(agent, pos, levels, horizon, assets)
            else:
                scen = agent.scenarios(horizon, seed=agent_seed)
                fc = Forecast(cls.name, horizon,
                              risk_measures(scen.with_positions_family(pos), levels))
                atts[cls.name] = euler(scen, pos, levels, assets=assets)
            if d is not None:
                scen = agent.scenarios(horizon, seed=agent_seed)
                incs[cls.name] = incremental(scen, pos, d, levels)
            forecasts[cls.name] = fc
            seconds[cls.name] = time.perf_counter() - start
            if cls is not RiskMetrics:
                runs.append(AgentRun(cls.name, fc, agent.diagnostics, seconds[cls.name], agent))
        except (SwarmVarError, np.linalg.LinAlgError) as exc:  # a singular fit fails alone
            errors[cls.name] = str(exc) if isinstance(exc, SwarmVarError) else (
                f"numerically singular ({exc}); are two assets (nearly) the same series?")
            seconds[cls.name] = time.perf_counter() - start
            runs.append(AgentRun(cls.name, None, None, seconds[cls.name], None, error=str(exc)))
    agreed: tuple[Consensus, ...] = ()
    note = ""
    record: int | None = None
    ledger_entries = None
    keys = _keys(home, [r.name for r in runs if r.ok])
    seq = 0
    ledger = None
    if home is not None:
        from .ledger import Ledger

        ledger = Ledger.open(home)
        seq = ledger.size
    track = None
    if consensus and track_days:
        track = _track_records(frame, pos, [r.name for r in runs if r.ok], levels, track_days,
                               window, seed)
    try:
        if consensus:
            agreed, note, record = _consensus(runs, keys, as_of, seq, horizon, track)
        if agreed:
            atts[CONSENSUS] = tuple(consensus_attribution(c, {n: next(
                a for a in atts[n] if abs(a.alpha - c.alpha) < 1e-12) for n in c.used
                if n in atts}) for c in agreed)
            if d is not None and incs:
                incs[CONSENSUS] = _consensus_incremental(agreed, incs)
        if ledger is not None:
            first, last = _record(ledger, runs, agreed, atts, book, as_of, horizon)
            ledger_entries = (first, last)
    finally:
        if ledger is not None:
            ledger.close()
    return BookResult(book, assets, tuple(pos.tolist()), as_of, horizon, levels, forecasts, atts,
                      incs, agreed, errors, seconds, note, ledger_entries, record)


def _keys(home: str | Path | None, names: list[str]) -> dict[str, Any]:
    if home is not None:
        from .swarm.consensus import agent_keys

        return agent_keys(home, names)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return {n: Ed25519PrivateKey.generate() for n in names}  # signed for this call only


def _track_records(frame: pd.DataFrame, pos: np.ndarray, names: list[str],
                   levels: tuple[float, ...], days: int, window: int, seed: int
                   ) -> dict[float, Any]:
    """Each level's :class:`~swarmvar.consensus.TrackRecord` of the agents on this book, in
    currency: their out-of-sample forecasts of the book's last ``days`` days."""
    from .consensus import TrackRecord

    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidParameter(f"track_days must be a whole number >= 1, not {days!r}")
    fit_window = min(window, len(frame) - days)
    if fit_window < 100:
        raise InvalidBook(f"a {days}-day track record needs {days + 100} or more days of the "
                          f"book's history, it has {len(frame)}")
    book = Book(tuple(str(c) for c in frame.columns), tuple(pos.tolist()))
    gross = float(np.abs(pos).sum())
    # the frame was checked once (_book_frame); returns worked out from prices carry that
    # (the mark of data.mark_from_prices, a digest of their values) and are not judged for
    # looking like prices here
    res = book_backtest(frame, book, kind="return", agents=names, last=days,
                        window=fit_window, alphas=levels, seed=seed, consensus=False,
                        baselines=False)
    return {alpha: TrackRecord(
        agent_ids=tuple(names), returns=res.returns * gross, alpha=alpha,
        var=np.column_stack([res.series[n][alpha].var for n in names]) * gross,
        es=np.column_stack([res.series[n][alpha].es for n in names]) * gross)
        for alpha in levels}


def _consensus(runs: list[Any], keys: Mapping[str, Any], as_of: datetime, seq: int,
               horizon: int, track: Mapping[float, Any] | None = None
               ) -> tuple[tuple[Consensus, ...], str, int | None]:
    """The consensus of the book's agents, its note, and the scored forecasts behind its
    weights (``None``: equal weights), said as :func:`swarmvar.api.var` says them."""
    from .swarm.consensus import SWARM_POLICY, swarm_consensus

    rule = SWARM_POLICY
    good = [r for r in runs if r.ok]
    if len(good) < rule.aggregator.min_agents(rule.f):
        return (), (f"no consensus: {len(good)} agent{'s' if len(good) != 1 else ''} produced "
                    f"a forecast, and {rule.describe(len(good))}"), None
    try:
        agreed = swarm_consensus(runs, keys, as_of=as_of, seq=seq, portfolio="book",
                                 horizon=horizon, track=track, policy=rule)
    except SwarmVarError as exc:
        return (), f"no consensus: {exc}", None
    if track is None:
        return tuple(agreed), (f"{rule.weights_note(None)} (no track record: track_days=0; "
                               "track_days=N / --track-days N backtests the agents on the "
                               "book first)"), None
    scored = len(next(iter(track.values())).returns)
    # the book's record scores 1-day forecasts (book_backtest), whatever the horizon
    of = " of this book" if horizon == 1 else " of this book's 1-day returns"
    return tuple(agreed), rule.weights_note(scored, of=of), (
        scored if rule.window is None else min(scored, rule.window))


def _consensus_incremental(agreed: tuple[Consensus, ...],
                           incs: Mapping[str, tuple[Incremental, ...]]) -> tuple[Incremental, ...]:
    from .models.attribution import Incremental

    out = []
    for c in agreed:
        used = [a for a in c.used if a in incs]
        if not used:
            continue
        w = np.array([c.weights.get(a, 1.0) for a in used], float)
        w /= w.sum()
        parts = [next(i for i in incs[a] if abs(i.alpha - c.alpha) < 1e-12) for a in used]
        out.append(Incremental(
            c.alpha, parts[0].trade,
            float(sum(wk * p.var for wk, p in zip(w, parts, strict=True))),
            float(sum(wk * p.es for wk, p in zip(w, parts, strict=True))),
            float(np.sqrt(sum((wk * p.var_se) ** 2 for wk, p in zip(w, parts, strict=True)))),
            float(np.sqrt(sum((wk * p.es_se) ** 2 for wk, p in zip(w, parts, strict=True)))),
            (float(sum(wk * p.var_interval[0] for wk, p in zip(w, parts, strict=True))),
             float(sum(wk * p.var_interval[1] for wk, p in zip(w, parts, strict=True)))),
            (float(sum(wk * p.es_interval[0] for wk, p in zip(w, parts, strict=True))),
             float(sum(wk * p.es_interval[1] for wk, p in zip(w, parts, strict=True))))))
    return tuple(out)


def attribution_record(att: Attribution) -> dict[str, Any]:
    """Plain-JSON form of an attribution for the ledger."""
    return {"alpha": att.alpha, "var": att.var, "es": att.es, "var_se": att.var_se,
            "es_se": att.es_se, "assets": list(att.assets),
            "positions": att.positions.tolist(),
            "component_var": att.component_var.tolist(), "component_es": att.component_es.tolist(),
            "component_var_se": att.component_var_se.tolist(),
            "component_es_se": att.component_es_se.tolist(),
            "component_es_interval": att.component_es_interval.tolist(),
            "component_var_interval": att.component_var_interval.tolist()}


def _record(ledger: Any, runs: list[Any], agreed: tuple[Consensus, ...],
            atts: Mapping[str, tuple[Attribution, ...]], book: Book, as_of: datetime,
            horizon: int) -> tuple[int, int]:
    """One atomic batch: a FORECAST per agent and a CONSENSUS per level, each with its
    contributions."""
    from .ledger import EntryKind
    from .swarm.record import consensus_record

    source = "book"
    batch: list[tuple[EntryKind, dict[str, Any]]] = []
    for run in runs:
        rec: dict[str, Any] = {"agent": run.name, "source": source, "as_of": as_of.isoformat(),
                               "fit_seconds": run.fit_seconds,
                               "book": {"assets": list(book.assets),
                                        "positions": list(book.positions)}}
        if run.forecast is not None:
            rec["forecast"] = run.forecast.to_dict()
            rec["contributions"] = [attribution_record(a) for a in atts.get(run.name, ())]
        else:
            rec["error"] = run.error
        batch.append((EntryKind.FORECAST, rec))
    for k, c in enumerate(agreed):
        rec = {"source": source, **consensus_record(c)}
        if CONSENSUS in atts:
            rec["contributions"] = attribution_record(atts[CONSENSUS][k])
        batch.append((EntryKind.CONSENSUS, rec))
    indices = ledger.add_entries(batch)
    return int(indices.start), int(indices.stop - 1)


def book_backtest(
    data: Any,
    book: Book,
    *,
    kind: Literal["price", "return"] = "price",
    agents: Sequence[str] | None = None,
    last: int = 1000,
    window: int = 1000,
    refit_every: int = 20,
    alphas: Sequence[float] = (0.99, 0.975),
    seed: int = 0,
    consensus: bool = True,
    baselines: bool = True,
    workers: int = 1,
    progress: bool = False,
) -> BacktestResult:
    """Out-of-sample backtest of the joint agents on a book's daily P&L (horizon 1).

    The scored series is the book's P&L per unit of gross exposure
    (:mod:`swarmvar.models.book_series`); rows: each joint agent, the
    swarm's consensus over them (:data:`~swarmvar.swarm.consensus.SWARM_POLICY`),
    arch's GARCH(1,1)-t and GJR-GARCH-t on the book's P&L series, and
    RiskMetrics. Multiply VaR/ES by the book's gross for currency.
    """
    import dataclasses

    from .api import max_workers
    from .models import DEFAULT_BOOK_AGENTS, book_agent_class
    from .models.base import check_whole
    from .models.book_baselines import ArchGjrT, RiskMetrics
    from .models.book_series import BookRow
    from .swarm.consensus import SWARM_POLICY
    from .validation import backtest

    seed = _check_common(kind=kind, agents=agents, seed=seed,
                         flags={"consensus": consensus, "baselines": baselines,
                                "progress": progress})
    last = check_whole("last", last, 1)
    window = check_whole("window", window, 100)
    refit_every = check_whole("refit_every", refit_every, 1)
    workers = check_whole("workers", workers, 1, max_workers())
    frame, pos = _book_frame(data, book, kind, ())
    frame = frame.iloc[-(last + window):]
    if len(frame) < window + 1:
        raise InvalidBook(f"the book's assets share {len(frame)} days; a {window}-day window "
                          "needs more")
    # judged where it entered (_book_frame); the rows' fits run inside data.judged_inputs()
    # (validation._backtest_days._run_any_row), so no mark of this memory is needed
    x = frame.to_numpy()
    names = list(agents) if agents is not None else list(DEFAULT_BOOK_AGENTS)
    rows = {book_agent_class(n).name: BookRow(book_agent_class(n)(), x, pos) for n in names}
    series = next(iter(rows.values())).series
    import pandas as pd

    y = pd.Series(series, index=frame.index, name="book")
    pol = {}
    if consensus and len(rows) >= SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f):
        pol[CONSENSUS] = SWARM_POLICY
    main = backtest(y, rows, window=window, refit_every=refit_every, alphas=alphas,
                    baseline="arch" if baselines else None, consensus=pol, seed=seed,
                    progress=progress, workers=workers)
    if not baselines:
        return main
    extra = backtest(y, {BASELINE: BookRow(RiskMetrics(), x, pos), ArchGjrT.name: ArchGjrT()},
                     window=window, refit_every=refit_every, alphas=alphas, baseline=None,
                     seed=seed, progress=progress, workers=workers)
    merged = {**main.series, **extra.series}
    return dataclasses.replace(
        main, series=merged,
        logscore={**main.logscore, **extra.logscore},
        evaluation={**main.evaluation, **extra.evaluation},
        timings={**main.timings, **extra.timings},
        notes={**main.notes, **extra.notes})  # e.g. the GJR-GARCH-t fits that did not converge
