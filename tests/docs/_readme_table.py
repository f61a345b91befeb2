"""The one loader of tests/validation/_readme_table.py (README's backtest table reader).

``--import-mode=importlib`` cannot import ``tests.*``, so the reader is loaded by path,
once, under one ``sys.modules`` name (:data:`NAME`; its dataclasses look their module up
there while being built): tests/docs/test_demo_figures.py and
tests/validation/test_validation_sp500.py both call :func:`readme_table` and get the
same module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

NAME = "swarmvar_tests_readme_table"
READER = Path(__file__).resolve().parents[1] / "validation" / "_readme_table.py"


def readme_table() -> ModuleType:
    """tests/validation/_readme_table.py, loaded once by path."""
    if NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(NAME, READER)
        assert spec is not None and spec.loader is not None, READER
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[NAME]  # not left half-built for the next caller
            raise
    return sys.modules[NAME]
