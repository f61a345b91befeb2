"""Run every benchmark (``benchmarks/bench_*.py``) and print their tables.

Each benchmark module has a ``main(quick: bool = False)`` that measures,
prints a table with a reference measured in the same run, and returns
nothing. ``quick=True`` runs the same code paths on a small load (seconds,
not minutes), so that ``make test`` (``tests/test_benchmarks.py``) loads and
runs every benchmark through this same loader and a broken one fails the
suite. Run one alone with ``python benchmarks/bench_<area>.py [--quick]``;
``make bench`` runs them all here, ``python benchmarks/run.py --quick nig``
a quick run of one.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent


def names() -> list[str]:
    """The benchmark areas, e.g. ``["backtest", "consensus", ...]``."""
    return [p.stem.removeprefix("bench_") for p in sorted(HERE.glob("bench_*.py"))]


def load(name: str) -> ModuleType:
    """Import ``bench_<name>.py`` as a module registered in ``sys.modules``.

    Registering it before executing lets dataclasses and pickling inside a
    benchmark find their module (an unregistered module made
    ``bench_evolution`` fail under this loader while it ran alone).
    """
    path = HERE / f"bench_{name}.py"
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(path.stem, None)
        raise
    return module


def run_one(name: str, quick: bool = False) -> None:
    """Load ``bench_<name>.py`` and run its ``main(quick=...)``."""
    load(name).main(quick=quick)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    only = {a for a in args if not a.startswith("-")}
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    print(f"swarmvar benchmarks on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}{' (quick mode)' if quick else ''}")
    failures = 0
    for name in names():
        if only and name not in only:
            continue
        print(f"\n=== bench_{name} ===", flush=True)
        start = time.perf_counter()
        try:
            run_one(name, quick=quick)
        except Exception as exc:  # a broken benchmark must not hide the others
            failures += 1
            print(f"bench_{name} failed: {type(exc).__name__}: {exc}")
        print(f"(bench_{name}: {time.perf_counter() - start:.1f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
