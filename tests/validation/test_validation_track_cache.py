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


def _relabel(path: Path, scored: object, *, drop_scores: bool = False) -> None:
    """Rewrite the file's header flag ``log_scores`` as ``scored`` (and drop its log scores),
    its arrays' digest recomputed: a foreign writer's file that verifies but for the flag."""
    import json

    from swarmvar.validation.track_cache import _arrays_digest

    with np.load(path) as npz:
        header = json.loads(npz["__header__"].tobytes())
        arrays = {k: npz[k] for k in npz.files
                  if k != "__header__" and not (drop_scores and k == "log_scores")}
    header["log_scores"] = scored
    header["digest"] = _arrays_digest(arrays)
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)


@pytest.mark.parametrize("flag", [1, 1.0, 0, 0.0, "true", None, [True]])
def test_a_log_scores_flag_that_is_not_a_bool_is_no_record(tmp_path: Path, flag: object
                                                            ) -> None:
    """JSON 1 == True in Python: ``scored not in (True, False)`` let a foreign file's 1 pass,
    and ``load_track(..., log_scores=True)`` raised a raw KeyError 'log_scores'. Such a
    flag is no record, with or without the scores, whatever the caller asks."""
    key, track = _record()
    ids, levels = ("a", "b", "c"), (0.99, 0.975)
    scores = np.random.default_rng(9).normal(-3.0, 1.0, (6, 3))
    for with_scores in (False, True):
        save_track(tmp_path, key, {a: TrackRecord(r.agent_ids, r.returns, a, r.var, r.es,
                                                  scores if with_scores else None)
                                   for a, r in track.items()})
        assert load_track(tmp_path, key, ids, levels, log_scores=with_scores) is not None
        _relabel(cache_path(tmp_path, key), flag)
        for asked in (False, True):
            assert load_track(tmp_path, key, ids, levels, log_scores=asked) is None


def test_var_rebuilds_a_file_whose_log_scores_flag_is_1(tmp_path: Path) -> None:
    """swarmvar.var under BMA over a cached file flagged ``1`` without log scores (was: a raw
    KeyError 'log_scores'): rebuilt, the same consensus as with no cache, then read."""
    x = simulated(400, 5)
    bma = Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.BMA, window=1000)

    def run(cache: Path | None) -> swarmvar.api.VarResult:
        return swarmvar.var(x, [NormalInverseGamma(), BayesianBootstrap(window=100, draws=100,
                                                                        paths=50)],
                            track_days=30, policy=bma, track_cache=cache)

    fresh = run(None)
    assert "cache" not in run(tmp_path).note
    (path,) = _files(tmp_path)
    _relabel(path, 1, drop_scores=True)
    again = run(tmp_path)
    assert "cache" not in again.note and again.agreed == fresh.agreed
    third = run(tmp_path)
    assert "read from the cache" in third.note and third.agreed == fresh.agreed


@pytest.mark.parametrize("bma", [False, True])
def test_a_record_read_or_built_is_the_same(tmp_path: Path, bma: bool) -> None:
    """``_instance_track`` returns the same record built (and cached) as read back: a built
    record is written with its horizon-1 log scores whatever the weighting, and a caller
    that does not ask for them (all but BMA) gets them from neither."""
    from swarmvar.api import _instance_track

    x = simulated(300, 6)
    agents = {"nig": NormalInverseGamma(), "bootstrap": BayesianBootstrap(
        window=100, draws=100, paths=50)}
    got = [_instance_track(x, agents, (0.99, 0.975), days=12, window=200, horizon=1, seed=0,
                           workers=1, on_day=None, cache=tmp_path, log_scores=bma)
           for _ in range(2)]
    assert [hit for _, hit in got] == [False, True]
    (built, _), (read, _) = got
    for a in (0.99, 0.975):
        for field in ("returns", "var", "es"):
            np.testing.assert_array_equal(getattr(read[a], field), getattr(built[a], field))
        if bma:
            assert built[a].log_scores is not None and built[a].log_scores.shape == (12, 2)
            np.testing.assert_array_equal(read[a].log_scores, built[a].log_scores)
        else:
            assert built[a].log_scores is None and read[a].log_scores is None
    # the file keeps the log scores whether or not this call asked for them
    (path,) = _files(tmp_path)
    with np.load(path) as npz:
        assert "log_scores" in npz.files and npz["log_scores"].shape == (12, 2)
