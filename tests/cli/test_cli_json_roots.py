"""``--json``'s Merkle root is the ledger's up to the run's own last entry: an entry another
writer appends after the record and before the root is read is not in it (``var``,
``backtest`` and ``backtest --book``)."""

from __future__ import annotations

import json
import re
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


def test_book_var_json_root_stops_at_the_runs_last_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``var --book --json``: book_api._record writes the run's batch, then another writer
    appends one entry before the root is read."""
    import swarmvar.book_api as book_api

    real = book_api._record

    def then_another_writer(ledger: Ledger, *args: Any, **kwargs: Any) -> tuple[int, int]:
        done: tuple[int, int] = real(ledger, *args, **kwargs)
        ledger.record_action("other-writer", {"note": "appended after the book's batch"})
        return done

    monkeypatch.setattr(book_api, "_record", then_another_writer)
    home = tmp_path / "h"
    result = runner.invoke(app, ["var", "--positions", "AAPL=600000,MSFT=-400000", "--agents",
                                 "niw", "--last", "300", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "var" and doc["book"]
    _root_stops_at_the_last_entry(home, doc["ledger"])


def _replay_home(tmp_path: Path) -> tuple[Path, int]:
    """A home whose arbiter cache holds a simulated 60-day backtest, and the window."""
    from swarmvar.arbiter.history import cache_path, simulated_history
    from swarmvar.models import DEFAULT_AGENTS, agent_class

    window = max(agent_class(n).min_observations for n in DEFAULT_AGENTS)
    home = tmp_path / "home"
    simulated_history(days=60, seed=7).save(cache_path(
        "sp500", last=60, window=window, refit_every=20, alphas=(0.99, 0.975), seed=0,
        agents=DEFAULT_AGENTS, cache=home / "cache" / "arbiter"))
    return home, window


def _replay(home: Path, window: int) -> re.Match[str]:
    """Run ``arbiter replay`` on :func:`_replay_home`'s backtest; its "recorded entries
    A-B ... (Merkle root R…)" line."""
    from swarmvar.cli import build_app

    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--data", "sp500", "--last", "60", "--window", str(window),
        "--home", str(home)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    found = re.search(r"recorded entries (\d+)-(\d+) .* \(Merkle root ([0-9a-f]{16})…\)", said)
    assert found, said
    return found


def test_arbiter_replay_root_stops_at_its_summary(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``arbiter replay`` prints the root of the ledger up to its own last entry, the
    replay's summary, and its range ends there: another writer's entry appended after the
    summary is in neither (was: the whole ledger's root and size)."""
    home, window = _replay_home(tmp_path)
    real = Ledger.add_entries

    def then_another_writer(self: Ledger, batch: Any, **kwargs: Any) -> range:
        batch = list(batch)
        done: range = real(self, batch, **kwargs)
        if any(getattr(data, "get", dict().get)("type") == "arbiter.replay"
               for _, data in batch):
            self.record_action("other-writer", {"note": "appended after the replay"})
        return done

    monkeypatch.setattr(Ledger, "add_entries", then_another_writer)
    found = _replay(home, window)
    last = int(found[2])
    with Ledger.open(home, create=False) as ledger:
        assert ledger.size == last + 2  # the other writer's entry is there
        assert ledger.entry(last).data["type"] == "arbiter.replay"
        assert ledger.entry(last + 1).data["type"] == "other-writer"
        assert found[3] == ledger.compute_merkle_root(size=last + 1).hex()[:16]
        assert found[3] != ledger.compute_merkle_root().hex()[:16]


def test_arbiter_replay_range_starts_at_its_first_entry(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay's range and the summary's ``first_beat_entry`` start at the arbiter's own
    first entry: another writer's entries appended after the ledger was opened and before
    the arbiter wrote are not the replay's (was: the ledger's size before the replay)."""
    home, window = _replay_home(tmp_path)
    with Ledger.open(home) as ledger:  # a ledger with history: the range is not from 0
        before = ledger.record_action("earlier", {"note": "before the replay"}).index + 1
    real = Ledger.add_entries
    others = 2

    def another_writer_first(self: Ledger, batch: Any, **kwargs: Any) -> range:
        nonlocal others
        batch = list(batch)
        while others and batch and batch[0][0] is EntryKind.PULSE:  # the arbiter's first beat
            others -= 1
            real(self, [(EntryKind.ACTION, {"type": "other-writer", "details": {}})])
        return real(self, batch, **kwargs)

    monkeypatch.setattr(Ledger, "add_entries", another_writer_first)
    found = _replay(home, window)
    first, last = int(found[1]), int(found[2])
    with Ledger.open(home, create=False) as ledger:
        assert ledger.size == last + 1
        assert first == before + 2  # the ledger's size before the replay, and two more
        assert [ledger.entry(i).data["type"] for i in range(before, first)] == [
            "other-writer"] * 2
        assert ledger.entry(first).kind is EntryKind.PULSE
        summary = ledger.entry(last).data
        assert summary["type"] == "arbiter.replay"
        assert summary["details"]["first_beat_entry"] == first
        assert not any(ledger.entry(i).data.get("type") == "other-writer"
                       for i in range(first, last + 1))
        assert found[3] == ledger.compute_merkle_root(size=last + 1).hex()[:16]
