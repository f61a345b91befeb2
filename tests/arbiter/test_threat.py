"""The threat model: the design's 0.6457, logistic fits against known truth, AUC, versions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from swarmvar.arbiter import (
    FEATURES,
    SEED_MODEL,
    ThreatModel,
    ThreatVersions,
    fit_threat_model,
    roc_auc,
)
from swarmvar.errors import InvalidParameter
from swarmvar.evolution import Database, SqliteVariantStore


def x_with(anomalies: float) -> tuple[float, ...]:
    return (anomalies,) + (0.0,) * (len(FEATURES) - 1)


def test_design_model_gives_0_6457_for_five_anomalies() -> None:
    assert SEED_MODEL.score(x_with(5)) == pytest.approx(0.6457, abs=5e-5)
    assert SEED_MODEL.score(x_with(0)) == 0.5
    assert SEED_MODEL.scores(np.array([x_with(5)]))[0] == pytest.approx(0.6457, abs=5e-5)


def test_fit_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.normal(size=(n, len(FEATURES)))
    truth = np.linspace(-1.0, 1.0, len(FEATURES))
    y = rng.random(n) < 1 / (1 + np.exp(-(x @ truth - 0.5)))
    model = fit_threat_model(x, y, l2=0.0)
    assert np.allclose(model.weights, truth, atol=0.08)
    assert model.bias == pytest.approx(-0.5, abs=0.06)
    assert fit_threat_model(x, y, l2=0.0) == model  # deterministic


def test_constant_features_get_zero_weight() -> None:
    rng = np.random.default_rng(4)
    x = np.zeros((500, len(FEATURES)))
    x[:, 0] = rng.poisson(3, 500)
    y = rng.random(500) < 1 / (1 + np.exp(-(0.5 * x[:, 0] - 2)))
    model = fit_threat_model(x, y, l2=0.0)
    assert all(w == 0.0 for w in model.weights[1:])
    assert model.weights[0] == pytest.approx(0.5, abs=0.25)


def test_auc_matches_mann_whitney() -> None:
    rng = np.random.default_rng(5)
    s = np.round(rng.normal(size=300), 1)  # ties
    y = rng.random(300) < 0.3
    u = mannwhitneyu(s[y], s[~y]).statistic
    assert roc_auc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()))
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1])) == 1.0
    assert math.isnan(roc_auc(np.arange(3.0), np.zeros(3)))


@pytest.mark.parametrize("bad", ["nan", "shape", "one_class", "labels"])
def test_fit_refuses_bad_inputs(bad: str) -> None:
    x = np.ones((10, len(FEATURES)))
    y = np.array([0, 1] * 5)
    if bad == "nan":
        x[3, 2] = np.nan
    elif bad == "shape":
        x = x[:, :3]
    elif bad == "one_class":
        y = np.zeros(10)
    else:
        y = y * 2
    with pytest.raises(InvalidParameter):
        fit_threat_model(x, y)


def test_model_validation() -> None:
    with pytest.raises(InvalidParameter, match="unknown threat features"):
        ThreatModel(("nonsense",), (1.0,), 0.0)
    with pytest.raises(InvalidParameter):
        ThreatModel(("anomalies",), (1.0, 2.0), 0.0)
    with pytest.raises(InvalidParameter):
        ThreatModel(("anomalies",), (math.nan,), 0.0)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_versions_publish_roll_back(backend: str, tmp_path: object) -> None:
    store = None if backend == "memory" else SqliteVariantStore(
        Database(f"{tmp_path}/evolution.sqlite"))
    ticks = iter(range(1_000, 2_000))
    versions = ThreatVersions(store, clock=lambda: float(next(ticks)))
    assert versions.active() is None
    first = versions.publish(SEED_MODEL, "the design's model")
    trained = ThreatModel(FEATURES, tuple(0.1 * i for i in range(len(FEATURES))), -2.0,
                          label="consensus breach within 5 beats")
    second = versions.publish(trained)
    assert versions.active() == second and second.version != first.version
    assert second.weights == trained.weights and second.label == trained.label
    assert versions.versions() == [first.version, second.version]
    assert versions.roll_back() == first
