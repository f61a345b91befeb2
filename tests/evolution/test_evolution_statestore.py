"""State store: round trips, corruption named by chunk, crash atomicity, keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import CorruptState, SwarmVarError, VersionConflict
from swarmvar.evolution import (
    Database,
    InvalidKey,
    KeyRequired,
    StateConfig,
    StateKey,
    StateStore,
    UnknownState,
    WrongKey,
)

MB = 1 << 20
FAST = StateConfig(fsync=False)


def state_bytes(seed: int, size: int) -> bytes:
    """Half random, half structured: exercises both stored codecs."""
    rng = np.random.default_rng(seed)
    half = size // 2
    structured = np.repeat(rng.normal(size=max(1, (size - half) // 64)), 8).tobytes()
    return rng.bytes(half) + structured[: size - half].ljust(size - half, b"\0")


def open_store(home: Path, **kw) -> StateStore:
    return StateStore(Database(home), config=kw.pop("config", FAST), **kw)


@pytest.mark.parametrize("size", [0, 1, MB - 1, MB, MB + 1, 3 * MB + 12_345])
def test_round_trip_sizes(tmp_path: Path, size: int) -> None:
    s = open_store(tmp_path)
    data = state_bytes(size, size)
    ref = s.put("agent-1", data, now=1.0)
    assert ref.size == size and ref.chunks == max(1, -(-size // MB))
    assert open_store(tmp_path).get("agent-1") == data


def test_round_trip_64_mb_random_and_encrypted(tmp_path: Path) -> None:
    data = np.random.default_rng(64).bytes(64 * MB)
    key = StateKey.generate()
    s = open_store(tmp_path, key=key)
    s.put("big", data, now=1.0)
    assert open_store(tmp_path, key=key).get("big") == data


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=20_000), st.booleans(), st.booleans())
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                             compress: bool, encrypt: bool) -> None:
    home = tmp_path_factory.mktemp("p")
    cfg = StateConfig(chunk_bytes=4096, compression=compress, fsync=False)
    key = StateKey.generate() if encrypt else None
    open_store(home, config=cfg, key=key).put("a", data, now=1.0)
    assert open_store(home, config=cfg, key=key).get("a", cached=False) == data


def test_versions_and_optimistic_write(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.put("a", b"one", now=1.0, expected_version=0)
    s.put("a", b"two", now=2.0, expected_version=1)
    with pytest.raises(VersionConflict, match="version 2, not 1"):
        s.put("a", b"three", now=3.0, expected_version=1)
    assert s.get("a") == b"two" and s.get("a", 1) == b"one"
    assert [r.version for r in s.versions("a")] == [1, 2]
    with pytest.raises(UnknownState, match="no stored state for agent 'b'"):
        s.get("b")
    with pytest.raises(UnknownState, match="no state version 7"):
        s.get("a", 7)


def _chunk_ranges(home: Path, agent: str) -> tuple[Path, list[tuple[int, int]]]:
    db = Database(home)
    pack, version = db.read_one("SELECT pack, version FROM state_versions WHERE agent_id=? "
                                "ORDER BY version DESC", (agent,))
    rows = db.read("SELECT offset, stored FROM state_chunks WHERE agent_id=? AND version=? "
                   "ORDER BY idx", (agent, version))
    return home / "states" / "objects" / f"{pack}.pack", [(int(o), int(n)) for o, n in rows]


@pytest.mark.parametrize("encrypt", [False, True])
def test_flipped_bit_in_any_chunk_is_named(tmp_path: Path, encrypt: bool) -> None:
    key = StateKey.generate() if encrypt else None
    data = state_bytes(7, 5 * MB + 500_000)
    open_store(tmp_path, key=key).put("a", data, now=1.0)
    pack, ranges = _chunk_ranges(tmp_path, "a")
    assert len(ranges) == 6
    rng = np.random.default_rng(0)
    original = pack.read_bytes()
    for idx, (offset, length) in enumerate(ranges):
        corrupted = bytearray(original)
        pos = offset + int(rng.integers(length))
        corrupted[pos] ^= 1 << int(rng.integers(8))
        pack.write_bytes(bytes(corrupted))
        with pytest.raises(CorruptState, match=rf"'a' version 1: chunk {idx} \(bytes "
                                               rf"{offset}\.\.{offset + length} .*SHA-256"):
            open_store(tmp_path, key=key).get("a")
    pack.write_bytes(original)
    assert open_store(tmp_path, key=key).get("a") == data


def test_truncated_or_missing_pack(tmp_path: Path) -> None:
    open_store(tmp_path).put("a", state_bytes(1, 2 * MB), now=1.0)
    pack, _ = _chunk_ranges(tmp_path, "a")
    pack.write_bytes(pack.read_bytes()[:-10])
    with pytest.raises(CorruptState, match="the index says"):
        open_store(tmp_path).get("a")
    pack.unlink()
    with pytest.raises(CorruptState, match="is missing"):
        open_store(tmp_path).get("a")


def test_wrong_or_missing_key_is_clear(tmp_path: Path) -> None:
    right = StateKey.generate()
    open_store(tmp_path, key=right).put("a", b"secret posterior", now=1.0)
    assert b"secret posterior" not in next((tmp_path / "states/objects").iterdir()).read_bytes()
    with pytest.raises(WrongKey, match=f"encrypted with key id {right.key_id}"):
        open_store(tmp_path, key=StateKey.generate()).get("a")
    with pytest.raises(KeyRequired, match="SWARMVAR_STATE_KEY"):
        open_store(tmp_path).get("a")
    assert isinstance(WrongKey("x"), CorruptState)


def test_keys_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = StateKey.generate()
    monkeypatch.setenv("SWARMVAR_STATE_KEY", key.secret.hex())
    assert StateKey.from_env() == key
    (tmp_path / "k").write_bytes(key.secret)
    assert StateKey.from_file(tmp_path / "k") == key
    import base64
    (tmp_path / "k64").write_text(base64.b64encode(key.secret).decode() + "\n")
    assert StateKey.from_file(tmp_path / "k64") == key
    assert key.secret.hex() not in repr(key)
    monkeypatch.setenv("SWARMVAR_STATE_KEY", "too-short")
    with pytest.raises(InvalidKey, match=r"\$SWARMVAR_STATE_KEY"):
        StateKey.from_env()
    with pytest.raises(InvalidKey, match="cannot read key file"):
        StateKey.from_file(tmp_path / "absent")


def test_in_memory_index_needs_a_root(tmp_path: Path) -> None:
    index_only = StateStore(Database(":memory:"))  # the index works without a pack folder
    assert index_only.versions("a") == []
    with pytest.raises(SwarmVarError, match="explicit state root"):
        index_only.put("a", b"x", now=0.0)
    s = StateStore(Database(":memory:"), root=tmp_path, config=FAST)
    s.put("a", b"x", now=0.0)
    assert s.get("a", cached=False) == b"x"


def test_bad_input_stores_nothing(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    with pytest.raises(SwarmVarError):
        s.put("a", "not bytes", now=1.0)  # type: ignore[arg-type]
    with pytest.raises(SwarmVarError):
        s.put("", b"x", now=1.0)
    assert s.versions("a") == [] and list((tmp_path / "states/objects").iterdir()) == []


def test_prune_and_gc(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    for i in range(5):
        s.put("a", bytes([i]) * 100, now=float(i))
    assert s.prune("a", keep=2, protected=[1]) == [3, 2]
    assert [r.version for r in s.versions("a")] == [1, 4, 5]
    orphan = tmp_path / "states" / "objects" / ("0" * 32 + ".pack")
    orphan.write_bytes(b"left by a killed writer")
    assert s.gc(older_than=time.time() + 1) == 3  # two pruned packs and the orphan
    assert s.get("a", 1, cached=False) == bytes([0]) * 100


_WRITER = """
import sys
import numpy as np
from swarmvar.evolution import Database, StateConfig, StateStore
home, size = sys.argv[1], int(sys.argv[2])
store = StateStore(Database(home), config=StateConfig(chunk_bytes=256 * 1024))
k = 0
while True:
    rng = np.random.default_rng(k)
    store.put("victim", rng.bytes(size // 2) + bytes(size - size // 2), now=float(k))
    k += 1
    print(k, flush=True)
"""


def test_sigkill_during_write_leaves_old_or_new(tmp_path: Path) -> None:
    size = 6 * MB
    rng = np.random.default_rng(11)
    for trial in range(4):
        home = tmp_path / f"t{trial}"
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(home), str(size)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one state committed
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        s = open_store(home)
        ref = s.ref("victim")
        k = ref.version - 1
        expected = np.random.default_rng(k).bytes(size // 2) + bytes(size - size // 2)
        assert s.get("victim", cached=False) == expected
        s.gc(older_than=time.time() + 1)
        live = {r[0] for r in s.db.read("SELECT pack FROM state_versions")}
        assert {p.stem for p in (home / "states/objects").iterdir()} == live


def test_put_many_is_all_or_nothing(tmp_path: Path) -> None:
    s = open_store(tmp_path, config=StateConfig())  # with fsync: the durable path
    s.put("a", b"a1", now=1.0)
    refs = s.put_many({"a": b"a2", "b": b"b1"}, now=2.0)
    assert [(r.agent_id, r.version) for r in refs] == [("a", 2), ("b", 1)]
    with pytest.raises(VersionConflict):
        s.put_many({"b": b"b2", "a": b"a3"}, now=3.0, expected_versions={"a": 1})
    fresh = open_store(tmp_path)
    assert (fresh.get("a"), fresh.get("b")) == (b"a2", b"b1")
    assert len(list((tmp_path / "states/objects").iterdir())) == 3  # no orphans left


def test_real_agent_state_round_trip(tmp_path: Path) -> None:
    """A fitted NormalInverseGamma's state() survives the store (compressed, encrypted)."""
    from swarmvar.data import load
    from swarmvar.models.nig import NormalInverseGamma

    returns = np.asarray(load("sp500"))[-500:]
    agent = NormalInverseGamma(forgetting=0.98).fit(returns)
    key = StateKey.generate()
    open_store(tmp_path, key=key).put("nig-1", agent.state(), now=1.0)
    back = NormalInverseGamma.from_state(open_store(tmp_path, key=key).get("nig-1"))
    assert back.params() == agent.params()
    assert back.forecast((0.99,)).levels[0].var == agent.forecast((0.99,)).levels[0].var
