"""Run a script on a real, full file system: the one way of the tests that need a disk with
no room left (``tests/ledger``, ``tests/evolution``), where ``RLIMIT_FSIZE`` (a file-size
limit, EFBIG) or ``PRAGMA max_page_count`` would leave the file system with room to spare.

:func:`run_full` runs a Python script in a subprocess of its own mount namespace
(``unshare --mount``, propagation private: the mount is seen by it alone and goes with it)
in which a small tmpfs is mounted on a folder; the script gets the folder as
``sys.argv[1]`` and :func:`fill` (imported by :data:`PRELUDE`), which writes one file until
the file system is full (ENOSPC) and returns it, so the script can make its stores first
and free the room again after. Mounting needs root (CAP_SYS_ADMIN in the namespace): where
it cannot be done the test is skipped, saying why. A test module imports it as ``from
_full_fs import run_full`` (``tests/`` is on the path: ``tests/conftest.py``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: The first lines of the script :func:`run_full` runs (``tests/`` on its path).
PRELUDE = (f"import sys\nsys.path.append({str(Path(__file__).resolve().parent)!r})\n"
           "from _full_fs import fill\n")
#: What the mounting shell prints once the tmpfs is there (told from a failed mount).
_MOUNTED = "swarmvar-tmpfs-mounted"


def fill(folder: str | Path, name: str = "filler") -> Path:
    """Write ``folder/name`` 4 KiB at a time until the file system is full (ENOSPC), and
    return it (delete it to free the room).

    Raises
    ------
    OSError
        A write failed for another reason than ENOSPC.
    AssertionError
        The file system did not fill within as many 4 KiB writes as it has room for, and
        16 more (bounded).
    """
    path = Path(folder) / name
    fs = os.statvfs(folder)
    # its size in 4 KiB writes, and 16 more: f_blocks counts f_frsize units (64 KiB on a
    # kernel of 64 KiB pages), not 4 KiB ones
    blocks = fs.f_blocks * fs.f_frsize // 4096 + 16
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(blocks):  # bounded: the file system holds blocks - 16 at most
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return path
    finally:
        os.close(fd)
    raise AssertionError(f"{blocks} writes of 4 KiB did not fill {folder}")


def run_full(script: str, folder: Path, size_kib: int = 256,
             timeout: float = 60.0) -> dict[str, Any]:
    """Run ``script`` (after :data:`PRELUDE`) with ``folder`` (made if missing) as
    ``sys.argv[1]``, a tmpfs of ``size_kib`` KiB mounted on it for the script alone; the
    script's last line of output, JSON, is returned.

    Skipped (``pytest.skip``) where the tmpfs cannot be mounted: not root, no ``unshare``,
    or the container forbids a mount namespace or a mount. A script that fails fails the
    test (its stderr shown).
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no `unshare` (util-linux) to mount a small tmpfs: a real full file "
                    "system cannot be made here")
    if os.geteuid() != 0:
        pytest.skip("not root: a small tmpfs (a real full file system) cannot be mounted")
    folder.mkdir(parents=True, exist_ok=True)
    shell = (f'mount -t tmpfs -o size={int(size_kib)}k swarmvar-test "$1" || exit 97; '
             f'echo {_MOUNTED}; exec "$2" -c "$3" "$1"')
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", shell, "sh",
         str(folder), sys.executable, PRELUDE + script],
        capture_output=True, text=True, timeout=timeout, check=False)
    if _MOUNTED not in done.stdout:
        pytest.skip("a small tmpfs (a real full file system) cannot be mounted here: "
                    f"{done.stderr.strip() or f'exit {done.returncode}'}")
    assert done.returncode == 0, done.stderr
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last
