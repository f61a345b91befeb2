"""Shared test set-up: JAX on the CPU, no GPU probing, a headless matplotlib.

A real PostgreSQL server (``tests/pg.py``, loaded by path: ``--import-mode=importlib``
cannot import ``tests.pg``) starts once per session for every store suite that
asks for ``postgres_url``; each test gets an empty schema of its own. A module that stops
its server, or gives it to processes of its own, asks for ``own_postgres_server`` (one
server per module).

``tests/`` is appended to ``sys.path`` (after everything installed, so it shadows
nothing): helpers shared across test folders (``tests/_refs_t.py``) are a plain
``import _refs_t``.

JAX's persistent compilation cache goes to one temporary folder for the
session (the CLI would otherwise point it under each test's data home), so
tests never write compiled programs outside their temporary space.
"""

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

if str(Path(__file__).parent) not in sys.path:  # helpers shared across folders: _refs_t
    sys.path.append(str(Path(__file__).parent))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      tempfile.mkdtemp(prefix="swarmvar-tests-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def load_pg() -> ModuleType:
    """The shared ``tests/pg.py`` module (one copy per session)."""
    name = "swarmvar_tests_pg"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "pg.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _a_server() -> Iterator[object]:
    """A PostgreSQL server started for a fixture: only a start that fails skips (off CI) or
    fails (in CI); a failure at teardown is an error, never a skip."""
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A PostgreSQL server for the session (skipped off CI if it cannot start; fails in CI)."""
    yield from _a_server()


@pytest.fixture
def postgres_url(postgres_server: object) -> str:
    """The URL of a new, empty schema (search_path) on the session's server."""
    url: str = postgres_server.new_schema()  # type: ignore[attr-defined]
    return url


@pytest.fixture(scope="module")
def own_postgres_server() -> Iterator[object]:
    """A PostgreSQL server of the test module's own (skipped or failed as
    ``postgres_server``): a test may stop and start it, or give it to processes of its own,
    and leave the session's server, which other tests use, alone. Only a start that fails
    skips (or fails in CI); a failure at teardown is an error, never a skip."""
    yield from _a_server()


@pytest.fixture
def empty_sqlite_files(tmp_path: Path) -> Path:
    """An empty ``there.sqlite`` with its empty ``-wal`` and ``-shm`` files (a store's files
    whose room an error's words measure); its path."""
    there = tmp_path / "there.sqlite"
    there.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{there}{side}").write_bytes(b"")
    return there
