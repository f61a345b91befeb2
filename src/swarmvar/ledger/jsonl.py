"""Export a ledger to JSON Lines, and import it again, re-verifying everything.

Line 1 is a header ``{"format": "swarmvar-ledger", "version": 1,
"hash_algorithm", "size", "root", "created"}``; each further line is one
entry as :meth:`Entry.to_dict` gives it (hashes in hex). Import recomputes
every hash, link and the Merkle root, and writes nothing unless all agree.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..canonical import NotCanonical, loads
from ..errors import (
    InvalidEntry,
    InvalidParameter,
    LedgerCorrupted,
    LedgerUnavailable,
)
from .entry import MAX_DATA_BYTES, ZERO_HASH, canonical_data, check_timestamp, parse_kind
from .ledger import Ledger, LedgerNotFound, is_postgres_url, ledger_path
from .merkle import HashAlgorithm, empty_root, fold
from .sqlite import SQLiteStore, at_target
from .store import Draft, Durability, Row, seal_batch

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
    either the old file or the complete new one. A ledger its store finds
    damaged (:meth:`Ledger.damage`) raises LedgerCorrupted, writing nothing.
    """
    path = Path(path)
    ledger.refuse_damage("nothing was exported")
    manifest = ledger.get_manifest()
    header = {"format": FORMAT, "version": 1, **manifest.to_dict()}
    del header["head_hash"]
    if path.is_dir():
        raise InvalidParameter(f"{path} is a directory; give a file name for the export")
    if not path.parent.is_dir():
        raise InvalidParameter(f"cannot export to {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fh = open(tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise InvalidParameter(f"cannot write the export {path}: {exc.strerror or exc}") from None
    try:
        with fh:
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


#: Longest line read from an export: an entry of MAX_DATA_BYTES of data, each
#: byte escaped (``\\u00XX``), plus the other fields.
_MAX_LINE = 6 * MAX_DATA_BYTES + 4096
#: Entries written to the new ledger per transaction while importing.
_IMPORT_BATCH = 20_000


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except IsADirectoryError:
        raise LedgerCorrupted(f"{path} is a directory; give a ledger export file") from None
    except OSError as exc:
        raise LedgerNotFound(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        number = 0
        try:
            while True:
                line = fh.readline(_MAX_LINE)
                if not line:
                    return
                number += 1
                if len(line) == _MAX_LINE and not line.endswith("\n"):
                    raise LedgerCorrupted(
                        f"{path}:{number} is longer than {_MAX_LINE:,} characters; no entry "
                        "of a ledger export is (entry data is at most 1 MiB)"
                    )
                if not line.strip():
                    continue
                try:
                    yield number, loads(line)
                except (ValueError, NotCanonical, RecursionError) as exc:
                    raise LedgerCorrupted(f"{path}:{number} is not JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise LedgerCorrupted(
                f"{path}:{number + 1} is not UTF-8 text ({exc.reason}); "
                "a ledger export is UTF-8 JSON Lines"
            ) from None


def _header(path: Path, lines: Iterator[tuple[int, Any]]) -> tuple[dict[str, Any], int, bytes]:
    try:
        _, header = next(lines)
    except StopIteration:
        raise LedgerCorrupted(f"{path} is empty; expected a swarmvar ledger export") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LedgerCorrupted(f"{path}: line 1 is not a {FORMAT} header")
    fields = ("version", "hash_algorithm", "size", "root", "created")
    missing = [k for k in fields if k not in header]
    if missing:
        raise LedgerCorrupted(
            f"{path}: the header lacks {', '.join(missing)}; export the ledger again "
            "with `swarmvar ledger export`"
        )
    if header["version"] != 1:
        raise LedgerCorrupted(f"{path}: export format version {header['version']!r} is not 1")
    try:
        HashAlgorithm(header["hash_algorithm"])
        size = header["size"]
        if type(size) is not int or size < 1:
            raise ValueError(f"size {size!r} is not a positive int")
        root = bytes.fromhex(header["root"])
        check_timestamp(header["created"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerCorrupted(f"{path}: bad header field: {exc}") from None
    return header, size, root


def _entries(path: Path, lines: Iterator[tuple[int, Any]]) -> Iterator[tuple[Draft, bytes]]:
    """Each entry line as (draft, stated hash), checked for form, index and link."""
    count = 0
    last = ZERO_HASH
    for number, item in lines:
        where = f"{path}:{number} (entry {count})"
        try:
            if not isinstance(item, dict):
                raise LedgerCorrupted(f"{where}: not a JSON object")
            if type(item["index"]) is not int or item["index"] != count:
                raise LedgerCorrupted(f"{where}: index {item['index']!r}, expected {count}")
            draft = (
                parse_kind(item["kind"]).value,
                canonical_data(item["data"]),
                check_timestamp(item["timestamp"]),
            )
            digest = bytes.fromhex(item["hash"])
            previous = bytes.fromhex(item["previous_hash"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, LedgerCorrupted):
                raise
            kind = "invalid entry" if isinstance(exc, InvalidEntry) else "bad field"
            raise LedgerCorrupted(f"{where}: {kind}: {exc}") from None
        if previous != last:
            raise LedgerCorrupted(f"{where}: previous_hash does not match the entry before")
        if (draft[0] == "genesis") != (count == 0):
            raise LedgerCorrupted(f"{path}: entry 0, and only entry 0, must be the genesis entry")
        yield draft, digest
        last = digest
        count += 1


def _check_sealed(path: Path, rows: list[Row], hashes: list[bytes]) -> None:
    for row, expected in zip(rows, hashes, strict=True):
        if row[5] != expected:
            raise LedgerCorrupted(f"{path}: entry {row[0]}'s hash does not match its contents")


def read_jsonl(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Draft], list[bytes]]:
    """Parse and fully verify an export: (header, drafts, hashes).

    Raises
    ------
    LedgerCorrupted
        Naming the first line (and entry) that does not verify.
    """
    path = Path(path)
    lines = _lines(path)
    header, size, root = _header(path, lines)
    algorithm = HashAlgorithm(header["hash_algorithm"])
    drafts: list[Draft] = []
    hashes: list[bytes] = []
    for draft, digest in _entries(path, lines):
        drafts.append(draft)
        hashes.append(digest)
    if len(drafts) != size:
        raise LedgerCorrupted(f"{path}: header says {size} entries, file holds {len(drafts)}")
    rows, frontier = seal_batch(drafts, 0, ZERO_HASH, [], algorithm)
    _check_sealed(path, rows, hashes)
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
    """Verify an export and load it into a new ledger at ``home_or_path``: all or nothing.

    The entries are written, in batches, to a temporary file beside the
    target; only when every hash, link, the count and the Merkle root agree
    is it linked into place (a no-clobber ``link``), so a process killed at
    any moment leaves no ledger at the target, and the import can simply be
    run again. Leftovers of killed imports are removed by the next one.

    Raises
    ------
    LedgerCorrupted
        If the export does not verify, or a ledger (or any file) already
        exists at the target; in both cases nothing is written there.
    LedgerUnwritable
        Writing the entries met a disk full, a read-only folder (a file system mounted
        read-only, or one this process may not write) or an I/O error: named as the
        ledger at the target that could not be created (the temporary file it was met
        on is deleted: :func:`~swarmvar.ledger.sqlite.at_target`), nothing written there.
    LedgerUnavailable
        Writing them met a lock or no file descriptor left: named by the target too.
    """
    source = Path(source)
    if is_postgres_url(home_or_path):
        raise InvalidParameter(
            "import loads an export into a new SQLite ledger (a data home or .sqlite path), "
            "not into a PostgreSQL URL"
        )
    path = ledger_path(home_or_path)
    if path.exists():
        raise LedgerCorrupted(
            f"{path} already exists (it already holds entries or other data); "
            "import into a new ledger (another --home)"
        )
    lines = _lines(source)
    header, size, root = _header(source, lines)
    algorithm = HashAlgorithm(header["hash_algorithm"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerNotFound(f"cannot make the folder {path.parent}: {exc}") from None
    _remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.import-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        store = SQLiteStore(tmp, str(header["created"]), algorithm, durability)
        try:
            count = 0
            batch: list[tuple[Draft, bytes]] = []
            for item in _entries(source, lines):
                batch.append(item)
                if len(batch) == _IMPORT_BATCH:
                    count = _append_checked(source, store, batch, count)
                    batch = []
            count = _append_checked(source, store, batch, count)
            if count != size:
                raise LedgerCorrupted(f"{source}: header says {size} entries, file holds {count}")
            got = Ledger.from_store(store).compute_merkle_root()
            if got != root:
                raise LedgerCorrupted(
                    f"{source}: entries give root {got.hex()}, header says {root.hex()}"
                )
        finally:
            store.close()  # the last connection: SQLite folds the WAL into the file
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing ledger
        except FileExistsError:
            raise LedgerCorrupted(
                f"{path} appeared while importing; import into a new ledger"
            ) from None
        _fsync_dir(path.parent)
    except (LedgerUnavailable, LedgerCorrupted) as exc:  # the temporary file is deleted:
        raise at_target(exc, tmp, path) from None  # name the target
    finally:
        for leftover in (tmp, *_wal_files(tmp)):
            with suppress(OSError):  # EROFS even for a file not there: not the error to tell
                leftover.unlink(missing_ok=True)
    ledger = Ledger(path, create=False, durability=durability)
    return ledger


def _append_checked(
    source: Path, store: SQLiteStore, batch: list[tuple[Draft, bytes]], count: int
) -> int:
    if not batch:
        return count
    drafts = [d for d, _ in batch]
    rows = store.append(drafts, if_size=count)
    if rows is None:
        raise LedgerCorrupted(f"the temporary ledger for {source} changed under the import")
    _check_sealed(source, rows, [h for _, h in batch])
    return count + len(rows)


def _wal_files(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _remove_leftovers(path: Path) -> None:
    """Delete temporary files of imports into ``path`` whose process is gone."""
    for tmp in path.parent.glob(f".{path.name}.import-*.tmp*"):
        try:
            pid = int(tmp.name[len(f".{path.name}.import-") :].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or not _alive(pid):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
