"""Vocabulary passed between the parts of swarmvar: small frozen dataclasses.

Units: VaR and ES are positive losses in return units (0.01 = 1% of value),
``alpha`` is the confidence level (0.99), intervals are equal-tailed posterior
credible intervals ``(lower, upper)``. "as of" is data time; "created" is wall
time; neither is read from the clock in here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

Interval = tuple[float, float]

#: The share of their cloud below which particle weights are not trusted (ESS / particles):
#: the fit warning's (``Diagnostics.doubts``), the arbiter's ``SignalConfig.min_ess_fraction``,
#: the runtime guards' ``RoleConfig.guard_min_ess`` and the particle agents' own
#: ``REFIT_MIN_ESS`` (a warm refit's route) all default to it.
WEIGHTS_MIN_SHARE = 0.05


@dataclass(frozen=True)
class RiskMeasure:
    """VaR and ES at one confidence level, with credible intervals.

    ``var`` and ``es`` are from the posterior predictive distribution (the
    mixture over the posterior); ``var_interval`` and ``es_interval`` are the
    equal-tailed credible intervals of the *conditional* VaR and ES, that is
    their spread across posterior draws of the model's parameters.
    """

    alpha: float
    var: float
    es: float
    var_interval: Interval
    es_interval: Interval

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for ledgers and HTTP)."""
        return {
            "alpha": self.alpha,
            "var": self.var,
            "es": self.es,
            "var_interval": list(self.var_interval),
            "es_interval": list(self.es_interval),
        }


@dataclass(frozen=True)
class Forecast:
    """A model's risk forecast: one :class:`RiskMeasure` per confidence level.

    Attributes
    ----------
    model : str
        Name of the agent class that produced it.
    horizon : int
        Horizon in observations (days for daily returns); losses are of the
        cumulative log return over the horizon.
    levels : tuple of RiskMeasure
        In the order the confidence levels were requested.
    interval_mass : float
        Posterior mass of the credible intervals (0.90 = 5%..95%).
    as_of : datetime or None
        Data time: the last return the forecast saw (it forecasts the
        ``horizon`` days after it); ``None`` when the returns carried no dates.
    """

    model: str
    horizon: int
    levels: tuple[RiskMeasure, ...]
    interval_mass: float = 0.90
    as_of: datetime | None = None

    def at(self, alpha: float) -> RiskMeasure:
        """The measure at confidence level ``alpha``."""
        for level in self.levels:
            if math.isclose(level.alpha, alpha, rel_tol=0.0, abs_tol=1e-12):
                return level
        have = ", ".join(f"{lv.alpha:g}" for lv in self.levels)
        raise KeyError(f"no forecast at alpha={alpha:g}; this forecast has {have}")

    @property
    def alphas(self) -> tuple[float, ...]:
        return tuple(level.alpha for level in self.levels)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "horizon": self.horizon,
            "interval_mass": self.interval_mass,
            "levels": [level.to_dict() for level in self.levels],
        }
        if self.as_of is not None:
            out["as_of"] = self.as_of.isoformat()
        return out

    def to_frame(self) -> Any:
        """Tidy :class:`pandas.DataFrame`, one line per level: model, as_of, horizon,
        alpha, var, es, var_lo, var_hi, es_lo, es_hi (losses, fractions of value)."""
        import pandas as pd

        return pd.DataFrame(
            [{"model": self.model, "as_of": self.as_of, "horizon": self.horizon,
              "alpha": m.alpha, "var": m.var, "es": m.es,
              "var_lo": m.var_interval[0], "var_hi": m.var_interval[1],
              "es_lo": m.es_interval[0], "es_hi": m.es_interval[1]} for m in self.levels],
            columns=["model", "as_of", "horizon", "alpha", "var", "es", "var_lo", "var_hi",
                     "es_lo", "es_hi"])

    def summary(self) -> str:
        """A printable table: each level's VaR and ES (% of value) with credible intervals."""
        when = f" as of {self.as_of:%Y-%m-%d}" if self.as_of is not None else ""
        mass = f"{100 * self.interval_mass:.0f}%"
        lines = [f"{self.model}: {self.horizon}-day VaR and ES{when} (losses, % of value; "
                 f"[{mass} credible interval])",
                 f"{'alpha':>7}  {'VaR':>8}  {mass + ' CI':>18}  {'ES':>8}  {mass + ' CI':>18}"]
        for m in self.levels:
            lines.append(
                f"{m.alpha:>7g}  {100 * m.var:>7.3f}%  "
                f"[{100 * m.var_interval[0]:>6.3f}, {100 * m.var_interval[1]:>6.3f}]  "
                f"{100 * m.es:>7.3f}%  "
                f"[{100 * m.es_interval[0]:>6.3f}, {100 * m.es_interval[1]:>6.3f}]")
        return "\n".join(lines)


@dataclass(frozen=True)
class Diagnostics:
    """How far a fit or an online posterior can be trusted.

    MCMC fits fill ``rhat`` and ``ess_bulk`` / ``ess_tail`` per parameter
    (rank-normalized split R-hat and ESS, Vehtari et al. 2021); SMC fills
    ``ess`` (effective sample size of the particle weights), ``particles``
    (the cloud those weights are over) and ``acceptance`` (of the last
    rejuvenation moves). ``draws`` counts the fit's draws (the particle agents':
    ``runs x particles``). Conjugate and bootstrap models have exact posteriors
    and report only ``method``. ``particles`` is None where no cloud is known
    (diagnostics made before the field existed, hand-built ones).
    """

    method: str
    rhat: Mapping[str, float] = field(default_factory=dict)
    ess_bulk: Mapping[str, float] = field(default_factory=dict)
    ess_tail: Mapping[str, float] = field(default_factory=dict)
    ess: float | None = None
    acceptance: float | None = None
    draws: int | None = None
    seconds: float | None = None
    particles: int | None = None

    @property
    def max_rhat(self) -> float | None:
        """The largest split R-hat; NaN if any is NaN (a collapsed cloud's), None without."""
        return _worst(self.rhat.values(), max)

    @property
    def min_ess(self) -> float | None:
        """The lowest of the bulk, tail and weights' ESS; NaN if any is NaN, None without."""
        values = list(self.ess_bulk.values()) + list(self.ess_tail.values())
        if self.ess is not None:
            values.append(self.ess)
        return _worst(values, min)

    @property
    def ess_fraction(self) -> float | None:
        """The particle weights' ``ess`` as a share of the cloud they weigh (SMC).

        Of ``particles`` when known (GarchT's 500-particle cloud at ESS 380: 0.76), else
        of ``draws`` (diagnostics without a cloud size; for the particle agents ``draws``
        is ``runs x particles``, so that share is at most ``1 / runs`` of the cloud's:
        0.19 of 4 x 500). None without ``ess`` or without a positive count.
        """
        if self.ess is None:
            return None
        for count in (self.particles, self.draws):
            if count is not None and count > 0:
                return self.ess / count
        return None

    def doubts(self, max_rhat: float, min_ess: float,
               min_share: float = WEIGHTS_MIN_SHARE) -> list[str]:
        """Why this fit's forecast is not to be trusted, one phrase each (``[]``: no doubt).

        The one fit-health rule, read by the agents' ``ConvergenceWarning`` and the
        arbiter's ``failed`` signal with their own cut-offs: a split R-hat not at most
        ``max_rhat``; a bulk or tail ESS not at least ``min_ess`` (Vehtari et al. 2021: MCMC
        chains, and the particle agents' runs read as chains); the particle weights' ESS
        whose share of their cloud (:attr:`ess_fraction`) is not at least ``min_share``,
        or, with no cloud size nor draws to take a share of, the weights' ESS itself not at
        least ``min_ess``. Any value that is not a number (NaN: a collapsed cloud's R-hat)
        is a doubt. What the diagnostics do not give is not judged: an exact posterior
        (``method`` only) has no doubt.

        Raises
        ------
        TypeError
            A field holding something other than numbers.
        """
        out: list[str] = []
        over = self.rhat_over(max_rhat)
        if over is not None:
            out.append(f"split R-hat {_num(over[1], '.3f')} > {max_rhat} for {over[0]}")
        chains = [*self.ess_bulk.values(), *self.ess_tail.values()]
        low = _worst(chains, min)
        if low is not None and not low >= min_ess:
            out.append(f"bulk/tail ESS {_num(low, '.0f')} < {min_ess:.0f}")
        if self.ess is not None:
            if self.ess_fraction is None:
                if not self.ess >= min_ess:
                    out.append(f"particle weights' ESS {_num(self.ess, '.0f')} < {min_ess:.0f}")
            elif (share := self.share_under(min_share)) is not None:
                whole = "cloud" if self.particles is not None and self.particles > 0 else "draws"
                out.append(f"particle weights' ESS {_num(self.ess, '.0f')} is "
                           f"{_num(share, '.1%')} of the {whole}, < {min_share:.0%}")
        return out

    def rhat_over(self, max_rhat: float) -> tuple[str, float] | None:
        """The worst split R-hat and its parameter when it is not at most ``max_rhat``, else
        None: :meth:`doubts`' R-hat rule, read by the runtime guards too. NaN (a collapsed
        cloud's) is never at most the cut, and is the worst.

        Raises
        ------
        TypeError
            An R-hat that is not a number.
        """
        if not self.rhat:
            return None
        name = max(self.rhat, key=lambda k: _nan_first(self.rhat[k]))
        worst = self.rhat[name]
        return None if worst <= max_rhat else (name, worst)

    def share_under(self, min_share: float) -> float | None:
        """The weights' share of their cloud (:attr:`ess_fraction`) when it is known and not
        at least ``min_share`` (NaN never is), else None: :meth:`doubts`' share rule, read by
        the runtime guards too.

        Raises
        ------
        TypeError
            An ``ess`` or count that is not a number.
        """
        share = self.ess_fraction
        return None if share is None or share >= min_share else share

    def summary(self) -> str:
        """One short line for tables: ``ESS≥`` is the lowest of the bulk, tail and
        weights' ESS (:attr:`min_ess`)."""
        parts = [self.method]
        if self.max_rhat is not None:
            parts.append(f"R-hat≤{self.max_rhat:.3f}")
        if self.min_ess is not None:
            parts.append(f"ESS≥{self.min_ess:.0f}")
        if self.acceptance is not None:
            parts.append(f"acc {self.acceptance:.2f}")
        return " ".join(parts)


def _worst(values: Iterable[float], pick: Any) -> float | None:
    """``pick`` (max or min) of ``values``, NaN if any is NaN (Python's max and min return
    NaN only when it comes first, hiding a real value behind it); None when empty."""
    seen = list(values)
    if not seen:
        return None
    return math.nan if any(math.isnan(v) for v in seen) else float(pick(seen))


def _nan_first(value: float) -> float:
    """A sort key putting NaN above every number (the worst R-hat is named first)."""
    return math.inf if math.isnan(value) else value


def _num(value: float, spec: str) -> str:
    """``value`` formatted by ``spec``; a NaN said as "not a number"."""
    return "NaN (not a number)" if math.isnan(value) else format(value, spec)


@dataclass(frozen=True)
class Estimate:
    """One agent's signed VaR/ES claim, the unit the consensus works on.

    ``signature`` is an Ed25519 signature over :meth:`payload` in canonical
    JSON; ``None`` means unsigned (rejected by verification).
    """

    agent_id: str
    portfolio: str
    alpha: float
    horizon: int
    var: float
    es: float
    var_interval: Interval
    es_interval: Interval
    as_of: datetime
    seq: int
    variant_id: str | None = None
    signature: bytes | None = None

    def payload(self) -> dict[str, Any]:
        """Every field but the signature, as plain JSON (what is signed)."""
        return {
            "agent_id": self.agent_id,
            "portfolio": self.portfolio,
            "alpha": self.alpha,
            "horizon": self.horizon,
            "var": self.var,
            "es": self.es,
            "var_interval": list(self.var_interval),
            "es_interval": list(self.es_interval),
            "as_of": self.as_of.isoformat(),
            "seq": self.seq,
            "variant_id": self.variant_id,
        }


@dataclass(frozen=True)
class Consensus:
    """The swarm's agreed VaR/ES at one confidence level, and how it was reached.

    ``rejected`` maps agent id to the reason its estimate was refused;
    ``weights`` maps each used agent to its weight; ``available``/``total``
    is the availability m/n; ``staleness`` is the age in seconds of data time
    of the oldest estimate used; ``degraded`` is set when the policy served a
    consensus past its staleness or availability bound.
    """

    alpha: float
    horizon: int
    var: float
    es: float
    var_interval: Interval
    es_interval: Interval
    method: str
    used: tuple[str, ...]
    trimmed: tuple[str, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    available: int = 0
    total: int = 0
    staleness: float = 0.0
    degraded: bool = False
    as_of: datetime | None = None


# --- the living system: ticks, beats, decisions ----------------------------


@dataclass(frozen=True)
class Tick:
    """One observation arriving at the runtime: a day's return for a portfolio.

    Either ``value`` (the portfolio's own log return, as a fraction) or
    ``assets`` (asset name -> log return, for portfolios defined over assets;
    the runtime turns them into the portfolio's return) is set. ``as_of`` is
    data time (the date the return belongs to).
    """

    portfolio: str
    as_of: datetime
    value: float | None = None
    assets: Mapping[str, float] | None = None


@dataclass(frozen=True)
class BeatReport:
    """What one beat of one portfolio produced, for observers (arbiter, service, CLI).

    Attributes
    ----------
    portfolio, seq, as_of
        The portfolio, its beat sequence number (1, 2, ... per portfolio,
        gap-free in the ledger) and the data time of the tick.
    realized : float
        The return that arrived; it scores the forecasts of the previous beat.
    breaches : Mapping[str, tuple[bool, ...]]
        Per agent id and ``"consensus"``: whether ``-realized`` exceeded the
        previous beat's VaR, one flag per level (empty on the first beat).
    log_scores : Mapping[str, float]
        Per agent: the log predictive density of ``realized`` (from ``update``).
    forecasts : Mapping[str, Forecast]
        Per agent alive this beat: its forecast for the next ``horizon`` days.
    consensus : tuple[Consensus, ...]
        One per level, in the order of ``alphas``.
    diagnostics : Mapping[str, Diagnostics]
        Per agent, where the agent reports any.
    rejected : Mapping[str, str]
        Agent id -> why its estimate was refused or missing this beat.
    quarantined : tuple[str, ...]
        Agents held out of the consensus this beat (arbiter decisions).
    regime_probability : float
        The scouts' posterior probability of a regime change at this beat.
    events : tuple[str, ...]
        Role events of this beat in words (refit swapped in, guard request, ...).
    late : bool
        The beat overran its time budget (the arbiter's pulse), if one is set.
    decisions : tuple[Decision, ...]
        What the observers (the arbiter) decided at this beat, as recorded in
        the ledger; filled after the observers ran (the report they see has none).
    """

    portfolio: str
    seq: int
    as_of: datetime
    realized: float
    breaches: Mapping[str, tuple[bool, ...]]
    log_scores: Mapping[str, float]
    forecasts: Mapping[str, Forecast]
    consensus: tuple[Consensus, ...]
    diagnostics: Mapping[str, Diagnostics] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)
    quarantined: tuple[str, ...] = ()
    regime_probability: float = 0.0
    events: tuple[str, ...] = ()
    late: bool = False
    decisions: tuple[Decision, ...] = ()


class Action(Enum):
    """What the arbiter decides at a beat."""

    QUARANTINE = "quarantine"
    ALERT = "alert"
    APPLY_BALANCE = "apply_balance"
    APPLY_OPTIMIZE = "apply_optimize"
    NOOP = "noop"


@dataclass(frozen=True)
class Decision:
    """One arbiter decision about a portfolio's swarm at a beat.

    ``agents`` names the agent(s) it concerns (empty for the whole swarm);
    ``signals`` the measured signals behind it (name -> value); ``threat`` the
    threat score in [0, 1]; ``weights`` the weight multipliers an
    APPLY_BALANCE asks the consensus to apply (agent -> factor in [0, 1]).
    """

    action: Action
    portfolio: str
    seq: int
    agents: tuple[str, ...] = ()
    signals: Mapping[str, float] = field(default_factory=dict)
    threat: float = 0.0
    reason: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)


# --- books (multi-asset portfolios) ------------------------------------------


#: The largest position (or trade) a book takes, in currency units: a quadrillion, above
#: any real book in any currency; beyond it the P&L's squares overflow float64 sums.
MAX_POSITION = 1e15


def check_amount(value: object, what: str) -> float:
    """``value`` as a currency amount (a finite real number of at most ``MAX_POSITION`` in
    size, negative for shorts), else ``InvalidBook`` naming ``what``."""
    import numbers

    from .errors import InvalidBook

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
            float(value)) or abs(float(value)) > MAX_POSITION:
        raise InvalidBook(f"{what} is {str(value)[:40]!r}; give a finite currency amount "
                          f"(negative for shorts) of at most {MAX_POSITION:.0e} in size")
    return float(value)


#: The largest gross size ``sum_i |w_i|`` of a weights book (10 times its value): weights are
#: fractions of value (0.6 = 60%), so a 130/30 book is 1.6 and a 2x or 3x levered one 2 or 3;
#: weights typed in percent (60 and 40: a gross of 100) are far beyond it. A book levered
#: more is given as currency positions, which are not bound.
MAX_WEIGHT_GROSS = 10.0
#: What to tell a user whose weights look like percent.
WEIGHTS_HINT = ("weights are fractions (0.6 = 60%); if these are percent, divide by 100; for "
                "leverage give positions")


def weights_gross(weights: Iterable[float], error: type[Exception], lead: str) -> float:
    """The gross size ``sum_i |w_i|`` of finite weights, once it is at most MAX_WEIGHT_GROSS.

    The one percent-weights rule of :meth:`Book.from_weights` and the data layer
    (``data.position_fractions``); each raises its own error class.

    Raises
    ------
    error
        ``lead`` (what the weights are, e.g. ``"the weights"``) followed by their gross
        size, beyond :data:`MAX_WEIGHT_GROSS`, and :data:`WEIGHTS_HINT`.
    """
    try:
        gross = math.fsum(abs(float(w)) for w in weights)
    except OverflowError:  # finite weights whose sum passes the largest float (1e308s)
        gross = math.inf
    if gross > MAX_WEIGHT_GROSS:
        size = ("past the largest float" if math.isinf(gross) else
                f"of {gross:.10g} times the book's value, beyond {MAX_WEIGHT_GROSS:g}")
        raise error(f"{lead} a gross size {size}; {WEIGHTS_HINT}")
    return gross


@dataclass(frozen=True)
class Book:
    """A book of positions over named assets, in currency, as of a date.

    Positions are currency amounts held in each asset (negative for shorts);
    long, short, hedged and dollar-neutral books (positions summing to zero)
    are all valid. ``Book.from_weights`` builds one from value weights and a
    notional. A position's P&L over a period with log return ``r`` is
    ``position * (exp(r) - 1)``: exact, not linearized.

    Attributes
    ----------
    assets : tuple of str
        Asset names (unique, non-empty), matching the data's columns.
    positions : tuple of float
        Currency amount per asset, same order; finite, at most ``MAX_POSITION``
        (1e15) in size.
    as_of : datetime or None
        Data time the positions are valid at.
    currency : str
        Label of the currency (display only).
    """

    assets: tuple[str, ...]
    positions: tuple[float, ...]
    as_of: datetime | None = None
    currency: str = ""

    def __post_init__(self) -> None:

        from .errors import InvalidBook

        if len(self.assets) != len(self.positions):
            raise InvalidBook(f"{len(self.assets)} assets but {len(self.positions)} positions; "
                              "give one position per asset")
        if not self.assets:
            raise InvalidBook("the book has no positions; give at least one asset=amount")
        for name, pos in zip(self.assets, self.positions, strict=True):
            if not isinstance(name, str) or not name.strip():
                raise InvalidBook(f"asset name {name!r} must be a non-empty string")
            check_amount(pos, f"position in {name!r}")
        twice = sorted({a for a in self.assets if self.assets.count(a) > 1})
        if twice:
            raise InvalidBook(f"asset(s) {', '.join(twice)} appear more than once; give each "
                              "asset one net position")
        if all(float(p) == 0.0 for p in self.positions):
            raise InvalidBook("every position is zero; the book holds nothing")
        object.__setattr__(self, "positions", tuple(float(p) for p in self.positions))

    @classmethod
    def from_positions(cls, positions: Mapping[str, float], *, as_of: datetime | None = None,
                       currency: str = "") -> Book:
        """A book from ``{asset: currency amount}``."""
        return cls(tuple(positions), tuple(positions.values()), as_of, currency)

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], notional: float, *,
                     as_of: datetime | None = None, currency: str = "") -> Book:
        """A book holding ``weight * notional`` of each asset (weights need not sum to one)."""
        import numbers

        from .errors import InvalidBook

        if isinstance(notional, bool) or not isinstance(notional, numbers.Real) or not (
                math.isfinite(float(notional)) and float(notional) > 0):
            raise InvalidBook(f"notional must be a positive finite amount, not {notional!r}")
        for name, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(
                    float(w)):
                raise InvalidBook(f"weight of {name!r} is {w!r}; weights must be finite numbers")
        weights_gross(weights.values(), InvalidBook, "the weights have")  # the data layer's
        return cls(tuple(weights), tuple(float(w) * float(notional) for w in weights.values()),
                   as_of, currency)

    @property
    def gross(self) -> float:
        """Sum of absolute positions (currency)."""
        return float(sum(abs(p) for p in self.positions))

    @property
    def net(self) -> float:
        """Sum of positions (currency); zero for a dollar-neutral book."""
        return float(sum(self.positions))

    def as_dict(self) -> dict[str, float]:
        """``{asset: position}`` in the book's order."""
        return dict(zip(self.assets, self.positions, strict=True))
