"""Export a ledger to JSON Lines, and import it again, re-verifying everything.

Line 1 is a header ``{"format": "swarmvar-ledger", "version": 1,
"hash_algorithm", "size", "root", "created"}``; each further line is one
entry as :meth:`Entry.to_dict` gives it (hashes in hex). Import recomputes
every hash, link and the Merkle root, and writes nothing unless all agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..canonical import NotCanonical, loads
from ..errors import InvalidEntry, LedgerCorrupted
from .entry import ZERO_HASH, canonical_data, check_timestamp, parse_kind
from .ledger import Ledger, ledger_path
from .merkle import HashAlgorithm, empty_root, fold
from .sqlite import SQLiteStore
from .store import Draft, Durability, seal_batch

FORMAT = "swarmvar-ledger"


def _entry_line(row: tuple[Any, ...]) -> str:
    idx, timestamp, kind, data, previous, digest, _ = row
    return (
        f'{{"data":{data},"hash":"{digest.hex()}","index":{idx},"kind":"{kind}",'
        f'"previous_hash":"{previous.hex()}","timestamp":"{timestamp}"}}\n'
    )


def export_jsonl(ledger: Ledger, path: str | os.PathLike[str]) -> int:
    """Write the ledger's entries (as of now) to ``path``; return how many.

    The file is written to a temporary name and renamed, so ``path`` is
    either the old file or the complete new one.
    """
    path = Path(path)
    manifest = ledger.get_manifest()
    header = {"format": FORMAT, "version": 1, **manifest.to_dict()}
    del header["head_hash"]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
            for row in ledger.store.rows(0, manifest.size):
                fh.write(_entry_line(row))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return manifest.size


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, loads(line)
            except (ValueError, NotCanonical) as exc:
                raise LedgerCorrupted(f"{path}:{number} is not JSON: {exc}") from None


def read_jsonl(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Draft], list[bytes]]:
    """Parse and fully verify an export: (header, drafts, hashes).

    Raises
    ------
    LedgerCorrupted
        Naming the first line (and entry) that does not verify.
    """
    path = Path(path)
    lines = _lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise LedgerCorrupted(f"{path} is empty; expected a swarmvar ledger export") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LedgerCorrupted(f"{path}: line 1 is not a {FORMAT} header")
    try:
        algorithm = HashAlgorithm(header["hash_algorithm"])
        size = int(header["size"])
        root = bytes.fromhex(header["root"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerCorrupted(f"{path}: bad header field {exc}") from None
    drafts: list[Draft] = []
    hashes: list[bytes] = []
    for number, item in lines:
        where = f"{path}:{number} (entry {len(drafts)})"
        try:
            if item["index"] != len(drafts):
                raise LedgerCorrupted(f"{where}: index {item['index']}, expected {len(drafts)}")
            drafts.append(
                (
                    parse_kind(item["kind"]).value,
                    canonical_data(item["data"]),
                    check_timestamp(item["timestamp"]),
                )
            )
            hashes.append(bytes.fromhex(item["hash"]))
            previous = bytes.fromhex(item["previous_hash"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, LedgerCorrupted):
                raise
            kind = "invalid entry" if isinstance(exc, InvalidEntry) else "bad field"
            raise LedgerCorrupted(f"{where}: {kind}: {exc}") from None
        expected_prev = hashes[-2] if len(hashes) > 1 else ZERO_HASH
        if previous != expected_prev:
            raise LedgerCorrupted(f"{where}: previous_hash does not match the entry before")
    if len(drafts) != size:
        raise LedgerCorrupted(f"{path}: header says {size} entries, file holds {len(drafts)}")
    if drafts and (drafts[0][0] != "genesis" or any(d[0] == "genesis" for d in drafts[1:])):
        raise LedgerCorrupted(f"{path}: entry 0, and only entry 0, must be the genesis entry")
    rows, frontier = seal_batch(drafts, 0, ZERO_HASH, [], algorithm)
    for row, expected in zip(rows, hashes, strict=True):
        if row[5] != expected:
            raise LedgerCorrupted(f"{path}: entry {row[0]}'s hash does not match its contents")
    got = fold(frontier, algorithm) if frontier else empty_root(algorithm)
    if got != root:
        raise LedgerCorrupted(f"{path}: entries give root {got.hex()}, header says {root.hex()}")
    return header, drafts, hashes


def import_jsonl(
    source: str | os.PathLike[str],
    home_or_path: str | os.PathLike[str],
    *,
    durability: Durability = Durability.PROCESS,
) -> Ledger:
    """Verify an export and load it into a new, empty ledger at ``home_or_path``.

    Raises
    ------
    LedgerCorrupted
        If the export does not verify, or the target already holds entries;
        in both cases nothing is written.
    """
    header, drafts, hashes = read_jsonl(source)
    path = ledger_path(home_or_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    algorithm = HashAlgorithm(header["hash_algorithm"])
    store = SQLiteStore(path, str(header["created"]), algorithm, durability)
    try:
        if store.size() != 0 or store.append(drafts, if_size=0) is None:
            raise LedgerCorrupted(f"{path} already holds entries; import into a new ledger")
    except BaseException:
        store.close()
        raise
    ledger = Ledger.from_store(store)
    ledger.path = path
    return ledger
