"""The threat model (the design's EntropyModel): ``threat = σ(w·x + b)``.

The design's model is one feature, the total anomaly count, with weight
0.12 and bias 0 (5 anomalies -> σ(0.6) = 0.6457): :data:`SEED_MODEL`, the
untrained default. :func:`fit_threat_model` trains the same logistic form
on the swarm's own history (L2-penalized maximum likelihood with scipy's
L-BFGS; the design trained with MSE under PyTorch, which swarmvar does not
use), and :func:`roc_auc` scores it out of sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import rankdata

from ..errors import InvalidParameter

FloatArray = NDArray[np.float64]

#: The features a beat's signals give (:func:`~swarmvar.arbiter.signals.threat_features`).
FEATURES: tuple[str, ...] = (
    "anomalies",            # total anomaly count (the design's single feature)
    "consensus_breaches",   # levels the consensus breached at this beat
    "agent_breaches",       # agent-level breaches at this beat, all levels
    "coverage_drift",       # agents whose trailing breach rate is too high (z > 2)
    "consensus_drift",      # the consensus's trailing breach-rate z, clipped to [-3, 5]
    "outside",              # agents whose VaR lies outside the others' intervals
    "score_drift",          # agents whose trailing log score lags the swarm's
    "failed",               # agents rejected, stale or failing diagnostics
    "regime",               # the scouts' regime-change probability
)


@dataclass(frozen=True)
class ThreatModel:
    """Logistic threat model over named features, with its version.

    ``weights`` pairs with ``features``; features a beat gives but the model
    does not name are ignored, so the design's one-feature model and a
    trained one read the same beat.
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    version: str = "seed"
    label: str = ""
    index: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.features) != len(self.weights) or not self.features:
            raise InvalidParameter(
                f"a threat model needs one weight per feature, got {len(self.features)} "
                f"features and {len(self.weights)} weights")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise InvalidParameter(f"unknown threat features {sorted(unknown)}; known: "
                                   f"{', '.join(FEATURES)}")
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise InvalidParameter("threat model weights and bias must be finite")
        object.__setattr__(self, "index", tuple(FEATURES.index(f) for f in self.features))

    def score(self, x: Sequence[float]) -> float:
        """Threat in [0, 1] for one beat's feature vector (ordered as :data:`FEATURES`)."""
        z = self.bias
        for i, w in zip(self.index, self.weights, strict=True):
            z += w * x[i]
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def scores(self, x: ArrayLike) -> FloatArray:
        """Threats ``(T,)`` for a feature matrix ``(T, len(FEATURES))``."""
        m = np.asarray(x, dtype=np.float64)[:, list(self.index)]
        result: FloatArray = expit(m @ np.asarray(self.weights) + self.bias)
        return result

    def explain(self, x: Sequence[float]) -> dict[str, float]:
        """Each named feature's contribution ``w_i x_i`` to the logit."""
        return {f: w * x[i] for f, i, w in zip(self.features, self.index, self.weights,
                                               strict=True)}

    def to_parameters(self) -> dict[str, float | str | tuple[str, ...] | tuple[float, ...]]:
        """The model as variant parameters (what the evolution registry stores)."""
        return {"features": self.features, "weights": self.weights, "bias": self.bias,
                "label": self.label}

    @classmethod
    def from_parameters(cls, params: Mapping[str, object], version: str) -> ThreatModel:
        try:
            return cls(tuple(str(f) for f in params["features"]),  # type: ignore[attr-defined]
                       tuple(float(w) for w in params["weights"]),  # type: ignore[attr-defined]
                       float(params["bias"]), version,  # type: ignore[arg-type]
                       str(params.get("label", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(f"stored threat model {version} is malformed: {exc}") from exc


#: The design's EntropyModel: Linear(1, 1) on the anomaly count, weight 0.12, bias 0.
SEED_MODEL = ThreatModel(("anomalies",), (0.12,), 0.0, "seed")


def fit_threat_model(x: ArrayLike, y: ArrayLike, *, l2: float = 1.0, version: str = "",
                     label: str = "") -> ThreatModel:
    """Logistic regression of labels ``y (T,)`` on features ``x (T, len(FEATURES))``.

    Maximum likelihood with an L2 penalty ``l2/2 |w|^2`` on the weights (not
    the bias), features standardized for the fit and the weights mapped
    back, by L-BFGS. Deterministic.

    Raises
    ------
    InvalidParameter
        Wrong shapes, non-finite values, labels not 0/1, or one class only.
    """
    m = np.asarray(x, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != len(FEATURES) or t.shape != (m.shape[0],):
        raise InvalidParameter(f"need x (T, {len(FEATURES)}) and y (T,), got {m.shape}, "
                               f"{t.shape}")
    if not (np.all(np.isfinite(m)) and np.all((t == 0) | (t == 1))):
        raise InvalidParameter("features must be finite and labels 0 or 1")
    if t.min() == t.max():
        raise InvalidParameter("the labels hold one class only; train on a longer history")
    if not (math.isfinite(l2) and l2 >= 0):
        raise InvalidParameter(f"l2 must be a finite number >= 0, not {l2!r}")
    mu, sd = m.mean(axis=0), m.std(axis=0)
    keep = sd > 0
    z = (m[:, keep] - mu[keep]) / sd[keep]
    sign = 2.0 * t - 1.0

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        w, b = theta[:-1], theta[-1]
        eta = z @ w + b
        nll = -float(np.sum(log_expit(sign * eta))) + 0.5 * l2 * float(w @ w)
        g = expit(eta) - t
        return nll, np.append(z.T @ g + l2 * w, g.sum())

    res = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B")
    w_std, b_std = res.x[:-1], float(res.x[-1])
    weights = np.zeros(len(FEATURES))
    weights[keep] = w_std / sd[keep]
    bias = b_std - float(np.sum(w_std * mu[keep] / sd[keep]))
    return ThreatModel(FEATURES, tuple(float(w) for w in weights), bias, version or "trained",
                       label)


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise InvalidParameter(f"scores and labels must be (T,) arrays, got {s.shape}, {y.shape}")
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _binary_labels(labels: ArrayLike) -> NDArray[np.bool_]:
    """Labels as booleans; anything but bools or exactly 0/1 raises ``InvalidParameter``."""
    raw = np.asarray(labels)
    if raw.dtype != np.bool_:
        try:
            values = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(f"labels must be 0/1 or booleans: {exc}") from exc
        if not np.all(np.isin(values, (0.0, 1.0))):
            raise InvalidParameter("labels must be 0/1 or booleans (NaN, 2 or 0.3 are not)")
    return raw.astype(bool)


@dataclass(frozen=True)
class AucComparison:
    """Two scores' AUCs on the same labels and the DeLong standard error of their difference.

    ``difference = auc_a - auc_b``; ``se`` is DeLong, DeLong & Clarke-Pearson's
    (1988) paired estimate, which treats the beats as independent: with
    serially dependent labels (a breach makes several beats positive) it is
    too small, so :func:`block_bootstrap_auc_difference` gives a wider,
    more honest interval.
    """

    auc_a: float
    auc_b: float
    difference: float
    se: float


def _placements(s: FloatArray, y: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray, float]:
    """DeLong's structural components: per positive, the share of negatives it outranks
    (ties half) ``(m,)``; per negative, the share of positives that outrank it ``(n,)``;
    and the Mann-Whitney count (the positives' outranked negatives, ties half: a sum of
    half-integers, exact in floating point)."""
    pos, neg = s[y], s[~y]
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, "left")
    wins = below + 0.5 * (np.searchsorted(neg_sorted, pos, "right") - below)
    v10 = wins / neg.size
    v01 = (pos.size - np.searchsorted(pos_sorted, neg, "right")
           + 0.5 * (np.searchsorted(pos_sorted, neg, "right")
                    - np.searchsorted(pos_sorted, neg, "left"))) / pos.size
    return v10, v01, float(wins.sum())


def _paired_scores(scores_a: ArrayLike, scores_b: ArrayLike, labels: ArrayLike
                   ) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Two scores and their labels, each ``(T,)``, checked: the one input check of
    :func:`compare_auc` and :func:`block_bootstrap_auc_difference`.

    Raises
    ------
    InvalidParameter
        Labels not 0/1 or booleans, shapes not one ``(T,)``, or scores not finite.
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    y = _binary_labels(labels)
    if a.ndim != 1 or a.shape != b.shape or a.shape != y.shape:
        raise InvalidParameter(f"scores and labels must be (T,) arrays of one length, got "
                               f"{a.shape}, {b.shape}, {y.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InvalidParameter("scores must be finite")
    return a, b, y


def compare_auc(scores_a: ArrayLike, scores_b: ArrayLike, labels: ArrayLike) -> AucComparison:
    """Paired AUC comparison of two scores ``(T,)`` on labels ``(T,)`` (DeLong's variance).

    Raises
    ------
    InvalidParameter
        Shapes differ, values are not finite, or the labels hold one class (or fewer
        than two of either class: no variance to estimate).
    """
    a, b, y = _paired_scores(scores_a, scores_b, labels)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise InvalidParameter(f"need at least two positives and two negatives, got {m} and "
                               f"{n}")
    a10, a01, wins_a = _placements(a, y)
    b10, b01, wins_b = _placements(b, y)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    auc_a, auc_b = wins_a / (m * n), wins_b / (m * n)  # exact count / (m n): roc_auc's
    return AucComparison(auc_a, auc_b, auc_a - auc_b, math.sqrt(max(var, 0.0)))


def block_bootstrap_auc_difference(scores_a: ArrayLike, scores_b: ArrayLike,
                                   labels: ArrayLike, rng: np.random.Generator, *,
                                   block: int = 50, reps: int = 2000,
                                   level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``AUC(a) - AUC(b)`` by a moving-block bootstrap over beats.

    Blocks of ``block`` consecutive beats keep the labels' serial dependence
    (a breach makes up to ``horizon`` beats positive, and breaches cluster);
    resamples with one class only are skipped. ``reps`` resamples, interval
    at ``level``.
    """
    a, b, y = _paired_scores(scores_a, scores_b, labels)
    for name, value in (("block", block), ("reps", reps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidParameter(f"{name} must be a whole number, not {value!r}")
    if not 1 <= block <= a.size:
        raise InvalidParameter(f"need 1 <= block <= T = {a.size} beats, got block {block}")
    if not (reps >= 10 and 0 < level < 1):
        raise InvalidParameter(f"need reps >= 10 and 0 < level < 1, got {reps}, {level}")
    size = a.size
    count = -(-size // block)
    diffs = []
    for _ in range(reps):
        starts = rng.integers(0, size - block + 1, count)
        idx = (starts[:, None] + np.arange(block)).ravel()[:size]
        yy = y[idx]
        if yy.all() or not yy.any():
            continue
        diffs.append(roc_auc(a[idx], yy) - roc_auc(b[idx], yy))
    if len(diffs) < 10:
        raise InvalidParameter("too few resamples hold both classes; use longer blocks or "
                               "more beats")
    lo, hi = np.percentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
