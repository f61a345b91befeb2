"""Tempered exponential weights: the swarm's default agent weighting.

Agent ``i`` scores the *mean* over a trailing window of its joint loss — the
sum over confidence levels of its FZ0 loss (Patton, Ziegel & Chen 2019) of
its (VaR, ES) forecast — and weighs

    ``w_i ∝ prior_i exp(-eta * (mean_i - min_j mean_j))``.

The per-day mean, not the window's sum, makes ``eta`` a temperature that
does not grow with the window (a 500-day sum with ``eta = 1`` put all weight
on one agent) nor with overlapping ``h``-day losses. FZ0 differences are in
log units (scale-free), so ``eta`` carries across series; ``eta = 0`` is equal
weighting. With the pinball loss (VaR only) the score is the log of the mean
pinball loss, also scale-free. ``TEMPERED_ETA`` and ``TEMPERED_WINDOW`` were
chosen on the S&P 500 and NASDAQ (``docs/consensus.md``, the study).

:func:`tempered_path` gives every day's weights of a backtest at once (day
``t`` sees only losses realized before it: with horizon ``h`` the forecasts
of days ``<= t - h``); :class:`TemperedWeights` is the same computation
online, ``O(agents)`` per realized return, for the runtime.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidState
from .weights import Loss, fz0_loss, pinball_loss, softmax_log

FloatArray = NDArray[np.float64]

#: Inverse temperature on the per-day mean joint FZ0 loss (docs/consensus.md).
TEMPERED_ETA = 30.0
#: Trailing days of realized losses behind the weights.
TEMPERED_WINDOW = 1000

_MAGIC_V1 = b"SVTW1"  # header and ring; the running sums were re-summed from the ring
_MAGIC = b"SVTW2"  # header, ring and the running sums (a restore continues bit for bit)
_SUM_RTOL = 1e-9  # a running sum is the ring's sum to rounding (re-summed once a lap)


def joint_losses(
    returns: ArrayLike,
    var: ArrayLike,
    es: ArrayLike | None,
    alphas: Sequence[float],
    loss: Loss = Loss.FZ0,
) -> FloatArray:
    """Each agent's loss per day summed over levels, ``(T, n)``.

    ``returns (T,)`` realized (h-day) returns; ``var``, ``es`` ``(L, T, n)``
    the agents' forecasts for them at the ``L`` levels ``alphas`` (``es`` is
    unused for the pinball loss).
    """
    v = np.asarray(var, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] != len(alphas):
        raise InvalidParameter(f"var must be (levels, T, n) with {len(alphas)} levels, "
                               f"got shape {v.shape}")
    if loss is Loss.FZ0:
        if es is None:
            raise InvalidParameter("the FZ0 loss needs ES forecasts")
        e = np.asarray(es, dtype=np.float64)
        if e.shape != v.shape:
            raise InvalidParameter(f"es must have var's shape {v.shape}, got {e.shape}")
        parts = [fz0_loss(returns, v[k], e[k], a) for k, a in enumerate(alphas)]
    else:
        parts = [pinball_loss(returns, v[k], a) for k, a in enumerate(alphas)]
    return np.asarray(np.sum(parts, axis=0), dtype=np.float64)


def _check_eta(eta: float) -> float:
    if isinstance(eta, bool) or not isinstance(eta, (int, float, np.integer, np.floating)):
        raise InvalidParameter(f"eta must be a number, got {type(eta).__name__}")
    if not (np.isfinite(eta) and eta >= 0):
        raise InvalidParameter(f"eta must be a finite number >= 0, got {eta!r}")
    return float(eta)


def _check_window(window: int | None) -> int | None:
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise InvalidParameter(f"window must be a whole number >= 1 or None, got {window!r}")
    return int(window)


def _scores(mean: FloatArray, loss: Loss) -> FloatArray:
    if loss is Loss.FZ0:
        return mean
    with np.errstate(divide="ignore"):  # a zero mean pinball loss is a perfect record
        return np.asarray(np.log(np.maximum(mean, 1e-300)), dtype=np.float64)


def tempered_weights(
    mean_losses: ArrayLike, eta: float = TEMPERED_ETA, *, loss: Loss = Loss.FZ0,
    prior: ArrayLike | None = None,
) -> FloatArray:
    """Weights ``(n,)`` from each agent's mean loss ``(n,)`` (see the module doc)."""
    m = np.asarray(mean_losses, dtype=np.float64)
    if m.ndim != 1 or m.size == 0 or not np.all(np.isfinite(m)):
        raise InvalidParameter("mean losses must be a finite (n,) array with n >= 1")
    with np.errstate(over="ignore"):  # a loss gap beyond float range: weight exp(-inf) = 0
        log_w = -_check_eta(eta) * (_scores(m, loss) - np.min(_scores(m, loss)))
    if prior is not None:
        p = np.asarray(prior, dtype=np.float64)
        if p.shape != m.shape or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise InvalidParameter(f"prior must be {m.size} non-negative numbers, not all zero")
        with np.errstate(divide="ignore"):
            log_w = log_w + np.log(p)
    return softmax_log(log_w - np.max(log_w[np.isfinite(log_w)]))


def tempered_path(
    losses: ArrayLike, eta: float = TEMPERED_ETA, window: int | None = TEMPERED_WINDOW, *,
    lag: int = 1, loss: Loss = Loss.FZ0,
) -> FloatArray:
    """Every day's tempered weights ``(T, n)`` from daily joint losses ``(T, n)``.

    Row ``t`` uses the mean of ``losses[s]`` over the last ``window`` days
    ``s <= t - lag`` (``lag`` = the forecast horizon: an ``h``-day loss is
    known ``h`` days after its forecast); rows with no such day are equal.
    Each window is summed on its own, so row ``t`` equals
    :func:`tempered_weights` of that window's mean to rounding.
    """
    x = np.asarray(losses, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise InvalidParameter(f"losses must be a finite (T, n) array, got shape {x.shape}")
    eta = _check_eta(eta)
    window = _check_window(window)
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise InvalidParameter(f"lag must be a whole number >= 1, got {lag!r}")
    days, n = x.shape
    out = np.full((days, n), 1.0 / n)
    prefix = np.concatenate([np.zeros((1, n)), np.cumsum(x, axis=0)])
    ends = np.arange(days) - lag + 1  # exclusive end of each day's window
    live = ends >= 1
    if not np.any(live):
        return out
    e = ends[live]
    s = e - (e if window is None else np.minimum(e, window))
    sums = prefix[e] - prefix[s]
    if window is not None and window <= days:  # full windows summed on their own (no drift)
        full = (e - s) == window
        views = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)
        sums[full] = views[e[full] - window].sum(axis=-1)
    mean = sums / (e - s)[:, None]
    scores = _scores(mean, loss)
    with np.errstate(over="ignore"):  # a loss gap beyond float range: weight exp(-inf) = 0
        log_w = -eta * (scores - scores.min(axis=1, keepdims=True))
    w = np.exp(log_w)
    out[live] = w / w.sum(axis=1, keepdims=True)
    return out


def effective_agents(weights: ArrayLike) -> FloatArray:
    """``1 / sum_i w_i^2`` of each row of ``weights`` ``(..., n)``: 1 (one agent) to ``n``."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise InvalidParameter("every row of weights needs a positive sum")
    p = w / total
    return np.asarray(1.0 / np.sum(p * p, axis=-1), dtype=np.float64)


class TemperedWeights:
    """Tempered weights kept online: one realized return in, ``O(agents)`` work.

    Holds the last ``window`` days of each agent's joint loss in a ring and
    their running sums (re-summed exactly once per ``window`` updates, so
    rounding cannot drift); :meth:`weights` equals :func:`tempered_weights`
    of the window's mean.

    Parameters
    ----------
    agent_ids : sequence of str
        The agents, in column order.
    alphas : sequence of float
        Confidence levels of the forecasts each update scores.
    eta, window, loss
        As in :func:`tempered_path`.
    """

    def __init__(self, agent_ids: Sequence[str], alphas: Sequence[float], *,
                 eta: float = TEMPERED_ETA, window: int = TEMPERED_WINDOW,
                 loss: Loss = Loss.FZ0) -> None:
        ids = tuple(agent_ids)
        if not ids or len(set(ids)) != len(ids) or not all(isinstance(a, str) for a in ids):
            raise InvalidParameter("agent_ids must be distinct strings, at least one")
        levels = tuple(float(a) for a in alphas)
        if not levels or not all(0.0 < a < 1.0 for a in levels):
            raise InvalidParameter(f"alphas must be levels in (0, 1), got {alphas!r}")
        w = _check_window(window)
        if w is None or w > 100_000:
            raise InvalidParameter(f"window must be in [1, 100000], got {window!r}")
        if not isinstance(loss, Loss):
            raise InvalidParameter(f"loss must be a Loss, got {loss!r}")
        self.agent_ids, self.alphas, self.loss = ids, levels, loss
        self.eta, self.window = _check_eta(eta), w
        self._ring = np.zeros((w, len(ids)))
        self._sum = np.zeros(len(ids))
        self._levels = np.array(levels)[:, None]
        self._tail = 1.0 - self._levels
        self.count = 0  # updates absorbed

    def update(self, realized: float, var: ArrayLike, es: ArrayLike | None = None) -> None:
        """Score the forecasts ``var``, ``es`` ``(levels, agents)`` made for ``realized``.

        ``realized`` is the return (``h``-day with ``h``-day forecasts) the
        forecasts were for; call once it is known. Nothing changes if any
        input is refused.
        """
        shape = (len(self.alphas), len(self.agent_ids))
        v = np.asarray(var, dtype=np.float64)
        if v.shape != shape:
            raise InvalidParameter(f"var must have shape {shape} (levels, agents), got {v.shape}")
        if isinstance(realized, bool) or not isinstance(realized, (int, float, np.floating)):
            raise InvalidParameter(f"the realized return must be a number, got {realized!r}")
        r = float(realized)
        if self.loss is Loss.FZ0:
            if es is None:
                raise InvalidParameter("the FZ0 loss needs ES forecasts")
            e = np.asarray(es, dtype=np.float64)
            if e.shape != shape:
                raise InvalidParameter(f"es must have shape {shape}, got {e.shape}")
            # FZ0 as in weights.fz0_loss, on return-space v = -VaR, e = -ES (inlined: per beat)
            with np.errstate(all="ignore"):
                short = np.where(r <= -v, -v - r, 0.0)  # v_ret - r when breached
                per = -short / (self._tail * -e) + v / e + np.log(e) - 1.0
            if not (np.all(e > 0) and np.isfinite(r) and np.all(np.isfinite(per))):
                raise InvalidParameter("forecasts and the realized return must be finite, "
                                       "with ES > 0")
        else:
            if not (np.isfinite(r) and np.all(np.isfinite(v))):
                raise InvalidParameter("forecasts and the realized return must be finite")
            loss = -r
            per = (self._levels - (loss < v)) * (loss - v)
        day = per.sum(axis=0)
        k = self.count % self.window
        self._sum += day - self._ring[k]
        self._ring[k] = day
        self.count += 1
        if self.count % self.window == 0:  # once per lap: exact sums again
            self._sum = self._ring.sum(axis=0)

    def mean_losses(self) -> FloatArray:
        """Each agent's mean joint loss over the days held ``(n,)`` (zeros before any)."""
        held = min(self.count, self.window)
        return self._sum / held if held else np.zeros(len(self.agent_ids))

    def weights(self) -> FloatArray:
        """The agents' weights now ``(n,)``; equal before the first update."""
        if self.count == 0:
            return np.full(len(self.agent_ids), 1.0 / len(self.agent_ids))
        score = _scores(self.mean_losses(), self.loss)  # finite: every update was checked
        with np.errstate(over="ignore"):  # a gap beyond float range: weight exp(-inf) = 0
            w = np.exp(-self.eta * (score - score.min()))
        return np.asarray(w / w.sum(), dtype=np.float64)

    def effective_agents(self) -> float:
        """``1 / sum w_i^2`` of the current weights."""
        return float(effective_agents(self.weights()))

    def to_state(self) -> bytes:
        """The accumulator as bytes: header, ring, running sums, SHA-256 tail (format 2).

        The running sums travel with the ring, so :meth:`from_state` gives an
        accumulator whose next weights are bit for bit those this one gives.
        """
        head = json.dumps({"agent_ids": list(self.agent_ids), "alphas": list(self.alphas),
                           "eta": self.eta, "window": self.window, "loss": self.loss.value,
                           "count": self.count}).encode()
        payload = (_MAGIC + struct.pack("<I", len(head)) + head
                   + self._ring.astype("<f8").tobytes() + self._sum.astype("<f8").tobytes())
        return payload + hashlib.sha256(payload).digest()

    @classmethod
    def from_state(cls, b: bytes, *, sums: ArrayLike | None = None) -> TemperedWeights:
        """Restore from :meth:`to_state`; altered or foreign bytes raise ``InvalidState``.

        Reads format 2 (ring and running sums) and format 1 (ring only, as
        saved before 2026-12-06). A format-1 state's sums are ``sums``
        ``(n,)`` when given (the swarm's older checkpoints kept them beside
        the state), else the ring re-summed (the weights then move by an ulp).
        ``sums`` is ignored for format 2, which carries its own. Sums that are
        not the ring's sum to rounding are refused (``InvalidState``).
        """
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidState(f"a weights state is bytes, got {type(b).__name__}")
        raw = bytes(b)
        if len(raw) < len(_MAGIC) + 36 or not raw.startswith((_MAGIC, _MAGIC_V1)):
            raise InvalidState("not a TemperedWeights state (bad magic or too short)")
        version = 2 if raw.startswith(_MAGIC) else 1
        payload, digest = raw[:-32], raw[-32:]
        if hashlib.sha256(payload).digest() != digest:
            raise InvalidState("TemperedWeights state is corrupted (checksum mismatch)")
        (hlen,) = struct.unpack_from("<I", payload, len(_MAGIC))
        start = len(_MAGIC) + 4
        try:
            h = json.loads(payload[start:start + hlen].decode())
            out = cls(h["agent_ids"], h["alphas"], eta=h["eta"], window=h["window"],
                      loss=Loss(h["loss"]))
            count = int(h["count"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, InvalidParameter) as exc:
            raise InvalidState(f"TemperedWeights state header is malformed: {exc}") from exc
        body = payload[start + hlen:]
        n = len(out.agent_ids)
        if count < 0 or len(body) != 8 * (out._ring.size + (n if version == 2 else 0)):
            raise InvalidState("TemperedWeights state ring does not match its header")
        values = np.frombuffer(body, dtype="<f8").astype(np.float64)
        ring = values[: out._ring.size].reshape(out._ring.shape)
        if not np.all(np.isfinite(values)):
            raise InvalidState("TemperedWeights state holds non-finite losses")
        with np.errstate(over="ignore"):
            exact, size = ring.sum(axis=0), np.abs(ring).sum(axis=0)
        if not (np.all(np.isfinite(exact)) and np.all(np.isfinite(size))):
            raise InvalidState("TemperedWeights state's losses overflow when summed")
        if version == 2:
            running = values[out._ring.size:]
        elif sums is None:
            running = exact
        else:
            running = np.asarray(sums, dtype=np.float64)
            if running.shape != (n,) or not np.all(np.isfinite(running)):
                raise InvalidState(f"the running sums must be {n} finite numbers, "
                                   f"got shape {running.shape}")
        if np.any(np.abs(running - exact) > _SUM_RTOL * (size + 1.0)):
            raise InvalidState("TemperedWeights state's running sums do not match its ring")
        out._ring, out.count = ring, count
        out._sum = running.copy()
        return out
