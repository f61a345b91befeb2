"""A streamed book's attribution under the review's cases (swarm/attribution.py): dates
with zones and offsets, a second resume, a failing worker, Ctrl-C in close, a backlog."""

from __future__ import annotations

import sys
from datetime import timedelta, timezone
from pathlib import Path

from swarmvar.types import Tick

sys.path.insert(0, str(Path(__file__).parent))
from test_attribution import (  # noqa: E402
    WINDOW,
    asset_returns,
    attributions,
    book_swarm,
    tick,
)


def test_ticks_dated_with_an_offset_are_attributed(tmp_path):
    """A UTC start history, then ticks whose as_of carries -05:00 (as JSON lines may):
    the window mixes offsets and is still attributed, as in UTC."""
    frame = asset_returns(WINDOW + 8)
    with book_swarm(tmp_path / "h", every=4) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        for i in range(WINDOW, WINDOW + 8):
            when = (frame.index[i] + timedelta(hours=21)).to_pydatetime()
            when = when.astimezone(timezone(timedelta(hours=-5)))
            swarm.step(Tick("*", when.isoformat(), assets=frame.iloc[i].to_dict()))
    got = attributions(tmp_path / "h")
    assert {k: [r["action"] for r in v] for k, v in got.items()} == {
        ("book", 4): ["attributed"], ("book", 8): ["attributed"]}


def test_a_zone_with_a_dst_change_resumed_records_what_an_uninterrupted_run_does(tmp_path):
    """America/New_York dates with a DST change in the window: closed at beat 6 and resumed
    (the ring rebuilt from ISO strings with two offsets), the records equal a run's."""
    frame = asset_returns(WINDOW + 12)
    frame.index = frame.index.tz_convert(None).tz_localize("America/New_York")
    runs = {}
    for label, parts in (("whole", [(WINDOW, WINDOW + 12)]),
                         ("resumed", [(WINDOW, WINDOW + 6), (WINDOW + 6, WINDOW + 12)])):
        home = tmp_path / label
        for a, b in parts:
            with book_swarm(home, every=4, checkpoint_every=3) as swarm:
                swarm.start(frame.iloc[:WINDOW])
                for i in range(a, b):
                    swarm.step(tick(frame, i))
        got = attributions(home)
        for recs in got.values():
            for r in recs:
                r["detail"].pop("seconds")
        runs[label] = got
    assert sorted(runs["whole"]) == [("book", 4), ("book", 8), ("book", 12)]
    assert all(v[0]["action"] == "attributed" for v in runs["whole"].values())
    assert runs["resumed"] == runs["whole"]
