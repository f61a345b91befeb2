"""`swarmvar ledger ...` through typer's CliRunner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from swarmvar.cli.ledger import app
from swarmvar.ledger import EntryKind, InclusionProof, Ledger
from swarmvar.ledger.merkle import HashAlgorithm, verify_consistency

runner = CliRunner()


def _home(tmp_path: Path, n: int = 12) -> Path:
    home = tmp_path / "home"
    with Ledger(home) as led:
        for i in range(n):
            led.add_entry(EntryKind.ESTIMATE, {"agent": f"a{i}", "var": 0.01 + i / 100})
    return home


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_verify_ok_and_names_the_first_bad_entry(tmp_path: Path) -> None:
    home = _home(tmp_path)
    ok = _run("verify", "--home", str(home))
    assert ok.exit_code == 0 and "ok: 13 entries verify" in ok.output
    conn = sqlite3.connect(home / "ledger.sqlite")
    conn.execute("DROP TRIGGER entries_append_only_update")
    conn.execute("""UPDATE entries SET data = '{"agent":"a6","var":0.0}' WHERE idx = 7""")
    conn.commit()
    conn.close()
    bad = _run("verify", "--home", str(home))
    assert bad.exit_code == 1
    assert "entry 7 is bad" in bad.output and "hash does not match" in bad.output


def test_verify_against_a_signed_head_catches_truncation(tmp_path: Path) -> None:
    home = _home(tmp_path)
    head = _run("head", "--home", str(home))
    assert head.exit_code == 0
    head_file = tmp_path / "head.json"
    head_file.write_text(head.output)
    assert _run("verify", "--home", str(home), "--against", str(head_file)).exit_code == 0
    conn = sqlite3.connect(home / "ledger.sqlite")
    conn.execute("DROP TRIGGER entries_append_only_delete")
    conn.execute("DELETE FROM entries WHERE idx >= 10")
    conn.commit()
    conn.close()
    assert _run("verify", "--home", str(home)).exit_code == 0  # the prefix alone is fine
    bad = _run("verify", "--home", str(home), "--against", str(head_file))
    assert bad.exit_code == 1 and "entry 10 is bad" in bad.output and "removed" in bad.output


def test_show_tail_prove_consistency(tmp_path: Path) -> None:
    home = _home(tmp_path)
    manifest = json.loads(_run("show", "--home", str(home)).output)
    assert manifest["size"] == 13 and manifest["hash_algorithm"] == "sha3-256"
    entry = json.loads(_run("show", "3", "--home", str(home)).output)
    assert entry["index"] == 3 and entry["data"]["agent"] == "a2"
    last = json.loads(_run("show", "--home", str(home), "--", "-1").output)
    assert last["index"] == 12
    tail = _run("tail", "-n", "4", "--home", str(home)).output.splitlines()
    assert [json.loads(t)["index"] for t in tail] == [9, 10, 11, 12]
    proof = InclusionProof.from_dict(json.loads(_run("prove", "5", "--home", str(home)).output))
    proof.verify(bytes.fromhex(manifest["root"]))
    assert (
        proof.entry_hash.hex() == json.loads(_run("show", "5", "--home", str(home)).output)["hash"]
    )
    cp = json.loads(_run("consistency", "5", "13", "--home", str(home)).output)
    verify_consistency(
        5,
        13,
        [bytes.fromhex(p) for p in cp["path"]],
        bytes.fromhex(cp["root1"]),
        bytes.fromhex(manifest["root"]),
        HashAlgorithm.SHA3_256,
    )


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    home = _home(tmp_path)
    missing = _run("verify", "--home", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "no ledger at" in missing.output
    assert not (tmp_path / "nope").exists()
    out_of_range = _run("prove", "99", "--home", str(home))
    assert out_of_range.exit_code == 2 and "outside a tree of 13" in out_of_range.output
    assert _run("show", "99", "--home", str(home)).exit_code == 2
    assert _run("consistency", "9", "5", "--home", str(home)).exit_code == 2


def test_export_then_import(tmp_path: Path) -> None:
    home = _home(tmp_path)
    out = tmp_path / "l.jsonl"
    exported = _run("export", str(out), "--home", str(home))
    assert exported.exit_code == 0 and "exported 13 entries" in exported.output
    imported = _run("import", str(out), "--home", str(tmp_path / "copy"))
    assert imported.exit_code == 0 and "imported 13 entries" in imported.output
    a = json.loads(_run("show", "--home", str(home)).output)
    b = json.loads(_run("show", "--home", str(tmp_path / "copy")).output)
    assert a == b
    again = _run("import", str(out), "--home", str(tmp_path / "copy"))
    assert again.exit_code == 2 and "already holds entries" in again.output
