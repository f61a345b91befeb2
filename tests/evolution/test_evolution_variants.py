"""Variants and both variant stores: one shared suite (pybreaker's habit)."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from swarmvar.errors import (
    CapacityExceeded,
    InvalidVariant,
    SwarmVarError,
    UnknownVariant,
    VersionConflict,
)
from swarmvar.evolution import (
    Database,
    InvalidCapabilities,
    InvalidTransition,
    SqliteVariantStore,
    VariantStatus,
    VariantStore,
    Version,
    new_variant,
)


def make(constructors, forgetting=0.95, cls="NormalInverseGamma", now=1.0, **kw):
    params = {"forgetting": forgetting} if cls == "NormalInverseGamma" else {"nu": 5.0}
    return new_variant(cls, params, constructors, now=now, **kw)


def test_round_trip_by_id_and_status(store: VariantStore, constructors) -> None:
    v = make(constructors, description="faster forgetting",
             requirements={"jax": "0.4.30"}, metadata={"owner": "risk"})
    store.add(v)
    got = store.get(v.id)
    assert got == replace(v, version=1)
    assert got.requirements == {"jax": Version.parse("0.4.30")}
    assert [x.id for x in store.list(VariantStatus.DRAFT)] == [v.id]
    assert store.list(VariantStatus.ACTIVE) == []


def test_tuple_parameters_survive(store: VariantStore) -> None:
    v = new_variant("A", {"levels": [0.99, 0.975]}, {"A": ("levels",)}, now=1.0)
    store.add(v)
    assert store.get(v.id).parameters == {"levels": (0.99, 0.975)}  # lists become tuples


def test_unknown_variant(store: VariantStore) -> None:
    with pytest.raises(UnknownVariant, match="no variant with id 'nope'"):
        store.get("nope")


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        ("Nope", {"forgetting": 0.9}, "unknown agent class 'Nope'; known: GarchLike, Normal"),
        ("NormalInverseGamma", {"forgeting": 0.9}, "no constructor parameter 'forgeting'.*"
                                                   "forgetting, prior_mean"),
        ("NormalInverseGamma", {}, "at least one"),
        ("NormalInverseGamma", {"forgetting": float("nan")}, "finite"),
        ("NormalInverseGamma", {"forgetting": object()}, "parameters must be numbers"),
    ],
)
def test_invalid_changes_store_nothing(store: VariantStore, constructors, cls, params,
                                       match) -> None:
    with pytest.raises(InvalidVariant, match=match):
        store.add(new_variant(cls, params, constructors, now=1.0))
    assert store.list() == []


def test_invalid_requirement_and_metadata(constructors) -> None:
    with pytest.raises(InvalidCapabilities, match="requirement 'jax'"):
        make(constructors, requirements={"jax": "latest"})
    with pytest.raises(InvalidVariant, match="metadata is not plain JSON"):
        make(constructors, metadata={"x": float("inf")})
    with pytest.raises(InvalidVariant, match="not a UUID4"):
        make(constructors, variant_id="1234")
    with pytest.raises(SwarmVarError):
        make(constructors, description=3)  # type: ignore[arg-type]


def test_capacity_counts_live_variants(store: VariantStore, constructors) -> None:
    made = [store.add(make(constructors, now=float(i))) for i in range(5)]
    with pytest.raises(CapacityExceeded, match="max_variants=5"):
        store.add(make(constructors))
    assert len(store.list()) == 5
    store.save(made[0].moved_to(VariantStatus.RETIRED, 9.0))  # retired ones do not count
    store.add(make(constructors))
    assert len(store.list()) == 6


def test_stale_write_is_a_conflict(store: VariantStore, constructors) -> None:
    v = store.add(make(constructors))
    first = store.save(replace(v, description="one"))
    assert first.version == 2
    with pytest.raises(VersionConflict, match="stored version 2, yours 1"):
        store.save(replace(v, description="two"))
    assert store.get(v.id).description == "one"


def test_transitions_are_enforced(store: VariantStore, constructors) -> None:
    v = store.add(make(constructors))
    with pytest.raises(InvalidTransition, match="draft; it cannot become rolled_back"):
        v.moved_to(VariantStatus.ROLLED_BACK, 2.0)
    with pytest.raises(InvalidTransition):  # the store checks too, not only moved_to
        store.save(replace(v, status=VariantStatus.ROLLED_BACK))
    assert store.get(v.id).status is VariantStatus.DRAFT


def test_promote_retires_champion_of_same_class_only(store: VariantStore, constructors) -> None:
    a = store.promote(store.add(make(constructors, now=1.0)), now=2.0)
    other = store.promote(store.add(make(constructors, cls="GarchLike", now=1.0)), now=2.0)
    b = store.add(make(constructors, now=3.0))
    b = store.promote(b, now=4.0)
    assert b.status is VariantStatus.ACTIVE
    assert store.get(a.id).status is VariantStatus.RETIRED
    assert store.get(other.id).status is VariantStatus.ACTIVE
    # rolling back the new champion re-instates the old one, atomically
    rolled, back = store.roll_back(b, now=5.0)
    assert rolled.status is VariantStatus.ROLLED_BACK
    assert back is not None and back.id == a.id
    assert store.get(a.id).status is VariantStatus.ACTIVE


def test_promote_with_stale_version_changes_nothing(store: VariantStore, constructors) -> None:
    old = store.promote(store.add(make(constructors)), now=2.0)
    b = store.add(make(constructors))
    store.save(replace(b, description="edited"))
    with pytest.raises(VersionConflict):
        store.promote(b, now=3.0)
    assert store.get(old.id).status is VariantStatus.ACTIVE
    assert store.get(b.id).status is VariantStatus.DRAFT


def test_concurrent_threads_exactly_one_wins(store: VariantStore, constructors) -> None:
    v = store.add(make(constructors))
    n = 8
    barrier = threading.Barrier(n)
    wins: list[int] = []
    conflicts: list[int] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.save(replace(v, description=f"writer {i}"))
            wins.append(i)
        except VersionConflict:
            conflicts.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == n - 1
    got = store.get(v.id)
    assert got.version == 2 and got.description == f"writer {wins[0]}"


def test_concurrent_increments_lose_no_update(tmp_path: Path, constructors) -> None:
    """Read-modify-write with retry on conflict: every increment lands (threads,
    each with its own connection to the same file)."""
    db = Database(tmp_path)
    v = SqliteVariantStore(db).add(make(constructors, metadata={"count": 0}))

    def bump(k: int) -> None:
        store = SqliteVariantStore(Database(tmp_path))
        for _ in range(k):
            _retry_increment(store, v.id)
        store.db.close()

    threads = [threading.Thread(target=bump, args=(20,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = SqliteVariantStore(db).get(v.id)
    assert got.metadata["count"] == 80 and got.version == 81


def _retry_increment(store: SqliteVariantStore, vid: str) -> int:
    conflicts = 0
    while True:
        cur = store.get(vid)
        try:
            store.save(replace(cur, metadata={"count": cur.metadata["count"] + 1}))
            return conflicts
        except VersionConflict:
            conflicts += 1


_WORKER = """
import sys
from dataclasses import replace
from swarmvar.errors import VersionConflict
from swarmvar.evolution import Database, SqliteVariantStore
store = SqliteVariantStore(Database(sys.argv[1]))
conflicts = 0
for _ in range(int(sys.argv[3])):
    while True:
        cur = store.get(sys.argv[2])
        try:
            store.save(replace(cur, metadata={"count": cur.metadata["count"] + 1}))
            break
        except VersionConflict:
            conflicts += 1
print(conflicts)
"""


def test_concurrent_processes_lose_no_update(tmp_path: Path, constructors) -> None:
    v = SqliteVariantStore(Database(tmp_path)).add(make(constructors, metadata={"count": 0}))
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), v.id, "25"],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    got = SqliteVariantStore(Database(tmp_path)).get(v.id)
    assert got.metadata["count"] == 75 and got.version == 76
    assert all(o.strip().isdigit() for o in outs)


_BUMP_ONCE = """
import sys
from dataclasses import replace
from swarmvar.evolution import Database, SqliteVariantStore
store = SqliteVariantStore(Database(sys.argv[1]))
store.save(replace(store.get(sys.argv[2]), description="written by another process"))
"""


def test_stale_write_after_another_process_wrote(tmp_path: Path, constructors) -> None:
    store = SqliteVariantStore(Database(tmp_path))
    mine = store.add(make(constructors))
    subprocess.run([sys.executable, "-c", _BUMP_ONCE, str(tmp_path), mine.id], check=True,
                   timeout=120)
    with pytest.raises(VersionConflict, match="stored version 2, yours 1"):
        store.save(replace(mine, description="mine"))  # the decoded cache is not fooled
    assert store.get(mine.id).description == "written by another process"
