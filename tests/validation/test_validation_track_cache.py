"""The track-record cache: a second var reads it; a damaged or foreign file is rebuilt."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmvar
from swarmvar.consensus import Aggregator, Policy, TrackRecord, Weighting
from swarmvar.errors import InvalidParameter
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.validation.track_cache import cache_path, load_track, save_track, track_key

MEAN = Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.TEMPERED, window=1000)


def simulated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.01 * rng.standard_t(5, n) * math.sqrt(3 / 5)


def _var(x: np.ndarray, cache: Path | None, *, seed: int = 0, forgetting: float = 0.97,
         progress: list | None = None) -> swarmvar.api.VarResult:
    return swarmvar.var(x, [NormalInverseGamma(forgetting=forgetting),
                            BayesianBootstrap(window=100, draws=100, paths=50)],
                        alphas=(0.99, 0.975), horizon=5, track_days=40, policy=MEAN,
                        seed=seed, track_cache=cache,
                        progress=None if progress is None else (lambda *a: progress.append(a)))


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("track-*.npz"))


def test_a_second_var_reads_the_record_and_gives_the_same_numbers(tmp_path: Path) -> None:
    x = simulated(400, 1)
    fresh = _var(x, None)
    first = _var(x, tmp_path)
    assert len(_files(tmp_path)) == 1 and "cache" not in first.note
    seen: list = []
    second = _var(x, tmp_path, progress=seen)
    assert "track record read from the cache" in second.note
    assert ("track", 16, 16) in seen  # 8 windows x 2 agents, reported done at once
    for res in (first, second):
        assert res.agreed == fresh.agreed  # the same consensus, weights and all
    # another seed, agent parameter or series is another record
    _var(x, tmp_path, seed=1)
    _var(x, tmp_path, forgetting=0.9)
    _var(np.append(x[1:], 0.001), tmp_path)
    assert len(_files(tmp_path)) == 4


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "foreign"])
def test_a_damaged_file_is_rebuilt_not_used(tmp_path: Path, damage: str) -> None:
    x = simulated(400, 2)
    fresh = _var(x, tmp_path)
    (path,) = _files(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        at = len(data) // 3
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a cache\xff" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # another record's (valid) file under this record's name
        other = tmp_path / "other"
        _var(x, other, seed=7)
        (src,) = _files(other)
        path.write_bytes(src.read_bytes())
    again = _var(x, tmp_path)
    assert "cache" not in again.note and again.agreed == fresh.agreed
    third = _var(x, tmp_path)  # the rebuilt file verifies
    assert "read from the cache" in third.note and third.agreed == fresh.agreed


def test_a_cache_that_cannot_be_written_costs_time_not_results(tmp_path: Path) -> None:
    x = simulated(400, 3)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert _var(x, blocker).agreed == _var(x, None).agreed
    with pytest.raises(InvalidParameter, match="track_cache"):
        swarmvar.var(x, ["nig"], track_cache=3)  # type: ignore[arg-type]


def _record(k: int = 6) -> tuple[str, dict[float, TrackRecord]]:
    rng = np.random.default_rng(k)
    ids = ("a", "b", "c")
    rets = rng.normal(0, 0.01, k)
    track = {a: TrackRecord(ids, rets, a, rng.uniform(0.01, 0.03, (k, 3)),
                            rng.uniform(0.03, 0.05, (k, 3))) for a in (0.99, 0.975)}
    key = track_key(rets, {i: ("mod.Cls", {"p": 1}) for i in ids}, (0.99, 0.975), days=k,
                    window=10, horizon=1, step=1, refit_every=20, seed=0)
    return key, track


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_change_reads_as_the_record_or_as_nothing(tmp_path: Path,
                                                           data: st.DataObject) -> None:
    key, track = _record()
    path = save_track(tmp_path, key, track)
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path.write_bytes(bytes(raw[:cut]))
    got = load_track(tmp_path, key, ("a", "b", "c"), (0.99, 0.975))
    if got is not None:  # only a change the archive ignores (e.g. a zip comment byte)
        for a, rec in track.items():
            np.testing.assert_array_equal(got[a].var, rec.var)
            np.testing.assert_array_equal(got[a].es, rec.es)
            np.testing.assert_array_equal(got[a].returns, rec.returns)


def test_the_key_covers_every_input() -> None:
    r = simulated(50, 4)
    base = dict(days=10, window=30, horizon=2, step=2, refit_every=20, seed=0)
    agents = {"a": ("m.A", {"x": 1.0})}
    key = track_key(r, agents, (0.99,), **base)
    assert key == track_key(r.copy(), dict(agents), [0.99], **base)
    others = [track_key(r[1:], agents, (0.99,), **base),
              track_key(r, {"a": ("m.A", {"x": 2.0})}, (0.99,), **base),
              track_key(r, {"a": ("m.B", {"x": 1.0})}, (0.99,), **base),
              track_key(r, agents, (0.975,), **base)]
    for field in base:
        changed = dict(base)
        changed[field] += 1
        others.append(track_key(r, agents, (0.99,), **changed))
    assert len({key, *others}) == len(others) + 1
    assert cache_path("/x", key).name.startswith("track-")
