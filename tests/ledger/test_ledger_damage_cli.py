"""A truncated, emptied or damaged ledger is never signed, exported, appended to or restarted.

File tests: the ledger is built in a temp dir, then emptied (0 bytes), left
without tables, or damaged (bytes overwritten inside a b-tree page, which
SQLite's ``quick_check`` reports); writers (``Ledger.open``, what ``var``,
``backtest`` and ``run`` call) and ``ledger head``/``export`` must refuse it
with a LedgerCorrupted / exit 2 naming the file, and leave it byte for byte.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli.ledger import app
from swarmvar.errors import LedgerCorrupted
from swarmvar.ledger import EntryKind, Ledger, export_jsonl

runner = CliRunner()


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def _home(tmp_path: Path, n: int = 12) -> Path:
    home = tmp_path / "home"
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"agent": f"a{i}", "var": 0.01}) for i in range(n)])
    return home


# --- 1. an existing file that holds no ledger ------------------------------------


@pytest.mark.parametrize("how", ["empty", "schema-less", "no-genesis"])
def test_a_writer_refuses_an_emptied_ledger_and_leaves_it_alone(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = home / "ledger.sqlite"
    if how == "empty":
        path.write_bytes(b"")  # `: > ledger.sqlite`
    elif how == "schema-less":
        sqlite3.connect(path).execute("PRAGMA user_version = 1").connection.close()
    else:  # tables and metadata, entries table emptied
        with Ledger(home):
            pass
        conn = sqlite3.connect(path)
        conn.execute("DROP TRIGGER entries_append_only_delete")
        conn.execute("DELETE FROM entries")
        conn.commit()
        conn.close()
    before = path.read_bytes()
    with pytest.raises(LedgerCorrupted) as err:
        Ledger.open(home)  # what `swarmvar var/backtest/run` call
    text = str(err.value)
    assert str(path) in text and "move the file away" in text
    assert path.read_bytes() == before
    # readers say the same, and verify calls it damaged (exit 1)
    shown = _run("show", "--home", str(home))
    assert shown.exit_code == 2 and "move the file away" in shown.output
    checked = _run("verify", "--home", str(home))
    assert checked.exit_code == 1 and checked.output.startswith("damaged:")
    assert path.read_bytes() == before


def test_a_new_ledger_is_created_only_where_no_file_exists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Ledger.open(home) as led:
        assert led.size == 1 and led.verify_chain().ok
    with Ledger.open(home) as led:  # reopened, not recreated
        led.add_entry(EntryKind.ESTIMATE, {"var": 0.02})
    with Ledger(home, create=False) as led:
        assert led.size == 2 and led.verify_chain().ok
    leftovers = [p.name for p in home.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_leftovers_of_a_killed_creator_are_removed(tmp_path: Path) -> None:
    """By age: an hour-old half-built file goes, a fresh one (a creator still at work, maybe
    on another machine sharing the home) stays."""
    import time

    home = tmp_path / "home"
    home.mkdir()
    dead = home / ".ledger.sqlite.new-4242-abcd1234.tmp"
    dead.write_bytes(b"half a ledger")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    alive = home / f".ledger.sqlite.new-{os.getpid()}-00000000.tmp-wal"
    alive.write_bytes(b"another creator's, still running")
    with Ledger.open(home) as led:
        assert led.size == 1
    assert not dead.exists() and alive.exists()


def test_import_from_an_empty_export_is_a_clean_error(tmp_path: Path) -> None:
    export = tmp_path / "empty.jsonl"
    export.write_bytes(b"")
    out = _run("import", str(export), "--home", str(tmp_path / "new"))
    assert out.exit_code == 2 and not (tmp_path / "new" / "ledger.sqlite").exists()


# --- 2. damaged pages ------------------------------------------------------------


def _damaged(tmp_path: Path) -> tuple[Path, Path]:
    """A ledger of ~490 KB with bytes overwritten inside a b-tree page at offset 200000."""
    home = tmp_path / "home"
    with Ledger(home) as led:
        for _ in range(5):
            led.add_entries(
                [(EntryKind.ESTIMATE, {"agent": f"a{i}", "pad": "x" * 200}) for i in range(200)]
            )
    path = home / "ledger.sqlite"
    assert 400_000 < path.stat().st_size < 600_000
    data = bytearray(path.read_bytes())
    # the page holding offset 200000: smash its header's cell pointers
    page = 200_000 // 4096 * 4096
    data[page + 3 : page + 8] = b"\xff\xff\xff\xff\xff"
    data[200_000 : 200_000 + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    with Ledger(home, create=False) as led:
        assert led.damage() is not None  # what `ledger verify` reports
    return home, path


def test_head_and_export_refuse_a_damaged_ledger(tmp_path: Path) -> None:
    home, path = _damaged(tmp_path)
    before = path.read_bytes()
    head = _run("head", "--home", str(home))
    assert head.exit_code == 2, head.output
    assert "damaged" in head.output and "no head was signed" in head.output
    assert '"signature"' not in head.output
    out = tmp_path / "out.jsonl"
    exported = _run("export", str(out), "--home", str(home))
    assert exported.exit_code == 2 and "nothing was exported" in exported.output
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))
    with Ledger(home, create=False) as led, pytest.raises(LedgerCorrupted):
        export_jsonl(led, out)  # the engine refuses too
    verified = _run("verify", "--home", str(home))
    assert verified.exit_code == 1 and "damaged" in verified.output
    assert path.read_bytes() == before


def test_a_writer_refuses_to_append_to_a_damaged_ledger(tmp_path: Path) -> None:
    home, path = _damaged(tmp_path)
    before = path.read_bytes()
    with pytest.raises(LedgerCorrupted) as err:
        Ledger.open(home)
    assert "is damaged" in str(err.value) and "nothing was appended" in str(err.value)
    assert path.read_bytes() == before


def test_show_and_tail_of_a_damaged_ledger_read_or_fail_cleanly(tmp_path: Path) -> None:
    home, _ = _damaged(tmp_path)
    for args in (("show",), ("tail", "-n", "1000"), ("show", "500"), ("prove", "700")):
        out = _run(*args, "--home", str(home))
        assert out.exit_code in (0, 2), (args, out.output)
        assert out.exception is None or isinstance(out.exception, SystemExit), args
        assert "Traceback" not in out.output


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(100, 48_000), junk=st.binary(min_size=1, max_size=32))
def test_overwritten_bytes_never_get_signed_silently(
    tmp_path: Path, offset: int, junk: bytes
) -> None:
    """Any overwrite: `head` either signs a ledger SQLite finds whole, or exits 2 (no traceback)."""
    home = Path(tempfile.mkdtemp(dir=tmp_path))
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100}) for i in range(150)])
    path = home / "ledger.sqlite"
    data = bytearray(path.read_bytes())
    end = min(len(data), offset + len(junk))
    data[offset:end] = junk[: end - offset]
    path.write_bytes(bytes(data))
    head = _run("head", "--home", str(home))
    assert head.exit_code in (0, 2), head.output
    assert head.exception is None or isinstance(head.exception, SystemExit)
    if head.exit_code == 0:
        with Ledger(home, create=False) as led:
            assert led.damage() is None


# --- 3. consistency with sizes the wrong way round ---------------------------------


def test_consistency_with_a_larger_first_size_says_so(tmp_path: Path) -> None:
    home = _home(tmp_path)
    out = _run("consistency", "5", "3", "--home", str(home))
    assert out.exit_code == 2
    assert "first size must be <= the second" in out.output
    assert "empty tree" not in out.output
    zero = _run("consistency", "0", "3", "--home", str(home))
    assert zero.exit_code == 2 and "empty tree" in zero.output
    assert _run("consistency", "3", "5", "--home", str(home)).exit_code == 0
