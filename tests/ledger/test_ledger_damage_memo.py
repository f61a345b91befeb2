"""SQLite's damage check runs once per on-disk state, and every signed head passes it.

``quick_check`` calls are counted by replacing ``swarmvar.ledger.damage.quick_check``
with a counting wrapper around the real one. Damage is written with plain file
writes (bytes of a b-tree page header overwritten) while a ledger stays open,
as a disk fault or another program would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.errors import LedgerCorrupted
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger import damage as damage_module
from swarmvar.ledger.damage import DamageMemo, file_state

#: 50 ms: far above a file-system clock tick, so a test that waits past it has a
#: memoisable state; small enough that the tests need not wait 2 s (the default).
SETTLE_NS = 50_000_000


def _uncapped(**kw: int) -> DamageMemo:
    """A memo without the per-file cap: every new state of a file is checked at once
    (what these tests of the per-state rules need; the cap is tested on its own)."""
    return DamageMemo(settle_ns=SETTLE_NS, min_gap_ns=0, gap_factor=0, **kw)


def _home(tmp_path: Path, n: int = 150) -> Path:
    home = tmp_path / "home"
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100}) for i in range(n)])
    return home


def _settle() -> None:
    time.sleep(2 * SETTLE_NS / 1e9)


def test_a_second_check_of_an_unchanged_file_runs_no_quick_check(
    tmp_path: Path, calls: list[Path]
) -> None:
    home = _home(tmp_path)
    memo = DamageMemo(settle_ns=SETTLE_NS)
    _settle()
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None and len(calls) == 1
        assert led.damage() is None and len(calls) == 1
        head = led.signed_head()  # checks too: memoised
        assert head.size == 151 and len(calls) == 1
        # another ledger object on the same file (what one CLI command does 2-3 times)
        with Ledger(home, damage_memo=memo) as again:  # a writer: checked at open
            assert again.signed_head().size == 151
        assert len(calls) == 1 and memo.checks == 1


def test_a_changed_file_is_checked_again_and_new_damage_is_found(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    memo = _uncapped()
    _settle()
    with Ledger(home, create=False, damage_memo=memo) as led:
        assert led.damage() is None and len(calls) == 1
        led.add_entry(EntryKind.ESTIMATE, {"i": "one more"})  # the WAL grows: a new state
        assert led.damage() is None and len(calls) == 2
        _settle()
        assert led.damage() is None and len(calls) == 3  # memoised now (settled)
        assert led.damage() is None and len(calls) == 3
        before = path.read_bytes()
        smash_page(path)  # while this ledger stays open
        found = led.damage()
        assert len(calls) == 4 and found is not None and str(path) in found
        with pytest.raises(LedgerCorrupted) as err:
            led.signed_head()
        assert "no head was signed over it" in str(err.value)
        assert "btreeInitPage" in str(err.value) or "malformed" in str(err.value)
    assert path.read_bytes() != before  # the damage stays (nothing repaired it)


def test_a_file_written_within_the_settle_time_is_checked_every_time(
    tmp_path: Path, calls: list[Path]
) -> None:
    """Racily recent states are not memoised: a write in the same timestamp tick as the
    last one could leave the stat unchanged."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    state = file_state(path)
    assert state is not None
    newest = state.newest_ns
    recent = DamageMemo(settle_ns=10**9, clock=lambda: newest + 10**9 - 1, min_gap_ns=0,
                        gap_factor=0)
    for _ in range(3):
        assert recent.damage(path) is None
    assert len(calls) == 3
    settled = DamageMemo(settle_ns=10**9, clock=lambda: newest + 10**9 + 1)
    for _ in range(3):
        assert settled.damage(path) is None
    assert len(calls) == 4


def test_a_replaced_file_is_checked_again(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """Same path, same size, another inode: a damaged copy moved into place is found."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    smash_page(copy)
    memo = DamageMemo(settle_ns=SETTLE_NS)  # the cap never applies to another file (inode)
    _settle()
    assert memo.damage(path) is None and memo.damage(path) is None and len(calls) == 1
    os.replace(copy, path)
    assert memo.damage(path) is not None and len(calls) == 2


def test_the_memo_is_bounded(tmp_path: Path, calls: list[Path]) -> None:
    memo = _uncapped(capacity=2)
    paths = []
    for k in range(3):
        home = _home(tmp_path / f"h{k}", n=2)
        paths.append(home / "ledger.sqlite")
    _settle()
    for p in paths:
        assert memo.damage(p) is None
    assert len(calls) == 3
    assert memo.damage(paths[2]) is None and memo.damage(paths[1]) is None
    assert len(calls) == 3
    assert memo.damage(paths[0]) is None  # the least recently used was dropped
    assert len(calls) == 4
    memo.forget()
    assert memo.damage(paths[0]) is None and len(calls) == 5


def test_signed_heads_of_a_long_open_ledger_refuse_damage_written_after_open(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """What the service (GET /v1/ledger/head) and the mesh do: one ledger open for hours,
    heads signed over and over. Nothing is signed over damage written after open, and
    once the damaged state has settled the refusal is memoised (no check per head)."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    memo = _uncapped()
    with Ledger(home, create=False, damage_memo=memo) as led:
        first = led.signed_head()
        assert first.size == 151
        led.add_entry(EntryKind.ESTIMATE, {"i": "later"})
        assert led.signed_head().size == 152
        assert len(calls) == 2
        smash_page(path)
        _settle()
        for k in range(3):  # the first refusal checks; the next two are memoised
            with pytest.raises(LedgerCorrupted) as err:
                led.signed_head()
            assert str(path) in str(err.value) and "no head was signed" in str(err.value)
            assert len(calls) == 3 and memo.checks == 3, k


def test_memory_ledgers_have_no_file_check(calls: list[Path]) -> None:
    led = Ledger.in_memory()
    assert led.damage() is None and led.signed_head().size == 1
    assert calls == []


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("column", ["data", "kind", "timestamp"])
def test_verify_names_an_entry_whose_text_is_no_longer_utf8(
    tmp_path: Path, processes: int, column: str
) -> None:
    """Bytes changed inside entry 100's text make it undecodable: verify names entry 100
    (in one process and split over two), and reading it says which entry, not a traceback;
    the entries before it still read."""
    home = tmp_path / "home"
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "tag": f"<{i:04d}>"}) for i in range(150)])
        stamp = led.entry(100).timestamp
    path = home / "ledger.sqlite"
    data = bytearray(path.read_bytes())
    tag = data.index(b"<0099>")  # entry 100 holds i = 99; its record: timestamp, kind, data
    if column == "data":
        at = tag
    elif column == "kind":
        at = data.rindex(b"estimate", 0, tag)
    else:
        at = data.rindex(stamp.encode(), 0, tag)
    data[at + 1] = 0xFF  # never valid in UTF-8
    path.write_bytes(bytes(data))
    with Ledger(home, create=False) as led:
        result = led.verify_chain(processes=processes)
        assert not result.ok and result.first_bad == 100 and result.size == 100, result
        assert column in (result.reason or "") and "UTF-8" in (result.reason or "")
        assert len(list(led.entries(0, 100))) == 100
        with pytest.raises(LedgerCorrupted, match="entry 100: its"):
            led.entry(100)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(["append", "smash", "unused", "field", "restore", "wait"]),
                    min_size=1, max_size=6))
def test_the_memo_answers_as_a_fresh_check_would(tmp_path: Path, ops: list[str]) -> None:
    """Any sequence of appends, in-place same-size overwrites (a page header, unused space,
    an entry's bytes), restores and waits: after each, the memo's answer is the one
    quick_check gives on the file as it is now."""
    home = Path(tempfile.mkdtemp(dir=tmp_path)) / "home"
    with Ledger(home) as led:
        led.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100}) for i in range(150)])
    path = home / "ledger.sqlite"
    pristine = path.read_bytes()
    memo = _uncapped()
    with Ledger(home, create=False, damage_memo=memo) as led:
        for op in ops:
            if op == "append":
                try:
                    led.add_entry(EntryKind.ESTIMATE, {"op": "append"})
                except LedgerCorrupted:
                    pass  # appending to a damaged file may fail; the file is what it is
            elif op == "wait":
                _settle()
            else:
                at, new = {
                    "smash": (2 * 4096 + 3, b"\xff" * 5),  # page 3's header
                    "unused": (3 * 4096 + 200, b"\xa5" * 5),  # page 4: an interior page's gap
                    "field": (pristine.index(b"y" * 100) + 10, b"zzzzz"),  # inside an entry
                    "restore": (0, pristine),
                }[op]
                with open(path, "r+b") as fh:
                    fh.seek(at)
                    fh.write(new)
            assert memo.damage(path) == damage_module.quick_check(path), ops


def _put_back(path: Path, was: os.stat_result) -> None:
    """Give ``path`` the access and modification times of ``was`` again (``os.utime``), as
    ``touch -d`` or a copy keeping times would; check that its size and mtime are equal."""
    os.utime(path, ns=(was.st_atime_ns, was.st_mtime_ns))
    now = os.stat(path)
    assert (now.st_size, now.st_mtime_ns) == (was.st_size, was.st_mtime_ns)


def test_damage_written_in_place_with_the_size_and_mtime_put_back_is_found(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """A whole, memoised state; the file damaged in place (same inode, same size) and its
    mtime put back: its change time, in the key, moved, so the damage is found."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    memo = _uncapped()
    _settle()
    assert memo.damage(path) is None and memo.damage(path) is None and len(calls) == 1
    was = os.stat(path)
    smash_page(path)
    _put_back(path, was)
    assert os.stat(path).st_ino == was.st_ino
    found = memo.damage(path)
    assert found is not None and str(path) in found and len(calls) == 2


def test_a_damaged_file_rewritten_whole_with_the_size_and_mtime_put_back_is_whole(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path]
) -> None:
    """A damaged, memoised state; the healthy bytes written back in place (``cp`` over
    it: same inode) with its mtime put back: no longer damaged. And a healthy copy with
    the same size and mtime moved into place (another inode), even with the cap on."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    pristine = path.read_bytes()
    smash_page(path)
    was = os.stat(path)
    memo = _uncapped()
    _settle()
    assert memo.damage(path) is not None and memo.damage(path) is not None
    assert len(calls) == 1  # damage is memoised
    path.write_bytes(pristine)
    _put_back(path, was)
    assert os.stat(path).st_ino == was.st_ino
    assert memo.damage(path) is None and len(calls) == 2
    smash_page(path)  # damaged again, then a healthy copy moved into place
    capped = DamageMemo(settle_ns=SETTLE_NS)
    _settle()
    was = os.stat(path)
    assert capped.damage(path) is not None and len(calls) == 3
    copy = home / "copy.sqlite"
    copy.write_bytes(pristine)
    _put_back(copy, was)
    os.replace(copy, path)
    assert capped.damage(path) is None and len(calls) == 4


def test_damage_in_the_same_timestamp_tick_is_found_by_the_settle_rule(
    tmp_path: Path, smash_page: Callable[[Path], None], calls: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file system whose times are too coarse to move (every stat the same, as a write
    in the same tick leaves it): the state just written is never memoised, so damage
    written after a check that found the file whole is found by the next check; only
    once the state is older than the settle time is its answer kept."""
    home = _home(tmp_path)
    path = home / "ledger.sqlite"
    frozen = file_state(path)
    assert frozen is not None
    monkeypatch.setattr(damage_module, "file_state", lambda _path: frozen)
    now = frozen.newest_ns + SETTLE_NS - 1  # within the settle time of the frozen times
    memo = DamageMemo(settle_ns=SETTLE_NS, clock=lambda: now, min_gap_ns=0, gap_factor=0)
    assert memo.damage(path) is None and len(calls) == 1
    smash_page(path)
    assert memo.damage(path) is not None and len(calls) == 2
    settled = DamageMemo(settle_ns=SETTLE_NS, clock=lambda: now + 2, min_gap_ns=0,
                         gap_factor=0)
    assert settled.damage(path) is not None and settled.damage(path) is not None
    assert len(calls) == 3  # memoised: a real file's times move by then (SETTLE_NS)


def test_why_the_wal_change_time_is_not_in_the_key(tmp_path: Path) -> None:
    """SQLite running as root ``fchown``s the WAL each time a connection opens it, so its
    change time moves with nothing written (size and mtime unchanged): with it in the key
    every check's own read-only connection would make a new state, and nothing would be
    memoised. (If this fails, SQLite stopped doing so: the WAL's ctime can join the key.)"""
    if os.geteuid() != 0:
        pytest.skip("SQLite calls fchown on the WAL only when running as root")
    home = tmp_path / "home"
    with Ledger(home) as led:
        led.add_entry(EntryKind.ESTIMATE, {"i": 1})  # a WAL with frames, kept open
        wal = home / "ledger.sqlite-wal"
        before = os.stat(wal)
        time.sleep(0.05)  # past a file-system clock tick
        assert damage_module.quick_check(home / "ledger.sqlite") is None
        after = os.stat(wal)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns > before.st_ctime_ns
