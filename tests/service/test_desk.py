"""The desk (one swarm per portfolio over a shared ledger) without HTTP: two desks on one
ledger racing over the same returns agree beat for beat, and a restarted desk resumes."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from swarmvar.arbiter import Arbiter
from swarmvar.ledger import Ledger
from swarmvar.service.desk import DatedReturn, Desk


def _desk(home: Path) -> Desk:
    return Desk(Ledger.open(home), home, observers=(Arbiter(record_decisions=False),))


def test_two_desks_racing_agree(tmp_path: Path) -> None:
    a, b = _desk(tmp_path), _desk(tmp_path)
    rng = np.random.default_rng(3)
    hist = [DatedReturn(date(2020, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
            for i in range(80)]
    a.create("s", hist, key_id="k")
    values = [round(0.002 * ((i * 7) % 11 - 5), 6) for i in range(30)]
    results: dict[int, list[bool]] = {}

    def feed(d: Desk) -> None:
        out = []
        for i, v in enumerate(values):
            got = d.ingest("s", [DatedReturn(date(2024, 1, 1) + timedelta(days=i), v)],
                           key_id=str(id(d)))
            out.append(got[0].duplicate)
        results[id(d)] = out

    threads = [threading.Thread(target=feed, args=(d,)) for d in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # every return stored by exactly one desk, repeated by the other
    assert [x != y for x, y in zip(*results.values(), strict=True)] == [True] * len(values)
    ra, rb = a.latest("s"), b.latest("s")
    assert ra.seq == rb.seq == len(values)
    assert ra.consensus and ra.consensus == rb.consensus and ra.rejected == rb.rejected == {}
    assert a.points("s") == b.points("s")
    with Ledger.open(tmp_path, create=False) as led:
        assert led.verify_chain().ok
    # a desk started afterwards replays the ledger to the same state
    c = _desk(tmp_path)
    assert c.latest("s").consensus == ra.consensus and c.points("s") == a.points("s")
