"""Crash safety (SIGKILL mid-append) and concurrent appenders (threads and processes)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from swarmvar.ledger import EntryKind, Ledger

CRASH_CHILD = """
import sys
from swarmvar.ledger import EntryKind, Ledger

ledger = Ledger(sys.argv[1])
run = sys.argv[2]
i = 0
while True:
    if i % 3 == 0:  # a batch of 250 in one transaction (several INSERT statements)
        batch = [(EntryKind.PULSE, {"run": run, "n": i, "k": k}) for k in range(250)]
        got = ledger.add_entries(batch)
        lines = "".join(f"{index} {i} {k}\\n" for k, index in enumerate(got))
    else:
        entry = ledger.add_entry(EntryKind.PULSE, {"run": run, "n": i, "k": 0})
        lines = f"{entry.index} {i} 0\\n"
    sys.stdout.write(lines)
    sys.stdout.flush()  # reported only after the append returned
    i += 1
"""

WORKER = """
import sys
from swarmvar.ledger import EntryKind, Ledger

ledger = Ledger(sys.argv[1])
worker = int(sys.argv[2])
for i in range(int(sys.argv[3])):
    ledger.add_entry(EntryKind.ESTIMATE, {"worker": worker, "i": i})
    if i % 250 == 0:
        batch = [(EntryKind.FLOW, {"worker": worker, "i": i, "k": k}) for k in range(150)]
        ledger.add_entries(batch)
print("done", flush=True)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_append_loses_nothing_that_returned(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    reported: dict[int, tuple[str, int, int]] = {}
    for run in range(3):  # kill, reopen, append again, kill again
        with _spawn(CRASH_CHILD, str(tmp_path), str(run)) as child:
            assert child.stdout is not None and child.stderr is not None
            kill_after = rng.randint(150, 1500)
            seen = 0
            for line in child.stdout:
                index, n, k = line.split()
                reported[int(index)] = (str(run), int(n), int(k))
                seen += 1
                if seen >= kill_after:
                    os.kill(child.pid, signal.SIGKILL)
                    break
            else:
                raise AssertionError(f"child died early: {child.stderr.read()}")
            # Lines written before the kill landed still count; read them through the same
            # buffered reader (communicate() would skip its buffer and resume mid-line).
            rest = child.stdout.read()
            assert child.wait(timeout=60) == -signal.SIGKILL
        for line in rest.split("\n")[:-1]:  # text after the last newline may be cut
            index, n, k = line.split()
            reported[int(index)] = (str(run), int(n), int(k))
    with Ledger(tmp_path, create=False) as ledger:
        result = ledger.verify_chain()
        assert result.ok, result.summary()
        assert ledger.size > max(reported)
        stored = {e.index: e for e in ledger.entries()}
    for index, (run, n, k) in reported.items():
        data = stored[index].data
        assert (data["run"], data["n"], data["k"]) == (run, n, k)
    batches: dict[tuple[str, int], int] = {}
    for entry in stored.values():
        if entry.kind is EntryKind.PULSE and entry.data["n"] % 3 == 0:
            key = (entry.data["run"], entry.data["n"])
            batches[key] = batches.get(key, 0) + 1
    assert set(batches.values()) == {250}  # a batch is stored whole or not at all


def test_four_processes_append_into_one_chain(tmp_path: Path) -> None:
    per_worker = 1000
    workers = [_spawn(WORKER, str(tmp_path), str(w), str(per_worker)) for w in range(4)]
    for w in workers:  # they race to create the file and the genesis entry, too
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0 and out.strip() == "done", err
    with Ledger(tmp_path, create=False) as ledger:
        result = ledger.verify_chain()
        assert result.ok, result.summary()
        size = 1 + 4 * per_worker + 4 * 4 * 150  # genesis, single appends, 4 batches each
        assert ledger.size == size
        entries = list(ledger.entries())
    assert [e.index for e in entries] == list(range(size))
    assert sum(e.kind is EntryKind.GENESIS for e in entries) == 1
    singles = [e for e in entries if e.kind is EntryKind.ESTIMATE]
    got = sorted((e.data["worker"], e.data["i"]) for e in singles)
    assert got == [(w, i) for w in range(4) for i in range(per_worker)]
    for w in range(4):  # each worker's own entries stay in its order, batches whole
        mine = [(e.data["i"], e.data.get("k")) for e in entries[1:] if e.data["worker"] == w]
        expected = []
        for i in range(per_worker):
            expected.append((i, None))
            if i % 250 == 0:
                expected += [(i, k) for k in range(150)]
        assert mine == expected


def test_threads_sharing_and_not_sharing_a_ledger_object(tmp_path: Path) -> None:
    shared = Ledger(tmp_path)
    own = Ledger(tmp_path)  # a second connection to the same file
    errors: list[BaseException] = []

    def work(ledger: Ledger, t: int) -> None:
        try:
            for i in range(100):
                if i % 10 == 0:  # small batches entry by entry, large ones a level at a time
                    n = 5 if i % 20 else 120
                    ledger.add_entries(
                        [(EntryKind.FLOW, {"t": t, "i": i, "k": k}) for k in range(n)]
                    )
                else:
                    ledger.add_entry(EntryKind.FLOW, {"t": t, "i": i, "k": 0})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(shared if t % 2 else own, t)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    expected = 1 + 6 * (90 + 5 * 5 + 5 * 120)
    assert shared.size == own.size == expected
    assert shared.verify_chain().ok
    for ledger in (shared, own):
        # each connection's cached frontier stays right after the other one appended
        ledger.add_entry(EntryKind.FLOW, {"after": True})
    assert shared.verify_chain().ok and shared.size == expected + 2
    shared.close()
    own.close()
