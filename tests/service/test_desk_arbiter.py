"""The desk's arbiter, wired as ``swarmvar run`` wires it: each beat's measured seconds reach
its PID and the ledger (so every process's arbiter moves alike), and its state is
checkpointed into the home and restored when the service restarts there."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import Arbiter
from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.desk import OBSERVER_PREFIX, CheckpointMark, DatedReturn, Desk
from swarmvar.types import Action, BeatReport, Decision

from .conftest import Keys, TestClient, day, history


class _Timed(Arbiter):
    """The arbiter, noting the seconds each observed beat came with."""

    def __init__(self) -> None:
        super().__init__(record_decisions=False)
        self.seconds: dict[int, float | None] = {}

    def observe(self, report: BeatReport, beat_seconds: float | None = None
                ) -> tuple[Decision, ...]:
        self.seconds[report.seq] = beat_seconds
        return tuple(super().observe(report, beat_seconds))


def _ticks(home: Path) -> dict[int, dict[str, Any]]:
    with Ledger.open(home, create=False) as ledger:
        return {e.data["details"]["seq"]: e.data["details"] for e in ledger.entries()
                if e.data.get("type") == "tick"}


def test_each_beats_seconds_reach_the_pid_and_the_ledger(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
            for i in range(60)]
    arbiter = _Timed()
    desk = Desk(Ledger.open(tmp_path), tmp_path, observers=(arbiter,))
    desk.create("s", hist, key_id="k")
    for i in range(6):
        desk.ingest("s", [DatedReturn(date(2023, 1, 1) + timedelta(days=i), -0.004 * i)],
                    key_id="k")
    ticks = _ticks(tmp_path)
    assert sorted(arbiter.seconds) == sorted(ticks) == list(range(1, 7))
    for seq, d in ticks.items():  # measured (not a constant), and recorded as given
        assert 0 < d["beat_seconds"] < 60 and arbiter.seconds[seq] == d["beat_seconds"]
    assert arbiter._portfolios["s"].state.pid.last_error is not None  # the PID moved
    # another process (a fresh desk on the same ledger; its home holds no checkpoint, so it
    # replays every beat) replays the recorded seconds
    other = _Timed()
    Desk(Ledger.open(tmp_path), tmp_path / "elsewhere", observers=(other,))
    assert other.seconds == arbiter.seconds
    assert other.checkpoint_state("s") == arbiter.checkpoint_state("s")


def test_observers_signatures_are_read_once_not_per_beat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether an observer takes ``beat_seconds`` is looked up when the desk gets it (its
    ``observe`` and its ``replay``), not on each beat nor on each replayed beat; the
    seconds still reach it on both."""
    import swarmvar.swarm.runtime as desk_module  # where Attached looks the calls up

    looked: list[object] = []
    real = desk_module.takes_seconds

    def counted(call: Any) -> bool:
        looked.append(call)
        return real(call)

    monkeypatch.setattr(desk_module, "takes_seconds", counted)
    rng = np.random.default_rng(6)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    arbiter = _Timed()
    desk = Desk(Ledger.open(tmp_path), tmp_path, observers=(arbiter,))
    assert len(looked) == 2  # observe and replay, once
    desk.create("s", hist, key_id="k")
    desk.ingest("s", [DatedReturn(date(2023, 1, 1) + timedelta(days=i), 0.002 * i)
                      for i in range(5)], key_id="k")
    assert len(looked) == 2 and sorted(arbiter.seconds) == [1, 2, 3, 4, 5]
    assert all(v is not None for v in arbiter.seconds.values())
    other = _Timed()
    Desk(Ledger.open(tmp_path), tmp_path / "elsewhere", observers=(other,))  # replays 5 beats
    assert len(looked) == 4 and other.checkpoint_state("s") == arbiter.checkpoint_state("s")


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _arbiter(client: TestClient) -> Arbiter:
    desk = client.app.state.desk  # type: ignore[attr-defined]
    (arbiter,) = desk.observers
    assert isinstance(arbiter, Arbiter)
    return arbiter


def _from_scratch(home: Path) -> bytes:
    """The arbiter's state of "book" replayed over the whole ledger (no checkpoint)."""
    arbiter = Arbiter(record_decisions=False)
    with Ledger.open(home, create=False) as ledger:
        Desk(ledger, home / "elsewhere", observers=(arbiter,))
    return arbiter.checkpoint_state("book")


def test_a_restarted_service_restores_its_arbiter(tmp_path: Path,
                                                  session_keys: tuple[Path, Keys]) -> None:
    """Through the app (uvicorn's ASGI lifespan in the test client): 262 beats, the
    arbiter checkpointed at beat 250; a restart on the same home restores it there and
    replays it over beats 251-262 only, to the state of an arbiter that replayed every
    beat; a checkpoint that does not fit the ledger is ignored (replayed from scratch)."""
    path, k = session_keys
    cfg = ServiceConfig(home=tmp_path, keys=path)
    beats = 262
    with TestClient(create_app(cfg)) as c:
        r = c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                   headers=_h(k.writer))
        assert r.status_code == 201, r.text
        rng = np.random.default_rng(1)
        returns = [{"date": day(i), "return": float(rng.normal(0, 0.01))} for i in range(beats)]
        r = c.post("/v1/portfolios/book/returns", json={"returns": returns},
                   headers=_h(k.writer))
        assert r.status_code == 201, r.text
        before = _arbiter(c).checkpoint_state("book")
    with TestClient(create_app(cfg)) as c:
        desk = c.app.state.desk  # type: ignore[attr-defined]
        assert desk.observing.restored == {("book", 0): 250}  # restored at its checkpoint
        assert _arbiter(c).checkpoint_state("book") == before == _from_scratch(tmp_path)
        r = c.post("/v1/portfolios/book/returns",
                   json={"returns": [{"date": day(beats), "return": -0.03}]},
                   headers=_h(k.writer))
        assert r.status_code == 201 and r.json()["results"][0]["seq"] == beats + 1
        after = _arbiter(c).checkpoint_state("book")
    assert after == _from_scratch(tmp_path)  # and beats on from there as if never stopped
    from swarmvar.evolution import Database, StateStore

    db = Database(tmp_path)  # a checkpoint of another ledger: its tick's hash differs
    try:
        store = StateStore(db)
        key = f"{OBSERVER_PREFIX}arbiter:book"
        marked = CheckpointMark.split(store.get(key))
        assert marked is not None and marked[0].seq == 250
        forged = CheckpointMark(marked[0].seq, marked[0].index, "00" * 32)
        store.put(key, forged.line() + b"\n" + marked[1], now=0.0)
    finally:
        db.close()
    with TestClient(create_app(cfg)) as c:
        assert c.app.state.desk.observing.restored == {}  # type: ignore[attr-defined]
        assert _arbiter(c).checkpoint_state("book") == after


def _checkpointed(ledger: Ledger, home: Path, seed: int, value: Any) -> Arbiter:
    """Portfolio "s" on a desk with an arbiter, 60 days of history and 7 beats ingested
    (``value(rng, i)`` the i-th return), checkpointed every 3 beats; its arbiter."""
    rng = np.random.default_rng(seed)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    a = Arbiter(record_decisions=False)
    desk = Desk(ledger, home, observers=(a,), checkpoint_every=3)
    desk.create("s", hist, key_id="k")
    desk.ingest("s", [DatedReturn(date(2023, 1, 1) + timedelta(days=i), value(rng, i))
                      for i in range(7)], key_id="k")
    return a


def test_a_corrupted_checkpoint_is_ignored_not_fatal(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        a = _checkpointed(ledger, tmp_path, 2, lambda rng, i: 0.001 * i)
        want = a.checkpoint_state("s")
        from swarmvar.evolution import Database, StateStore

        db = Database(tmp_path)
        try:
            store = StateStore(db)
            blob = store.get(f"{OBSERVER_PREFIX}arbiter:s")
            assert _seq_of(blob) == 6
            store.put(f"{OBSERVER_PREFIX}arbiter:s", blob[:-1] + bytes([blob[-1] ^ 1]), now=0.0)
        finally:
            db.close()
        b = Arbiter(record_decisions=False)
        again = Desk(ledger, tmp_path, observers=(b,), checkpoint_every=3)
        assert again.observing.restored == {} and b.checkpoint_state("s") == want


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.integers(-3, 3), st.booleans(), st.floats(allow_nan=True), st.none(),
                 st.text(max_size=2)))
def test_checkpoint_every_is_checked(value: Any) -> None:
    with Ledger.in_memory() as ledger:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            assert Desk(ledger, "/nonexistent-home", checkpoint_every=value).checkpoint_every \
                == value
        else:
            with pytest.raises(InvalidParameter, match="checkpoint_every"):
                Desk(ledger, "/nonexistent-home", checkpoint_every=value)


def _seq_of(blob: bytes) -> int:
    marked = CheckpointMark.split(blob)
    assert marked is not None
    return marked[0].seq


def _current_and_previous(store: Any, key: str) -> tuple[bytes, bytes]:
    v = store.ref(key).version
    return store.get(key), store.get(key, v - 1)


def _put(home: Path, states: dict[str, bytes]) -> None:
    from swarmvar.evolution import Database, StateStore

    db = Database(home)
    try:
        StateStore(db).put_many(states, now=0.0)
    finally:
        db.close()


def test_each_state_is_restored_at_its_own_mark(tmp_path: Path) -> None:
    """A state and the beat it was taken at are one stored value: a restarting desk restores
    the arbiter at its state's own mark, whatever a marker key of an older desk says (from
    another checkpoint: a worker restarting while another wrote the next one), and replays
    the beats after it - to the state of an uninterrupted arbiter. Control: a state whose
    mark names another beat than the one it was taken at ends elsewhere, so the match is no
    accident. A state without a mark (an older desk's format) is not restored: every beat
    replays."""
    from swarmvar.evolution import Database, StateStore

    with Ledger.open(tmp_path) as ledger:
        a = _checkpointed(ledger, tmp_path, 3, lambda rng, i: float(rng.normal(0, 0.02)))
        want = a.checkpoint_state("s")
        state_key, old_marker = f"{OBSERVER_PREFIX}arbiter:s", "desk-mark:s"
        db = Database(tmp_path)
        try:
            state6, state3 = _current_and_previous(StateStore(db), state_key)
        finally:
            db.close()
        assert (_seq_of(state3), _seq_of(state6)) == (3, 6)
        marks = {n: CheckpointMark.split(b) for n, b in ((3, state3), (6, state6))}

        def restarted() -> tuple[Arbiter, dict[tuple[str, int], int]]:
            b = Arbiter(record_decisions=False)
            again = Desk(ledger, tmp_path, observers=(b,), checkpoint_every=3)
            return b, again.observing.restored

        for state, other in ((state6, 3), (state3, 6)):
            mark = marks[other]
            assert mark is not None
            _put(tmp_path, {state_key: state, old_marker: mark[0].line()})
            b, restored = restarted()
            assert restored == {("s", 0): _seq_of(state)}
            assert b.checkpoint_state("s") == want
        m3, m6 = marks[3], marks[6]
        assert m3 is not None and m6 is not None
        _put(tmp_path, {state_key: m3[0].line() + b"\n" + m6[1]})  # mark 3, taken at 6
        b, restored = restarted()
        assert restored == {("s", 0): 3} and b.checkpoint_state("s") != want
        _put(tmp_path, {state_key: m6[1]})  # no mark line
        b, restored = restarted()
        assert restored == {} and b.checkpoint_state("s") == want


class _Seen:
    """A stateful observer noting the beats it saw, in order; it decides on ``decide_at``
    (so the desk appends a decision), and meanwhile ``meanwhile()`` runs (another worker)."""

    state_key = "seen"

    def __init__(self, decide_at: int, meanwhile: Any) -> None:
        self.seen: list[int] = []
        self.decide_at, self.meanwhile = decide_at, meanwhile

    def observe(self, report: BeatReport) -> tuple[Decision, ...]:
        self.seen.append(report.seq)
        if report.seq != self.decide_at:
            return ()
        self.meanwhile()
        return (Decision(action=Action.NOOP, portfolio=report.portfolio, seq=report.seq,
                         agents=(), signals={}, threat=0.0, reason="test", weights={}),)

    def excluded(self, portfolio: str) -> frozenset[str]:
        return frozenset()

    def weight_factors(self, portfolio: str) -> dict[str, float]:
        return {}

    def checkpoint_state(self, portfolio: str) -> bytes:
        return json.dumps(self.seen).encode()

    def restore_state(self, portfolio: str, blob: bytes, agents: Any = ()) -> None:
        self.seen = list(json.loads(blob))


def test_a_batchs_beats_reach_the_observers_in_order(tmp_path: Path) -> None:
    """Another worker records a later beat of the portfolio while this one is recording its
    batch's decisions: the observers still see this batch's beats first, and a checkpoint
    taken within the batch holds exactly the beats up to its marker."""
    from swarmvar.evolution import Database, StateStore

    rng = np.random.default_rng(4)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    later = [DatedReturn(date(2023, 1, 1) + timedelta(days=i), 0.001 * i) for i in range(4)]
    with Ledger.open(tmp_path) as ledger, Ledger.open(tmp_path) as other_ledger:
        seen = _Seen(1, lambda: Desk(other_ledger, tmp_path).ingest("s", later[3:],
                                                                    key_id="k2"))
        desk = Desk(ledger, tmp_path, observers=(seen,), checkpoint_every=2)
        desk.create("s", hist, key_id="k")
        desk.ingest("s", later[:3], key_id="k")
        assert seen.seen == [1, 2, 3, 4]
        assert [d.seq for d in desk.decisions("s")] == [1]
        db = Database(tmp_path)
        try:
            store = StateStore(db)
            marked = CheckpointMark.split(store.get(f"{OBSERVER_PREFIX}seen:s"))
        finally:
            db.close()
        assert marked is not None and marked[0].seq == 2 and json.loads(marked[1]) == [1, 2]


class _Seen2(_Seen):
    state_key = "seen2"


def test_states_from_two_checkpoints_each_replay_in_full(tmp_path: Path) -> None:
    """Two observers' states read across two checkpoints (one from beat 6, the other from
    beat 3, as a worker restarting while another writes could read them): each is restored
    at its own mark and sees exactly the beats after it - none twice, none missed."""
    from swarmvar.evolution import Database, StateStore

    rng = np.random.default_rng(8)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    beats = [DatedReturn(date(2023, 1, 1) + timedelta(days=i), 0.001 * i) for i in range(7)]
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(_Seen(0, None), _Seen2(0, None)),
                    checkpoint_every=3)
        desk.create("s", hist, key_id="k")
        desk.ingest("s", beats, key_id="k")
        key2 = f"{OBSERVER_PREFIX}seen2:s"
        db = Database(tmp_path)
        try:
            store = StateStore(db)
            _, older = _current_and_previous(store, key2)
            store.put(key2, older, now=0.0)  # observer 2 from the checkpoint at beat 3
            assert _seq_of(store.get(f"{OBSERVER_PREFIX}seen:s")) == 6
        finally:
            db.close()
        a, b = _Seen(0, None), _Seen2(0, None)
        again = Desk(ledger, tmp_path, observers=(a, b), checkpoint_every=3)
        assert again.observing.restored == {("s", 0): 6, ("s", 1): 3}
        assert a.seen == b.seen == list(range(1, 8))


_VALUES = st.one_of(st.integers(-2, 2**40), st.booleans(), st.none(), st.floats(-1, 9),
                   st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.dictionaries(st.sampled_from(["seq", "index", "hash", "x"]),
                                                _VALUES), st.binary(max_size=50))
@example(b"", {"seq": 3, "index": 9, "hash": "ab" * 32}, b"{}")
@example(b"", {"seq": True, "index": 9, "hash": "ab" * 32}, b"{}")
@example(b"", {"seq": 3, "index": 9, "hash": "AB" * 32}, b"{}")
def test_a_checkpoint_mark_reads_back_and_anything_else_is_no_mark(
        junk: bytes, fields: dict[str, Any], state: bytes) -> None:
    """A state's first line is its mark only when it is exactly {seq, index, hash} with
    whole numbers >= 0 and a 64-digit lowercase hex hash; anything else is no mark (the
    state is not restored), never an exception."""
    head = json.dumps(fields).encode()
    got = CheckpointMark.split(head + b"\n" + state)
    ok = (set(fields) == {"seq", "index", "hash"}
          and all(type(fields[k]) is int and fields[k] >= 0 for k in ("seq", "index"))
          and isinstance(fields["hash"], str) and len(fields["hash"]) == 64
          and fields["hash"] == fields["hash"].lower())
    assert got == ((CheckpointMark(fields["seq"], fields["index"], fields["hash"]), state)
                   if ok else None)
    if got is not None:
        assert CheckpointMark.split(got[0].line() + b"\n" + state) == got
    assert CheckpointMark.split(head) is None  # a mark with no state after it
    CheckpointMark.split(junk)  # never raises
