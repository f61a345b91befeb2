"""The interface every swarmvar agent implements, and what they share.

An agent is a Bayesian model of one return series. Its life is

``fit(history, seed=...)`` -> ``update(r)`` per new return -> ``forecast(...)``

with ``state()`` / ``from_state()`` to persist it exactly. It never returns a
bare number: ``forecast`` builds a :class:`~swarmvar.models.risk.Family` (the
conditional distributions of the next return across posterior draws) and
hands it to :func:`~swarmvar.models.risk.risk_measures`.

Agents know nothing of consensus, ledgers or sandboxes (layer 2, see
docs/architecture.md); they sit at the start of the beat and only turn returns
into forecasts.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import warnings
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data import MAX_ABS_RETURN, as_array, is_judged, refuse_non_numbers
from ..data._returns import MAX_BOOK_RETURN
from ..errors import ConvergenceWarning, InvalidParameter, InvalidReturns, InvalidState, NotFitted
from ..types import WEIGHTS_MIN_SHARE, Diagnostics, Forecast
from .risk import check_alphas

Seed = int | np.random.Generator | None

#: Thresholds for ConvergenceWarning (Vehtari et al. 2021 recommendations); the particle
#: weights' share of their cloud is held to ``types.WEIGHTS_MIN_SHARE``.
RHAT_MAX = 1.01
ESS_MIN = 400.0

#: Version of the :meth:`Agent.state` format, written into every state and checked on
#: restore (an ``.npz`` archive: a JSON header and the arrays, each member CRC-checked).
STATE_FORMAT = 1
#: Largest state :meth:`Agent.from_state` reads (bytes): a 100,000-particle cloud with a
#: 100,000-day history is ~20 MB.
MAX_STATE_BYTES = 1 << 28
#: Longest forecast horizon (periods): a year of trading days. Longer horizons are
#: refused; a daily model says little about them.
MAX_HORIZON = 250
#: A history whose most frequent value makes up more than this share of it (a stale or
#: illiquid price), or whose standard deviation is below MIN_SD, gives the scale models
#: (``needs_variation``) no scale to estimate: refused up front.
MAX_TIED_SHARE = 0.5
MIN_SD = 1e-6


class _ReturnCheck:
    """``_check_return``: one return checked against the bound of the agent it is read from.

    Read from an agent (``self._check_return(r)``) it checks against that agent's
    :attr:`Agent.return_bound`; read from the class (``Agent._check_return(r)``, the
    validation baselines' use) against the plain ``|r| <=`` :data:`MAX_ABS_RETURN`.
    """

    def __get__(self, agent: Agent | None, owner: type | None = None
                ) -> Callable[[float], float]:
        bound = MAX_ABS_RETURN if agent is None else agent.return_bound
        return lambda r: _check_return(r, bound)


def _check_return(r: float, bound: float) -> float:
    """One return as a float: a real number, finite, within ``|r| <= bound``.

    Raises
    ------
    InvalidReturns
        Naming the value: text or a bool, not a number, not finite, or beyond the
        bound (with the percent hint for the plain bound, the book's words for a
        book's).
    """
    if isinstance(r, (str, bytes, bool, np.bool_)):  # float() would take "0.01" and True
        raise InvalidReturns(f"update needs one number (a float), not {type(r).__name__} "
                             f"{r!r}; a return is a log return as a fraction (0.01 = 1%)")
    try:
        value = float(r)
    except (TypeError, ValueError) as exc:
        raise InvalidReturns(f"update needs one number, got {r!r}") from exc
    if not math.isfinite(value):
        raise InvalidReturns(f"update got {value!r}; returns must be finite")
    if abs(value) > bound:
        raise InvalidReturns(f"update got {value!r}, beyond |r| <= {bound:g}; " + (
            "returns are fractions (0.01 = 1%) - if this is percent, divide by 100"
            if bound <= MAX_ABS_RETURN else _book_words(value)))
    return value


def _book_words(value: float) -> str:
    """What a book's log return beyond :data:`MAX_BOOK_RETURN` is, in words."""
    move = (f"a one-day loss of {-math.expm1(value):.2%} of" if value < 0
            else f"a one-day gain of {math.expm1(value):.3g} times")
    return (f"{move} the book's value, beyond the one-day loss of "
            f"{-math.expm1(-MAX_BOOK_RETURN):.1%} or gain of {math.expm1(MAX_BOOK_RETURN):.0f} "
            "times its agents take")


class Agent(ABC):
    """A Bayesian risk model with online updates.

    Subclasses set ``name`` and ``min_observations`` and implement the
    abstract methods. Constructor arguments must be plain values (numbers,
    strings, bools, tuples); :meth:`params` returns them so that variants can
    be validated and states rebuilt.
    """

    name: ClassVar[str]
    #: Fewest returns ``fit`` accepts.
    min_observations: ClassVar[int] = 30
    #: Whether ``fit`` refuses a degenerate history (constant, nearly so, or mostly one
    #: value): the sampled scale models, whose samplers cannot converge on one.
    needs_variation: ClassVar[bool] = False
    #: Rough CPU milliseconds of one backtest day at horizon 1 and of one forecast at
    #: horizon 10 (on a quiet 2-core machine): the backtest driver hands its worker
    #: processes the costliest rows first. A scheduling hint, never used in a number.
    cost_hint: ClassVar[tuple[float, float]] = (1.0, 100.0)

    _fitted: bool = False
    #: the widest ``|r|`` this agent takes (:meth:`take_book_returns` widens it)
    _return_bound: float = MAX_ABS_RETURN

    # --- the interface -------------------------------------------------

    @abstractmethod
    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior from a history of log returns (oldest first).

        Every agent checks ``returns`` as :func:`~swarmvar.data.as_array` does,
        prices and rates given as returns included (the drivers' rule and
        message, :func:`~swarmvar.data.moves_like_prices`), unless they were
        judged already (:func:`~swarmvar.data.is_judged`: what ``as_array``
        returned and the windows of it that the drivers hand on; a Series
        carrying :func:`~swarmvar.data.mark_from_prices`'s mark) or the agent
        takes a book's computed returns (:meth:`take_book_returns`).

        Raises
        ------
        InvalidReturns
            Not numbers, not finite, beyond ``|r| <= 1`` (percent, prices),
            moving like prices or rates, or fewer than ``min_observations``.
        """

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Re-anchor the posterior on a new trailing window (the backtest calls this).

        The default is a fit from scratch. Agents whose fit is costly override
        it with a warm start from their current posterior (same target: the
        posterior given ``returns``), and say so in their docstring.
        """
        return self.fit(returns, seed=seed)

    @abstractmethod
    def update(self, r: float) -> float:
        """Absorb one new return; return its log predictive density before absorbing it."""

    @abstractmethod
    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES with credible intervals at each confidence level."""

    def forecast_block(
        self,
        returns: ArrayLike,
        alphas: Sequence[float] = (0.99,),
        horizon: int = 1,
        *,
        seeds: Sequence[Seed] | None = None,
    ) -> tuple[list[Forecast], NDArray[np.float64]]:
        """Forecast, then absorb, each of ``returns`` in turn (the backtest between refits).

        Day ``j``'s forecast is ``forecast(alphas, horizon, seed=seeds[j])``
        made before ``returns[j]`` is absorbed by ``update``, so it sees only
        ``returns[:j]`` (and what the agent held before). Every return is
        checked before anything is absorbed: a bad one raises
        :class:`~swarmvar.errors.InvalidReturns` and leaves the agent as it was.

        The default is that loop. Agents with a costly forecast vectorize the
        horizon-1 case in :meth:`_horizon_one_block` (this method checks the
        inputs once, then hands it the checked returns, levels and seeds): the
        same forecasts, densities and end state as the loop. swarmvar's are bit
        for bit the loop's on the tested build (their sums over particles make
        the same BLAS calls per day; another BLAS could differ at rounding
        level), tested against it.

        Parameters
        ----------
        returns : array ``(D,)``
            The next ``D`` returns (fractions), oldest first.
        alphas, horizon
            As in :meth:`forecast`.
        seeds : sequence of ``D`` seeds, optional
            Day ``j``'s forecast seed (``None``: ``seed=None`` every day).

        Returns
        -------
        forecasts : list of ``D`` :class:`~swarmvar.types.Forecast`
        log_densities : array ``(D,)``
            What ``update(returns[j])`` returned: the log predictive density of
            ``returns[j]`` before it was absorbed.
        """
        self._require_fitted()
        xs = self._block_returns(returns)
        day_seeds = self._block_seeds(seeds, xs.size)
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        if h == 1 and xs.size:
            vectorized = self._horizon_one_block(xs, levels, day_seeds)
            if vectorized is not None:
                return vectorized
        return self._day_by_day(xs, levels, h, day_seeds)

    def _day_by_day(
        self, xs: NDArray[np.float64], levels: tuple[float, ...], horizon: int,
        seeds: Sequence[Seed],
    ) -> tuple[list[Forecast], NDArray[np.float64]]:
        forecasts, dens = [], np.empty(xs.size)
        for j, x in enumerate(xs.tolist()):
            forecasts.append(self.forecast(levels, horizon, seed=seeds[j]))
            dens[j] = self.update(x)
        return forecasts, dens

    def _horizon_one_block(
        self, xs: NDArray[np.float64], levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], NDArray[np.float64]] | None:
        """:meth:`forecast_block` at horizon 1 on checked inputs, vectorized; None: the loop.

        ``xs`` ``(D,)``, ``D >= 1``, are checked returns, ``levels`` checked
        confidence levels and ``seeds`` one checked seed per day. An agent
        that overrides this must give the loop's forecasts, densities and
        end state.
        """
        return None

    @abstractmethod
    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Scalars (JSON) and arrays that fully describe the fitted agent."""

    @abstractmethod
    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        """Inverse of :meth:`_get_state`."""

    # --- the generative side (simulation-based calibration, tests) -------

    @abstractmethod
    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        """``n`` draws of the parameters from the prior, by parameter name."""

    @abstractmethod
    def simulate(
        self, params: Mapping[str, float], n: int, *, seed: Seed = None
    ) -> NDArray[np.float64]:
        """``n`` returns simulated from the model at the given parameter values."""

    @abstractmethod
    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        """Equally weighted posterior draws of the parameters, by name (after ``fit``).

        For particle posteriors the particles are resampled to equal weights
        (deterministically, by systematic resampling).
        """

    # --- shared behaviour ------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def diagnostics(self) -> Diagnostics:
        """How far the current posterior can be trusted."""
        self._require_fitted()
        return self._diagnostics()

    def _diagnostics(self) -> Diagnostics:
        return Diagnostics(method="exact")

    def params(self) -> dict[str, Any]:
        """Constructor arguments of this agent (what a variant may change)."""
        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name in sig.parameters
            if name != "self" and hasattr(self, name)
        }

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Names of the constructor arguments."""
        sig = inspect.signature(cls.__init__)
        return tuple(n for n in sig.parameters if n != "self")

    def state(self) -> bytes:
        """A snapshot of the fitted agent that :meth:`from_state` restores exactly."""
        self._require_fitted()
        scalars, arrays = self._get_state()
        header = {
            "format": STATE_FORMAT,
            "model": self.name,
            "params": _jsonable(self.params()),
            "scalars": scalars,
        }
        if self._return_bound != MAX_ABS_RETURN:
            header["book_returns"] = True  # only then: a plain agent's state is as it was
        buf = io.BytesIO()
        arrays = {"__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                  **arrays}
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_state(cls, data: bytes) -> Self:
        """Rebuild an agent from :meth:`state` bytes.

        Raises
        ------
        InvalidState
            For anything but an intact state of this model in this format:
            truncated or bit-flipped bytes (each archive member carries a
            CRC-32), a malformed header, another model or format version,
            parameters the constructor refuses, or arrays that do not fit.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidState(f"a state is bytes, not {type(data).__name__}")
        if len(data) > MAX_STATE_BYTES:
            raise InvalidState(f"state of {len(data)} bytes exceeds the {MAX_STATE_BYTES} bytes "
                               "an agent state may take")
        try:
            with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
                if not hasattr(npz, "files"):
                    raise InvalidState("not a swarmvar agent state: a bare array, not an archive")
                header = json.loads(npz["__header__"].tobytes().decode())
                arrays = {k: npz[k] for k in npz.files if k != "__header__"}
        except InvalidState:
            raise
        except (ValueError, KeyError, OSError, EOFError, UnicodeError, zipfile.BadZipFile,
                zipfile.LargeZipFile, NotImplementedError, MemoryError, TypeError,
                IndexError, OverflowError, zlib.error, RuntimeError) as exc:
            raise InvalidState(f"not a swarmvar agent state (corrupt or truncated?): "
                               f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(header, dict):
            raise InvalidState("state header is not a JSON object")
        if header.get("format") != STATE_FORMAT:
            raise InvalidState(f"state format {header.get('format')!r} is not {STATE_FORMAT}")
        if header.get("model") != cls.name:
            raise InvalidState(f"state is of model {header.get('model')!r}, not {cls.name!r}")
        raw, scalars = header.get("params"), header.get("scalars")
        if not isinstance(raw, dict) or not isinstance(scalars, dict):
            raise InvalidState("state header lacks its params or scalars object")
        unknown = sorted(set(raw) - set(cls.parameter_names()))
        if unknown:
            raise InvalidState(f"state names parameters {unknown} that {cls.name} does not have")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        try:
            agent = cls(**params)
        except InvalidParameter as exc:
            raise InvalidState(f"state holds parameters {cls.name} refuses: {exc}") from exc
        book = header.get("book_returns", False)
        if book is not True and book is not False:
            raise InvalidState(f"state header's book_returns is {book!r}, not true or false")
        if book:
            agent.take_book_returns()  # before the arrays: their check reads the bound
        try:
            with np.errstate(invalid="raise", divide="raise", over="raise"):
                agent._set_state(scalars, arrays)  # NaN casts and the like: malformed
        except InvalidState:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                ZeroDivisionError, FloatingPointError) as exc:
            raise InvalidState(f"{cls.name} state is malformed: {type(exc).__name__}: "
                               f"{exc}") from exc
        agent._fitted = True
        return agent

    # --- a book's returns ---------------------------------------------------

    @property
    def return_bound(self) -> float:
        """The widest ``|r|`` this agent's ``fit``, ``update`` and ``forecast_block`` take.

        :data:`~swarmvar.data.MAX_ABS_RETURN` (1), or
        :data:`~swarmvar.data._returns.MAX_BOOK_RETURN` (5) once
        :meth:`take_book_returns` was called.
        """
        return self._return_bound

    def take_book_returns(self) -> Self:
        """Let this agent take a book's computed returns: finite, ``|r| <= MAX_BOOK_RETURN``.

        A return typed by a user is refused beyond ``|r| <= 1`` (percent
        given as fractions), but a book's return is computed from asset
        returns that were each checked so, and with leverage it can pass 1
        legitimately: long 100k / short 20k of two stocks meets a -52% day of
        the long as a log return of -1.05, a 65% loss of the net value. Only
        the caller that computed the returns (the runtime for a book) calls
        this. It is kept in :meth:`state` (and so in checkpoints and refits
        from a state); a plain agent's state is unchanged.

        Returns
        -------
        Self
            This agent, widened.
        """
        self._return_bound = MAX_BOOK_RETURN
        return self

    # --- helpers for subclasses -------------------------------------------

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFitted(f"{self.name} is not fitted; call fit(returns) first")

    def _history(self, returns: ArrayLike) -> NDArray[np.float64]:
        bound = self._return_bound
        book = bound > MAX_ABS_RETURN  # a book's: its own words past the bound, not percent
        # the returns are judged for looking like prices or rates (data.moves_like_prices,
        # the rule and message of data.as_array): a Series unless it carries the mark of
        # returns computed from prices (data.mark_from_prices), a plain array or list unless
        # it was judged already (data.is_judged: as_array's output and views of it, what the
        # drivers hand on, or inside data.judged_inputs); a book's returns are computed
        x = as_array(returns, min_obs=self.min_observations, who=self.name,
                     max_abs=math.inf if book else bound,
                     judge_prices=not book and not is_judged(returns))
        beyond = np.abs(x) > bound
        if book and beyond.any():
            i = int(np.argmax(beyond))
            raise InvalidReturns(f"return at index {i} is {float(x[i])!r}, beyond |r| <= "
                                 f"{bound:g}; {_book_words(float(x[i]))}")
        if self.needs_variation:
            check_variation(x, self.name)
        return x

    #: one return checked against this agent's bound (:class:`_ReturnCheck`)
    _check_return: ClassVar[_ReturnCheck] = _ReturnCheck()

    def _block_returns(self, returns: ArrayLike) -> NDArray[np.float64]:
        """:meth:`forecast_block`'s returns ``(D,)``, each checked as :meth:`update` checks it."""
        refuse_non_numbers(returns, who="forecast_block")
        try:
            xs = np.asarray(returns, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidReturns(f"forecast_block needs numbers, got {returns!r}") from exc
        if xs.ndim != 1:
            raise InvalidReturns(f"forecast_block needs a 1-d array of returns, not shape "
                                 f"{xs.shape}")
        bad = ~np.isfinite(xs) | (np.abs(xs) > self._return_bound)
        if bad.any():
            self._check_return(float(xs[np.flatnonzero(bad)[0]]))  # raises, naming the value
        return xs

    @staticmethod
    def _block_seeds(seeds: Sequence[Seed] | None, days: int) -> Sequence[Seed]:
        """Each day's seed, all checked (as :func:`rng_from` checks one) before any day runs."""
        if seeds is None:
            return [None] * days
        if len(seeds) != days:
            raise InvalidParameter(f"forecast_block got {len(seeds)} seeds for {days} returns")
        # lists and tuples are checked; a lazy sequence (the backtest's) makes valid generators
        if isinstance(seeds, (list, tuple)):
            for seed in seeds:
                if seed is not None and not isinstance(seed, np.random.Generator):
                    _check_seed(seed)
        return seeds

    @staticmethod
    def _check_horizon(horizon: int) -> int:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not (
                1 <= horizon <= MAX_HORIZON):
            raise InvalidParameter(
                f"horizon must be a whole number of periods from 1 to {MAX_HORIZON} (a year "
                f"of trading days), not {horizon!r}"
            )
        return int(horizon)

    def _warn_if_unconverged(self, diag: Diagnostics) -> None:
        """Warn (:class:`ConvergenceWarning`) when a fit's diagnostics are doubtful.

        :meth:`~swarmvar.types.Diagnostics.doubts` with ``RHAT_MAX`` and ``ESS_MIN``
        (Vehtari et al. 2021: split R-hat, bulk and tail ESS, for MCMC chains and the
        particle agents' runs read as chains) and ``WEIGHTS_MIN_SHARE`` for the particle
        weights, the arbiter's rule with the agents' cut-offs; a value that is not a number
        (a collapsed cloud's R-hat) warns. Run at the end of a fit, when the weights are
        equal (their ESS the particle count, which no share flags): the weights are judged
        online by the runtime's guards and the arbiter.
        """
        problems = diag.doubts(RHAT_MAX, ESS_MIN, WEIGHTS_MIN_SHARE)
        if problems:
            warnings.warn(
                f"{self.name}: " + "; ".join(problems) + " - more draws or a longer warm-up "
                "may help; treat the credible intervals with care",
                ConvergenceWarning,
                stacklevel=3,
            )


def forecast_day_by_day(
    agent: Agent,
    returns: ArrayLike,
    alphas: Sequence[float] = (0.99,),
    horizon: int = 1,
    *,
    seeds: Sequence[Seed] | None = None,
) -> tuple[list[Forecast], NDArray[np.float64]]:
    """What :meth:`Agent.forecast_block` means: ``forecast`` then ``update``, one day at a time.

    The same inputs, checks and outputs as ``agent.forecast_block``, never
    vectorized: the reference every agent's vectorized block is tested against.
    """
    agent._require_fitted()  # noqa: SLF001 - the base class's own helpers
    xs = agent._block_returns(returns)  # noqa: SLF001
    day_seeds = agent._block_seeds(seeds, xs.size)  # noqa: SLF001
    return agent._day_by_day(xs, check_alphas(alphas), agent._check_horizon(horizon),  # noqa: SLF001
                             day_seeds)


def check_variation(x: NDArray[np.float64], who: str) -> None:
    """Refuse a history with no scale to estimate: constant, nearly so, or mostly one value.

    Raises :class:`~swarmvar.errors.InvalidReturns` saying which, so that a
    stale price series fails in microseconds instead of running a sampler
    for minutes towards a posterior it cannot reach.
    """
    values, counts = np.unique(x, return_counts=True)
    top = int(np.argmax(counts))
    share = counts[top] / x.size
    if share > MAX_TIED_SHARE:
        raise InvalidReturns(
            f"{share:.0%} of the {x.size} returns are exactly {float(values[top])!r}; {who} "
            "needs a series that moves (a stale or illiquid price?) - give a longer or another "
            "series, or use NormalInverseGamma or BayesianBootstrap, which accept it")
    sd = float(np.std(x))
    if sd < MIN_SD:
        raise InvalidReturns(
            f"the returns' standard deviation is {sd:.3g}, below {MIN_SD:g}: {who} has no "
            "scale to estimate - check the series' units, or use NormalInverseGamma")


def check_real(label: str, value: object, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float in the given interval, or :class:`InvalidParameter` naming it."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)):
        try:
            x = float(value)
        except OverflowError:  # an int beyond the floats
            x = math.inf
        above = x > low if low_open else x >= low
        below = x < high if high_open else x <= high
        if math.isfinite(x) and above and below:
            return x
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    raise InvalidParameter(f"{label} must be a finite number in {lo}{low:g}, {high:g}{hi}, "
                           f"not {value!r}")


def check_whole(label: str, value: object, least: int, most: int | None = None) -> int:
    """``value`` as an int in ``[least, most]`` (no upper bound if ``most`` is None), or
    :class:`InvalidParameter` naming it; numpy integers count, ``True`` does not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < least or (most is not None and value > most)):
        bound = f">= {least}" if most is None else f"from {least} to {most}"
        raise InvalidParameter(f"{label} must be a whole number {bound}, not {value!r}")
    return int(value)


def _check_seed(seed: object) -> None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameter(
            f"seed must be a whole number >= 0, a numpy Generator or None, not {seed!r}")


def rng_from(seed: Seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        _check_seed(seed)
    return np.random.default_rng(seed)


def int_seed(seed: Seed) -> int:
    """An int seed (for JAX keys) drawn from ``seed``."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    return int(rng_from(seed).integers(0, 2**31 - 1))


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
