"""The ledger on a real PostgreSQL server: processes share one chain; damage is named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.errors import LedgerCorrupted, LedgerUnreachable
from swarmvar.ledger import EntryKind, Ledger

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35)))

WORKER = """
import sys
from swarmvar.ledger import EntryKind, Ledger

ledger = Ledger(sys.argv[1])
worker = int(sys.argv[2])
for i in range(int(sys.argv[3])):
    ledger.add_entry(EntryKind.ESTIMATE, {"worker": worker, "i": i})
    if i % 50 == 0:
        ledger.add_entries([(EntryKind.FLOW, {"worker": worker, "i": i, "k": k})
                            for k in range(40)])
ledger.close()
print("done", flush=True)
"""


def test_two_processes_append_into_one_gap_free_chain(postgres_url: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, str(w), "150"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for w in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "done", err
    with Ledger(postgres_url, create=False, signing_key=KEY) as led:
        assert led.size == 1 + 2 * (150 + 3 * 40)
        result = led.verify_chain()
        assert result.ok and result.size == led.size
        indices = [e.index for e in led.entries()]
        assert indices == list(range(led.size))
        seen = sorted((e.data["worker"], e.data["i"]) for e in led.entries(1)
                      if e.kind is EntryKind.ESTIMATE)
        assert seen == sorted((w, i) for w in range(2) for i in range(150))
        head = led.signed_head()
        assert led.check_head(head).ok


def test_no_ledger_in_the_database_is_refused_not_created(postgres_url: str) -> None:
    with pytest.raises(LedgerCorrupted, match="no swarmvar ledger"):
        Ledger(postgres_url, create=False)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('ledger_entries')").fetchone() == (None,)


def test_tampering_in_the_database_is_named(postgres_url: str) -> None:
    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entries([(EntryKind.PULSE, {"i": i}) for i in range(20)])
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE ledger_entries SET data = '{}' WHERE idx = 5")
        conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ALL")
        conn.execute("UPDATE ledger_entries SET data = '{\"i\":99}' WHERE idx = 5")
    with Ledger(postgres_url, create=False) as led:
        result = led.verify_chain()
        assert not result.ok and result.first_bad == 5


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    """No server on the socket: LedgerUnreachable (never LedgerCorrupted), the socket's
    folder not named (the message may be a 503 body; the log has the URL)."""
    with pytest.raises(LedgerUnreachable, match="cannot be opened now") as got:
        Ledger(f"postgresql://nobody@/none?host={tmp_path}&connect_timeout=2")
    assert not isinstance(got.value, LedgerCorrupted) and str(tmp_path) not in str(got.value)


def test_ledger_commands_on_a_postgres_url(postgres_url: str) -> None:
    from typer.testing import CliRunner

    from swarmvar.cli.ledger import app

    runner = CliRunner()
    missing = runner.invoke(app, ["verify", "--home", postgres_url])
    assert missing.exit_code == 1 and "damaged" in missing.output  # nothing created
    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entries([(EntryKind.PULSE, {"i": i}) for i in range(7)])
    ok = runner.invoke(app, ["verify", "--home", postgres_url])
    assert ok.exit_code == 0 and "ok: 8 entries verify" in ok.output
    proof = runner.invoke(app, ["prove", "3", "--home", postgres_url])
    assert proof.exit_code == 0 and '"index": 3' in proof.output
    head = runner.invoke(app, ["head", "--home", postgres_url])
    assert head.exit_code == 2 and "signing_key" in head.output
