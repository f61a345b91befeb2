"""The damage memo's bounds: how often one file is checked (the cap), how long an answer
is kept (the maximum age), which answers are kept at all (damage, not a passing error),
and which WAL counts for a symbolic link.

Clocks are injected (``clock`` for the settle rule, ``monotonic`` for the cap and the age),
so no test waits for the 5 s gap or the 10-minute age.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from swarmvar.errors import LedgerCorrupted
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger import damage as damage_module
from swarmvar.ledger.damage import (
    GAP_FACTOR,
    MAX_AGE_NS,
    MIN_GAP_NS,
    DamageMemo,
    file_state,
    quick_check,
)

S = 1_000_000_000  # ns per second


class FakeClock:
    """A monotonic clock in ns that moves only when told (or by ``step`` per read)."""

    def __init__(self) -> None:
        self.now = 10**12
        self.step = 0

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def _home(tmp_path: Path, n: int = 150) -> Path:
    home = tmp_path / "home"
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100}) for i in range(n)])
    return home


def _settled_wall(path: Path) -> int:
    """A wall clock reading at which ``path``'s present state counts as settled."""
    state = file_state(path)
    assert state is not None
    return state.newest_ns + 10 * S


def test_a_file_changing_at_a_writers_rate_is_checked_once_per_gap(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """A head every 0.25 s and an append every beat: one check per 5 s, not one per
    head; damage written meanwhile is refused at the first head past the gap."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    mono = FakeClock()
    memo = DamageMemo(monotonic=mono)
    assert (memo.min_gap_ns, memo.gap_factor) == (MIN_GAP_NS, GAP_FACTOR) == (5 * S, 20)
    with Ledger(home, create=False, damage_memo=memo) as led:
        sizes = []
        for beat in range(16):  # 4 s of heads at 0.25 s, an append before each
            led.add_entry(EntryKind.ESTIMATE, {"beat": beat})
            sizes.append(led.signed_head().size)
            mono.now += S // 4
        assert sizes == list(range(152, 168)) and len(calls) == 1
        smash_page(path)  # at 4 s: within the gap, the last answer stands (the trade-off)
        assert led.damage() is None and len(calls) == 1
        mono.now += S  # 5 s after the last check
        with pytest.raises(LedgerCorrupted, match="no head was signed"):
            led.signed_head()
        assert len(calls) == 2
        mono.now += S  # a damaged answer also stands within the gap (no new check)
        with pytest.raises(LedgerCorrupted):
            led.signed_head()
        assert len(calls) == 2


def test_the_gap_grows_with_the_checks_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that took 1 s holds for 20 s (its time stays ~5% of the total)."""
    home = _home(tmp_path)
    mono = FakeClock()
    ran: list[int] = []
    real = damage_module.quick_check

    def slow(p: Path, timeout: float = 60.0) -> str | None:
        ran.append(mono.now)
        mono.now += S  # the check "takes" 1 s
        return real(p, timeout)

    monkeypatch.setattr(damage_module, "quick_check", slow)
    memo = DamageMemo(monotonic=mono)
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None and len(ran) == 1
        for _ in range(3):  # at +6, +12, +18 s after its start: within 20 x 1 s
            mono.now += 6 * S
            led.add_entry(EntryKind.ESTIMATE, {"x": 1})
            assert led.damage() is None
        assert len(ran) == 1
        mono.now += 3 * S  # +21 s
        assert led.damage() is None and len(ran) == 2


def test_a_replaced_file_is_checked_within_the_gap(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(path.read_bytes())
    smash_page(copy)
    memo = DamageMemo(monotonic=FakeClock())
    assert memo.damage(path) is None and len(calls) == 1
    os.replace(copy, path)  # another inode: the last answer was about another file
    assert memo.damage(path) is not None and len(calls) == 2


@pytest.mark.parametrize("capped", [True, False])
def test_waiting_callers_share_one_check_through_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capped: bool
) -> None:
    """Callers waiting at a file's gate get the cap's answer (the check that just ran);
    with the cap off (and nothing settled, so nothing memoised) each runs its own."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    inside, release = threading.Event(), threading.Event()
    ran: list[Path] = []
    real = damage_module.quick_check

    def held(p: Path, timeout: float = 60.0) -> str | None:
        ran.append(p)
        inside.set()
        release.wait(5.0)
        return real(p, timeout)

    monkeypatch.setattr(damage_module, "quick_check", held)
    memo = (DamageMemo(clock=lambda: 0) if capped
            else DamageMemo(clock=lambda: 0, min_gap_ns=0, gap_factor=0))
    answers: list[str | None] = []
    threads = [threading.Thread(target=lambda: answers.append(memo.damage(path)))
               for _ in range(3)]
    threads[0].start()
    assert inside.wait(5.0)
    for t in threads[1:]:
        t.start()
    threading.Event().wait(0.1)  # the other two reach the file's gate
    release.set()
    for t in threads:
        t.join(10.0)
    expected = 1 if capped else 3
    assert answers == [None, None, None] and len(ran) == expected and memo.checks == expected


def test_verify_chain_checks_now_past_the_memo_and_the_cap(
    tmp_path: Path, calls: list[Path]
) -> None:
    """`ledger verify` asked for a check: it runs quick_check even when the memo's cap
    would answer with the check of moments ago."""
    home = _home(tmp_path)
    memo = DamageMemo(monotonic=FakeClock())  # the clock never moves: always within the gap
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None and len(calls) == 1
        led.add_entry(EntryKind.ESTIMATE, {"x": 1})
        assert led.damage() is None and len(calls) == 1  # the cap answered
        assert led.verify_chain().ok and len(calls) == 2
        assert memo.checks == 2


def test_damage_a_verification_finds_is_refused_at_once(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """Within the cap's gap a head would sign over new damage (the trade-off); once
    `verify` has found it, the next head in the process refuses, with no new check."""
    home = _home(tmp_path)
    memo = DamageMemo(monotonic=FakeClock())  # the clock never moves: always within the gap
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None and len(calls) == 1
        smash_page(home / "ledger.sqlite")
        assert led.damage() is None and len(calls) == 1  # the cap: the trade-off
        found = led.verify_chain()
        assert not found.ok and found.reason is not None and len(calls) == 2
        assert led.damage() == found.reason and len(calls) == 2  # verify's answer, kept
        with pytest.raises(LedgerCorrupted, match="no head was signed"):
            led.signed_head()
        assert len(calls) == 2


def test_a_memoised_answer_is_checked_again_after_the_maximum_age(
    tmp_path: Path, calls: list[Path]
) -> None:
    """An unchanged file is re-read every 10 minutes (damage its stat cannot show)."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    wall, mono = _settled_wall(path), FakeClock()
    memo = DamageMemo(clock=lambda: wall, monotonic=mono)
    assert memo.damage(path) is None and len(calls) == 1
    mono.now += MAX_AGE_NS - S
    assert memo.damage(path) is None and len(calls) == 1  # memoised, 9:59 old
    mono.now += 2 * S
    assert memo.damage(path) is None and len(calls) == 2  # 10:01: read again
    assert memo.damage(path) is None and len(calls) == 2  # and memoised again


@pytest.mark.parametrize("ask", ["memo", "store"])
def test_a_symlinked_ledgers_wal_is_the_targets(tmp_path: Path, ask: str) -> None:
    """SQLite keeps the WAL beside the link's target: damage written there is seen,
    whether the memo is given the link (it resolves it) or the store's resolved path."""
    home = _home(tmp_path)
    real = tmp_path / "real.sqlite"
    os.replace(home / "ledger.sqlite", real)
    link = home / "ledger.sqlite"
    os.symlink(real, link)
    far = _settled_wall(real) + 10**6 * S  # every state counts as settled: all memoised
    memo = DamageMemo(clock=lambda: far, min_gap_ns=0, gap_factor=0)
    with Ledger(home, create=False, damage_memo=memo) as led:
        check = (lambda: memo.damage(link)) if ask == "memo" else led.damage
        assert check() is None and memo.checks == 1
        assert check() is None and memo.checks == 1  # memoised
        before = file_state(real)
        led.add_entries([(EntryKind.ESTIMATE, {"j": i, "pad": "z" * 100}) for i in range(100)])
        wal = real.with_name(real.name + "-wal")
        assert wal.exists() and not (home / "ledger.sqlite-wal").exists()
        assert file_state(real) != before  # the append is a new state (in the WAL)
        data = bytearray(wal.read_bytes())
        for off in range(32 + 24, len(data), 4096 + 24):  # each frame's page header
            data[off + 3 : off + 8] = b"\xff" * 5
        with open(wal, "r+b") as fh:
            fh.write(data)
        found = check()
        assert found is not None and found == quick_check(real) and memo.checks == 2


def test_a_link_pointed_elsewhere_is_followed_again(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """The memo remembers where a link led; pointed at a damaged copy since, it checks
    the copy (two stats see that the link no longer names the file it remembered)."""
    home = _home(tmp_path)
    real, copy = tmp_path / "real.sqlite", tmp_path / "copy.sqlite"
    os.replace(home / "ledger.sqlite", real)
    copy.write_bytes(real.read_bytes())
    smash_page(copy)
    link = tmp_path / "link.sqlite"
    os.symlink(real, link)
    memo = DamageMemo(clock=lambda: _settled_wall(copy) + S, monotonic=FakeClock())
    assert memo.damage(link) is None and memo.damage(link) is None and calls == [real]
    link.unlink()
    os.symlink(copy, link)
    found = memo.damage(link)
    assert found is not None and str(copy) in found and calls == [real, copy]


def test_the_stores_resolved_path_costs_no_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head through the store resolves nothing: its path, resolved when it opened,
    is remembered as its own resolution after the first check (and the answer
    memoised: the file is settled)."""
    home = _home(tmp_path, n=5)
    path = home / "ledger.sqlite"
    memo = DamageMemo(clock=lambda: _settled_wall(path), monotonic=FakeClock())
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None
        resolved: list[Path] = []
        real = Path.resolve

        def counting(self: Path, strict: bool = False) -> Path:
            resolved.append(self)
            return real(self, strict)

        monkeypatch.setattr(Path, "resolve", counting)
        for _ in range(3):
            assert led.damage() is None
        assert resolved == [] and memo.checks == 1


def test_a_writers_open_closes_the_file_when_the_check_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's open checks for damage; a check that fails for another reason (a lock
    held past the timeout) is raised, and the ledger file is closed again."""
    home = _home(tmp_path, n=5)
    path = (home / "ledger.sqlite").resolve()

    def open_fds() -> int:
        fds = Path("/proc/self/fd")
        found = 0
        for fd in fds.iterdir():
            try:
                found += os.readlink(fd).startswith(str(path))  # the file, -wal, -shm
            except OSError:  # the listing's own descriptor, closed by now
                pass
        return found

    def locked(p: Path, timeout: float = 60.0) -> str | None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(damage_module, "quick_check", locked)
    before = open_fds()
    with pytest.raises(sqlite3.OperationalError, match="locked") as err:
        Ledger(home, damage_memo=DamageMemo())
    # err (the traceback, kept alive here) would keep a ledger left open from being collected
    assert "locked" in str(err.value) and open_fds() == before
    with Ledger(home, create=False, damage_memo=DamageMemo()) as led:
        assert open_fds() > before  # the count sees an open ledger
        assert led.size == 6


def test_an_error_that_is_not_damage_is_raised_and_never_memoised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of descriptors, SQLite says "unable to open database file": raised, not
    remembered; the next check (descriptors back) says whole."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    memo = DamageMemo(clock=lambda: _settled_wall(path), monotonic=FakeClock())

    def no_fd(p: Path, timeout: float = 5.0) -> sqlite3.Connection:
        exc = sqlite3.OperationalError("unable to open database file")
        exc.sqlite_errorcode = 14  # SQLITE_CANTOPEN
        raise exc

    with monkeypatch.context() as m:
        m.setattr(damage_module, "open_read_only", no_fd)
        for _ in range(2):
            with pytest.raises(sqlite3.OperationalError, match="unable to open"):
                memo.damage(path)
    assert memo.damage(path) is None and memo.checks == 1


@pytest.mark.parametrize(("code", "damaged"), [(11, True), (26, True), (267, True),
                                                (10, False), (5, False), (None, False)])
def test_only_errors_sqlite_classes_as_damage_are_memoised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int | None, damaged: bool
) -> None:
    """SQLITE_CORRUPT (11, and extended codes like 267), SQLITE_NOTADB (26): damage,
    memoised; an I/O error (10), busy (5), or an error without a code: raised."""
    home = _home(tmp_path, n=5)
    path = home / "ledger.sqlite"
    memo = DamageMemo(clock=lambda: _settled_wall(path), monotonic=FakeClock())
    raised = []

    def failing(p: Path, timeout: float = 5.0) -> sqlite3.Connection:
        exc = sqlite3.DatabaseError("it failed")
        if code is not None:
            exc.sqlite_errorcode = code
        raised.append(exc)
        raise exc

    with monkeypatch.context() as m:
        m.setattr(damage_module, "open_read_only", failing)
        if damaged:
            found = memo.damage(path)
            assert found is not None and str(path) in found and "it failed" in found
        else:
            with pytest.raises(sqlite3.DatabaseError, match="it failed"):
                memo.damage(path)
    after = memo.damage(path)  # the real file, whole: memoised damage stays, errors don't
    assert (after is not None) is damaged and len(raised) == 1


def test_a_ledger_file_gone_while_open_is_refused(tmp_path: Path) -> None:
    home = _home(tmp_path)
    memo = DamageMemo()
    with Ledger(home, create=False, damage_memo=memo) as led:
        os.replace(home / "ledger.sqlite", tmp_path / "moved.sqlite")
        with pytest.raises(LedgerCorrupted, match="is gone"):
            led.signed_head()


def test_a_real_lock_is_raised_after_the_timeout_and_not_memoised(tmp_path: Path) -> None:
    """Another connection holding the file exclusively: the check gives up after its
    timeout (a lock says nothing about damage), and the file is checked once free."""
    home = _home(tmp_path, n=5)
    path = home / "ledger.sqlite"
    memo = DamageMemo(clock=lambda: _settled_wall(path), monotonic=FakeClock())
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO meta VALUES ('held', 'by the test')")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            memo.damage(path, timeout=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert memo.checks == 0
    assert memo.damage(path, timeout=0.05) is None and memo.checks == 1
