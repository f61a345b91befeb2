"""Tamper-evident ledger: a SHA3-256 hash chain with an RFC 6962 Merkle tree over it.

Every estimate, consensus, decision and action is an :class:`Entry` whose
hash covers its contents and the hash of the entry before it; a Merkle tree
over the entries gives O(log n) inclusion and consistency proofs and a root
that an Ed25519 :class:`SignedHead` commits to. Storage is one SQLite file
in WAL mode (``<home>/ledger.sqlite``), or a PostgreSQL database for a
``postgresql://`` URL (:mod:`.postgres`, imported only then), behind the
:class:`LedgerStore` interface. See docs/ledger.md.
"""

from .entry import MAX_DATA_BYTES, Entry, EntryKind
from .head import InvalidHead, KeyFileError, SignedHead
from .jsonl import export_jsonl, import_jsonl, read_jsonl
from .ledger import DEFAULT_HOME, Ledger, LedgerNotFound, Manifest, ledger_path
from .merkle import HashAlgorithm
from .proofs import ConsistencyProof, InclusionProof
from .sqlite import SQLiteStore
from .store import Durability, LedgerStore, MemoryStore
from .verify import Verification

__all__ = [
    "DEFAULT_HOME",
    "MAX_DATA_BYTES",
    "ConsistencyProof",
    "Durability",
    "Entry",
    "EntryKind",
    "HashAlgorithm",
    "InclusionProof",
    "InvalidHead",
    "KeyFileError",
    "Ledger",
    "LedgerNotFound",
    "LedgerStore",
    "Manifest",
    "MemoryStore",
    "SQLiteStore",
    "SignedHead",
    "Verification",
    "export_jsonl",
    "import_jsonl",
    "ledger_path",
    "read_jsonl",
]
