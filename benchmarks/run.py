"""Run every benchmark (``benchmarks/bench_*.py``) and print their tables.

Each benchmark module has a ``main()`` that measures, prints a table with a
reference measured in the same run, and returns nothing. Run one alone with
``python benchmarks/bench_<area>.py``; ``make bench`` runs them all here.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from pathlib import Path


def main() -> int:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    here = Path(__file__).parent
    only = set(sys.argv[1:])
    print(f"swarmvar benchmarks on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    failures = 0
    for path in sorted(here.glob("bench_*.py")):
        if only and path.stem.removeprefix("bench_") not in only:
            continue
        print(f"\n=== {path.stem} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        start = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            module.main()
        except Exception as exc:  # a broken benchmark must not hide the others
            failures += 1
            print(f"{path.stem} failed: {type(exc).__name__}: {exc}")
        print(f"({path.stem}: {time.perf_counter() - start:.1f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
