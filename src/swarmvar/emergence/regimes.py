"""Regimes: Bayesian online change-point detection (Adams & MacKay 2007).

The seed's "phase transitions" made measurable. Standardized returns ``z_t``
are modelled as Gaussian within a regime, with unknown mean and variance
under a conjugate Normal-Inverse-Gamma prior ``(mu0, kappa0, alpha0,
beta0)``; a regime ends on any day with probability ``hazard`` (a constant
hazard: expected regime length ``1 / hazard`` days). After each return the
detector holds the *run-length posterior* ``P(r_t = r | z_1..z_t)``, where
``r_t`` counts the returns of the current regime *including* ``z_t``
(``r_t = 1``: the regime began with ``z_t``). The recursion per return::

    P(r_t = 1,     z_1..t) = hazard       * p0(z_t)       * sum_r P(r_{t-1} = r, z_1..t-1)
    P(r_t = r + 1, z_1..t) = (1 - hazard) * p(z_t | run r) *       P(r_{t-1} = r, z_1..t-1)

with ``p(z | run r)`` the Student-t posterior predictive of the run's last
``r`` returns and ``p0`` the prior predictive. Runs longer than ``max_run``
are merged into the longest kept run (``O(max_run)`` work and memory per
return).

The regime signal is ``prob_change = P(r_t <= window, r_t < t)``: the
posterior probability that a new regime began within the last ``window``
returns (the run that began with the series' first return is no change). (In
the original parametrization ``P(r_t = 0)`` equals ``hazard`` on every day,
so it carries no signal; the mass on short runs does.) ``flag`` is
``prob_change > threshold``. ``docs/emergence.md`` reports detection delays
and false alarms on simulated volatility breaks and the breaks found in the
S&P 500.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ..errors import InvalidParameter, InvalidReturns, InvalidState
from ..validation._checks import float_array

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_MAGIC = b"SVBOCPD1"  # format name and version of to_state
_Z_MAX = 1e6  # standardized returns beyond this are a units mistake, not a regime


@dataclass(frozen=True)
class ChangePointStep:
    """What the detector says after one return.

    ``prob_change`` is ``P(r_t <= window, r_t < t | z_1..t)``; ``map_run_length`` the
    most probable run length (returns in the current regime, >= 1); ``flag``
    is ``prob_change > threshold``; ``run_length_posterior`` ``(R,)`` holds
    ``P(r_t = k + 1 | z_1..t)`` for ``k = 0..R-1`` (``R <= max_run``).
    """

    prob_change: float
    map_run_length: int
    flag: bool
    run_length_posterior: FloatArray


@dataclass(frozen=True)
class RunLengthPosterior:
    """The detector's output over a series of ``T`` returns.

    ``probs (T, max_run)``: row ``t`` is ``P(r_t = k + 1 | z_1..t)``
    (zeros beyond the runs possible so far); ``prob_change (T,)``,
    ``map_run_length (T,)`` and ``flags (T,)`` as in :class:`ChangePointStep`.
    """

    probs: FloatArray
    prob_change: FloatArray
    map_run_length: IntArray
    flags: NDArray[np.bool_]
    window: int = 20

    def detections(self) -> IntArray:
        """Days ``t`` on which the flag switches on (rising edges of ``flags``)."""
        f = self.flags.astype(np.int8)
        return np.asarray(np.flatnonzero(np.diff(np.concatenate([[0], f])) == 1),
                          dtype=np.int64)

    def change_points(self) -> IntArray:
        """Estimated first day of each detected regime (sorted, distinct).

        At a detection day ``t`` the regime start is ``t - r + 1`` with ``r``
        the most probable run length among the short runs (``<= window``).
        """
        d = self.detections()
        r = np.argmax(self.probs[d, : self.window], axis=1) + 1
        return np.asarray(np.unique(np.maximum(d - r + 1, 0)), dtype=np.int64)


def _positive(name: str, value: float) -> float:
    x = _number(name, value)
    if not x > 0:
        raise InvalidParameter(f"{name} must be a finite number > 0, got {value!r}")
    return x


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameter(f"{name} must be a number, got {type(value).__name__}")
    x = float(value)
    if not np.isfinite(x):
        raise InvalidParameter(f"{name} must be finite, got {value!r}")
    return x


class OnlineChangePoint:
    """Online Bayesian change-point detector over standardized returns.

    Parameters
    ----------
    hazard : float
        Probability that a regime ends on a given day, in (0, 1); the
        default 1/250 expects one break a year.
    threshold : float
        ``flag`` is raised when ``prob_change`` exceeds it, in (0, 1).
    max_run : int
        Longest run length tracked (>= 2); longer runs are merged into it.
    window : int
        ``prob_change`` is the posterior mass on runs of at most ``window``
        returns (1 <= window < max_run).
    mu0, kappa0, alpha0, beta0 : float
        Normal-Inverse-Gamma prior of a regime's mean and variance (of the
        standardized returns): mean ``mu0`` with ``kappa0`` pseudo-returns,
        variance with ``2 alpha0`` pseudo-returns and prior mode
        ``beta0 / (alpha0 + 1)``.
    """

    def __init__(
        self,
        hazard: float = 1 / 250,
        threshold: float = 0.5,
        max_run: int = 1000,
        *,
        window: int = 20,
        mu0: float = 0.0,
        kappa0: float = 1.0,
        alpha0: float = 2.0,
        beta0: float = 2.0,
    ) -> None:
        self.hazard = _number("hazard", hazard)
        if not 0.0 < self.hazard < 1.0:
            raise InvalidParameter(f"hazard must be in (0, 1), got {hazard!r}")
        self.threshold = _number("threshold", threshold)
        if not 0.0 < self.threshold < 1.0:
            raise InvalidParameter(f"threshold must be in (0, 1), got {threshold!r}")
        for name, v in (("max_run", max_run), ("window", window)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidParameter(f"{name} must be an integer, got {type(v).__name__}")
        if not 2 <= max_run <= 100_000:
            raise InvalidParameter(f"max_run must be in [2, 100000], got {max_run}")
        if not 1 <= window < max_run:
            raise InvalidParameter(f"window must be in [1, max_run), got {window}")
        self.max_run = int(max_run)
        self.window = int(window)
        self.mu0 = _number("mu0", mu0)
        self.kappa0 = _positive("kappa0", kappa0)
        self.alpha0 = _positive("alpha0", alpha0)
        self.beta0 = _positive("beta0", beta0)
        # the prior is of standardized returns: beyond these it overflows the recursion
        for name, prior, low, high in (("mu0", self.mu0, -_Z_MAX, _Z_MAX),
                                       ("kappa0", self.kappa0, 1e-6, 1e6),
                                       ("alpha0", self.alpha0, 1e-6, 1e6),
                                       ("beta0", self.beta0, 1e-6, 1e6)):
            if not low <= prior <= high:
                raise InvalidParameter(f"{name} must be in [{low:g}, {high:g}] (a prior of "
                                       f"standardized returns), got {prior!r}")
        # run k (k + 1 returns) has alpha = alpha0 + (k + 1) / 2 after its update; the
        # predictive of a run of k returns uses alpha0 + k / 2: its log-gamma terms are fixed
        a = self.alpha0 + 0.5 * np.arange(self.max_run + 1)
        self._pred_const = special.gammaln(a + 0.5) - special.gammaln(a) - 0.5 * np.log(2 * a)
        self._runs = np.arange(1, self.max_run + 1)
        self._log_h, self._log_1h = math.log(self.hazard), math.log1p(-self.hazard)
        # state: log joint mass of each run (normalized), its sufficient statistics
        self._log_mass = np.zeros(0)
        self._mu = np.zeros(0)
        self._kappa = np.zeros(0)
        self._beta = np.zeros(0)
        self.t = 0

    # --- the recursion -------------------------------------------------------

    def _log_predictive(self, z: float, mu: FloatArray, kappa: FloatArray, beta: FloatArray,
                        runs: IntArray) -> FloatArray:
        """Student-t log density of ``z`` under runs of ``runs`` returns (prior for 0)."""
        alpha = self.alpha0 + 0.5 * runs
        scale2 = beta * (kappa + 1.0) / (alpha * kappa)
        nu = 2.0 * alpha
        q = (z - mu) ** 2 / scale2
        return np.asarray(self._pred_const[runs] - 0.5 * np.log(np.pi * scale2)
                          - (alpha + 0.5) * np.log1p(q / nu), dtype=np.float64)

    def update(self, z: float) -> ChangePointStep:
        """Absorb one standardized return ``z`` and return the new posterior summary.

        Raises
        ------
        InvalidReturns
            If ``z`` is not a finite number.
        """
        if isinstance(z, bool) or not isinstance(z, (int, float, np.integer, np.floating)):
            raise InvalidReturns(f"z must be a finite number, got {type(z).__name__}")
        x = float(z)
        if not np.isfinite(x):
            raise InvalidReturns(f"z must be finite (no NaN or inf), got {z!r}")
        if abs(x) > _Z_MAX:
            raise InvalidReturns(f"|z| = {abs(x):.3g} is beyond {_Z_MAX:g}: the input is not "
                                 "standardized (divide returns by their scale, see standardize)")
        n = self._log_mass.size
        # prior predictive: Student-t with 2 alpha0 df (scalar arithmetic, once per return)
        s2 = self.beta0 * (self.kappa0 + 1.0) / (self.alpha0 * self.kappa0)
        prior_pred = (float(self._pred_const[0]) - 0.5 * math.log(math.pi * s2)
                      - (self.alpha0 + 0.5) * math.log1p((x - self.mu0) ** 2 / s2
                                                         / (2.0 * self.alpha0)))
        if n == 0:
            log_mass = np.array([prior_pred])
        else:
            grow = self._log_mass + self._log_1h + self._log_predictive(
                x, self._mu, self._kappa, self._beta, self._runs[:n])
            # the previous masses are normalized: their total is 1, log 0
            log_mass = np.concatenate([[self._log_h + prior_pred], grow])
        mu = np.concatenate([[self.mu0], self._mu])
        kappa = np.concatenate([[self.kappa0], self._kappa])
        beta = np.concatenate([[self.beta0], self._beta])
        beta = beta + kappa * (x - mu) ** 2 / (2.0 * (kappa + 1.0))
        mu = (kappa * mu + x) / (kappa + 1.0)
        kappa = kappa + 1.0
        if log_mass.size > self.max_run:  # merge the longest run into the one before it
            log_mass[-2] = np.logaddexp(log_mass[-2], log_mass[-1])
            log_mass, mu, kappa, beta = log_mass[:-1], mu[:-1], kappa[:-1], beta[:-1]
        top = log_mass.max()
        log_mass = log_mass - (top + math.log(float(np.exp(log_mass - top).sum())))
        self._log_mass, self._mu, self._kappa, self._beta = log_mass, mu, kappa, beta
        self.t += 1
        return self._summary()

    def _summary(self) -> ChangePointStep:
        post = np.exp(self._log_mass)
        short = post[: self.window]
        if self.t <= self.window:  # the run that began with the first return is no change
            short = short[: self.t - 1]
        p = float(min(1.0, short.sum()))
        return ChangePointStep(prob_change=p, map_run_length=int(np.argmax(post)) + 1,
                               flag=p > self.threshold, run_length_posterior=post)

    @property
    def run_length_posterior(self) -> FloatArray:
        """``P(r_t = k + 1 | z_1..t)`` for ``k = 0..R-1`` (empty before the first return)."""
        return np.exp(self._log_mass)

    # --- state ---------------------------------------------------------------

    def _params(self) -> dict[str, float | int]:
        return {"hazard": self.hazard, "threshold": self.threshold, "max_run": self.max_run,
                "window": self.window, "mu0": self.mu0, "kappa0": self.kappa0,
                "alpha0": self.alpha0, "beta0": self.beta0, "t": self.t,
                "runs": int(self._log_mass.size)}

    def to_state(self) -> bytes:
        """The detector as bytes: magic, a JSON header, four float64 arrays, a SHA-256 tail."""
        head = json.dumps(self._params(), sort_keys=True).encode()
        body = b"".join(a.astype("<f8").tobytes()
                        for a in (self._log_mass, self._mu, self._kappa, self._beta))
        payload = _MAGIC + struct.pack("<I", len(head)) + head + body
        return payload + hashlib.sha256(payload).digest()

    @classmethod
    def from_state(cls, b: bytes) -> OnlineChangePoint:
        """Restore a detector saved by :meth:`to_state`.

        Raises
        ------
        InvalidState
            If the bytes are not a detector state of this version, are
            truncated or altered (checksum), or hold impossible values.
        """
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidState(f"a change-point state is bytes, got {type(b).__name__}")
        raw = bytes(b)
        if len(raw) < len(_MAGIC) + 4 + 32 or not raw.startswith(_MAGIC):
            raise InvalidState("not a change-point detector state (bad magic or too short); "
                               "save one with OnlineChangePoint.to_state()")
        payload, digest = raw[:-32], raw[-32:]
        if hashlib.sha256(payload).digest() != digest:
            raise InvalidState("change-point state is corrupted (checksum mismatch)")
        (hlen,) = struct.unpack_from("<I", payload, len(_MAGIC))
        start = len(_MAGIC) + 4
        try:
            params = json.loads(payload[start: start + hlen].decode())
            runs = int(params.pop("runs"))
            t = int(params.pop("t"))
            det = cls(**params)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, InvalidParameter) as exc:
            raise InvalidState(f"change-point state header is malformed: {exc}") from exc
        body = payload[start + hlen:]
        if not 0 <= runs <= det.max_run or len(body) != 4 * 8 * runs or t < runs:
            raise InvalidState("change-point state arrays do not match their header")
        arrays = np.frombuffer(body, dtype="<f8").reshape(4, runs).astype(np.float64)
        log_mass, mu, kappa, beta = arrays
        if not (np.all(np.isfinite(arrays[1:])) and np.all(kappa > 0) and np.all(beta > 0)
                and not np.any(np.isnan(log_mass))):
            raise InvalidState("change-point state holds impossible statistics")
        det._log_mass, det._mu, det._kappa, det._beta = log_mass, mu, kappa, beta
        det.t = t
        return det


def run_length_posterior(
    z: ArrayLike,
    hazard: float = 1 / 250,
    threshold: float = 0.5,
    max_run: int = 1000,
    **prior: float | int,
) -> RunLengthPosterior:
    """Run :class:`OnlineChangePoint` over a series of standardized returns.

    Parameters
    ----------
    z : array_like, shape (T,)
        Standardized returns (e.g. :func:`standardize`), oldest first.
    hazard, threshold, max_run, **prior
        As for :class:`OnlineChangePoint` (``window``, ``mu0``, ``kappa0``,
        ``alpha0``, ``beta0``).

    Returns
    -------
    RunLengthPosterior
        ``probs (T, max_run)`` and the per-day summaries.
    """
    if isinstance(z, (list, tuple)) and any(
            isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
            for v in z):
        raise InvalidReturns("z must hold numbers only (no bools, strings or None)")
    raw = np.asarray(z) if not isinstance(z, (str, bytes)) else np.asarray([], dtype=object)
    if raw.ndim != 1 or raw.size == 0 or raw.dtype.kind not in "fiu":
        raise InvalidReturns("z must be a non-empty one-dimensional series of numbers "
                             f"(got dtype {raw.dtype}, shape {raw.shape})")
    x = raw.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InvalidReturns(f"z has {int(np.sum(~np.isfinite(x)))} NaN or inf values; "
                             "drop or fill them first")
    det = OnlineChangePoint(hazard, threshold, max_run, **prior)  # type: ignore[arg-type]
    probs = np.zeros((x.size, det.max_run))
    pc = np.zeros(x.size)
    mr = np.zeros(x.size, dtype=np.int64)
    for t, v in enumerate(x):
        step = det.update(float(v))
        probs[t, : step.run_length_posterior.size] = step.run_length_posterior
        pc[t], mr[t] = step.prob_change, step.map_run_length
    return RunLengthPosterior(probs=probs, prob_change=pc, map_run_length=mr,
                              flags=pc > det.threshold, window=det.window)


def standardize(returns: ArrayLike, scale: float | None = None) -> FloatArray:
    """Returns divided by one fixed scale (default: their sample standard deviation).

    A fixed scale keeps volatility breaks visible (a rolling or GARCH scale
    would absorb them); ``(T,)`` in, ``(T,)`` out.
    """
    try:
        r = float_array(returns, "returns", finite=False)
    except InvalidParameter as exc:
        raise InvalidReturns(str(exc)) from None
    if r.ndim != 1 or r.size < 2 or not np.all(np.isfinite(r)):
        raise InvalidReturns("returns must be a finite one-dimensional series of >= 2 values")
    with np.errstate(over="ignore", invalid="ignore"):
        s = float(np.std(r, ddof=1)) if scale is None else _positive("scale", scale)
    if not math.isfinite(s):
        raise InvalidReturns("returns are too large for a standard deviation (not in return "
                             "units?)")
    if not s > 0:
        raise InvalidReturns("returns are constant: no scale to standardize by")
    with np.errstate(over="ignore"):
        z = np.asarray(r / s, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        raise InvalidParameter(f"scale {s!r} is too small for these returns: r / scale "
                               "overflows")
    return z
