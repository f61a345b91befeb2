"""JSON Lines export and re-verifying import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _create_read_only import made_read_only  # tests/_create_read_only.py
from _sqlite_codes import coded  # tests/_sqlite_codes.py
from swarmvar.errors import LedgerCorrupted, LedgerUnavailable, LedgerUnwritable
from swarmvar.ledger import EntryKind, HashAlgorithm, Ledger, export_jsonl, import_jsonl
from swarmvar.ledger.sqlite import SQLiteStore, _storage_error, at_target


def _source(home: Path, algorithm: HashAlgorithm = HashAlgorithm.SHA3_256) -> Ledger:
    led = Ledger(home, hash_algorithm=algorithm)
    led.add_entries(
        [
            (EntryKind.ESTIMATE, {"agent": f"a{i}", "var": 0.01 * i, "note": "é ✓"})
            for i in range(30)
        ]
    )
    led.record_action("halve", {"reason": "VaR breach"})
    return led


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_round_trip_keeps_every_hash_and_the_root(tmp_path: Path, algorithm: HashAlgorithm) -> None:
    src = _source(tmp_path / "a", algorithm)
    out = tmp_path / "ledger.jsonl"
    assert export_jsonl(src, out) == src.size == 32
    lines = out.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "swarmvar-ledger" and header["size"] == 32
    assert header["root"] == src.compute_merkle_root().hex()
    assert json.loads(lines[2]) == src.entry(1).to_dict()
    with import_jsonl(out, tmp_path / "b") as copy:
        assert copy.get_manifest() == src.get_manifest()
        assert copy.verify_chain().ok
        assert [e.to_dict() for e in copy.entries()] == [e.to_dict() for e in src.entries()]
        copy.add_entry(EntryKind.DECISION, {"continue": True})  # an import is a live ledger
        assert copy.verify_chain().ok
    src.close()


def _tampered(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    src = _source(tmp_path / "a")
    out = tmp_path / "ledger.jsonl"
    export_jsonl(src, out)
    src.close()
    lines = out.read_text(encoding="utf-8").splitlines()
    edit(lines)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _set(lines: list[str], i: int, key: str, value: object) -> None:
    item = json.loads(lines[i])
    item[key] = value
    lines[i] = json.dumps(item)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ls: _set(ls, 5, "data", {"agent": "forged"}), "entry 4's hash"),
        (lambda ls: _set(ls, 5, "hash", "00" * 32), "previous_hash"),
        (lambda ls: _set(ls, 9, "timestamp", "2020-01-01T00:00:00.000000Z"), "entry 8's hash"),
        (lambda ls: _set(ls, 9, "kind", "gossip"), "unknown entry kind"),
        (lambda ls: _set(ls, 9, "data", {"x": float("nan")}), "not JSON"),
        (lambda ls: ls.__delitem__(7), "index 7, expected 6"),
        (lambda ls: ls.__setitem__(3, ls[3][:-5]), "not JSON"),
        (lambda ls: ls.pop(), "header says 32"),
        (lambda ls: _set(ls, 0, "root", "11" * 32), "header says"),
        (lambda ls: ls.__setitem__(0, "{}"), "header"),
    ],
)
def test_tampered_export_is_refused_and_nothing_written(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = _tampered(tmp_path, edit)
    with pytest.raises(LedgerCorrupted, match=message):
        import_jsonl(path, tmp_path / "b")
    assert not (tmp_path / "b" / "ledger.sqlite").exists()


def test_import_refuses_a_ledger_that_holds_entries(tmp_path: Path) -> None:
    src = _source(tmp_path / "a")
    out = tmp_path / "x.jsonl"
    export_jsonl(src, out)
    other = Ledger(tmp_path / "b")
    other.add_entry(EntryKind.PULSE, {"beat": 1})
    before = other.get_manifest()
    with pytest.raises(LedgerCorrupted, match="already holds entries"):
        import_jsonl(out, tmp_path / "b")
    assert other.get_manifest() == before
    other.close()
    src.close()


_IMPORT_LIMITED = """
import json, resource, signal, sys
from swarmvar.errors import LedgerUnavailable
from swarmvar.ledger import import_jsonl
source, home, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG, not death
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
out = {"raised": None}
try:
    import_jsonl(source, home).close()
except LedgerUnavailable as exc:
    out = dict(raised=type(exc).__name__, message=str(exc), path=getattr(exc, "path", None),
               cause=getattr(exc, "cause", None), doing=getattr(exc, "doing", None),
               code=getattr(exc, "sqlite_errorcode", None))
print(json.dumps(out))
"""


def test_a_disk_error_while_importing_names_the_target(tmp_path: Path) -> None:
    """The import's writes pass the process's file-size limit (RLIMIT_FSIZE in a
    subprocess, SIGXFSZ ignored: SQLite's SQLITE_IOERR_WRITE for EFBIG, or SQLITE_FULL):
    LedgerUnwritable naming the ledger file the user asked for ("cannot be created"),
    never the temporary file it was met on, which is deleted; nothing is at the target,
    and the same import passes without the limit."""
    led = Ledger(tmp_path / "a")
    led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "p" * 2000}) for i in range(150)])
    source = tmp_path / "a.jsonl"
    export_jsonl(led, source)
    led.close()
    home = tmp_path / "b"
    target = home / "ledger.sqlite"
    done = subprocess.run([sys.executable, "-c", _IMPORT_LIMITED, str(source), str(home),
                           str(128 * 1024)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["raised"] == "LedgerUnwritable" and out["path"] == str(target), out
    assert out["cause"] in ("I/O error", "disk full") and out["doing"] == "create", out
    assert out["message"].startswith(f"the ledger {target} cannot be created: "), out
    assert ".tmp" not in out["message"] and ".import-" not in out["message"], out
    assert "nothing was written" in out["message"] and out["code"] is not None, out
    assert sorted(p.name for p in home.iterdir()) == []  # no ledger, no temporary file
    with import_jsonl(source, home) as copy:
        assert copy.size == 151 and copy.verify_chain(processes=1).ok


def _lock_wait(path: Path) -> Exception:
    """The ledger's LedgerUnavailable for SQLite's lock wait met appending to ``path``."""
    exc = coded(5, "database is locked")
    exc.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    return _storage_error(exc, path, " to append")


def test_the_temporary_files_errors_are_the_targets(tmp_path: Path) -> None:
    """``at_target``, the one rule of a ledger built aside: a lock wait on the temporary
    file names the target (SQLite's codes kept), a disk error is the target's that could
    not be created, and an error that does not name the temporary file is left as it is."""
    tmp = tmp_path / ".ledger.sqlite.import-1-ab.tmp"
    target = tmp_path / "ledger.sqlite"
    locked = at_target(_lock_wait(tmp), tmp, target)
    assert type(locked) is LedgerUnavailable and str(target) in str(locked), locked
    assert str(tmp) not in str(locked) and "locked by another connection" in str(locked)
    assert (locked.sqlite_errorcode, locked.sqlite_errorname) == (5, "SQLITE_BUSY")
    full = LedgerUnwritable(str(tmp), "disk full", "database or disk is full", "append")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    made = at_target(full, tmp, target)
    assert isinstance(made, LedgerUnwritable) and made.path == str(target), made
    assert (made.cause, made.doing, made.sqlite_errorcode) == ("disk full", "create", 13)
    gone = at_target(LedgerCorrupted(f"the ledger {tmp} cannot be opened (x)"), tmp, target)
    assert type(gone) is LedgerCorrupted, gone
    assert str(gone) == f"the ledger {target} cannot be opened (x)", gone
    theirs = LedgerCorrupted("a.jsonl:3 (entry 1): previous_hash does not match")
    assert at_target(theirs, tmp, target) is theirs


def test_a_lock_met_while_importing_names_the_target(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An append to the import's temporary file that meets a lock wait (raised there as the
    store raises it) is LedgerUnavailable naming the target with SQLite's codes, never the
    temporary file; nothing is left in the home, and the import then passes."""
    src = _source(tmp_path / "a")
    export_jsonl(src, tmp_path / "a.jsonl")
    src.close()
    home = tmp_path / "b"
    target = home / "ledger.sqlite"

    def locked(self: SQLiteStore, *args: object, **kwargs: object) -> None:
        raise _lock_wait(self.path)

    with monkeypatch.context() as patch:
        patch.setattr(SQLiteStore, "append", locked)
        with pytest.raises(LedgerUnavailable) as caught:
            import_jsonl(tmp_path / "a.jsonl", home)
    err = caught.value
    assert not isinstance(err, LedgerUnwritable) and str(target) in str(err), err
    assert ".tmp" not in str(err) and ".import-" not in str(err), err
    assert err.sqlite_errorcode == 5 and err.sqlite_errorname == "SQLITE_BUSY"
    assert sorted(p.name for p in home.iterdir()) == []
    with import_jsonl(tmp_path / "a.jsonl", home) as copy:
        assert copy.size == 32 and copy.verify_chain(processes=1).ok


def test_an_import_into_a_read_only_file_system_names_the_target(tmp_path: Path) -> None:
    """An import into a home on a file system mounted read-only (a tmpfs remounted ``ro``
    in a mount namespace of its own: ``tests/_full_fs.py``; root only, skipped elsewhere)
    is LedgerUnwritable "read-only" naming the ledger that could not be created, not a bare
    OSError of the cleanup (EROFS unlinking a temporary file that is not there) nor a
    damaged temporary file ("restore it"); nothing is left, and the import passes once the
    file system is writable again."""
    src = _source(tmp_path / "a")
    export_jsonl(src, tmp_path / "a.jsonl")
    src.close()
    out = made_read_only("from swarmvar.ledger import import_jsonl",
                         f"import_jsonl({str(tmp_path / 'a.jsonl')!r}, home)", tmp_path / "ro")
    assert "mounted read-only" in out["message"], out
    assert out["then"] == [32, True], out


def test_an_import_into_a_folder_closed_to_this_process_names_the_target(
        tmp_path: Path) -> None:
    """A home this process may not write (``chmod 0555``; root writes it anyway: skipped
    where the process may write it, where the read-only file system above is the test):
    LedgerUnwritable "read-only" naming the target, nothing left; the import passes once
    the folder is writable."""
    import os

    src = _source(tmp_path / "a")
    export_jsonl(src, tmp_path / "a.jsonl")
    src.close()
    home = tmp_path / "b"
    home.mkdir()
    target = home / "ledger.sqlite"
    home.chmod(0o555)
    if os.access(home, os.W_OK):
        home.chmod(0o755)
        pytest.skip("this process (root) writes a folder of mode 0555: the read-only tmpfs "
                    "test covers it")
    try:
        with pytest.raises(LedgerUnwritable) as caught:
            import_jsonl(tmp_path / "a.jsonl", home)
    finally:
        home.chmod(0o755)
    err = caught.value
    assert (err.path, err.cause, err.doing) == (str(target), "read-only", "create"), err
    assert f"its folder {home} may not be written by this process" in str(err), err
    assert ".tmp" not in str(err) and "restore it" not in str(err), err
    assert sorted(p.name for p in home.iterdir()) == []
    with import_jsonl(tmp_path / "a.jsonl", home) as copy:
        assert copy.size == 32 and copy.verify_chain(processes=1).ok
