"""Ledger test fixtures: a real PostgreSQL server for the shared store suite.

``tests/pg.py`` is loaded by path (``--import-mode=importlib`` cannot import
``tests.pg``); the server starts once per session, each test gets an empty
database of its own.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def load_pg() -> ModuleType:
    """The shared ``tests/pg.py`` module (one copy per session)."""
    name = "swarmvar_tests_pg"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "pg.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A PostgreSQL server for the session (skipped off CI if it cannot start; fails in CI)."""
    pg = load_pg()
    try:
        cm = pg.postgres_server()
        server = cm.__enter__()
    except pg.PostgresUnavailable as exc:
        pg.skip_or_fail(exc)
        return
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: object) -> str:
    """The URL of a new, empty schema (search_path) on the session's server."""
    url: str = postgres_server.new_schema()  # type: ignore[attr-defined]
    return url
