"""The worker roles around the beat: foragers, builders, guards and scouts.

The design documents name four kinds of workers; here each is a small piece
of state a portfolio's swarm carries from beat to beat, and none owns any
statistics (they call the engines):

* **foragers** refit agents (:func:`run_refit`, a pure function of a
  :class:`RefitJob`, so it runs in any worker process or Ray task) on the
  backtest's rhythm or when asked; the result is swapped in at a beat boundary;
* **builders** (:class:`Builders`) keep every row's rolling out-of-sample
  validation current: hits, Kupiec and Christoffersen p-values
  (:mod:`swarmvar.validation`) and the mean FZ0 loss over a trailing window;
* **guards** (:class:`Guards`) watch each agent's convergence — particle ESS
  as a fraction of the particles, split R-hat of its last fit, and drift of
  its log predictive score — and ask foragers for a refit (rejuvenation);
* **scouts** (:class:`Scouts`) run Bayesian online change-point detection
  (:class:`~swarmvar.emergence.OnlineChangePoint`, Adams & MacKay 2007) on
  returns standardized by the history's standard deviation and raise the
  regime flag, which asks foragers to refit every agent.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..emergence import OnlineChangePoint
from ..errors import InvalidParameter, SwarmVarError
from ..models import agent_class
from ..types import WEIGHTS_MIN_SHARE, Diagnostics
from ..validation import christoffersen, fz0_loss, kupiec

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RoleConfig:
    """What the roles do and when.

    Attributes
    ----------
    refit_lag : int
        Beats between a refit's data cut and its swap. 0: the refit runs at
        the beat boundary and the beat waits for it (the backtest's rhythm,
        bit for bit); ``k >= 1``: it runs in a forager worker while the swarm
        keeps beating and is swapped in ``k`` beats later, caught up on the
        returns in between.
    refit_wait : bool
        With ``refit_lag >= 1``: wait at the swap beat for a refit still
        running (deterministic numbers), or swap it at the first later beat
        boundary where it is done (the beat never waits; the swap's beat is
        ledgered).
    scouts, scout_hazard, scout_threshold, scout_refits, scout_max_run, scout_warmup
        Change-point detection on, its hazard (1 / expected regime length in
        beats) and flag threshold, whether a rising flag asks for refits, the
        longest run length kept, and how many history returns it reads at the
        start (so the first beats are judged against the current regime).
    builders, builder_window
        Rolling validation on, and its trailing window in beats.
    guards, guard_min_ess, guard_max_rhat, guard_drift, guard_refits
        Convergence watch on; its thresholds (ESS fraction, split R-hat,
        z-score of the last 20 log scores against the trailing 250); whether
        a guard's finding asks for a refit.
    attribute_every : int or None
        A book's attribution (:mod:`.attribution`): every this many beats, off the beat,
        which assets drive its VaR. None (the default): every ``refit_every`` beats; 0:
        off. Single-series portfolios have none.
    """

    refit_lag: int = 0
    refit_wait: bool = True
    scouts: bool = True
    scout_hazard: float = 1 / 250
    scout_threshold: float = 0.5
    scout_refits: bool = True
    scout_max_run: int = 500
    scout_warmup: int = 250
    builders: bool = True
    builder_window: int = 250
    guards: bool = True
    guard_min_ess: float = WEIGHTS_MIN_SHARE
    guard_max_rhat: float = 1.05
    guard_drift: float = 4.0
    guard_refits: bool = True
    attribute_every: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.refit_lag, bool) or not isinstance(self.refit_lag, int) or \
                self.refit_lag < 0:
            raise InvalidParameter(f"refit_lag must be a whole number >= 0, not {self.refit_lag!r}")
        if isinstance(self.builder_window, bool) or not isinstance(self.builder_window, int) or \
                self.builder_window < 20:
            raise InvalidParameter(f"builder_window must be a whole number >= 20, not "
                                   f"{self.builder_window!r}")
        every = self.attribute_every
        if every is not None:
            from .attribution import MAX_ATTRIBUTE_EVERY

            if isinstance(every, bool) or not isinstance(every, int) or \
                    not 0 <= every <= MAX_ATTRIBUTE_EVERY:
                raise InvalidParameter(
                    f"attribute_every must be a whole number of beats from 0 (off) to "
                    f"{MAX_ATTRIBUTE_EVERY}, or None (every refit_every beats), not {every!r}")

    @classmethod
    def quiet(cls, **changes: Any) -> RoleConfig:
        """Roles that watch and report but never ask for a refit (the backtest's rhythm only)."""
        return cls(**{"scout_refits": False, "guard_refits": False, **changes})


@dataclass(frozen=True)
class RoleRecord:
    """One role request or result, for the ledger and the report's events.

    ``role`` is forager/builder/guard/scout; ``action`` what happened
    (refit-requested, refit-swapped, regime-flag, ...); ``agents`` whom it
    concerns; ``detail`` the numbers behind it (plain JSON values).
    """

    role: str
    action: str
    agents: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)

    def words(self) -> str:
        who = ",".join(self.agents) if self.agents else "all"
        return f"{self.role}: {self.action} ({who})"

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "action": self.action, "agents": list(self.agents),
                "detail": dict(self.detail)}


# --- foragers -------------------------------------------------------------------


@dataclass(frozen=True)
class RefitJob:
    """A refit for a forager: the agent's state, its trailing window and seed key.

    ``t`` is the absolute index of the first return the refitted agent will
    forecast (the window is the ``window`` returns before it), ``launched``
    the count of returns the swarm had absorbed, ``swap_at`` the count at
    which it is to be swapped in; the seed is ``(seed, row, t, 0)`` as in the
    backtest.
    """

    portfolio: str
    agent: str
    row: int
    t: int
    launched: int
    swap_at: int
    state: bytes
    returns: FloatArray
    seed: int
    reason: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.portfolio, self.agent, self.launched)


@dataclass(frozen=True)
class RefitResult:
    """What a forager returns: the refitted agent's state (or the error) and its time."""

    portfolio: str
    agent: str
    launched: int
    swap_at: int
    reason: str
    state: bytes | None
    seconds: float
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.portfolio, self.agent, self.launched)


def fit_seed(seed: int, row: int, t: int) -> np.random.Generator:
    """The backtest's fit seed of row ``row`` on day ``t``."""
    return np.random.default_rng([seed, row, t, 0])


def run_refit(job: RefitJob) -> RefitResult:
    """A forager's work: restore the agent, refit it on the job's window, return its state."""
    begin = time.perf_counter()
    try:
        agent = agent_class(job.agent).from_state(job.state)
        agent.refit(job.returns, seed=fit_seed(job.seed, job.row, job.t))
        state = agent.state()
    except SwarmVarError as exc:
        return RefitResult(job.portfolio, job.agent, job.launched, job.swap_at, job.reason, None,
                           time.perf_counter() - begin, str(exc))
    return RefitResult(job.portfolio, job.agent, job.launched, job.swap_at, job.reason, state,
                       time.perf_counter() - begin)


# --- trailing windows -----------------------------------------------------------


class TrailingRows:
    """Rows appended one at a time, of which the last ``keep`` are kept (all if None).

    What ``np.concatenate([rows, row[None]])[-keep:]`` gives at every beat,
    the same values, without copying the whole window each time: rows are
    written into a buffer with room for about twice the window, which is
    replaced (copied once, into a new buffer) only when full. An array handed
    out by :meth:`append` never changes later: a written row is never
    overwritten, and a full buffer is replaced, not reused.

    ``owner_rows`` is the array the caller holds now; if it is not the one
    this ring handed out last (the caller replaced it: a restore), the ring
    starts again from it.
    """

    __slots__ = ("_buf", "_hi", "_keep", "_lo", "last")

    def __init__(self, rows: NDArray[Any], keep: int | None) -> None:
        self._keep = keep if keep else None
        self._reset(np.asarray(rows))

    def _reset(self, rows: NDArray[Any]) -> None:
        if self._keep is not None:
            rows = rows[-self._keep:]
        n = rows.shape[0]
        self._buf = np.empty((max(n, self._keep or n) + n + 64, *rows.shape[1:]), dtype=rows.dtype)
        self._buf[:n] = rows
        self._lo, self._hi = 0, n
        self.last: NDArray[Any] = self._buf[:n]

    def append(self, owner_rows: NDArray[Any], row: Any) -> NDArray[Any]:
        """``owner_rows`` with ``row`` added (and the oldest dropped past ``keep``)."""
        if owner_rows is not self.last:
            self._reset(np.asarray(owner_rows))
        if self._hi == self._buf.shape[0]:  # full: the live rows move to a new buffer
            self._reset(self._buf[self._lo:self._hi])
        self._buf[self._hi] = row
        self._hi += 1
        if self._keep is not None and self._hi - self._lo > self._keep:
            self._lo = self._hi - self._keep
        self.last = self._buf[self._lo:self._hi]
        return self.last


# --- builders -------------------------------------------------------------------


def _counts(hits: NDArray[np.bool_]) -> tuple[int, ...]:
    """What the coverage tests depend on: days, hits and the day-to-day transitions."""
    h = hits.astype(np.int8)
    pair = 2 * h[:-1] + h[1:]
    return (int(h.size), int(h.sum()), *(int(c) for c in np.bincount(pair, minlength=4)))


@functools.lru_cache(maxsize=4096)
def _coverage_pvalues(counts: tuple[int, ...], alpha: float, hits: Any) -> tuple[float, float]:
    """Kupiec and Christoffersen p-values of a hit sequence, cached by its counts.

    Both tests are functions of ``counts`` only (days and hits; transition
    counts), so a window whose counts did not change reuses the last answer.
    ``hits`` rides along unhashed for the miss.
    """
    h = np.asarray(hits.value)
    pk = float(kupiec(h, alpha).pvalue)
    pc = float(christoffersen(h).pvalue) if h.size >= 2 else math.nan
    return pk, pc


class _Unhashed:
    """A value carried through an lru_cache key without taking part in it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashed)


@dataclass(frozen=True)
class RowValidation:
    """One row's rolling validation at one level over the trailing window."""

    days: int
    hits: int
    kupiec: float
    christoffersen: float
    fz0: float


class Builders:
    """Rolling out-of-sample validation of every row (agents and ``"consensus"``)."""

    def __init__(self, rows: Sequence[str], alphas: Sequence[float], window: int) -> None:
        self.rows = tuple(rows)
        self.alphas = tuple(alphas)
        self.window = window
        # per level: (days, rows) hits and FZ0 losses, oldest first, at most `window` days
        self.hits = {a: np.zeros((0, len(self.rows)), dtype=bool) for a in self.alphas}
        self.fz0 = {a: np.zeros((0, len(self.rows))) for a in self.alphas}
        self._rings = {(kind, a): TrailingRows(getattr(self, kind)[a], window)
                       for kind in ("hits", "fz0") for a in self.alphas}

    def add(self, realized: float, var: Mapping[float, FloatArray],
            es: Mapping[float, FloatArray]) -> None:
        """One scored day: each row's VaR/ES forecast ``(rows,)`` per level and the return."""
        for a in self.alphas:
            v, e = var[a], es[a]
            ok = np.isfinite(v) & np.isfinite(e)  # a row without a forecast that day
            top = np.maximum(e, v)
            if ok.all() and (top > 0).all():  # every row forecast and scorable: no masks
                self.hits[a] = self._rings["hits", a].append(self.hits[a], -realized > v)
                self.fz0[a] = self._rings["fz0", a].append(
                    self.fz0[a], fz0_loss(np.full(v.size, -realized), v, top, a))
                continue
            hit = -realized > np.where(ok, v, np.inf)
            # NaN: no forecast that day; +inf: a forecast FZ0 cannot score (it is defined
            # for a positive ES only, and a series that only rose forecasts a gain even
            # in the tail) - counted for coverage, left out of the mean FZ0
            loss = np.where(ok, np.inf, np.nan)
            scored = ok & (np.maximum(np.where(ok, e, 0.0), np.where(ok, v, 0.0)) > 0)
            if scored.any():
                loss[scored] = fz0_loss(np.full(int(scored.sum()), -realized), v[scored],
                                        np.maximum(e[scored], v[scored]), a)
            self.hits[a] = self._rings["hits", a].append(self.hits[a], hit)
            self.fz0[a] = self._rings["fz0", a].append(self.fz0[a], loss)

    def current(self) -> dict[str, dict[float, RowValidation]]:
        """Every row's validation now (empty before the first scored day)."""
        out: dict[str, dict[float, RowValidation]] = {}
        for a in self.alphas:
            h, f = self.hits[a], self.fz0[a]
            if h.shape[0] == 0:
                continue
            for k, row in enumerate(self.rows):
                fz = f[:, k]
                seen = ~np.isnan(fz)  # days the row had a forecast
                col = h[seen, k]
                if col.size == 0:
                    continue
                pk, pc = _coverage_pvalues(_counts(col), a, _Unhashed(col))
                fz = fz[np.isfinite(fz)]
                out.setdefault(row, {})[a] = RowValidation(
                    int(col.size), int(col.sum()), pk, pc,
                    float(fz.mean()) if fz.size else math.nan)
        return out

    def arrays(self) -> dict[str, FloatArray]:
        out: dict[str, FloatArray] = {}
        for i, a in enumerate(self.alphas):
            out[f"builder_hits_{i}"] = self.hits[a].astype(np.float64)
            out[f"builder_fz0_{i}"] = self.fz0[a]
        return out

    def restore(self, arrays: Mapping[str, FloatArray]) -> None:
        for i, a in enumerate(self.alphas):
            self.hits[a] = np.asarray(arrays[f"builder_hits_{i}"]).astype(bool)
            self.fz0[a] = np.asarray(arrays[f"builder_fz0_{i}"], dtype=np.float64)


# --- guards ---------------------------------------------------------------------


class Guards:
    """Convergence watch: particle ESS, split R-hat, and log-score drift per agent.

    The drift signal is the z-score of an agent's mean log predictive score
    over its last 20 beats against the mean and spread of its trailing 250
    (a predictive that stopped describing the returns scores worse). It stands
    in for PIT drift: the agents expose log densities, not predictive CDFs.
    """

    RECENT = 20
    HISTORY = 250

    def __init__(self, agents: Sequence[str], config: RoleConfig) -> None:
        self.agents = tuple(agents)
        self.config = config
        self.scores = np.zeros((0, len(self.agents)))
        self.quiet_until = np.zeros(len(self.agents), dtype=np.int64)
        self._ring = TrailingRows(self.scores, self.HISTORY)

    def check(self, beat: int, log_scores: Mapping[str, float],
              diagnostics: Mapping[str, Diagnostics], cooldown: int) -> list[RoleRecord]:
        """This beat's findings; an agent flagged is not flagged again for ``cooldown`` beats."""
        row = [log_scores.get(a, np.nan) for a in self.agents]
        self.scores = self._ring.append(self.scores, row)
        drift = self._drift()
        found = []
        quiet = self.quiet_until.tolist()
        for k, agent in enumerate(self.agents):
            if beat < quiet[k]:
                continue
            signals: dict[str, float] = {}
            diag = diagnostics.get(agent)
            if diag is not None:
                # the fit-health rule's own tests (Diagnostics.doubts'): the weights' share
                # of the cloud (else of the fit's draws) and the worst split R-hat, a value
                # that is not a number (a collapsed cloud's) flagged too; the ledger takes
                # finite numbers only, so such a value is said by its own key
                frac = diag.share_under(self.config.guard_min_ess)
                if frac is not None:
                    signals.update({"ess_fraction": float(frac)} if math.isfinite(frac)
                                   else {"ess_fraction_not_a_number": 1.0})
                over = diag.rhat_over(self.config.guard_max_rhat)
                if over is not None:
                    rhat = over[1]
                    signals.update({"rhat": float(rhat)} if math.isfinite(rhat)
                                   else {"rhat_not_a_number": 1.0})
            z = drift[k] if drift is not None else self._drift_of(self.scores[:, k])
            if z is not None and z < -self.config.guard_drift:
                signals["score_drift_z"] = z
            if signals:
                self.quiet_until[k] = beat + cooldown
                found.append(RoleRecord("guard", "refit-requested" if self.config.guard_refits
                                        else "warning", (agent,), signals))
        return found

    def _drift_of(self, col: FloatArray) -> float | None:
        """One agent's drift z-score over its finite scores (None: too few, or no spread)."""
        col = col[np.isfinite(col)]
        if col.size < 2 * self.RECENT + 10:
            return None
        past, recent = col[: -self.RECENT], col[-self.RECENT:]
        sd = float(past.std(ddof=1))
        if not sd > 0:
            return None
        return (float(recent.mean()) - float(past.mean())) / (sd / math.sqrt(self.RECENT))

    def _drift(self) -> list[float | None] | None:
        """Every agent's :meth:`_drift_of` at once when all scores are finite, else None.

        The same numbers bit for bit: each agent's scores are a contiguous row
        (the transposed window), and numpy reduces each row of a reduction
        along its last axis as it reduces that row alone (tested equal).
        """
        scores = self.scores
        if scores.shape[0] < 2 * self.RECENT + 10 or not np.isfinite(scores).all():
            return None
        rows = np.ascontiguousarray(scores.T)
        past, recent = rows[:, : -self.RECENT], rows[:, -self.RECENT:]
        sd = past.std(axis=1, ddof=1).tolist()
        root = math.sqrt(self.RECENT)
        return [(r - p) / (s / root) if s > 0 else None
                for r, p, s in zip(recent.mean(axis=1).tolist(), past.mean(axis=1).tolist(), sd,
                                   strict=True)]


# --- scouts ---------------------------------------------------------------------


class Scouts:
    """Regime watch on standardized returns: a change-point detector and its flag."""

    def __init__(self, scale: float, config: RoleConfig) -> None:
        if not scale > 0 or not math.isfinite(scale):
            raise InvalidParameter(f"the scouts' scale must be a positive number, not {scale!r}")
        self.scale = float(scale)
        self.detector = OnlineChangePoint(hazard=config.scout_hazard,
                                          threshold=config.scout_threshold,
                                          max_run=config.scout_max_run)
        self.flag = False

    def warm(self, history: FloatArray) -> None:
        """Run the detector over recent history so the current regime is known at the start."""
        for r in np.asarray(history, dtype=np.float64).tolist():
            self.flag = bool(self.detector.update(r / self.scale).flag)

    def observe(self, r: float) -> tuple[float, RoleRecord | None]:
        """The change probability after ``r``, and a record when the flag rises."""
        step = self.detector.update(r / self.scale)
        rose = step.flag and not self.flag
        self.flag = bool(step.flag)
        if not rose:
            return float(step.prob_change), None
        return float(step.prob_change), RoleRecord(
            "scout", "regime-flag", (), {"prob_change": float(step.prob_change),
                                         "map_run_length": int(step.map_run_length)})

    def state(self) -> bytes:
        return self.detector.to_state()

    def restore(self, data: bytes, flag: bool) -> None:
        self.detector = OnlineChangePoint.from_state(data)
        self.flag = flag
