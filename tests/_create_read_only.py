"""The script of the tests of a ledger made in a home on a read-only file system
(``tests/ledger/test_ledger_create_read_only.py``, ``tests/ledger/test_ledger_jsonl.py``),
run by ``tests/_full_fs.py``'s ``run_full`` in a tmpfs of its own.

A test module imports it as ``from _create_read_only import made_read_only`` (``tests/`` is
on the path: ``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_SCRIPT = """
import json, subprocess
from pathlib import Path
IMPORTS
folder = Path(sys.argv[1])
home = folder / "home"
home.mkdir()
subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
out = {"raised": None}
try:
    OPENED.close()
except Exception as exc:
    out = dict(raised=type(exc).__name__, message=str(exc), path=getattr(exc, "path", None),
               cause=getattr(exc, "cause", None), doing=getattr(exc, "doing", None))
out["left"] = sorted(p.name for p in home.iterdir())
subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
with OPENED as made:
    out["then"] = [made.size, made.verify_chain(processes=1).ok]
print(json.dumps(out))
"""


def made_read_only(imports: str, opened: str, folder: Path) -> dict[str, Any]:
    """Run :func:`script` in ``folder`` (``run_full``'s, skipped where it cannot run) and
    check what each such test holds: ``LedgerUnwritable`` "read-only" naming
    ``folder/home/ledger.sqlite`` while creating it, no temporary name nor "restore it" in
    its words, nothing left, and the ledger made, its chain verified, once ``folder`` is
    writable again. Returns the script's output, for the test's own checks."""
    from _full_fs import run_full

    out: dict[str, Any] = run_full(script(imports, opened), folder)
    target = folder / "home" / "ledger.sqlite"
    assert out["raised"] == "LedgerUnwritable" and out["path"] == str(target), out
    assert out["cause"] == "read-only" and out["doing"] == "create", out
    said = out["message"]
    assert said.startswith(f"the ledger {target} cannot be created: read-only ("), said
    assert ".tmp" not in said and "restore it" not in said, said
    assert out["left"] == [] and out["then"][1] is True, out
    return out


def script(imports: str, opened: str) -> str:
    """A script that makes ``folder/home`` (``folder``: its first argument), remounts
    ``folder`` read-only, evaluates ``opened`` (a ledger made in ``home``, after
    ``imports``) and closes it; remounts it writable and opens it again. It prints as JSON
    what the first try raised (its type, message, ``path``, ``cause``, ``doing``), the
    names then left in ``home`` (``left``) and the second ledger's size and chain check
    (``then``)."""
    return _SCRIPT.replace("IMPORTS", imports).replace("OPENED", opened)
