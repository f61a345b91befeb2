"""One suite for the lifecycle stores on SQLite and PostgreSQL (the ``db`` fixture),
and bad input to the state store: a clear SwarmVarError, nothing stored changed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from swarmvar.errors import CorruptState, SwarmVarError, VersionConflict
from swarmvar.evolution import (
    AgentRegistry,
    Assignments,
    Database,
    RollbackConfig,
    RollbackPoints,
    StateConfig,
    StateStore,
    UnknownState,
    agent_profile,
    open_home,
)
from swarmvar.evolution.errors import CorruptStore

FAST = StateConfig(fsync=False)


def _states(db: Database, root: Path) -> StateStore:
    return StateStore(db, root=root, config=FAST)


def test_state_versions_round_trip_and_conflict(db: Database, tmp_path: Path) -> None:
    s = _states(db, tmp_path / "packs")
    refs = s.put_many({"a": b"one", "b": b"\x00" * 5000}, now=1.0)
    assert [r.version for r in refs] == [1, 1]
    s.put("a", b"two", now=2.0, expected_version=1)
    with pytest.raises(VersionConflict):
        s.put("a", b"three", now=3.0, expected_version=1)
    assert s.get("a", cached=False) == b"two" and s.get("a", 1, cached=False) == b"one"
    assert [r.version for r in s.versions("a")] == [1, 2]
    assert s.prune("a", keep=1) == [1]
    with pytest.raises(UnknownState):
        s.get("a", 1)


def test_registry_assignments_and_rollback_points(db: Database, tmp_path: Path) -> None:
    reg = AgentRegistry(db)
    reg.register(agent_profile("agent-1", {"numpy": "1.26"}, preferences={"X": 1}))
    assert reg.get("agent-1").capabilities["numpy"].parts[:2] == (1, 26)
    assign = Assignments(db)
    states = _states(db, tmp_path / "packs")
    assign.assign("agent-1", "v-old")
    states.put("agent-1", b"s1", now=1.0)
    points = RollbackPoints(db, RollbackConfig())
    point = points.create("before", now=10.0)
    assign.assign("agent-1", "v-new")
    states.put("agent-1", b"s2", now=11.0)
    points.rollback(point.id)
    assert assign.get("agent-1") == "v-old"
    assert states.get("agent-1", cached=False) == b"s1"


@pytest.mark.parametrize("now", [float("nan"), float("inf"), "x", None, True])
def test_put_refuses_a_bad_time(db: Database, tmp_path: Path, now: object) -> None:
    s = _states(db, tmp_path / "packs")
    with pytest.raises(SwarmVarError, match="now="):
        s.put("a", b"x", now=now)  # type: ignore[arg-type]
    assert s.versions("a") == [] and list((tmp_path / "packs" / "objects").iterdir()) == []


@pytest.mark.parametrize("version", [2**70, -1, "1", 1.5, True])
def test_get_of_an_impossible_version_is_unknown(db: Database, tmp_path: Path,
                                                 version: object) -> None:
    s = _states(db, tmp_path / "packs")
    s.put("a", b"x", now=1.0)
    with pytest.raises(UnknownState):
        s.get("a", version)  # type: ignore[arg-type]
    with pytest.raises(UnknownState):
        s.put("a", b"y", now=2.0, expected_version=version)  # type: ignore[arg-type]
    assert [r.version for r in s.versions("a")] == [1]


@pytest.mark.parametrize("keep", [-1, 0, "2", 1.5, None])
def test_prune_refuses_a_bad_keep(db: Database, tmp_path: Path, keep: object) -> None:
    s = _states(db, tmp_path / "packs")
    for i in range(3):
        s.put("a", bytes([i]), now=float(i))
    with pytest.raises(SwarmVarError, match="keep"):
        s.prune("a", keep=keep)  # type: ignore[arg-type]
    assert [r.version for r in s.versions("a")] == [1, 2, 3]


def test_unknown_codec_is_corrupt_state(tmp_path: Path) -> None:
    db = Database(tmp_path)
    s = _states(db, tmp_path / "states")
    s.put("a", b"hello" * 100, now=1.0)
    raw = sqlite3.connect(db.path, isolation_level=None)
    raw.execute("UPDATE state_chunks SET codec = 7")
    raw.close()
    with pytest.raises(CorruptState, match="codec"):
        s.get("a", cached=False)


def test_garbage_or_foreign_database_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "g"
    garbage.mkdir()
    (garbage / "evolution.sqlite").write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(CorruptStore, match="not an SQLite database"):
        open_home(garbage)
    foreign = tmp_path / "other.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(CorruptStore, match="another application"):
        open_home(foreign)
    assert foreign.read_bytes() == before
    tiny = tmp_path / "notes.db"  # shorter than SQLite's header: SQLite would overwrite it
    tiny.write_bytes(b"x")
    with pytest.raises(CorruptStore, match="not an SQLite database"):
        open_home(tiny)
    assert tiny.read_bytes() == b"x"


def test_four_processes_opening_a_new_home_at_once(tmp_path: Path) -> None:
    code = ("import sys\nfrom swarmvar.evolution import open_home\n"
            "h = open_home(sys.argv[1]); h.states.put('a' + sys.argv[2], b'x', now=1.0)\n"
            "h.close(); print('ok', flush=True)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    for round_ in range(2):
        home = tmp_path / f"r{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(home), str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env) for i in range(4)]
        results = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=120)
                results.append((p.returncode, out.strip(), err))
        finally:  # a failed assert must not leave running children for the next test
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        for code_, out, err in results:
            assert code_ == 0 and out == "ok", err
        h = open_home(home)
        assert sorted(r[0] for r in h.db.read("SELECT agent_id FROM state_current")) == [
            "a0", "a1", "a2", "a3"]
        h.close()


def test_a_home_folder_made_by_another_process_between_two_checks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1-in-200 race of the test above, made certain: the folder appears between
    ``resolve``'s first look and its second, as when another process creates it."""
    import pathlib

    from swarmvar.evolution.db import resolve

    home = tmp_path / "fresh"
    real = pathlib.Path.is_dir
    calls = []

    def is_dir_then_made(self: pathlib.Path) -> bool:
        seen = real(self)
        if self == home and not calls:
            calls.append(1)
            self.mkdir()  # another process's mkdir, just after this one looked
        return seen

    monkeypatch.setattr(pathlib.Path, "is_dir", is_dir_then_made)
    assert resolve(home) == str(home / "evolution.sqlite")
    assert calls == [1]
