"""A resume runs all of the home's run, as it was spread and checkpointed
(``_recovery._check_portfolios``, ``_check_settings``).

A resume of some of the run's portfolios would lose the others (the next checkpoint
drops their marks, the shared cursor moves past their ticks): refused with
``ResumeMismatch`` naming all of them, as is a portfolio spread over other groups and
another ``checkpoint_every`` (it places the checkpoints' agent swaps a replay redoes).
Each refusal leaves the home byte for byte as it was; the run as started resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from swarmvar.errors import ResumeMismatch
from swarmvar.evolution import Database, StateConfig, StateStore
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay, RoleConfig, Swarm
from swarmvar.swarm._records import RUN_KEY
from swarmvar.swarm.ticks import ALL

from .conftest import TINY, TINY_POLICY

WINDOW = 60
BOOKS = {"a": {"weights": {"x": 0.5, "y": 0.5}}, "b": {"weights": {"y": 0.3, "z": 0.7}},
         "c": {"positions": {"x": 1000, "z": -400}}}


@pytest.fixture(scope="module")
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    days = pd.date_range("2020-01-01", periods=WINDOW + 8, freq="D")
    return pd.DataFrame({k: rng.normal(0, s, len(days)) for k, s in
                         (("x", 0.01), ("y", 0.012), ("z", 0.008))}, index=days)


def _swarm(home: Path, books: dict, **kw: Any) -> Swarm:
    args: dict[str, Any] = {"agents": TINY, "policy": TINY_POLICY, "window": WINDOW,
                            "checkpoint_every": 3, "fsync": False,
                            "roles": RoleConfig.quiet(), **kw}
    return Swarm(books, home=home, **args)


def _run(home: Path, books: dict, frame: pd.DataFrame, beats: int, **kw: Any) -> dict:
    """``beats`` beats of each portfolio (a row of the frame beats them all)."""
    with _swarm(home, books, **kw) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.run(Replay(frame, portfolio=ALL, start=WINDOW), beats=beats * len(books))
        return dict(swarm.seq)


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _refused(home: Path, books: dict, frame: pd.DataFrame, **kw: Any) -> str:
    before = _files(home)
    with pytest.raises(ResumeMismatch) as info, _swarm(home, books, **kw) as swarm:
        swarm.start(frame.iloc[:WINDOW])
    assert _files(home) == before  # nothing stored was touched
    return str(info.value)


def _consensus(home: Path) -> list[tuple[str, int, list]]:
    with Ledger.open(home) as ledger:
        return [(e.data["beat"]["portfolio"], e.data["beat"]["seq"],
                 [(c["var"], c["es"]) for c in e.data["levels"]])
                for e in ledger.entries() if e.kind == "consensus" and "beat" in e.data]


def test_a_resume_of_some_portfolios_is_refused_and_all_of_them_resume(tmp_path, assets):
    home, straight = tmp_path / "home", tmp_path / "straight"
    assert _run(home, BOOKS, assets, 4) == dict.fromkeys(BOOKS, 4)
    for some in (["a", "b"], ["c"]):
        message = _refused(home, {p: BOOKS[p] for p in some}, assets)
        assert "this home's run beats a, b, c" in message
        left = ", ".join(p for p in BOOKS if p not in some)
        assert f"; {left} left out would be lost" in message
        assert "resume with all of them" in message and "another home" in message
    more = _refused(home, {**BOOKS, "d": {"weights": {"x": 1.0}}}, assets)
    assert "this home's run beats a, b, c; it has no checkpoint of d: resume with the " \
        "portfolios it was started with" in more
    assert _run(home, BOOKS, assets, 2) == dict.fromkeys(BOOKS, 6)
    _run(straight, BOOKS, assets, 6)
    assert _consensus(home) == _consensus(straight)  # no tick of any portfolio lost


@pytest.mark.parametrize(("was", "now"), [(2, 1), (1, 2)])
def test_another_spread_is_refused(tmp_path, assets, was, now):
    home = tmp_path / "home"
    books = {"a": BOOKS["a"]}
    _run(home, books, assets, 4, spread=was)
    message = _refused(home, books, assets, spread=now)
    assert f"portfolio 'a' was {'not spread' if was == 1 else 'spread over 2 groups'}" in message
    assert f"spread: saved {was}, now {now}" in message and f"spread={was} in Python" in message
    with _swarm(home, books, spread=was) as swarm:  # as it was started: resumes
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq["a"] == 4


def test_a_spread_run_resumed_without_one_portfolio_names_the_portfolios(tmp_path, assets):
    home = tmp_path / "home"
    books = {"a": BOOKS["a"], "b": BOOKS["b"]}
    _run(home, books, assets, 2, spread=2)
    message = _refused(home, {"a": BOOKS["a"]}, assets, spread=2)
    assert "this home's run beats a, b; b left out would be lost" in message
    assert "#g" not in message


def _forget_checkpoint_every(home: Path) -> None:
    """Make the home's checkpoint an old one: its run record without checkpoint_every."""
    db = Database(home)
    try:
        states = StateStore(db, config=StateConfig(fsync=False))
        run = json.loads(states.get(RUN_KEY).decode())
        assert run.pop("checkpoint_every") == 3
        states.put_many({RUN_KEY: json.dumps(run).encode()}, now=time.time())
    finally:
        db.close()


def test_another_checkpoint_every_is_refused_an_old_home_resumes(tmp_path, assets):
    home = tmp_path / "home"
    books = {"a": BOOKS["a"]}
    _run(home, books, assets, 4)
    message = _refused(home, books, assets, checkpoint_every=2)
    assert "other settings (checkpoint_every: saved 3, now 2)" in message
    assert "another home" in message
    _forget_checkpoint_every(home)  # checkpointed before it was recorded: not checked
    with _swarm(home, books, checkpoint_every=2) as swarm:
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq["a"] == 4
