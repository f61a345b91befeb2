"""``--json``'s Merkle root is the ledger's up to the run's own last entry: an entry another
writer appends after the record and before the root is read is not in it (``var``,
``backtest`` and ``backtest --book``)."""

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


def _another_writer_after(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``record.<name>`` records, then another writer appends one entry before the root is
    read (the CLI imports the recorder when it runs, so it gets this one)."""
    real = getattr(record, name)

    def then_another_writer(ledger: Ledger, *args: Any, **kwargs: Any) -> range:
        done: range = real(ledger, *args, **kwargs)
        ledger.record_action("other-writer", {"note": f"appended after {name}"})
        return done

    monkeypatch.setattr(record, name, then_another_writer)


def _root_stops_at_the_last_entry(home: Path, doc: dict[str, Any]) -> None:
    with Ledger.open(home) as ledger:
        last = doc["last_entry"]
        assert ledger.size == last + 2  # the other writer's entry is there
        assert ledger.entry(last + 1).kind == EntryKind.ACTION
        assert doc["merkle_root"] == ledger.compute_merkle_root(size=last + 1).hex()
        assert doc["merkle_root"] != ledger.compute_merkle_root().hex()


def test_var_json_root_stops_at_the_runs_last_entry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _another_writer_after(monkeypatch, "record_beat")
    home = tmp_path / "h"
    result = runner.invoke(app, ["var", "--agents", "nig", "--last", "300", "--track-days", "0",
                                 "--workers", "1", "--seed", "1", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    _root_stops_at_the_last_entry(home, json.loads(result.stdout)["ledger"])


def test_backtest_json_root_stops_at_the_runs_last_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _another_writer_after(monkeypatch, "record_backtest")
    home = tmp_path / "h"
    result = runner.invoke(app, ["backtest", "--agents", "nig", "--last", "5", "--window",
                                 "250", "--refit-every", "5", "--no-baseline", "--no-progress",
                                 "--no-consensus", "--workers", "1", "--home", str(home),
                                 "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["days"] == 5
    _root_stops_at_the_last_entry(home, doc["ledger"])


def test_backtest_book_json_root_stops_at_the_runs_last_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _another_writer_after(monkeypatch, "record_backtest")
    home = tmp_path / "h"
    result = runner.invoke(app, ["backtest", "--positions", "AAPL=600000,MSFT=-400000",
                                 "--agents", "niw", "--last", "5", "--window", "100",
                                 "--refit-every", "5", "--no-baseline", "--no-progress",
                                 "--no-consensus", "--workers", "1", "--home", str(home),
                                 "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "backtest" and doc["book"]
    _root_stops_at_the_last_entry(home, doc["ledger"])
