"""A verified on-disk cache of the swarm's out-of-sample track record.

Building the track record behind the consensus weights runs the backtest
driver over ``track_days`` days (at h = 10: 100 h-day forecasts per agent
and ~1,000 updates); the same inputs always give the same record, so
:func:`swarmvar.var` can keep it in a directory and read it back.

The key is a SHA-256 over everything the record depends on: the returns it
reads (their float64 bytes), each agent's class and constructor parameters,
the levels, ``days``, ``window``, ``horizon``, ``step``, ``refit_every``,
the seed, and the bytes of every Python source file of the installed
swarmvar package (any code change is a new key). A file holds its key and a
SHA-256 of its arrays; :func:`load_track` returns ``None`` - recompute - for
a missing, truncated, bit-flipped, foreign or inconsistent file, never a
record it could not verify. A record of horizon 1 also keeps every agent's
predictive log score of each day (BMA weights read them); a caller that asks
for log scores gets ``None`` from a file without them. Format 2 added the log
scores: the format is part of every key, so files of format 1 are not read
(each is rebuilt when its record is next asked for). :func:`save_track` writes atomically (a
temporary file, fsynced, then renamed), so a killed writer leaves the old
file or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..consensus import TrackRecord
from ..errors import InvalidParameter

#: Version of the cache file layout (part of every key).
CACHE_FORMAT = 2
#: Largest cache file read (bytes, 128 MiB ~ 134 MB). A record is ~8 bytes x days x agents x
#: (2 x levels + 1) (VaR and ES per level, the log scores): 10,000 days of 50 agents at 4
#: levels is ~36 MB; 100,000 days is ~360 MB, over the cap, so such a record is never read
#: back (each call rebuilds it).
MAX_CACHE_BYTES = 1 << 27


def _source_digest() -> str:
    """SHA-256 of the swarmvar package's Python sources (relative paths and bytes)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def track_key(
    returns: NDArray[np.float64],
    agents: Mapping[str, tuple[str, Mapping[str, Any]]],
    alphas: Sequence[float],
    *,
    days: int,
    window: int,
    horizon: int,
    step: int,
    refit_every: int,
    seed: int,
) -> str:
    """The cache key (hex SHA-256) of a track record.

    ``returns`` are the returns the record reads; ``agents`` maps each agent
    id to its class's qualified name and its constructor parameters (plain
    values, as ``Agent.params()`` gives them).
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    spec = {
        "format": CACHE_FORMAT,
        "code": _source_digest(),
        "returns": hashlib.sha256(r.tobytes()).hexdigest(),
        "n": int(r.size),
        "agents": [[k, cls, _plain(params)] for k, (cls, params) in agents.items()],
        "alphas": [float(a) for a in alphas],
        "days": int(days), "window": int(window), "horizon": int(horizon), "step": int(step),
        "refit_every": int(refit_every), "seed": int(seed),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _arrays_digest(arrays: Mapping[str, NDArray[np.float64]]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


_HEX = frozenset("0123456789abcdef")


def cache_path(folder: str | Path, key: str) -> Path:
    """Where the record of ``key`` lives in ``folder``.

    Raises
    ------
    InvalidParameter
        ``folder`` is not a path, or ``key`` is not a :func:`track_key` (hex SHA-256): no
        other name can reach the file system from here.
    """
    if not isinstance(folder, (str, Path)) or not str(folder):
        raise InvalidParameter(f"the track cache folder must be a path, not {folder!r}")
    if not isinstance(key, str) or len(key) != 64 or any(c not in _HEX for c in key):
        raise InvalidParameter(f"a track cache key is a hex SHA-256 from track_key(), not "
                               f"{str(key)[:80]!r}")
    return Path(folder) / f"track-{key[:32]}.npz"


def save_track(folder: str | Path, key: str, track: Mapping[float, TrackRecord]) -> Path:
    """Write ``track`` under ``key`` in ``folder`` (created if missing), atomically.

    The first record's ``log_scores`` ``(T, agents)``, if it has them, are kept too (the
    levels share them: one density per agent and day)."""
    records = list(track.values())
    first = records[0]
    arrays: dict[str, NDArray[np.float64]] = {"returns": np.asarray(first.returns, np.float64)}
    for i, rec in enumerate(records):
        arrays[f"var_{i}"] = np.asarray(rec.var, dtype=np.float64)
        arrays[f"es_{i}"] = np.asarray(rec.es, dtype=np.float64)
    if first.log_scores is not None:
        arrays["log_scores"] = np.asarray(first.log_scores, dtype=np.float64)
    header = {"format": CACHE_FORMAT, "key": key, "agents": list(first.agent_ids),
              "alphas": [float(r.alpha) for r in records], "digest": _arrays_digest(arrays),
              "log_scores": "log_scores" in arrays}
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False,
             __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    target = cache_path(folder, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".track-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def load_track(
    folder: str | Path, key: str, agent_ids: Sequence[str], alphas: Sequence[float], *,
    log_scores: bool = False,
) -> dict[float, TrackRecord] | None:
    """The record cached under ``key``, verified; ``None`` if absent or not verifiable.

    With ``log_scores`` each record carries the file's log scores ``(T, agents)``, and a
    file without them is ``None`` (the caller builds the record); without, the records
    carry none, as a record built for a weighting other than BMA.
    """
    path = cache_path(folder, key)
    try:
        if not path.is_file() or path.stat().st_size > MAX_CACHE_BYTES:
            return None
        raw = path.read_bytes()  # parsed from memory: a bad archive leaves no file open
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            header = json.loads(npz["__header__"].tobytes().decode())
            arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files
                      if k != "__header__"}
    except (OSError, ValueError, KeyError, EOFError, UnicodeError, TypeError, IndexError,
            AttributeError, NotImplementedError, OverflowError, MemoryError,
            zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError,
            json.JSONDecodeError):  # RuntimeError: an entry flagged encrypted
        return None
    ids, levels = list(agent_ids), [float(a) for a in alphas]
    if (not isinstance(header, dict) or header.get("format") != CACHE_FORMAT
            or header.get("key") != key or header.get("agents") != ids
            or header.get("alphas") != levels
            or header.get("digest") != _arrays_digest(arrays)):
        return None
    scored = header.get("log_scores")
    want = {"returns", *(f"{p}_{i}" for i in range(len(levels)) for p in ("var", "es")),
            *(("log_scores",) if scored is True else ())}
    # a bool, not 1 or 1.0 (== True in Python): a foreign file's 1 would pass as scored
    if not isinstance(scored, bool) or set(arrays) != want or (log_scores and not scored):
        return None
    returns = arrays["returns"]
    if returns.ndim != 1 or not np.all(np.isfinite(returns)):
        return None
    shape = (returns.size, len(ids))
    scores = arrays["log_scores"] if log_scores else None
    if scored and arrays["log_scores"].shape != shape:
        return None
    out = {}
    for i, alpha in enumerate(levels):
        var, es = arrays[f"var_{i}"], arrays[f"es_{i}"]
        if var.shape != shape or es.shape != var.shape:
            return None
        out[alpha] = TrackRecord(agent_ids=tuple(ids), returns=returns, alpha=alpha,
                                 var=var, es=es, log_scores=scores)
    return out
