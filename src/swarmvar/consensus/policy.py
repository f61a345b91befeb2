"""The consensus policy and its evidence: `Policy`, `DEFAULT_POLICY`, `TrackRecord`.

What :func:`~.combine.combine` (a live beat), :func:`~.rows.aggregate_rows` (a
replayed beat) and :func:`~.series.consensus_series` (a backtest's consensus
row) are told to do: the robust rule and its ``f`` (with ``f_steps``), how
agents are weighted (:class:`Weighting`), the staleness and availability
bounds, and the interval mass and drift of the widening. A
:class:`TrackRecord` is the evidence behind track-record, BMA and tempered
weights (realized returns and each agent's forecasts of them), turned into
weights by :func:`~.prior_weights.agent_weights`.

Frozen values only: nothing here reads or writes state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter
from .partition import SECONDS_PER_DAY, BoundMode, StalenessBound, z_value
from .robust import Aggregator
from .tempered import TEMPERED_ETA, TEMPERED_WINDOW
from .weights import Loss

FloatArray = NDArray[np.float64]


class Weighting(Enum):
    """How agents are weighted before the robust rule."""

    EQUAL = "equal"
    TRACK_RECORD = "track_record"  # exponential weights of realized pinball / FZ0 loss (summed)
    BMA = "bma"  # posterior model probabilities from predictive log scores
    TEMPERED = "tempered"  # tempered exponential weights of the per-day mean joint loss


@dataclass(frozen=True)
class Policy:
    """How the swarm reaches consensus.

    Attributes
    ----------
    aggregator : Aggregator
        The robust rule.
    f : int
        Byzantine agents tolerated (the rule's bound on ``n`` applies).
    weighting : Weighting
        Equal, track-record, BMA or tempered weights (all but equal need a
        ``TrackRecord``).
    loss : Loss
        Scoring rule for track-record weights.
    window : int or None
        Trailing window of the track record (observations).
    eta : float or None
        Inverse temperature of track-record weights (default: see ``weights``;
        for tempered weights :data:`~.tempered.TEMPERED_ETA`).
    staleness : StalenessBound
        Bound on seq lag and data age.
    min_available : float
        Least fraction ``m/n`` of agents needed for a non-degraded consensus.
    on_bound : BoundMode
        Refuse or degrade past the staleness or availability bound.
    interval_mass : float
        Posterior mass of the credible intervals (for widening).
    drift : float
        Volatility of log-VaR per square-root day (for staleness widening).
    multi_krum_m : int or None
        How many inputs multi-Krum averages (default ``n - f``): an int >= 1; over fewer
        than ``multi_krum_m + f`` agents the rule refuses (:func:`~.robust.multi_krum`) and
        :meth:`describe` says how many it needs.
    f_steps : tuple of (int, int)
        ``(n, f_n)`` pairs: with at least ``n`` agents combined, the trimmed
        mean drops ``f_n`` per side instead of ``f`` (the largest that
        applies; a step at or below ``f`` does nothing, so the tolerance only
        grows; ``n >= 2 f_n + 1``, so the rule's bound still holds). :meth:`f_for` gives the
        ``f`` of ``m`` agents. The number of agents needed stays that of ``f``.
    """

    aggregator: Aggregator = Aggregator.TRIMMED_MEAN
    f: int = 1
    weighting: Weighting = Weighting.EQUAL
    loss: Loss = Loss.FZ0
    window: int | None = 250
    eta: float | None = None
    staleness: StalenessBound = field(default_factory=StalenessBound)
    min_available: float = 0.0
    on_bound: BoundMode = BoundMode.REFUSE
    interval_mass: float = 0.90
    drift: float = 0.05
    multi_krum_m: int | None = None
    f_steps: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.f, bool) or not isinstance(self.f, int) or self.f < 0:
            raise InvalidParameter(f"policy f must be an int >= 0, got {self.f!r}")
        steps = self.f_steps
        if not isinstance(steps, tuple) or not all(
                isinstance(st, tuple) and len(st) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in st)
                and st[1] >= 0 and st[0] >= 2 * st[1] + 1 for st in steps):
            raise InvalidParameter(
                f"f_steps must be a tuple of (n, f_n) int pairs with f_n >= 0 and "
                f"n >= 2 f_n + 1, got {steps!r}")
        k = self.multi_krum_m
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise InvalidParameter(
                f"multi_krum_m (how many agents multi-Krum averages) must be None (n - f) or "
                f"an int >= 1, got {k!r}")
        if not 0.0 <= self.min_available <= 1.0:
            raise InvalidParameter(
                f"min_available is a fraction in [0, 1], got {self.min_available}"
            )
        if not self.drift >= 0:
            raise InvalidParameter(f"drift must be >= 0, got {self.drift}")
        z_value(self.interval_mass)

    def f_for(self, m: int) -> int:
        """The ``f`` the rule uses over ``m`` agents (``f``, or the largest step reached).

        Steps apply to the trimmed mean only: the other rules keep ``f``.
        """
        f = self.f
        if self.aggregator is not Aggregator.TRIMMED_MEAN:
            return f
        for n, fn in self.f_steps:
            if m >= n and fn > f:
                f = fn
        return f

    def multi_krum_kept(self, m: int) -> int:
        """How many of ``m`` agents multi-Krum averages: ``multi_krum_m``, or ``m - f``
        (at least 1), as :func:`~.robust.multi_krum` takes them (it refuses a
        ``multi_krum_m`` above ``m - f``: see :meth:`describe`)."""
        return max(1, m - self.f) if self.multi_krum_m is None else self.multi_krum_m

    @property
    def method(self) -> str:
        """Short description for tables and ledgers, e.g.
        ``"trimmed_mean(f=1 (f=2 from 6 agents on), tempered)"``: a step is a threshold
        (it applies only from that many agents on), not the number of agents used.

        Steps are said for the trimmed mean only, the one rule they apply to
        (:meth:`f_for`): the swarm's policy with Krum reads ``"krum(f=1, tempered)"``."""
        steps = ("; ".join(f"f={fn} from {n} agents on" for n, fn in self.f_steps)
                 if self.aggregator is Aggregator.TRIMMED_MEAN else "")
        return (f"{self.aggregator.value}(f={self.f}{f' ({steps})' if steps else ''}, "
                f"{self.weighting.value})")

    def describe(self, m: int, *, record: int | None = None, horizon: int = 1,
                 weights: bool = True) -> str:
        """What the rule does over ``m`` agents, in words for a risk user (:attr:`method`
        stays the machine's name for ledgers and JSON).

        E.g. ``"trimmed mean of 6 agents dropping the 2 highest and 2 lowest of each
        figure; tempered weights from each agent's FZ0 loss over its last 1000 forecasts"``,
        or, below the rule's bound (``m`` too few), ``"a trimmed mean dropping the highest and
        the lowest needs at least 3 agents"``; multi-Krum averaging ``multi_krum_m`` agents
        needs ``multi_krum_m + f`` (``"a multi-Krum averaging 9 agents, tolerating 1 faulty
        agent, needs at least 10 agents"``: the consensus refuses then).

        Parameters
        ----------
        m : int
            Agents combined.
        record : int, optional
            Scored forecasts in the track record behind the weights, when it is shorter
            than it may be (``swarmvar.var``'s ``track_days``): the words then name the
            ``min(window, record)`` forecasts the weights actually used. Default: a record
            at least ``window`` long (a backtest's, day after day).
        horizon : int
            Above 1, each scored forecast is a non-overlapping ``horizon``-day window (the
            words say so); 1: forecasts (of any horizon, one a day).
        weights : bool
            False: the rule alone, without the weights' clause (``swarmvar var`` says the
            weights once, in its note: :meth:`weights_note`).

        Raises
        ------
        InvalidParameter
            ``m`` not a whole number >= 0, ``record`` not one or None, ``horizon`` not >= 1.
        """
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise InvalidParameter(f"the number of agents must be a whole number >= 0, "
                                   f"got {m!r}")
        _check_words_args(record, horizon)
        f = self.f_for(m)
        need = self.aggregator.min_agents(self.f)
        agents = f"{m} agent{'s' if m != 1 else ''}"
        if self.aggregator is Aggregator.TRIMMED_MEAN:
            drop = ("the highest and the lowest" if f == 1 else
                    f"the {f} highest and {f} lowest")
            if m < need:
                return f"a trimmed mean dropping {drop} needs at least {need} agents"
            rule = (f"trimmed mean of {agents} dropping {drop} of each figure" if f else
                    f"mean of {agents} (nothing trimmed)")
        else:
            name = {Aggregator.MEDIAN: "median", Aggregator.GEOMETRIC_MEDIAN: "geometric median",
                    Aggregator.KRUM: "Krum (the agent closest to the others)",
                    Aggregator.MEAN: "mean (not robust)"}.get(
                        self.aggregator,
                        f"multi-Krum (mean of the {self.multi_krum_kept(m)} agents "
                        "closest to the others)")
            tolerates = (f", tolerating {f} faulty agent{'s' if f != 1 else ''}"
                         if f else "")
            k = self.multi_krum_m
            if (self.aggregator is Aggregator.MULTI_KRUM and k is not None
                    and k + self.f > need):  # robust.multi_krum keeps at most m - f
                need = k + self.f
                if m < need:
                    return (f"a multi-Krum averaging {k} agent{'s' if k != 1 else ''}"
                            f"{tolerates}{',' if f else ''} needs at least {need} agents")
            if m < need:
                return f"a {name.split(' (')[0]}{tolerates[1:]} needs at least {need} agents"
            rule = f"{name} of {agents}{tolerates}"
        return f"{rule}; {self.weights_words(record, horizon)}" if weights else rule

    def lead_words(self) -> str:
        """What makes one agent's weight the largest, in words: ``"lowest FZ0 loss"``
        (tempered weights; track-record weights: of their ``loss``), ``"highest log score"``
        (BMA); ``""`` for equal weights (no agent leads).

        The weights are exponential in the loss (or the log score), so among any agents the
        largest weight goes to the lowest loss (the highest score).
        """
        loss = "FZ0" if self.weighting is Weighting.TEMPERED else self.loss.value.upper()
        return {Weighting.EQUAL: "", Weighting.TRACK_RECORD: f"lowest {loss} loss",
                Weighting.TEMPERED: f"lowest {loss} loss",
                Weighting.BMA: "highest log score"}[self.weighting]

    def weights_words(self, record: int | None = None, horizon: int = 1) -> str:
        """How the rule weights the agents, in words: the clause after the rule in
        :meth:`describe`, e.g. ``"tempered weights from each agent's FZ0 loss over its
        last 250 forecasts"`` or ``"equal weights"``.

        Parameters
        ----------
        record : int, optional
            Scored forecasts in the track record behind the weights (see :meth:`describe`).
        horizon : int
            Above 1, each scored forecast is a non-overlapping ``horizon``-day window.

        Raises
        ------
        InvalidParameter
            ``record`` not a whole number >= 0 or None, ``horizon`` not >= 1.
        """
        _check_words_args(record, horizon)
        kept = (record if self.window is None else self.window if record is None
                else min(self.window, record))
        return self._weights_over(_span(kept, horizon))

    def _weights_over(self, span: str) -> str:
        """The weights' words with the forecasts they score said as ``span``."""
        return {
            Weighting.EQUAL: "equal weights",
            Weighting.TRACK_RECORD: f"weights from each agent's {self.loss.value.upper()} "
                                    f"loss over {span}",
            Weighting.BMA: f"Bayesian model averaging weights (log scores over {span})",
            Weighting.TEMPERED: f"tempered weights from each agent's FZ0 loss over {span}",
        }[self.weighting]

    def weights_note(self, scored: int | None, horizon: int = 1, *, of: str = "") -> str:
        """A consensus's note on how its weights were made, said once: ``"consensus: "``
        and :meth:`weights_words` over the forecasts the weights used.

        E.g. ``"consensus: tempered weights from each agent's FZ0 loss over its last 60
        forecasts, out of sample"``; at ``horizon`` 5, ``"... over its last 60 days in 12
        non-overlapping 5-day windows, out of sample"``; without a track record,
        or under an equal-weight policy, ``"consensus: equal weights"`` (the caller says
        why after it).

        Parameters
        ----------
        scored : int or None
            Scored forecasts in the track record (``None``: none, so equal weights); the
            weights use the last ``min(scored, window)`` of them, and the words say so.
        horizon : int
            Above 1, each scored forecast is a non-overlapping ``horizon``-day window (the
            words name the days they span first).
        of : str
            Words after the forecasts, e.g. ``" of this book"``.

        Raises
        ------
        InvalidParameter
            ``scored`` not a whole number >= 0 or None, ``horizon`` not >= 1.
        """
        _check_words_args(scored, horizon)
        if scored is None or self.weighting is Weighting.EQUAL:
            return "consensus: equal weights"
        used = scored if self.window is None else min(scored, self.window)
        return f"consensus: {self._weights_over(_span(used, horizon, of=of))}, out of sample"


def _span(kept: int | None, horizon: int, *, of: str | None = None) -> str:
    """``"its last 60 forecasts"``, ``"its last 12 non-overlapping 5-day windows"`` or
    ``"its whole record"``; with ``of`` (a note's), those words after the forecasts, and
    above horizon 1 the days first: ``"its last 60 days in 12 non-overlapping 5-day
    windows"``."""
    if kept is None:
        return "its whole record"
    scored = ("forecast" if horizon == 1 else f"non-overlapping {horizon}-day window"
              ) + ("" if kept == 1 else "s")
    if of is None:
        return f"its last {kept} {scored}"
    if horizon == 1:
        return f"its last {kept} {scored}{of}"
    return f"its last {kept * horizon} days in {kept} {scored}{of}"


def _check_words_args(record: object, horizon: object) -> None:
    """Refuse a ``record`` or ``horizon`` :meth:`Policy.describe`,
    :meth:`Policy.weights_words` and :meth:`Policy.weights_note` cannot put in words.

    Raises
    ------
    InvalidParameter
        ``record`` not a whole number >= 0 or None, ``horizon`` not a whole number >= 1.
    """
    if record is not None and (isinstance(record, bool) or not isinstance(record, int)
                               or record < 0):
        raise InvalidParameter(f"the track record's length must be a whole number >= 0 "
                               f"or None, got {record!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise InvalidParameter(f"the horizon must be a whole number >= 1, got {horizon!r}")


#: The swarm's default rule: drop the highest and lowest forecast (f = 1 Byzantine
#: agent tolerated with 3 or more agents; from 6 agents on, the two highest and two
#: lowest) and average the rest with tempered weights of each agent's per-day mean
#: joint FZ0 loss over its last TEMPERED_WINDOW realized forecasts; estimates whose
#: data are more than 5 days older than the beat are stale (a long weekend plus a
#: holiday). Chosen by the studies in docs/consensus.md (the f = 2 step: the third).
DEFAULT_POLICY = Policy(
    aggregator=Aggregator.TRIMMED_MEAN,
    f=1,
    weighting=Weighting.TEMPERED,
    loss=Loss.FZ0,
    window=TEMPERED_WINDOW,
    eta=TEMPERED_ETA,
    staleness=StalenessBound(max_age=5 * SECONDS_PER_DAY),
    f_steps=((6, 2),),
)


@dataclass(frozen=True)
class TrackRecord:
    """Realized returns and what each agent forecast for them, oldest first.

    ``returns (T,)``; ``var``, ``es``, ``log_scores`` are ``(T, k)`` with one
    column per ``agent_ids`` entry (``log_scores[t, i] = log p_i(r_t | past)``).
    """

    agent_ids: tuple[str, ...]
    returns: FloatArray
    alpha: float
    var: FloatArray | None = None
    es: FloatArray | None = None
    log_scores: FloatArray | None = None
