"""Make a file read-only for real, for this process: the one rule of the tests that need a
real read-only store (``tests/evolution``, ``tests/service``).

Mode 0444 does it for an ordinary user; root writes any file whatever its mode, so as root
the file is made immutable (``chattr +i``), and the test is skipped where that cannot be
done. The file is made writable again when the ``with`` block ends, and also by a pytest
finalizer of the test and at the interpreter's exit: an interrupted test must not leave
an immutable file behind (which its temporary folder's removal could not delete). A test
module imports it as ``from _readonly import read_only`` (``tests/`` is on the path:
``tests/conftest.py``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Files made immutable and not yet made mutable again (by this process).
_IMMUTABLE: set[Path] = set()


def _mutable(path: Path) -> None:
    """``chattr -i path`` if this process made it immutable (idempotent; a file gone is
    left alone)."""
    if path not in _IMMUTABLE:
        return
    chattr = shutil.which("chattr")
    if chattr is not None and os.path.lexists(path):
        subprocess.run([chattr, "-i", str(path)], capture_output=True, timeout=30,
                       check=True)
    _IMMUTABLE.discard(path)


def _mutable_all() -> None:
    for path in sorted(_IMMUTABLE):
        try:
            _mutable(path)
        except (OSError, subprocess.SubprocessError):  # at exit: do what can be done
            pass


atexit.register(_mutable_all)


@contextmanager
def read_only(path: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """``path`` read-only for this process, for real, inside the ``with`` block: mode 0444,
    or immutable as root; skipped when it cannot be made so. ``request`` (the test's)
    carries the finalizer that undoes it should the block not end normally."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode & 0o777
        request.addfinalizer(lambda: path.chmod(mode) if path.exists() else None)
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root, where chmod stops no write, and no chattr to make "
                    "the file immutable")
    made = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)
    if made.returncode != 0:
        pytest.skip("running as root, where chmod stops no write, and the file cannot be "
                    f"made immutable here: {made.stderr.strip()}")
    _IMMUTABLE.add(path)
    request.addfinalizer(lambda: _mutable(path))
    try:
        yield
    finally:
        _mutable(path)
