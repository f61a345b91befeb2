"""Bad input and damaged files: a clear SwarmVarError (CLI: a message), nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from swarmvar.cli.ledger import app
from swarmvar.errors import (
    EntryNotFound,
    InvalidEntry,
    InvalidProof,
    LedgerCorrupted,
    PayloadTooLarge,
    SwarmVarError,
)
from swarmvar.ledger import EntryKind, Ledger, LedgerNotFound, export_jsonl, import_jsonl
from swarmvar.ledger import ledger as ledger_module
from swarmvar.ledger.entry import MAX_DATA_DEPTH

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def _build(home: Path, n: int = 300) -> Path:
    with Ledger(home, signing_key=KEY) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"agent": f"a{i}", "var": i / 7}) for i in range(n)])
    return home / "ledger.sqlite"


def _nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        data = {"x": data}
    return data


def test_byte_flips_never_give_raw_sqlite_errors_or_a_short_ok(tmp_path: Path) -> None:
    """30 single-byte flips at random offsets: damaged, bad entry, or all 301 entries verify."""
    db = _build(tmp_path / "orig")
    original = db.read_bytes()
    rng = random.Random(20)
    outcomes = set()
    for k in range(30):
        home = tmp_path / f"flip{k}"
        home.mkdir()
        raw = bytearray(original)
        pos = rng.randrange(len(raw))
        raw[pos] ^= 1 << rng.randrange(8)
        (home / "ledger.sqlite").write_bytes(bytes(raw))
        try:
            with Ledger(home, create=False) as led:
                result = led.verify_chain()
        except SwarmVarError:
            outcomes.add("refused")
            continue
        if result.ok:
            assert result.size == 301, (pos, result)
            outcomes.add("ok")
        else:
            assert result.reason
            outcomes.add("bad")
        cli = runner.invoke(app, ["verify", "--home", str(home)])
        assert cli.exit_code in (0, 1, 2) and cli.exception is None or isinstance(
            cli.exception, SystemExit
        ), cli.output
        assert ("ok: 301 entries" in cli.output) == result.ok
    assert outcomes - {"ok"}, "no flip was noticed at all"


def test_truncated_btree_is_not_a_short_ok(tmp_path: Path) -> None:
    """Rows hidden from the scan (here: deleted past the end of a stored size) are damage."""
    db = _build(tmp_path / "h", 50)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER entries_append_only_delete")
    conn.execute("INSERT INTO entries SELECT idx + 1000, timestamp, kind, data, previous_hash, "
                 "hash, nodes FROM entries WHERE idx = 3")
    conn.close()
    with Ledger(tmp_path / "h", create=False) as led:
        result = led.verify_chain()
    assert not result.ok


def test_empty_file_is_refused_and_left_empty(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "ledger.sqlite").write_bytes(b"")
    with pytest.raises(LedgerCorrupted, match="empty"):
        Ledger(home, create=False)
    cli = runner.invoke(app, ["verify", "--home", str(home)])
    assert cli.exit_code == 1 and "damaged" in cli.output and "empty" in cli.output
    for command in (["show"], ["tail"], ["head"], ["prove", "0"]):
        out = runner.invoke(app, [*command, "--home", str(home)])
        assert out.exit_code == 2 and "empty" in out.output, (command, out.output)
    assert (home / "ledger.sqlite").read_bytes() == b""
    assert not (home / "ledger.key").exists()


def test_another_applications_database_is_never_written(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'x')")
    conn.commit()
    conn.close()
    before = _digest(db)
    for create in (True, False):
        with pytest.raises(LedgerCorrupted, match="another application"):
            Ledger(db, create=create)
    cli = runner.invoke(app, ["verify", "--home", str(db)])
    assert cli.exit_code == 1 and "another application" in cli.output
    assert _digest(db) == before
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [
        ("customers",)
    ]


def test_a_short_file_of_another_kind_is_never_overwritten(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"x")
    for create in (True, False):
        with pytest.raises(LedgerCorrupted, match="not an SQLite database"):
            Ledger(notes, create=create)
    assert notes.read_bytes() == b"x"


def test_dropped_entries_table_or_no_genesis_is_damage_not_ok(tmp_path: Path) -> None:
    db = _build(tmp_path / "a", 5)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE entries")
    conn.close()
    before = _digest(db)
    cli = runner.invoke(app, ["verify", "--home", str(tmp_path / "a")])
    assert cli.exit_code == 1 and "damaged" in cli.output and "ok" not in cli.output
    assert _digest(db) == before
    # meta but no entries at all: empty
    db2 = _build(tmp_path / "b", 0)
    conn = sqlite3.connect(db2, isolation_level=None)
    conn.execute("DROP TRIGGER entries_append_only_delete")
    conn.execute("DELETE FROM entries")
    conn.close()
    cli = runner.invoke(app, ["verify", "--home", str(tmp_path / "b")])
    assert cli.exit_code == 1 and "empty" in cli.output
    with Ledger(tmp_path / "b", create=False) if False else _no_ledger(tmp_path / "b"):
        pass
    assert sqlite3.connect(db2).execute("SELECT count(*) FROM entries").fetchone() == (0,)


class _no_ledger:  # noqa: N801 - a tiny context manager for the assertion above
    def __init__(self, home: Path) -> None:
        self.home = home

    def __enter__(self) -> None:
        with pytest.raises(LedgerCorrupted, match="empty"):
            Ledger(self.home, create=False)

    def __exit__(self, *exc: object) -> None:
        return None


def test_non_json_entry_data_is_a_message(tmp_path: Path) -> None:
    db = _build(tmp_path / "h", 3)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER entries_append_only_update")
    conn.execute("UPDATE entries SET data = 'not json {' WHERE idx = 2")
    conn.close()
    out = runner.invoke(app, ["show", "2", "--home", str(tmp_path / "h")])
    assert out.exit_code == 2 and "entry 2 is damaged" in out.output
    out = runner.invoke(app, ["tail", "--home", str(tmp_path / "h")])
    assert out.exit_code == 2 and "damaged" in out.output
    out = runner.invoke(app, ["verify", "--home", str(tmp_path / "h")])
    assert out.exit_code == 1 and "entry 2 is bad" in out.output


def test_wrong_index_types_are_clear_errors() -> None:
    led = Ledger.in_memory(signing_key=KEY)
    led.add_entry(EntryKind.PULSE, {"a": 1})
    for bad in ("1", 1.0, None, True):
        with pytest.raises(EntryNotFound):
            led.entry(bad)  # type: ignore[arg-type]
        with pytest.raises(EntryNotFound):
            list(led.entries(bad))  # type: ignore[arg-type]
    with pytest.raises(EntryNotFound, match="no entry 5"):
        led.entry(5)
    with pytest.raises(IndexError):  # still an IndexError for callers that expect one
        led.entry(-3)
    with pytest.raises(InvalidProof):
        led.inclusion_proof("0")  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="0 < size1"):
        led.consistency_proof(0, 2)
    with pytest.raises(InvalidProof):
        led.consistency_proof("1", 2)  # type: ignore[arg-type]


def test_deep_and_self_referencing_data_is_refused() -> None:
    led = Ledger.in_memory(signing_key=KEY)
    led.add_entry(EntryKind.PULSE, _nested(MAX_DATA_DEPTH))
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic
    listy: list[Any] = []
    listy.append(listy)
    for bad in (_nested(MAX_DATA_DEPTH + 1), _nested(5000), cyclic, {"l": listy}):
        with pytest.raises(InvalidEntry, match="deep|itself"):
            led.add_entry(EntryKind.PULSE, bad)
        with pytest.raises(InvalidEntry, match="deep|itself"):
            led.add_entries([(EntryKind.PULSE, {"ok": 1})] * 20 + [(EntryKind.PULSE, bad)])
    # brackets inside strings do not count as nesting
    led.add_entry(EntryKind.PULSE, {"s": "[{" * 200})
    assert led.size == 3


def test_a_batch_over_the_cap_is_refused_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    led = Ledger.in_memory(signing_key=KEY)
    monkeypatch.setattr(ledger_module, "MAX_BATCH_BYTES", 10_000)
    with pytest.raises(PayloadTooLarge, match="smaller batches"):
        led.add_entries([(EntryKind.PULSE, {"pad": "x" * 500})] * 30)
    monkeypatch.setattr(ledger_module, "MAX_BATCH_ENTRIES", 10)
    with pytest.raises(PayloadTooLarge):
        led.add_entries((EntryKind.PULSE, {"i": i}) for i in range(10**9))  # never materialized
    with pytest.raises(InvalidEntry):
        led.add_entries("not a batch")  # type: ignore[arg-type]
    with pytest.raises(InvalidEntry):
        led.add_entries([(EntryKind.PULSE,)])  # type: ignore[list-item]
    assert led.size == 1


def test_year_999_export_round_trips(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a", signing_key=KEY) as led:
        led.add_entry(EntryKind.PULSE, {"a": 1}, timestamp=datetime(999, 1, 2, tzinfo=UTC))
        led.add_entry(EntryKind.PULSE, {"a": 2}, timestamp=datetime(1, 1, 1, tzinfo=UTC))
        assert led.entry(1).timestamp == "0999-01-02T00:00:00.000000Z"
        export_jsonl(led, tmp_path / "x.jsonl")
        root = led.compute_merkle_root()
    with import_jsonl(tmp_path / "x.jsonl", tmp_path / "b") as back:
        assert back.compute_merkle_root() == root and back.verify_chain().ok


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\xff\xfe garbage \x89PNG", "not UTF-8|not JSON"),
        ("caf\u00e9 ledger\n".encode("latin-1"), "not UTF-8"),
        (b'{"format":"swarmvar-ledger","version":1,"hash_algorithm":"sha3-256","size":1,'
         b'"root":"00"}\n', "lacks created"),
        (b'{"format":"swarmvar-ledger"}\n', "lacks"),
        (b"[" * 100_000 + b"\n", "not JSON"),
        (b'{"format":"swarmvar-ledger","version":1,"hash_algorithm":"md5","size":1,'
         b'"root":"00","created":"2024-01-01T00:00:00.000000Z"}\n', "bad header"),
    ],
)
def test_import_of_garbage_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    with pytest.raises(LedgerCorrupted, match=message):
        import_jsonl(src, tmp_path / "home")
    assert not (tmp_path / "home" / "ledger.sqlite").exists()
    out = runner.invoke(app, ["import", str(src), "--home", str(tmp_path / "home2")])
    assert out.exit_code == 2 and "error:" in out.output


def test_import_and_export_of_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(LedgerCorrupted, match="directory"):
        import_jsonl(tmp_path, tmp_path / "home")
    with pytest.raises(LedgerNotFound):
        import_jsonl(tmp_path / "missing.jsonl", tmp_path / "home")
    _build(tmp_path / "h", 2)
    out = runner.invoke(app, ["export", str(tmp_path / "no" / "dir" / "x.jsonl"),
                              "--home", str(tmp_path / "h")])
    assert out.exit_code == 2 and "does not exist" in out.output


IMPORTER = """
import sys
from swarmvar.ledger import import_jsonl
import_jsonl(sys.argv[1], sys.argv[2]).close()
print("done", flush=True)
"""


def test_import_killed_at_any_moment_leaves_nothing_and_can_be_retried(tmp_path: Path) -> None:
    """kill -9 battery: 6 imports killed at random moments, each followed by a retry."""
    with Ledger(tmp_path / "src", signing_key=KEY) as led:
        for _ in range(3):
            led.add_entries([(EntryKind.PULSE, {"i": i, "pad": "p" * 40}) for i in range(5000)])
        export_jsonl(led, tmp_path / "x.jsonl")
        root, size = led.compute_merkle_root(), led.size
    rng = random.Random(7)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    for k in range(6):
        home = tmp_path / f"home{k}"
        child = subprocess.Popen([sys.executable, "-c", IMPORTER, str(tmp_path / "x.jsonl"),
                                  str(home)], stdout=subprocess.PIPE, env=env, text=True)
        time.sleep(0.2 + rng.random() * 1.0)
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        db = home / "ledger.sqlite"
        if db.exists():  # the import had finished: a complete ledger
            with Ledger(home, create=False) as back:
                assert back.size == size and back.compute_merkle_root() == root
            continue
        with import_jsonl(tmp_path / "x.jsonl", home) as back:  # the retry works
            assert back.size == size and back.compute_merkle_root() == root
            assert back.verify_chain().ok
        leftovers = [p.name for p in home.iterdir() if "import" in p.name]
        assert leftovers == [], leftovers


def test_import_refuses_a_postgres_target(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    with Ledger(tmp_path / "a", signing_key=KEY) as led:
        export_jsonl(led, src)
    with pytest.raises(SwarmVarError, match="PostgreSQL"):
        import_jsonl(src, "postgresql://nobody@/nothing")


def test_four_processes_opening_a_new_home_at_once(tmp_path: Path) -> None:
    code = ("import sys\nfrom swarmvar.ledger import Ledger, EntryKind\n"
            "with Ledger(sys.argv[1]) as l: l.add_entry(EntryKind.PULSE, {'p': sys.argv[2]})\n"
            "print('ok', flush=True)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    for round_ in range(2):
        home = tmp_path / f"r{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(home), str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  text=True) for i in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "ok", err
        with Ledger(home, create=False) as led:
            assert led.size == 5 and led.verify_chain().ok
            assert sorted(e.data["p"] for e in led.entries(1)) == ["0", "1", "2", "3"]


def test_signed_head_file_that_is_not_json(tmp_path: Path) -> None:
    _build(tmp_path / "h", 2)
    bad = tmp_path / "head.json"
    bad.write_text(json.dumps({"size": "x"}))
    out = runner.invoke(app, ["verify", "--home", str(tmp_path / "h"), "--against", str(bad)])
    assert out.exit_code == 2 and "error" in out.output


def test_an_overlong_import_line_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarmvar.ledger import jsonl

    monkeypatch.setattr(jsonl, "_MAX_LINE", 1000)
    src = tmp_path / "x.jsonl"
    src.write_text("{" + " " * 5000 + "}\n")
    with pytest.raises(LedgerCorrupted, match="longer than 1,000"):
        import_jsonl(src, tmp_path / "h")
    assert not (tmp_path / "h" / "ledger.sqlite").exists()
