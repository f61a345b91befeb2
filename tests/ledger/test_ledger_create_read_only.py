"""A new ledger in a home it cannot write: ``Ledger(home)`` builds the file in a temporary
file and links it into place (``ledger._create_sqlite``); on a read-only file system that
is ``LedgerUnwritable`` "read-only" naming the ledger asked for, not a bare ``OSError`` of
the cleanup (EROFS unlinking a temporary file that is not there) nor a damaged temporary
file. The rule is ``ledger.sqlite.at_target``, the one ``import_jsonl`` uses."""

from __future__ import annotations

from pathlib import Path

_CREATE_READ_ONLY = """
import json, subprocess
from pathlib import Path
from swarmvar.ledger import Ledger
folder = Path(sys.argv[1])
home = folder / "home"
home.mkdir()
subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
out = {"raised": None}
try:
    Ledger(home).close()
except Exception as exc:
    out = dict(raised=type(exc).__name__, message=str(exc), path=getattr(exc, "path", None),
               cause=getattr(exc, "cause", None), doing=getattr(exc, "doing", None))
out["left"] = sorted(p.name for p in home.iterdir())
subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
with Ledger(home) as made:
    out["then"] = [made.size, made.verify_chain(processes=1).ok]
print(json.dumps(out))
"""


def test_a_ledger_made_on_a_read_only_file_system_names_itself(tmp_path: Path) -> None:
    """Root only (a tmpfs remounted ``ro`` in a mount namespace of its own,
    ``tests/_full_fs.py``; skipped elsewhere): the error names the ledger, says read-only
    and creating, no temporary name; nothing is left, and the ledger is made once the file
    system is writable again."""
    from _full_fs import run_full  # tests/_full_fs.py (on the path: tests/conftest.py)

    out = run_full(_CREATE_READ_ONLY, tmp_path / "ro")
    target = tmp_path / "ro" / "home" / "ledger.sqlite"
    assert out["raised"] == "LedgerUnwritable" and out["path"] == str(target), out
    assert out["cause"] == "read-only" and out["doing"] == "create", out
    said = out["message"]
    assert said.startswith(f"the ledger {target} cannot be created: read-only ("), said
    assert ".tmp" not in said and "restore it" not in said, said
    assert out["left"] == [] and out["then"][1] is True, out


def test_a_ledger_not_created_is_not_told_to_stay_in_place() -> None:
    """Nothing was made: the words of a creation's disk error say what to do about the
    cause, not "do not move it away" nor to verify what was stored."""
    from swarmvar.errors import LedgerUnwritable

    for cause in ("disk full", "read-only", "I/O error"):
        said = str(LedgerUnwritable("/h/ledger.sqlite", cause, "why", "create"))
        assert said.startswith(f"the ledger /h/ledger.sqlite cannot be created: {cause} ")
        assert "no ledger was made there" in said and "then retry" in said, said
        assert "move it away" not in said and "verify" not in said, said
    kept = str(LedgerUnwritable("/h/ledger.sqlite", "disk full", "why", "append"))
    assert "do not move it away" in kept
