"""A resume reads the ledger's beats from the stored rows, decoding only each consensus
entry's ``beat`` (``_recovery._beat_of``): what it finds is what decoding every entry
finds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from swarmvar.errors import LedgerCorrupted
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.swarm import _recovery

from .conftest import TINY, TINY_POLICY, make_swarm
from .test_resume_data import WINDOW, _beat


def _decoding_every_entry(ledger: Ledger, specs: Any) -> tuple[dict[str, list[Any]], Any]:
    """The beats as the resume read them before: every entry decoded."""
    out: dict[str, dict[int, Any]] = {}
    last = None
    for entry in ledger.entries(0):
        b = entry.data.get("beat") if entry.kind == EntryKind.CONSENSUS.value else None
        if not isinstance(b, dict) or b.get("portfolio") not in specs or b.get(
                "cursor") is None:
            continue
        row = (int(b["seq"]), datetime.fromisoformat(str(b["as_of"])), float(b["realized"]),
               b["cursor"])
        out.setdefault(b["portfolio"], {})[row[0]] = row
        last = row
    return {p: [r[s] for s in sorted(r)] for p, r in out.items()}, last


def test_the_beats_read_from_stored_rows_are_the_decoded_entries(
        tmp_path: Path, sp500: pd.Series) -> None:
    home = tmp_path / "h"
    _beat(home, sp500.iloc[:WINDOW + 12], 6)
    with Ledger.open(home) as ledger:  # entries a beat's reader must pass over or take
        ledger.add_entry(EntryKind.CONSENSUS, {"levels": [], "note": "no beat"})
        ledger.add_entry(EntryKind.CONSENSUS, {"beat": {
            "portfolio": "other", "seq": 9, "as_of": "2001-01-01", "realized": 0.0,
            "cursor": 3}})
        ledger.add_entry(EntryKind.CONSENSUS, {"beat": {  # beat() from Python: no cursor
            "portfolio": "sp500", "seq": 7, "as_of": "2001-01-02T00:00:00+00:00",
            "realized": 0.0, "cursor": None}, "levels": []})
        ledger.add_entry(EntryKind.CONSENSUS, {"beat": {  # a later record of seq 6 wins
            "portfolio": "sp500", "seq": 6, "as_of": "2001-01-03T00:00:00+00:00",
            "realized": 0.5, "cursor": 99}, "levels": []})
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        got = _recovery._ledgered_beats(swarm)
        want = _decoding_every_entry(swarm.ledger, swarm.specs)
    assert got == want
    assert [b[0] for b in got[0]["sp500"]] == list(range(1, 7))
    assert got[0]["sp500"][-1][3] == 99 and got[1] == got[0]["sp500"][-1]


def test_a_beat_holding_nan_or_infinity_is_damage_as_the_ledger_reads_it() -> None:
    """The fast decoder of a beat refuses NaN and Infinity as ``canonical.loads`` does: a
    damaged row is named (LedgerCorrupted), not read as a beat."""
    for constant in ("NaN", "Infinity", "-Infinity"):
        text = '{"beat":{"seq":1,"realized":' + constant + '},"levels":[tr'
        row = (4, "t", "consensus", text, b"", b"")
        with pytest.raises(LedgerCorrupted, match="entry 4 is damaged"):
            _recovery._beat_of(row)
    whole = (4, "t", "consensus", '{"beat":{"seq":1,"realized":0.5},"levels":[]}', b"", b"")
    assert _recovery._beat_of(whole) == {"seq": 1, "realized": 0.5}


def test_the_reads_cost_in_its_docstring_is_the_runtime_pages() -> None:
    """The figures of the read's cost (docs/runtime.md's table, the code as it is now) are
    the ones its docstring gives: one measurement, said once in each place."""
    import re

    page = (Path(__file__).parents[2] / "docs" / "runtime.md").read_text()
    row = next(line for line in page.splitlines()
               if line.startswith("| reading the ledger's beats (`_ledgered_beats`)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    now = re.match(r"[\d.]+ s", cells[2])
    decoded = re.search(r"every entry decoded [\d.]+ s / ([\d.]+ s)", cells[3])
    assert now is not None and decoded is not None, row
    doc = " ".join((_recovery._read_ledger.__doc__ or "").split())
    assert f"{now[0]} against {decoded[1]}" in doc, (now[0], decoded[1], doc)
