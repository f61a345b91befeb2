"""A backtest's daily forecasts as a replayable history of beats (cached in a data home).

The arbiter is built and checked on replayed beats: the backtest driver's
strictly out-of-sample forecasts of every agent (and the swarm's consensus
row) on a real series, turned into one :class:`~swarmvar.types.BeatReport`
per day. Running five agents over 2,500 days costs minutes on a shared
machine, so :func:`cached_history` keeps the arrays in an ``.npz`` file
(plain arrays, no pickle) under the data home (``<home>/cache/arbiter``),
keyed by every setting that changes them, the swarmvar version and a hash of
the code that computes them (:func:`code_fingerprint`): after a change to an
agent the old file is never read again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter, InvalidState
from ..models.base import check_whole
from ..types import BeatReport, Consensus, Forecast, RiskMeasure

if TYPE_CHECKING:
    from ..consensus import Policy
    from ..validation import BacktestResult

FloatArray = NDArray[np.float64]

#: Where :func:`cached_history` keeps backtests unless told: the default data home's cache
#: (``swarmvar arbiter replay`` uses ``<--home>/cache/arbiter`` or ``--cache``).
DEFAULT_CACHE = Path(".swarmvar") / "cache" / "arbiter"

#: The code a cached backtest depends on (under the package): the agents, the backtest
#: driver, the consensus, the data loading and the bundled series.
SOURCES = ("models", "validation", "consensus", "datasets", "data", "arbiter/history.py")

#: The consensus row's name in the backtest and in ``BeatReport.breaches``.
CONSENSUS = "consensus"


@dataclass(frozen=True)
class BeatHistory:
    """Every agent's daily out-of-sample forecasts of one series.

    Shapes: ``L`` levels, ``T`` days, ``n`` agents. ``cols`` is ``(L, 6, T, n)``
    holding VaR, ES, VaR lo, VaR hi, ES lo, ES hi (positive losses, return
    units); ``consensus`` ``(L, 6, T)`` the same for the swarm's consensus
    row; ``logscore (T, n)`` each agent's log predictive density of the day's
    return (nats); ``returns (T,)`` the realized log returns; ``dates (T,)``
    as ``datetime64[D]``. ``path`` is the ``.npz`` file the history was read
    from (:meth:`load`) or written to by :func:`cached_history`; ``None`` for
    one built in memory or sliced.
    """

    name: str
    dates: NDArray[np.datetime64]
    returns: FloatArray
    alphas: tuple[float, ...]
    agents: tuple[str, ...]
    cols: FloatArray
    consensus: FloatArray
    logscore: FloatArray
    path: Path | None = field(default=None, compare=False)

    @property
    def days(self) -> int:
        return int(self.returns.size)

    def hits(self) -> NDArray[np.bool_]:
        """Agent breaches ``(L, T, n)``: the day's loss above the agent's VaR."""
        return np.asarray(-self.returns[None, :, None] > self.cols[:, 0])

    def consensus_hits(self) -> NDArray[np.bool_]:
        """Consensus breaches ``(L, T)``."""
        return np.asarray(-self.returns[None, :] > self.consensus[:, 0])

    def slice(self, start: int, stop: int) -> BeatHistory:
        """Days ``start .. stop-1`` only."""
        start, stop = (check_whole("start", start, 0, self.days),
                       check_whole("stop", stop, 0, self.days))
        if not 0 <= start < stop <= self.days:
            raise InvalidParameter(f"day range {start}..{stop} is outside 0..{self.days}")
        return BeatHistory(self.name, self.dates[start:stop], self.returns[start:stop],
                           self.alphas, self.agents, self.cols[:, :, start:stop],
                           self.consensus[:, :, start:stop], self.logscore[start:stop])

    def forecast(self, agent: int, day: int) -> Forecast:
        """Agent ``agent``'s forecast for day ``day`` as the backtest made it."""
        return self._forecast(check_whole("agent", agent, 0, len(self.agents) - 1),
                              check_whole("day", day, 0, self.days - 1))

    def _forecast(self, agent: int, day: int) -> Forecast:
        """:meth:`forecast` on indices known to be in range."""
        c = self.cols[:, :, day, agent]
        return Forecast(self.agents[agent], 1, tuple(
            RiskMeasure(a, float(c[k, 0]), float(c[k, 1]), (float(c[k, 2]), float(c[k, 3])),
                        (float(c[k, 4]), float(c[k, 5])))
            for k, a in enumerate(self.alphas)))

    def beats(self, portfolio: str | None = None) -> Iterator[BeatReport]:
        """One :class:`BeatReport` per day ``1 .. T-1``, as the runtime would emit it.

        Beat ``i`` (``seq = i``) brings day ``i-1``'s return, scores the
        forecasts made for it (breaches per level, log scores) and carries
        the agents' forecasts and the consensus for day ``i``.
        """
        name = portfolio or self.name
        hits, chits = self.hits(), self.consensus_hits()
        for i in range(1, self.days):
            yield self.beat(i, name, hits, chits)

    def beat(self, i: int, portfolio: str,
             hits: NDArray[np.bool_] | None = None,
             chits: NDArray[np.bool_] | None = None) -> BeatReport:
        """Beat ``i`` (see :meth:`beats`)."""
        i = check_whole("beat i", i, 1, self.days - 1)
        if not isinstance(portfolio, str) or not portfolio:
            raise InvalidParameter(f"portfolio must be a name, not {portfolio!r}")
        hits = self.hits() if hits is None else hits
        chits = self.consensus_hits() if chits is None else chits
        breaches = {a: tuple(bool(hits[k, i - 1, j]) for k in range(len(self.alphas)))
                    for j, a in enumerate(self.agents)}
        breaches[CONSENSUS] = tuple(bool(chits[k, i - 1]) for k in range(len(self.alphas)))
        as_of = datetime.combine(self.dates[i - 1].astype(object), datetime.min.time(),
                                 tzinfo=UTC)
        cons = tuple(
            Consensus(alpha=a, horizon=1, var=float(self.consensus[k, 0, i]),
                      es=float(self.consensus[k, 1, i]),
                      var_interval=(float(self.consensus[k, 2, i]),
                                    float(self.consensus[k, 3, i])),
                      es_interval=(float(self.consensus[k, 4, i]),
                                   float(self.consensus[k, 5, i])),
                      method="replay", used=self.agents, available=len(self.agents),
                      total=len(self.agents), as_of=as_of)
            for k, a in enumerate(self.alphas))
        return BeatReport(
            portfolio=portfolio, seq=i, as_of=as_of, realized=float(self.returns[i - 1]),
            breaches=breaches,
            log_scores={a: float(self.logscore[i - 1, j]) for j, a in enumerate(self.agents)},
            forecasts={a: self._forecast(j, i) for j, a in enumerate(self.agents)},
            consensus=cons)

    # --- files ---------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Write the arrays to ``path`` (``.npz``, no pickled objects), atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, dates=self.dates.astype("datetime64[D]").astype(np.int64),
                 returns=self.returns, alphas=np.array(self.alphas), cols=self.cols,
                 consensus=self.consensus, logscore=self.logscore,
                 meta=np.frombuffer(json.dumps({"name": self.name,
                                                "agents": list(self.agents)}).encode(),
                                    dtype=np.uint8))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> BeatHistory:
        """Read a history written by :meth:`save`.

        Raises
        ------
        InvalidState
            The file is not such a history: not an archive, missing arrays, or arrays
            whose shapes or values do not fit together (a cut or altered file).
        """
        try:
            raw = Path(path).read_bytes()  # parsed from memory: a bad archive leaves no file open
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                history = cls(name=str(meta["name"]),
                              dates=z["dates"].astype("datetime64[D]"),
                              returns=np.asarray(z["returns"], dtype=np.float64),
                              alphas=tuple(float(a) for a in z["alphas"]),
                              agents=tuple(str(a) for a in meta["agents"]),
                              cols=np.asarray(z["cols"], dtype=np.float64),
                              consensus=np.asarray(z["consensus"], dtype=np.float64),
                              logscore=np.asarray(z["logscore"], dtype=np.float64),
                              path=Path(path))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise InvalidParameter(f"no beat history file at {path}") from None
        except (ValueError, KeyError, TypeError, EOFError, UnicodeError, IndexError,
                AttributeError, OverflowError, zipfile.BadZipFile, zlib.error, RuntimeError) as exc:
            raise InvalidState(f"{path} is not a beat history (cut or altered?): {exc!r}; "
                               "delete it to rebuild it") from None
        _check_history(history)
        return history

    @classmethod
    def from_result(cls, name: str, result: BacktestResult, agents: Sequence[str]
                    ) -> BeatHistory:
        """From a backtest with the agents' rows and a ``"consensus"`` row."""
        from ..validation import BacktestResult

        if not isinstance(result, BacktestResult):
            raise InvalidParameter(f"result must be a BacktestResult, not "
                                   f"{type(result).__name__}")
        if isinstance(agents, (str, bytes)) or not isinstance(agents, Sequence) or not agents:
            raise InvalidParameter(f"agents must be a non-empty list of row names, not "
                                   f"{agents!r}")
        missing = [a for a in (*agents, CONSENSUS) if not isinstance(a, str)
                   or a not in result.series or (a != CONSENSUS and a not in result.logscore)]
        if missing:
            raise InvalidParameter(f"the backtest has no row (with log scores) for "
                                   f"{missing[0]!r}; rows: {', '.join(result.rows)}")
        def six(row: str, alpha: float) -> FloatArray:
            s = result.series[row][alpha]
            return np.stack([s.var, s.es, s.var_lo, s.var_hi, s.es_lo, s.es_hi])

        cols = np.stack([np.stack([six(a, alpha) for a in agents], axis=-1)
                         for alpha in result.alphas])
        cons = np.stack([six(CONSENSUS, alpha) for alpha in result.alphas])
        dates = np.asarray(result.dates, dtype="datetime64[D]")
        return cls(name, dates, np.asarray(result.returns, dtype=np.float64),
                   tuple(result.alphas), tuple(agents), cols, cons,
                   np.column_stack([result.logscore[a] for a in agents]))


def _check_history(h: BeatHistory) -> None:
    """The arrays of a loaded history fit together (else InvalidState naming the file)."""
    k, t, n = len(h.alphas), h.returns.shape[0] if h.returns.ndim == 1 else -1, len(h.agents)
    shapes_ok = (t >= 1 and n >= 1 and h.dates.shape == (t,) and h.cols.shape == (k, 6, t, n)
                 and h.consensus.shape == (k, 6, t) and h.logscore.shape == (t, n))
    if not shapes_ok or not all(0.0 < a < 1.0 for a in h.alphas) or not np.all(
            np.isfinite(h.returns)):
        raise InvalidState(f"{h.path} is not a beat history: its arrays do not fit together "
                           f"(returns {h.returns.shape}, cols {h.cols.shape}, consensus "
                           f"{h.consensus.shape}, logscore {h.logscore.shape}, {k} levels, "
                           f"{n} agents); delete it to rebuild it")


def code_fingerprint(root: Path | None = None, sources: Sequence[str] = SOURCES) -> str:
    """SHA-256 (hex) of the files ``sources`` names under ``root`` (default: the installed
    ``swarmvar`` package): each file's path relative to ``root`` and its bytes, in path
    order. Compiled caches (``__pycache__``, ``.pyc``) are left out."""
    base = Path(__file__).resolve().parents[1] if root is None else Path(root)
    files: list[Path] = []
    for name in sources:
        p = base / name
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                      and f.suffix != ".pyc"]
        elif p.is_file():
            files.append(p)
    digest = hashlib.sha256()
    for f in sorted(set(files)):
        digest.update(f.relative_to(base).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def cache_path(data: str, *, last: int, window: int, refit_every: int,
               alphas: Sequence[float], seed: int, agents: Sequence[str],
               cache: Path | None = None, fingerprint: str | None = None) -> Path:
    """Where :func:`cached_history` keeps this backtest in ``cache`` (default
    :data:`DEFAULT_CACHE`): the name hashes every setting, the swarm's consensus policy,
    the swarmvar version and ``fingerprint`` (default :func:`code_fingerprint`)."""
    from .. import __version__
    from ..swarm.consensus import SWARM_POLICY

    key = json.dumps([data, last, window, refit_every, [float(a) for a in alphas], seed,
                      list(agents), repr(SWARM_POLICY), __version__,
                      code_fingerprint() if fingerprint is None else fingerprint])
    folder = DEFAULT_CACHE if cache is None else Path(cache)
    return folder / f"{data}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


@dataclass(frozen=True)
class WindowFloor:
    """The shortest fitting window a roster accepts: ``agent`` needs ``returns`` returns.

    Each agent's ``min_observations`` is the fewest returns its ``fit``
    accepts; the backtest fits every agent on exactly ``window`` trailing
    returns, so the roster's floor is the largest of them (the first agent
    named, on a tie: :func:`~swarmvar.models.registry.most_needed`). Unlike the
    service's ``min_history`` there is no 30-return floor: that bounds a
    portfolio's stored history, not a backtest's fitting window.
    """

    agent: str
    returns: int


def window_floor(agents: Sequence[str] | None = None) -> WindowFloor:
    """The roster's :class:`WindowFloor` (``agents``: names or aliases; default
    ``models.DEFAULT_AGENTS``, the swarm :func:`cached_history` replays).

    Raises :class:`~swarmvar.errors.SwarmVarError` for an unknown agent name.
    """
    from ..models import DEFAULT_AGENTS
    from ..models.registry import most_needed

    names = tuple(DEFAULT_AGENTS if agents is None else agents)
    if not names:
        raise InvalidParameter("agents: give at least one agent name (or None for the "
                               "default swarm)")
    need, agent = most_needed(names)
    return WindowFloor(agent, need)


def check_window(window: int, agents: Sequence[str] | None = None) -> WindowFloor:
    """Refuse a fitting window too short for any agent of ``agents`` (default the default
    swarm), before any backtest runs or any file is written.

    Returns the roster's :class:`WindowFloor`. Raises
    :class:`~swarmvar.errors.InvalidParameter` naming the agent that needs more
    and the smallest window that works, or for a window that is not a whole
    number.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise InvalidParameter(f"window={window!r}: the fitting window is a whole number of "
                               "returns (e.g. 1000)")
    floor = window_floor(agents)
    if window < floor.returns:
        raise InvalidParameter(
            f"a window of {window} returns (window={window} in Python, --window {window} on "
            f"the command line) is too short: {floor.agent} needs at least {floor.returns} "
            f"returns to fit; give a window of at least {floor.returns}")
    return floor


def cached_history(
    data: str = "sp500",
    *,
    last: int = 2500,
    window: int = 1000,
    refit_every: int = 20,
    alphas: Sequence[float] = (0.99, 0.975),
    seed: int = 0,
    workers: int = 1,
    agents: Sequence[str] | None = None,
    cache: Path | None = None,
    announce: Callable[[Path, bool], None] | None = None,
) -> BeatHistory:
    """The backtest of the default swarm (plus its consensus row) on a bundled series, cached.

    Parameters mirror ``swarmvar backtest``; ``cache`` is the folder (default
    :data:`DEFAULT_CACHE`). The file name hashes all of them, the swarm's
    consensus policy, the swarmvar version and the code's fingerprint, so a
    changed setting or changed code never reads a stale file. ``announce``,
    if given, is called with the cache file's path and whether it is there
    (a hit) before the file is read or the backtest runs. The returned
    history's ``path`` is that file (read on a hit, written otherwise).

    A ``window`` shorter than an agent's ``min_observations`` is refused
    (:func:`check_window`, :class:`~swarmvar.errors.InvalidParameter`) before
    the cache is looked at: nothing is computed or written.
    """
    from ..data import load
    from ..models import DEFAULT_AGENTS, agent_class
    from ..swarm.consensus import SWARM_POLICY
    from ..validation import backtest

    names = tuple(agents or DEFAULT_AGENTS)
    # backtest() refuses such a window too, but only after the cache lookup and announce
    check_window(window, names)
    path = cache_path(data, last=last, window=window, refit_every=refit_every, alphas=alphas,
                      seed=seed, agents=names, cache=cache)
    hit = path.exists()
    if announce is not None:
        announce(path, hit)
    if hit:
        try:
            return BeatHistory.load(path)
        except InvalidState:  # a damaged cache file costs a rebuild, not the run
            pass
    series = load(data)
    series = series.iloc[-(last + window):]
    result = backtest(series, [agent_class(n)() for n in names], window=window,
                      refit_every=refit_every, alphas=alphas, baseline=None, seed=seed,
                      progress=False, consensus={CONSENSUS: SWARM_POLICY}, n_sim=10,
                      workers=workers)
    history = BeatHistory.from_result(data, result, names)
    return replace(history, path=history.save(path))


def consensus_cols(returns: NDArray[np.float64], alphas: Sequence[float],
                   cols: NDArray[np.float64], policy: Policy | None = None
                   ) -> NDArray[np.float64]:
    """The consensus row ``(levels, 6, days)`` of agents' forecast columns ``cols``
    ``(levels, 6, days, agents)`` (VaR, ES, their interval bounds) under ``policy``
    (default the swarm's), as :func:`~swarmvar.consensus.consensus_levels` computes it."""
    from ..consensus import LevelForecasts, consensus_levels
    from ..swarm.consensus import SWARM_POLICY

    levels = {a: LevelForecasts(cols[k, 0], cols[k, 1], np.stack([cols[k, 2], cols[k, 3]], -1),
                                np.stack([cols[k, 4], cols[k, 5]], -1))
              for k, a in enumerate(alphas)}
    paths = consensus_levels(returns, levels, policy or SWARM_POLICY)
    return np.stack([np.stack([paths[a].var, paths[a].es, *paths[a].var_interval.T,
                               *paths[a].es_interval.T]) for a in alphas])


def simulated_history(days: int = 200, seed: int = 0,
                      scales: Sequence[float] = (0.6, 1.0, 1.0, 1.1, 1.3),
                      mend_at: int | None = None, alphas: Sequence[float] = (0.99, 0.975),
                      policy: Policy | None = None) -> BeatHistory:
    """A history with known truth, for tests and quick benchmarks.

    Returns are Gaussian with a log-random-walk volatility; agent ``j``
    (named ``"A"``, ``"B"``, ...) forecasts Gaussian VaR/ES with ``scales[j]``
    times the true volatility (below 1: too low, it breaches too often),
    credible intervals +-5 %; from day ``mend_at`` on the first agent forecasts
    with the true volatility. The consensus row is the swarm policy's
    (:func:`~swarmvar.consensus.consensus_levels`).
    """
    from scipy.stats import norm

    from ..models.base import check_real
    from ..validation._checks import named_alphas as check_levels

    days = check_whole("days", days, 2, 1_000_000)
    seed = check_whole("seed", seed, 0, 2**63 - 1)
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not (
            1 <= len(scales) <= 26):
        raise InvalidParameter(f"scales must be 1 to 26 factors (one per agent), not {scales!r}")
    scales = [check_real("scales", x, 0.0, 1e6, low_open=True) for x in scales]
    if mend_at is not None:
        mend_at = check_whole("mend_at", mend_at, 0, days)
    alphas = check_levels(alphas)
    from ..consensus import Policy
    from ..swarm.consensus import SWARM_POLICY

    if policy is not None and not isinstance(policy, Policy):
        raise InvalidParameter(f"policy must be a consensus Policy or None, not {policy!r}")
    rule = policy or SWARM_POLICY
    need = rule.aggregator.min_agents(rule.f)
    if len(scales) < need:
        raise InvalidParameter(f"scales gives {len(scales)} agent(s); the consensus "
                               f"({rule.method}) needs at least {need}")
    rng = np.random.default_rng(seed)
    names = tuple(chr(ord("A") + j) for j in range(len(scales)))
    scale = np.tile(np.asarray(scales, dtype=np.float64), (days, 1))
    if mend_at is not None:
        scale[mend_at:, 0] = 1.0
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0.0, 0.05, days)) * 0.5)
    returns = vol * rng.standard_normal(days)
    cols = np.empty((len(alphas), 6, days, len(names)))
    for k, a in enumerate(alphas):
        z = norm.ppf(a)
        var = scale * vol[:, None] * z
        es = scale * vol[:, None] * norm.pdf(z) / (1 - a)
        cols[k] = np.stack([var, es, 0.95 * var, 1.05 * var, 0.95 * es, 1.05 * es])
    cons = consensus_cols(returns, alphas, cols, policy)
    start = np.datetime64("2020-01-01")
    dates = np.arange(start, start + days)
    logscore = norm.logpdf(returns[:, None], scale=scale * vol[:, None])
    return BeatHistory("simulated", dates, returns, tuple(float(a) for a in alphas), names,
                       cols, cons, logscore)
