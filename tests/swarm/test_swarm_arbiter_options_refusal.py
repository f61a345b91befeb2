"""A resume whose arbiter runs under other options than the checkpoint's is refused before
the executor opens or anything is restored: a Python caller catching the refusal is left
with no half-restored swarm and nothing open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmvar.data import load
from swarmvar.errors import ArbiterOptionsMismatch, ResumeMismatch

from . import _arbiter_child as child


def test_other_arbiter_options_are_refused_before_the_executor_opens(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child.run(home, 8)  # checkpointed at beat 7 (checkpoint_every 7), k_flows 4
    swarm, arbiter, _ = child.paced_swarm(home, child.FakeTime(), {"k_flows": 3})
    calls: list[str] = []
    for name in ("open", "restore", "start"):
        real = getattr(swarm.executor, name)

        def noted(*args: Any, _name: str = name, _real: Any = real, **kw: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kw)

        setattr(swarm.executor, name, noted)
    history = load("sp500").iloc[: child.WINDOW]
    with swarm, arbiter:
        with pytest.raises(ArbiterOptionsMismatch) as got:
            swarm.start({"sp500": history})
        assert isinstance(got.value, ResumeMismatch)
        assert "saved 4.0, now 3.0" in str(got.value), got.value
        assert calls == []  # nothing opened, nothing restored
        assert "sp500" not in arbiter._portfolios
    # the same options resume (the check passes what it should)
    swarm, arbiter, _ = child.paced_swarm(home, child.FakeTime())
    with swarm, arbiter:
        swarm.start({"sp500": history})
        assert "sp500" in arbiter._portfolios
