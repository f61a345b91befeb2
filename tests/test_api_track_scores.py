"""``api._instance_track`` forms the agents' log scores only where something reads them: a
BMA call (``log_scores``) or the track cache, whose format 2 keeps them at horizon 1 for a
later BMA call. Without either the backtest's log scores are never read, and the record
is the one a call that forms them and strips them would return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import swarmvar.validation as validation
from swarmvar.api import _instance_track
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.validation import track_cache
from swarmvar.validation.track_cache import load_track

LEVELS = (0.99, 0.975)


def _x() -> np.ndarray:
    return np.random.default_rng(6).standard_t(5, 300) * 0.01


class _Counted:
    """A backtest result that counts reads of its ``logscore``."""

    def __init__(self, result: Any, reads: list[str]) -> None:
        self._result, self._reads = result, reads

    def __getattr__(self, name: str) -> Any:
        if name == "logscore":
            self._reads.append(name)
        return getattr(self._result, name)


def _track(monkeypatch: pytest.MonkeyPatch, reads: list[str], **kw: Any) -> Any:
    real = validation.backtest
    monkeypatch.setattr(validation, "backtest",
                        lambda *a, **k: _Counted(real(*a, **k), reads))
    agents = {"nig": NormalInverseGamma(),
              "bootstrap": BayesianBootstrap(window=100, draws=100, paths=50)}
    track, hit = _instance_track(_x(), agents, LEVELS, days=12, window=200, horizon=1,
                                 seed=0, workers=1, on_day=None, **kw)
    assert not hit
    return track


@pytest.mark.parametrize(("bma", "cached", "formed"), [
    (False, False, False), (True, False, True), (False, True, True), (True, True, True)])
def test_log_scores_are_formed_only_where_read(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bma: bool, cached: bool,
        formed: bool) -> None:
    reads: list[str] = []
    cache = tmp_path if cached else None
    saves: list[str] = []
    real_save = track_cache.save_track
    monkeypatch.setattr(track_cache, "save_track",
                        lambda folder, key, track: (saves.append(key),
                                                    real_save(folder, key, track))[1])
    track = _track(monkeypatch, reads, cache=cache, log_scores=bma)
    assert bool(reads) == formed
    for a in LEVELS:
        scores = track[a].log_scores
        assert (scores is not None) == bma
        if bma:
            assert scores.shape == (12, 2) and np.all(np.isfinite(scores))
    if cached:  # the cache keeps them for a later BMA call, whatever this call's weighting
        saved = load_track(tmp_path, saves[0], ("nig", "bootstrap"), LEVELS, log_scores=True)
        assert saved is not None and saved[0.99].log_scores is not None
        np.testing.assert_array_equal(saved[0.99].log_scores, saved[0.975].log_scores)


def test_a_record_without_scores_is_the_stripped_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers do not depend on whether the scores were formed: the same record."""
    plain = _track(monkeypatch, [], cache=None, log_scores=False)
    scored = _track(monkeypatch, [], cache=None, log_scores=True)
    for a in LEVELS:
        for field in ("agent_ids", "alpha"):
            assert getattr(plain[a], field) == getattr(scored[a], field)
        for field in ("returns", "var", "es"):
            np.testing.assert_array_equal(getattr(plain[a], field), getattr(scored[a], field))
