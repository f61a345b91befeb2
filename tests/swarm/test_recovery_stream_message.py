"""The words of a stream's resume refusal (``_recovery._stream_check``): a replayed tick
whose return differs says both returns; one that gives no return says why, and the
return the ledger holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from swarmvar.errors import ResumeDataMismatch
from swarmvar.swarm import _recovery
from swarmvar.types import Tick

from .conftest import make_swarm

DAY = datetime(2021, 3, 2, tzinfo=UTC)
AFTER = "Resume with the ticks the run read (or send only those after 2021-03-02, its last beat)"


def _refusal(tmp_path: Path, tick: Tick) -> str:
    with make_swarm(tmp_path / "h", ("a",)) as swarm:
        check = _recovery._stream_check(swarm, {"a": [(2, DAY, 0.015873, 7)]}, "stdin")
        with pytest.raises(ResumeDataMismatch) as caught:
            check(tick, 3)
    return str(caught.value)


def test_a_replayed_tick_without_a_return_is_refused_beside_the_ledgered_return(
        tmp_path: Path) -> None:
    said = _refusal(tmp_path, Tick("a", DAY, value="x"))  # type: ignore[arg-type]
    assert said.startswith(
        "portfolio 'a': line 3 of stdin is not the tick this home's run beat at 2021-03-02 "
        "(beat 2): it gives no return now (tick value for 'a' is 'x', not a number"), said
    assert "); ledgered 0.01587. " + AFTER in said, said


def test_a_replayed_tick_with_another_return_says_both(tmp_path: Path) -> None:
    said = _refusal(tmp_path, Tick("a", DAY, value=0.02))
    assert said.startswith(
        "portfolio 'a': line 3 of stdin is not the tick this home's run beat at 2021-03-02 "
        "(beat 2): ledgered 0.01587, now 0.02. " + AFTER), said
