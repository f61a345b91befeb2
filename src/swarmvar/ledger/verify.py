"""Full verification of stored rows: the hash chain, and the Merkle nodes kept beside it.

A big SQLite ledger is verified in index ranges at once, one per process
(:func:`verify_sqlite`): each range starts from the hash and Merkle frontier
stored just before it, and is trusted only if the range before it verified
and recomputed exactly that frontier (the last range: the frontier stored at
the end). A failure a worker reports is re-checked in the calling process. So
the outcome, including which entry is named first, is the one a single pass
gives; anything irregular (a worker that fails to start, a gap at a range
boundary, a range that ends in another state) falls back to that single pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..errors import LedgerCorrupted
from .damage import open_read_only
from .entry import ZERO_HASH, EntryKind, preimage
from .merkle import HashAlgorithm, empty_root, fold, frontier_keys
from .sqlite import SQLiteStore, stream_rows
from .store import Frontier, Row, push_leaf

#: Below this many entries one process verifies: a worker costs ~0.2 s to start.
PARALLEL_MIN_ENTRIES = 200_000
#: Where the swarmvar package lives, for workers started with another sys.path.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

_KINDS = frozenset(k.value for k in EntryKind)
#: Kinds allowed at index 0, and after it.
_FIRST_KINDS = frozenset({EntryKind.GENESIS.value})
_LATER_KINDS = _KINDS - _FIRST_KINDS


@dataclass(frozen=True)
class Verification:
    """Outcome of checking a ledger.

    Attributes
    ----------
    ok : bool
    size : int
        Entries checked (up to the first bad one when not ok).
    first_bad : int or None
        Index of the first entry that fails, when not ok.
    reason : str or None
        What is wrong with it.
    root : bytes or None
        Merkle root recomputed from the entries, when ok.
    """

    ok: bool
    size: int
    first_bad: int | None = None
    reason: str | None = None
    root: bytes | None = None

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            root = self.root.hex() if self.root is not None else "-"
            return f"ok: {self.size} entries verify; root {root}"
        if self.first_bad is None:
            return f"damaged: {self.reason}"
        return f"entry {self.first_bad} is bad: {self.reason}"


def verify_rows(
    rows: Iterable[Row],
    algorithm: HashAlgorithm,
    *,
    start: int = 0,
    previous_hash: bytes = ZERO_HASH,
    frontier: Sequence[bytes] = (),
) -> Verification:
    """Recompute every entry hash, chain link and stored Merkle node from ``rows``.

    Parameters
    ----------
    rows : iterable of Row
        Stored rows in index order, starting at ``start``.
    start, previous_hash, frontier
        Where ``rows`` begin: index, hash of the entry before (32 zero bytes
        for genesis) and Merkle frontier of the ``start`` entries before.

    Returns
    -------
    Verification
        Not ok at the first row whose index, kind, previous hash, hash or
        Merkle nodes differ from what its contents and predecessors imply;
        when ok, ``root`` is that of the tree up to the last row.
    """
    new = algorithm.new()
    stack: Frontier = list(frontier)
    prev = previous_hash
    expected = start
    for idx, timestamp, kind, data, previous, digest, nodes in rows:
        if idx != expected:
            reason = f"entry {expected} is missing (next stored is {idx})"
            return Verification(False, expected, expected, reason)
        if (
            previous != prev
            or kind not in (_LATER_KINDS if idx else _FIRST_KINDS)
            or new(preimage(idx, timestamp, kind, data, previous)).digest() != digest
        ):
            return Verification(False, expected, idx, _why(idx, kind, previous, prev))
        if push_leaf(stack, idx, digest, new) != nodes:
            reason = "stored Merkle nodes differ from the recomputed ones"
            return Verification(False, expected, idx, reason)
        prev = digest
        expected += 1
    root = fold(stack, algorithm) if stack else empty_root(algorithm)
    return Verification(True, expected, None, None, root)


def default_processes(size: int) -> int:
    """Processes :func:`verify_sqlite` uses for ``size`` entries by default (1 to 4)."""
    if size < PARALLEL_MIN_ENTRIES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


@dataclass(frozen=True)
class _Range:
    """Entries ``lo <= index < hi``, and the stored state just before ``lo``."""

    lo: int
    hi: int
    previous_hash: bytes = ZERO_HASH
    frontier: tuple[bytes, ...] = ()

    def verify(self, rows: Iterable[Row], algorithm: HashAlgorithm) -> Verification:
        return verify_rows(
            rows,
            algorithm,
            start=self.lo,
            previous_hash=self.previous_hash,
            frontier=self.frontier,
        )


def verify_sqlite(store: SQLiteStore, processes: int) -> Verification:
    """:func:`verify_rows` over a whole SQLite store, in ``processes`` ranges at once.

    This process checks the first range while worker processes, each with a
    read-only connection, check the others; the result is the single pass's.
    """
    algorithm = store.hash_algorithm
    size = store.size()
    whole = _Range(0, size)
    parts = max(1, min(processes, size // 2))
    if parts == 1 or not sys.executable:  # no interpreter known to start workers with
        return whole.verify(store.rows(0, size), algorithm)
    bounds = [size * k // parts for k in range(parts + 1)]
    try:  # the stored state where each later range starts, and at the end
        ranges = [_Range(0, bounds[1])]
        for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True):
            ranges.append(_Range(lo, hi, _stored_hash(store, lo - 1), _stored_frontier(store, lo)))
        end = _stored_frontier(store, size)
    except LedgerCorrupted:
        return whole.verify(store.rows(0, size), algorithm)
    with ExitStack() as stack:  # on the way out: kill (if still running), then reap
        workers = []
        for part in ranges[1:]:
            workers.append(stack.enter_context(_start_worker(store.path, algorithm, part)))
            stack.callback(workers[-1].kill)
        results = [ranges[0].verify(store.rows(0, bounds[1]), algorithm)]
        for worker, part in zip(workers, ranges[1:], strict=True):
            if not results[-1].ok:
                break
            result = _worker_result(worker)
            if result is None or not result.ok:  # no answer, or a failure: check it here
                result = part.verify(store.rows(part.lo, part.hi), algorithm)
            results.append(result)
    for k, result in enumerate(results):
        if not result.ok:
            return result
        # a range counts only if it recomputed exactly the stored state the next
        # range started from (or, for the last, the stored state at the end)
        stored = ranges[k + 1].frontier if k + 1 < parts else end
        if result.size != bounds[k + 1] or result.root != fold(stored, algorithm):
            return whole.verify(store.rows(0, size), algorithm)
    return results[-1]


def _stored_frontier(store: SQLiteStore, size: int) -> tuple[bytes, ...]:
    return tuple(store.node_hashes(frontier_keys(size)))


def _stored_hash(store: SQLiteStore, index: int) -> bytes:
    for row in store.rows(index, index + 1):
        return row[5]
    raise LedgerCorrupted(f"entry {index} is missing")


def _start_worker(path: Path, algorithm: HashAlgorithm, part: _Range) -> subprocess.Popen[str]:
    # A fresh interpreter (not multiprocessing's fork or spawn): fork is unsafe
    # in a threaded process, and spawn re-imports the caller's __main__.
    frontier = ",".join(h.hex() for h in part.frontier)
    args = [
        str(path),
        algorithm.value,
        str(part.lo),
        str(part.hi),
        part.previous_hash.hex(),
        frontier,
    ]
    code = "from swarmvar.ledger.verify import _worker_main; _worker_main()"
    paths = [_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )


def _worker_result(worker: subprocess.Popen[str]) -> Verification | None:
    out, _ = worker.communicate()
    try:
        got = json.loads(out)
        root = None if got["root"] is None else bytes.fromhex(got["root"])
        return Verification(got["ok"], got["size"], got["first_bad"], got["reason"], root)
    except (ValueError, KeyError, TypeError):
        return None


def _worker_main() -> None:
    """Verify one range in a worker process: argv as :func:`_start_worker` writes it."""
    path, algorithm, lo, hi, prev, frontier = sys.argv[1:7]
    part = _Range(
        int(lo),
        int(hi),
        bytes.fromhex(prev),
        tuple(bytes.fromhex(h) for h in frontier.split(",") if h),
    )
    conn = open_read_only(Path(path))
    try:
        result = part.verify(stream_rows(conn, part.lo, part.hi), HashAlgorithm(algorithm))
    finally:
        conn.close()
    root = None if result.root is None else result.root.hex()
    out = {"ok": result.ok, "size": result.size, "first_bad": result.first_bad}
    print(json.dumps({**out, "reason": result.reason, "root": root}))


def _why(idx: int, kind: str, previous: bytes, prev: bytes) -> str:
    """Which check an entry failed (the slow path, run once)."""
    if kind not in _KINDS or (kind == EntryKind.GENESIS.value) != (idx == 0):
        return f"kind {kind!r} is not allowed at index {idx}"
    if previous != prev:
        return "previous_hash is not the hash of the entry before it (reordered or rewritten)"
    return "hash does not match the entry's contents (data, kind, timestamp or hash changed)"
