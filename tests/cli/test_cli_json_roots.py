"""``--json``'s Merkle root is the ledger's up to the run's own last entry: an entry another
writer appends after the record and before the root is read is not in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.swarm import record

runner = CliRunner()


def test_var_json_root_stops_at_the_runs_last_entry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = record.record_beat

    def then_another_writer(ledger: Ledger, *args: Any, **kwargs: Any) -> range:
        done = real(ledger, *args, **kwargs)
        ledger.record_action("other-writer", {"note": "appended after the beat"})
        return done

    monkeypatch.setattr(record, "record_beat", then_another_writer)
    home = tmp_path / "h"
    result = runner.invoke(app, ["var", "--agents", "nig", "--last", "300", "--track-days", "0",
                                 "--workers", "1", "--seed", "1", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)["ledger"]
    with Ledger.open(home) as ledger:
        last = doc["last_entry"]
        assert ledger.size == last + 2  # the other writer's entry is there
        assert ledger.entry(last + 1).kind == EntryKind.ACTION
        assert doc["merkle_root"] == ledger.compute_merkle_root(size=last + 1).hex()
        assert doc["merkle_root"] != ledger.compute_merkle_root().hex()
