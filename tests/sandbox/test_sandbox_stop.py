"""Stopping a worker never waits on a process that still holds its stderr pipe, and
the worker's error output is kept without control characters (it reaches terminals
and the ledger)."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from swarmvar import sandbox
from swarmvar.sandbox.base import _Tail

SLEEP = 60  # the left child's life: far beyond any stop, even on a loaded machine
STOP_BOUND = 15.0  # stop returns within this (a stop that waits for the child takes SLEEP)
PROFILE = sandbox.Profile("stop", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                          processes=64, file_bytes=16 << 20)


class _Leaver(sandbox.UnsandboxedWorker):
    """A worker started beside a ``sleep`` that inherits its stderr (own session or not)."""

    def __init__(self, pidfile: Path, own_session: bool) -> None:
        super().__init__(PROFILE)
        self.pidfile, self.own_session = pidfile, own_session

    def command(self, worker_argv: Sequence[str]) -> list[str]:
        sleeper = f"setsid sleep {SLEEP}" if self.own_session else f"sleep {SLEEP}"
        return ["/bin/sh", "-c", f'{sleeper} </dev/null >/dev/null & echo $! > {self.pidfile}; '
                'exec "$@"', "sh", *worker_argv]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("own_session", [False, True], ids=["same-group", "own-session"])
def test_stop_returns_while_a_left_child_holds_stderr(tmp_path: Path, own_session: bool) -> None:
    box = _Leaver(tmp_path / "sleeper.pid", own_session)
    box.start()
    sleeper = int((tmp_path / "sleeper.pid").read_text())
    try:
        assert box._proc is not None
        os.kill(box._proc.pid, signal.SIGKILL)  # the worker ends on its own...
        box._proc.wait(10)
        t0 = time.monotonic()
        box.kill()  # ...and stopping it must not wait for the child holding the pipe
        took = time.monotonic() - t0
        # (a 2 s bound against an 8 s child was a clock race on a loaded CI: the child now
        # lives 60 s; stop returned long before it ended, and with the child still alive)
        assert took < STOP_BOUND, took
        if own_session:  # out of the group: untouched, still holding the pipe
            assert _alive(sleeper)
        if not own_session:  # the group is killed even though the worker had ended
            deadline = time.monotonic() + 5
            while _alive(sleeper) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(sleeper)
    finally:
        try:
            os.kill(sleeper, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_tail_drops_control_characters_but_newlines_and_tabs() -> None:
    tail = _Tail(io.BufferedReader(io.BytesIO(
        b"\x1b[31mred\x1b[0m\tcol\r\nline two\x07\x00 [/x] [bold]\n")))
    text = tail.text()
    tail.close()
    assert text == "[31mred[0m\tcol\nline two [/x] [bold]"
