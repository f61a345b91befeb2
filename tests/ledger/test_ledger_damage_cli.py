"""A truncated, emptied or damaged ledger is never signed, exported, appended to or restarted.

File tests: the ledger is built in a temp dir, then emptied (0 bytes), left
without tables, or damaged (bytes overwritten inside a b-tree page, which
SQLite's ``quick_check`` reports); writers (``Ledger.open``, what ``var``,
``backtest`` and ``run`` call) and ``ledger head``/``export`` must refuse it
with a LedgerCorrupted / exit 2 naming the file, and leave it byte for byte.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from enum import StrEnum
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


# --- 2b. overwrites, by where they land ---------------------------------------------


class Region(StrEnum):
    """Where a byte of a ledger file lies, which decides what overwriting it must do."""

    UNUSED = "unused"  # unallocated page space: harmless, nothing may notice or change
    FIELD = "field"  # a column value of an entry: quick_check is blind, verify names it
    STRUCTURE = "structure"  # b-tree page header, cell pointers, interior cells: refused
    CELL_HEADER = "cell header"  # a leaf cell's size/rowid varints, record header
    ROWID_ALIAS = "rowid alias"  # serial type of column idx (INTEGER PRIMARY KEY: unread)
    CATALOGUE = "catalogue"  # pages of sqlite_schema, meta and its index


#: Serial types with no body bytes (NULL, the constants 0 and 1, the two reserved
#: types, an empty blob or text): the idx column may carry any of them unnoticed.
_NO_BODY = frozenset({0, 8, 9, 10, 11, 12, 13})


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for k in range(8):
        b = buf[pos + k]
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos + k + 1
    return (value << 8) | buf[pos + 8], pos + 9


def _body_size(serial: int) -> int:
    if serial >= 12:
        return (serial - 12 - serial % 2) // 2
    return (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)[serial]


def _layout(path: Path) -> tuple[list[Region], dict[int, int]]:
    """The region of every byte of a ledger file; for FIELD bytes, the entry they belong to.

    Parsed from the SQLite file format (b-tree pages, cells, records); ``dbstat``
    says which pages hold the entries table.
    """
    data = path.read_bytes()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        owner = {p: name for name, p in conn.execute("SELECT name, pageno FROM dbstat")}
    finally:
        conn.close()
    regions = [Region.CATALOGUE] * len(data)
    entry_of: dict[int, int] = {}
    for pageno in (p for p, name in owner.items() if name == "entries"):
        base = (pageno - 1) * size
        page = data[base : base + size]
        assert page[0] in (0x05, 0x0D)  # table b-tree interior / leaf
        head = 12 if page[0] == 0x05 else 8
        cells = int.from_bytes(page[3:5], "big")
        regions[base : base + size] = [Region.UNUSED] * size
        regions[base : base + head + 2 * cells] = [Region.STRUCTURE] * (head + 2 * cells)
        assert page[1:3] == b"\0\0"  # no freeblocks: nothing was ever deleted
        for c in range(cells):
            at = int.from_bytes(page[head + 2 * c : head + 2 * c + 2], "big")
            if page[0] == 0x05:  # child page number, then the key
                end = _varint(page, at + 4)[1]
                regions[base + at : base + end] = [Region.STRUCTURE] * (end - at)
                continue
            payload, pos = _varint(page, at)
            rowid, pos = _varint(page, pos)
            assert payload <= size - 35  # no overflow pages
            header_size, hpos = _varint(page, pos)
            body = pos + header_size
            regions[base + at : base + body] = [Region.CELL_HEADER] * (body - at)
            regions[base + hpos] = Region.ROWID_ALIAS
            while hpos < pos + header_size:
                serial, hpos = _varint(page, hpos)
                for i in range(body, body + _body_size(serial)):
                    regions[base + i] = Region.FIELD
                    entry_of[base + i] = rowid
                body += _body_size(serial)
            assert body == pos + payload
    return regions, entry_of


class _Pristine:
    """The undamaged ledger (a plain class: hypothesis prints a dataclass field by field)."""

    def __init__(self, data: bytes, key: bytes, size: int, root: str,
                 regions: list[Region], entry_of: dict[int, int]):
        self.data, self.key, self.size, self.root = data, key, size, root
        self.regions, self.entry_of = regions, entry_of

    def __repr__(self) -> str:
        return f"<ledger of {self.size} entries, {len(self.data)} bytes>"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> _Pristine:
    """A 151-entry ledger (15 pages of 4 KiB), its signed head and its byte layout."""
    home = tmp_path_factory.mktemp("pristine")
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100}) for i in range(150)])
        head = led.signed_head()
    path = home / "ledger.sqlite"
    regions, entry_of = _layout(path)
    assert set(regions) == set(Region)
    return _Pristine(path.read_bytes(), (home / "ledger.key").read_bytes(), head.size,
                     head.root.hex(), regions, entry_of)


@pytest.mark.parametrize("region", list(Region))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 2**32), length=st.integers(1, 8),
       masks=st.lists(st.integers(1, 255), min_size=8, max_size=8))
def test_overwritten_bytes_never_get_signed_silently(
    tmp_path: Path, pristine: _Pristine, region: Region, pick: int, length: int,
    masks: list[int],
) -> None:
    """Bytes changed in one region of the file: `head` and `verify` do what that region
    decides. A page's structure is refused at once; an entry's bytes are signed over
    (quick_check does not read them) and `verify` names that entry; unused space changes
    nothing; nowhere is a head signed over changed entries that `verify` calls whole."""
    spots = [i for i, r in enumerate(pristine.regions) if r is region and i >= 100]
    at = spots[pick % len(spots)]
    changed = [i for i in range(at, at + length) if pristine.regions[i] is region]
    data = bytearray(pristine.data)
    for i, mask in zip(changed, masks, strict=False):
        data[i] ^= mask  # every byte of the span changes
    home = Path(tempfile.mkdtemp(dir=tmp_path))
    (home / "ledger.key").write_bytes(pristine.key)
    (home / "ledger.key").chmod(0o600)
    path = home / "ledger.sqlite"
    path.write_bytes(bytes(data))
    head = _run("head", "--home", str(home))
    assert head.exit_code in (0, 2), head.output
    assert head.exception is None or isinstance(head.exception, SystemExit)
    assert "Traceback" not in head.output
    signed = json.loads(head.output) if head.exit_code == 0 else None
    if signed is None:  # refused at open, reading the tree, or by quick_check before signing
        assert str(path) in head.output and '"signature"' not in head.output, head.output
        assert "damaged" in head.output or "not a usable ledger" in head.output, head.output
    same = signed is not None and (signed["size"], signed["root"]) == (pristine.size,
                                                                        pristine.root)
    verified = _run("verify", "--home", str(home))
    assert verified.exit_code in (0, 1), verified.output
    whole = verified.exit_code == 0
    # everywhere: a head that is signed, over a ledger verify calls whole, is the old head
    assert not (signed is not None and whole and not same), (head.output, verified.output)
    assert signed is not None or not whole  # refused means verify calls it damaged too
    if region is Region.UNUSED:
        assert same and whole
    elif region is Region.FIELD:  # and text no longer UTF-8 is named like a bad hash
        assert signed is not None and not whole
        first = min(pristine.entry_of[i] for i in changed)
        assert verified.output.startswith(f"entry {first} is bad"), verified.output
    elif region is Region.STRUCTURE:
        assert signed is None
    elif region is Region.CELL_HEADER:
        assert signed is None or not whole
    elif region is Region.ROWID_ALIAS:
        if data[at] in _NO_BODY:  # still no body: the record reads the same
            assert same and whole
        else:
            assert signed is None
    assert path.read_bytes() == bytes(data)  # neither command wrote to it


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
