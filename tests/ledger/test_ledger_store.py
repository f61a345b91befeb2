"""One suite for every store (memory, SQLite): roots, proofs, heads, persistence."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.errors import InvalidProof, LedgerCorrupted
from swarmvar.ledger import (
    Durability,
    EntryKind,
    HashAlgorithm,
    InclusionProof,
    InvalidHead,
    Ledger,
    LedgerNotFound,
    MemoryStore,
    SQLiteStore,
)
from swarmvar.ledger.merkle import consistency_proof, inclusion_proof, leaf_hash, root

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(params=["memory", "sqlite", "sqlite-sha256", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "memory":
        led = Ledger.in_memory(signing_key=KEY)
    elif request.param == "postgres":
        led = Ledger(request.getfixturevalue("postgres_url"), signing_key=KEY)
    elif request.param == "sqlite":
        led = Ledger(tmp_path / "home", signing_key=KEY)
    else:
        led = Ledger(tmp_path / "l.sqlite", hash_algorithm=HashAlgorithm.SHA256, signing_key=KEY)
    yield led
    led.close()


def _fill(ledger: Ledger, n: int) -> None:
    ledger.add_entries([(EntryKind.ESTIMATE, {"i": i}) for i in range(n // 2)])
    for i in range(n - n // 2):
        ledger.add_entry(EntryKind.DECISION, {"j": i})


def test_roots_and_proofs_match_the_reference_at_every_size(ledger: Ledger) -> None:
    _fill(ledger, 70)
    algo = ledger.hash_algorithm
    leaves = [leaf_hash(e.hash, algo) for e in ledger.entries()]
    assert len(leaves) == ledger.size == 71
    for n in range(0, 72):
        assert ledger.compute_merkle_root(n) == root(leaves[:n], algo)
        for i in range(n):
            proof = ledger.inclusion_proof(i, n)
            assert list(proof.path) == inclusion_proof(i, leaves[:n], algo)
            proof.verify()
        for m in range(1, n + 1, 3):
            cp = ledger.consistency_proof(m, n)
            assert list(cp.path) == consistency_proof(m, leaves[:n], algo)
            cp.verify()


def test_proofs_serialize_and_check_against_other_roots(ledger: Ledger) -> None:
    _fill(ledger, 20)
    proof = ledger.inclusion_proof(7)
    again = InclusionProof.from_dict(proof.to_dict())
    assert again == proof
    again.verify(ledger.compute_merkle_root())
    with pytest.raises(InvalidProof):
        proof.verify(ledger.compute_merkle_root(20))  # a different tree
    with pytest.raises(InvalidProof):
        ledger.inclusion_proof(21)
    with pytest.raises(InvalidProof):
        ledger.consistency_proof(5, 22)
    with pytest.raises(InvalidProof):
        InclusionProof.from_dict({**proof.to_dict(), "root": "zz"})


def test_verify_chain_and_manifest(ledger: Ledger) -> None:
    _fill(ledger, 33)
    result = ledger.verify_chain()
    assert result.ok and result.size == 34 and result.root == ledger.compute_merkle_root()
    manifest = ledger.get_manifest()
    assert manifest.size == 34
    assert manifest.head_hash == ledger.entry(-1).hash
    assert manifest.root == ledger.compute_merkle_root()
    assert manifest.hash_algorithm is ledger.hash_algorithm


def test_signed_head_verifies_and_detects_forgery(ledger: Ledger) -> None:
    _fill(ledger, 10)
    head = ledger.signed_head()
    head.verify_signature(trusted_key=head.public_key)
    _fill(ledger, 5)
    assert ledger.check_head(head).ok
    forged = type(head)(
        head.size, bytes(32), head.timestamp, head.hash_algorithm, head.public_key, head.signature
    )
    with pytest.raises(InvalidHead):
        ledger.check_head(forged)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(InvalidHead, match="different key"):
        ledger.check_head(head, trusted_key=other)


def test_memory_and_sqlite_agree_on_hashes(tmp_path: Path) -> None:
    """Same entries and timestamps in both stores give the same chain and root."""
    from datetime import UTC, datetime

    fixed = datetime(2025, 6, 1, tzinfo=UTC)
    a = Ledger.in_memory(clock=lambda: fixed)
    b = Ledger(tmp_path, clock=lambda: fixed)
    for led in (a, b):
        _fill(led, 25)
    assert a.get_manifest() == b.get_manifest()
    b.close()


# --- SQLite specifics -----------------------------------------------------------


def test_sqlite_persists_and_reopens(tmp_path: Path) -> None:
    with Ledger(tmp_path, durability=Durability.POWER) as led:
        _fill(led, 12)
        manifest = led.get_manifest()
    with Ledger.open(tmp_path, create=False) as led:
        assert led.get_manifest() == manifest
        assert led.verify_chain().ok
        assert (tmp_path / "ledger.sqlite").exists()
        assert (tmp_path / "ledger.sqlite").stat().st_size > 0
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_sqlite_is_append_only(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        _fill(led, 3)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET data = '{}' WHERE idx = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM entries WHERE idx = 3")
    conn.close()
    assert not hasattr(Ledger, "delete") and not hasattr(Ledger, "update")


def test_missing_ledger_is_not_created_when_asked(tmp_path: Path) -> None:
    with pytest.raises(LedgerNotFound):
        Ledger(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_hash_algorithm_is_fixed_at_creation(tmp_path: Path) -> None:
    Ledger(tmp_path, hash_algorithm=HashAlgorithm.SHA256).close()
    with Ledger(tmp_path) as led:  # adopts the stored algorithm
        assert led.hash_algorithm is HashAlgorithm.SHA256
    with pytest.raises(LedgerCorrupted, match="sha-256 ledger"):
        Ledger(tmp_path, hash_algorithm=HashAlgorithm.SHA3_256)


def test_signing_key_file_is_private_and_reused(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        first = led.signed_head()
    key = tmp_path / "ledger.key"
    assert key.stat().st_mode & 0o777 == 0o600
    with Ledger(tmp_path) as led:
        assert led.signed_head().public_key == first.public_key
    key.chmod(0o644)
    from swarmvar.ledger import KeyFileError

    with Ledger(tmp_path) as led, pytest.raises(KeyFileError, match="chmod 600"):
        led.signed_head()


def test_store_level_compare_and_append(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite", "2025-01-01T00:00:00.000000Z")
    mem = MemoryStore("2025-01-01T00:00:00.000000Z")
    draft = ("genesis", "{}", "2025-01-01T00:00:00.000000Z")
    for s in (store, mem):
        assert [row[0] for row in s.append([draft], if_size=0) or []] == [0]
        assert s.append([draft], if_size=0) is None
        assert s.size() == 1
    store.close()


@pytest.mark.slow
def test_large_ledger_proofs_match_the_reference(tmp_path: Path) -> None:
    """2**17 + 3 entries: stored-subtree proofs equal the O(n) list reference."""
    import random

    n = (1 << 17) + 3
    with Ledger(tmp_path) as led:
        for start in range(1, n, 1000):
            led.add_entries(
                [(EntryKind.PULSE, {"i": i}) for i in range(start, min(n, start + 1000))]
            )
        assert led.size == n
        leaves = [leaf_hash(e.hash, led.hash_algorithm) for e in led.entries()]
        rng = random.Random(17)
        for _ in range(20):
            size = rng.randint(1, n)
            index = rng.randrange(size)
            proof = led.inclusion_proof(index, size)
            assert list(proof.path) == inclusion_proof(index, leaves[:size])
            assert proof.root == root(leaves[:size])
            proof.verify()
            old = rng.randint(0, size)
            cp = led.consistency_proof(old, size)
            assert list(cp.path) == consistency_proof(old, leaves[:size])
            cp.verify()
        assert led.verify_chain().ok


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(LedgerCorrupted, match="not an SQLite database"):
        Ledger(tmp_path)
    assert path.read_bytes() == b"this is not SQLite" * 100


def test_a_store_without_a_key_file_needs_a_key_to_sign() -> None:
    from swarmvar.errors import InvalidParameter

    led = Ledger.from_store(MemoryStore("2025-01-01T00:00:00.000000Z"))
    with pytest.raises(InvalidParameter, match="signing_key"):
        led.signed_head()
    signed = Ledger.from_store(MemoryStore("2025-01-01T00:00:00.000000Z"), signing_key=KEY)
    assert signed.check_head(signed.signed_head()).ok
