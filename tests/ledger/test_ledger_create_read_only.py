"""A new ledger in a home it cannot write: ``Ledger(home)`` builds the file in a temporary
file and links it into place (``ledger._create_sqlite``); on a read-only file system that
is ``LedgerUnwritable`` "read-only" naming the ledger asked for, not a bare ``OSError`` of
the cleanup (EROFS unlinking a temporary file that is not there) nor a damaged temporary
file. The rule is ``ledger.sqlite.at_target``, the one ``import_jsonl`` uses."""

from __future__ import annotations

from pathlib import Path

from _create_read_only import made_read_only  # tests/_create_read_only.py (tests/conftest.py)


def test_a_ledger_made_on_a_read_only_file_system_names_itself(tmp_path: Path) -> None:
    """Root only (a tmpfs remounted ``ro`` in a mount namespace of its own,
    ``tests/_full_fs.py``; skipped elsewhere): the error names the ledger, says read-only
    and creating, no temporary name; nothing is left, and the ledger is made once the file
    system is writable again."""
    made_read_only("from swarmvar.ledger import Ledger", "Ledger(home)", tmp_path / "ro")


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
