"""Take every file descriptor a process may open: the one loop of the tests that need a
real EMFILE (``tests/ledger``, ``tests/evolution``, ``tests/service``).

They run it in a subprocess, so the test process keeps its own limit: the script
(``python -c``) starts with :data:`PRELUDE`, which appends ``tests/`` to its ``sys.path``
(after everything installed, as ``tests/conftest.py`` does) and imports :func:`fill` and
:func:`release`; a test module imports :data:`PRELUDE` with ``from _fd_fill import
PRELUDE`` (``tests/`` is on the test process's path).
"""

from __future__ import annotations

import errno
import os
import resource
from pathlib import Path

#: The first lines of a subprocess script that fills its descriptor table.
PRELUDE = (f"import sys\nsys.path.append({str(Path(__file__).resolve().parent)!r})\n"
           "from _fd_fill import fill, release\n")


def fill(limit: int, free: int = 0) -> list[int]:
    """Lower this process's soft open-file limit to ``limit`` (the hard limit kept), open
    ``os.devnull`` until no descriptor is left (EMFILE), then close ``free`` of them.

    Parameters
    ----------
    limit : int
        The soft ``RLIMIT_NOFILE`` to set; it bounds the loop (at most ``limit`` opens).
    free : int
        How many descriptors to give back once none is left.

    Returns
    -------
    list of int
        The descriptors still held (give them back with :func:`release`).

    Raises
    ------
    OSError
        An open failed for another reason than EMFILE (those opened are closed).
    AssertionError
        ``limit`` opens passed without reaching the limit.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    held: list[int] = []
    try:
        for _ in range(limit):  # bounded: the limit is `limit`
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        if exc.errno != errno.EMFILE:
            release(held)
            raise
    else:
        release(held)
        raise AssertionError(f"{limit} descriptors opened without reaching the limit")
    for _ in range(min(free, len(held))):
        os.close(held.pop())
    return held


def release(held: list[int]) -> None:
    """Close the descriptors :func:`fill` held (``held`` emptied)."""
    while held:
        os.close(held.pop())
