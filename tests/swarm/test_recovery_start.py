"""A fresh start stores its start-history digest in the same atomic step as its first
checkpoint; a resume's start-history check lets through only the errors of a history
that is not one (an error of its own propagates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from swarmvar.evolution import StateStore
from swarmvar.swarm import _records, _recovery

from .conftest import TINY, TINY_POLICY, make_swarm
from .test_resume_data import WINDOW, _beat


def test_the_start_digest_is_written_with_the_first_checkpoint(
        tmp_path: Path, sp500: pd.Series, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[set[str]] = []
    put_many = StateStore.put_many

    def recording(self: StateStore, states: Any, **kw: Any) -> Any:
        calls.append(set(states))
        return put_many(self, states, **kw)

    monkeypatch.setattr(StateStore, "put_many", recording)
    with make_swarm(tmp_path / "h", agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        swarm.start(sp500.iloc[:WINDOW])
    assert len(calls) == 1, calls
    assert {_records.START_KEY, _records.RUN_KEY, "swarm:sp500"} <= calls[0]


def test_an_error_of_the_check_itself_propagates(tmp_path: Path, sp500: pd.Series,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    data = sp500.iloc[:WINDOW + 4]
    _beat(home, data, 2)

    def broken(series: pd.Series) -> dict[str, Any]:
        raise KeyError("a bug, not a history")

    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=WINDOW) as swarm:
        _recovery._check_start(swarm, {"sp500": "no numbers"})  # no history of it: passed
        monkeypatch.setattr(_recovery, "_start_digest", broken)
        with pytest.raises(KeyError, match="a bug"):
            _recovery._check_start(swarm, data.iloc[:WINDOW])
