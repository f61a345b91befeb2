"""A resumed swarm runs the books it was started with (``_recovery._check_books``).

A checkpoint records each portfolio's book and the returns rule; a resume with
another book (an asset added or removed, a weight or position changed, weights for
positions) is refused with ``ResumeMismatch`` naming what differs, and changes
nothing stored. Homes checkpointed before the books were recorded are checked
against their ledger's ``swarm-start`` entry, and a net-short positions book that cannot
be shown to use the returns rule 2 is refused. A resume sums a book's assets in the
order its checkpoint records (an old home's: as given), so it goes on bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar.errors import ResumeMismatch
from swarmvar.evolution import Database, StateConfig, StateStore
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay, RoleConfig, Swarm
from swarmvar.swarm._records import RUN_KEY
from swarmvar.swarm.ticks import ALL, PortfolioSpec, book_differences

from .conftest import TINY, TINY_POLICY

WINDOW = 60
LONG = {"positions": {"x": 600000, "y": -400000}}
SHORT = {"positions": {"x": 400000, "y": -600000}}


@pytest.fixture(scope="module")
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    days = pd.date_range("2020-01-01", periods=WINDOW + 8, freq="D")
    return pd.DataFrame({"x": rng.normal(0, 0.01, len(days)),
                         "y": rng.normal(0, 0.012, len(days)),
                         "z": rng.normal(0, 0.008, len(days))}, index=days)


def _swarm(home: Path, books: dict) -> Swarm:
    return Swarm(books, home=home, agents=TINY, policy=TINY_POLICY, window=WINDOW,
                 checkpoint_every=3, fsync=False, roles=RoleConfig.quiet())


def _run(home: Path, books: dict, frame: pd.DataFrame, beats: int) -> dict[str, int]:
    with _swarm(home, books) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        swarm.run(Replay(frame, portfolio=ALL, start=WINDOW), beats=beats)
        return dict(swarm.seq)


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _refused(home: Path, books: dict, frame: pd.DataFrame) -> str:
    before = _files(home)
    with pytest.raises(ResumeMismatch) as info, _swarm(home, books) as swarm:
        swarm.start(frame.iloc[:WINDOW])
    assert _files(home) == before  # nothing stored was touched
    return str(info.value)


def _forget_books(home: Path) -> None:
    """Make the home's checkpoint an old one: its run record without books and rule."""
    db = Database(home)
    try:
        states = StateStore(db, config=StateConfig(fsync=False))
        run = json.loads(states.get(RUN_KEY).decode())
        assert run.pop("books") and run.pop("returns_rule") == 2
        states.put_many({RUN_KEY: json.dumps(run).encode()}, now=time.time())
    finally:
        db.close()


@pytest.mark.parametrize(("other", "words"), [
    ({"positions": {"x": 600000, "y": -300000}}, "position of y: -400000 -> -300000"),
    ({"positions": {"x": 600000, "y": -400000, "z": 1000}}, "asset z added (position 1000)"),
    ({"positions": {"x": 600000}}, "asset y removed (was position -400000)"),
    ({"weights": {"x": 0.6, "y": 0.4}}, "positions over [x, y] -> weights over [x, y]"),
])
def test_another_book_is_refused_naming_what_differs(tmp_path, assets, other, words):
    home = tmp_path / "home"
    _run(home, {"book": LONG, "w": {"weights": {"x": 0.5, "z": 0.5}}}, assets, 4)
    message = _refused(home, {"book": other, "w": {"weights": {"x": 0.5, "z": 0.5}}}, assets)
    assert "portfolio 'book'" in message and words in message
    assert "another home" in message and "resume with the same book" in message


#: Four assets of mixed size, not in alphabetical order: the order of a 3+ term sum moves
#: its last bits (a 2-term sum is the same either way).
MIXED = {"positions": {"z": 123457.1, "x": -33333.3, "w": 77777.7, "y": 1e5 / 3}}
MIXED_BEATS = 36


@pytest.fixture(scope="module")
def four() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    days = pd.date_range("2020-01-01", periods=WINDOW + MIXED_BEATS + 4, freq="D")
    return pd.DataFrame({c: rng.normal(0, 0.01 * (1 + i / 3), len(days))
                         for i, c in enumerate(("z", "x", "w", "y"))}, index=days)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, four) -> list[tuple[int, float]]:
    """The realized returns of MIXED beaten 36 times without a stop."""
    home = tmp_path_factory.mktemp("straight") / "home"
    _run(home, {"book": MIXED}, four, MIXED_BEATS)
    return _consensus(home)


def test_the_same_book_resumes_however_its_numbers_are_written(tmp_path, four, straight):
    home = tmp_path / "home"
    _run(home, {"book": MIXED}, four, 4)
    positions = MIXED["positions"]  # the same amounts as floats, in another order
    again = {"book": {"positions": {a: float(positions[a]) for a in ("y", "w", "x", "z")}}}
    with _swarm(home, again) as swarm:
        swarm.start(four.iloc[:WINDOW])
        assert swarm.seq["book"] == 4
        assert swarm.specs["book"].assets == tuple(positions)  # summed in the recorded order
        swarm.run(Replay(four, portfolio=ALL, start=WINDOW), beats=MIXED_BEATS - 4)
    assert _consensus(home) == straight


def test_an_old_home_resumes_its_book_in_the_order_given(tmp_path, four, straight):
    """An old home's book comes from its ledger's swarm-start entry, canonical JSON with
    its keys sorted: not the order the run summed in. The resume keeps the given order
    (the run's), so its beats are the uninterrupted run's, bit for bit."""
    home = tmp_path / "home"
    _run(home, {"book": MIXED}, four, 4)
    _forget_books(home)
    with _swarm(home, {"book": MIXED}) as swarm:
        swarm.start(four.iloc[:WINDOW])
        assert swarm.specs["book"].assets == tuple(MIXED["positions"])  # not sorted
        swarm.run(Replay(four, portfolio=ALL, start=WINDOW), beats=MIXED_BEATS - 4)
    assert _consensus(home) == straight


def _consensus(home: Path) -> list[tuple[int, float]]:
    with Ledger.open(home) as ledger:
        return [(e.data["beat"]["seq"], e.data["beat"]["realized"]) for e in ledger.entries()
                if e.kind == "consensus" and "beat" in e.data]


def test_an_old_home_is_checked_against_its_swarm_start_entry(tmp_path, assets):
    home = tmp_path / "home"
    _run(home, {"book": LONG}, assets, 4)
    _forget_books(home)
    message = _refused(home, {"book": {"positions": {"x": 600000, "y": -300000}}}, assets)
    assert "position of y: -400000 -> -300000" in message and "swarm-start" in message
    with _swarm(home, {"book": LONG}) as swarm:  # its own book: resumes as before
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq["book"] == 4


def test_a_net_short_book_of_the_old_rule_is_refused(tmp_path, assets):
    home = tmp_path / "home"
    _run(home, {"book": SHORT}, assets, 4)
    with _swarm(home, {"book": SHORT}) as swarm:  # recorded under rule 2: resumes
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq["book"] == 4
    _forget_books(home)
    message = _refused(home, {"book": SHORT}, assets)
    assert "net-short" in message and "another home" in message
    # a home of this version before the rule was recorded used rule 2: not said to be wrong
    assert "written before this version" in message and "cannot be shown to use rule 2" in (
        message)


def test_an_old_home_without_its_start_entry_resumes_a_long_book_refuses_a_short_one(
        tmp_path, assets, caplog, monkeypatch):
    from swarmvar.swarm import _recovery

    both, alone = tmp_path / "both", tmp_path / "alone"  # (a resume runs all of a home's)
    _run(both, {"long": LONG, "short": SHORT}, assets, 6)
    seq = _run(alone, {"long": LONG}, assets, 4)
    _forget_books(both)
    _forget_books(alone)
    monkeypatch.setattr(_recovery, "START_SCAN", 1)  # its start entry is beyond the scan
    assert "cannot be shown to use rule 2" in _refused(both, {"long": LONG, "short": SHORT},
                                                       assets)
    with caplog.at_level("INFO", logger="swarmvar.swarm"), _swarm(alone, {"long": LONG}
                                                                  ) as swarm:
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq["long"] == seq["long"] > 0
    assert "'long': this home's checkpoint does not record its book" in caplog.text
    assert "nor does its ledger's swarm-start entry (searched in its first 1 entries)" in (
        caplog.text)


def test_book_differences_compare_the_floats_exactly():
    spec = PortfolioSpec("p", positions={"a": 0.1 + 0.2, "b": -1.0})
    assert book_differences({"positions": {"b": -1, "a": 0.30000000000000004}}, spec) == []
    assert book_differences({"positions": {"a": 0.3, "b": -1}}, spec) == [
        "position of a: 0.3 -> 0.30000000000000004"]
    assert book_differences({"name": "p"}, spec) == ["a single series -> positions over [a, b]"]


def _champion(home: Path, forgetting: float) -> str:
    from swarmvar.evolution import new_variant, open_home
    from swarmvar.models.nig import NormalInverseGamma

    h = open_home(home)
    try:
        v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": forgetting},
                                       {NormalInverseGamma.name: NormalInverseGamma},
                                       now=time.time()))
        h.variants.promote(v, now=time.time())
        return v.id
    finally:
        h.close()


def _levels_and_variants(home: Path) -> tuple[list, set[str]]:
    with Ledger.open(home) as ledger:
        entries = list(ledger.entries())
    levels = [(e.data["beat"]["seq"], [(c["var"], c["es"]) for c in e.data["levels"]])
              for e in entries if e.kind == "consensus" and "beat" in e.data]
    variants = {x["variant_id"] for e in entries if e.kind == "estimate"
                for x in e.data["estimates"] if x.get("variant_id")}
    return levels, variants


def test_a_resume_keeps_the_variants_it_started_with(tmp_path, assets, caplog):
    """A champion promoted between two runs of a home waits for a fresh start: the resumed
    agents sign with the checkpoint's variant (the evidence goes to the variant that made
    the numbers), and the numbers are an uninterrupted run's (refits after the resume)."""
    books = {"book": LONG}

    def swarm(home: Path) -> Swarm:
        return Swarm(books, home=home, agents=TINY, policy=TINY_POLICY, window=WINDOW,
                     refit_every=2, checkpoint_every=3, fsync=False, roles=RoleConfig.quiet())

    def run(home: Path, beats: int) -> None:
        with swarm(home) as s:
            s.start(assets.iloc[:WINDOW])
            s.run(Replay(assets, portfolio=ALL, start=WINDOW), beats=beats)

    home, straight = tmp_path / "home", tmp_path / "straight"
    first = _champion(home, 0.95)
    _champion(straight, 0.95)
    run(straight, 8)
    run(home, 4)  # checkpointed at 3, one beat replayed after it
    second = _champion(home, 0.9)
    assert second != first
    with caplog.at_level("INFO", logger="swarmvar.swarm"):
        run(home, 4)
    assert "variants of its checkpoint" in caplog.text
    levels, signed = _levels_and_variants(home)
    assert levels == _levels_and_variants(straight)[0] and len(levels) == 8
    assert signed == {first}


def test_other_roles_or_another_policy_window_are_refused(tmp_path, assets):
    """Settings outside the fingerprint that change the numbers: the roles' refits, the
    policy's track window, its loss."""
    from swarmvar.consensus.weights import Loss

    home = tmp_path / "home"
    _run(home, {"book": LONG}, assets, 4)
    before = _files(home)
    assert TINY_POLICY.loss is Loss.FZ0
    for kw, words in (({"roles": RoleConfig()}, "roles.scout_refits: saved False, now True"),
                      ({"policy": dataclasses.replace(TINY_POLICY, window=40)},
                       f"policy.window: saved {TINY_POLICY.window}, now 40"),
                      ({"policy": dataclasses.replace(TINY_POLICY, loss=Loss.PINBALL)},
                       "policy.loss: saved fz0, now pinball")):  # as the fingerprint's words
        args = {"agents": TINY, "policy": TINY_POLICY, "window": WINDOW,
                "checkpoint_every": 3, "fsync": False, "roles": RoleConfig.quiet(), **kw}
        with pytest.raises(ResumeMismatch, match="other settings") as info, Swarm(
                {"book": LONG}, home=home, **args) as swarm:
            swarm.start(assets.iloc[:WINDOW])
        assert words in str(info.value) and "another home" in str(info.value)
    assert _files(home) == before


def test_another_refit_lag_is_refused_by_the_fingerprint(tmp_path, assets):
    """``refit_lag`` is in the fingerprint: a change is refused there, naming it, not as a
    role (the run record's roles leave it out)."""
    home = tmp_path / "home"
    _run(home, {"book": LONG}, assets, 4)
    before = _files(home)
    with pytest.raises(ResumeMismatch) as info, Swarm(
            {"book": LONG}, home=home, agents=TINY, policy=TINY_POLICY, window=WINDOW,
            checkpoint_every=3, fsync=False,
            roles=dataclasses.replace(RoleConfig.quiet(), refit_lag=2)) as swarm:
        swarm.start(assets.iloc[:WINDOW])
    message = str(info.value)
    assert "refit_lag: saved 0, now 2" in message and "roles." not in message
    assert "other settings" in message and "another home" in message
    assert _files(home) == before
