"""A real, throw-away PostgreSQL server for tests (Debian's PostgreSQL 15 binaries).

``initdb`` + ``pg_ctl`` in a fresh temporary directory, listening only on a
unix socket inside it (no TCP port to collide with other tests). PostgreSQL
refuses to run as root, so under root (CI) the cluster is created and run as
an unprivileged user (``nobody``) through ``runuser``.

This is a plain module, not a conftest: with ``--import-mode=importlib`` a
test package cannot ``import tests.pg``, so a conftest loads it by path::

    import importlib.util, pathlib
    _spec = importlib.util.spec_from_file_location(
        "swarmvar_tests_pg", pathlib.Path(__file__).parents[1] / "pg.py")
    pg = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(pg)

    @pytest.fixture(scope="session")
    def postgres_url():
        with pg.postgres_server() as server:
            yield server.url

``pg.postgres_server()`` yields a :class:`PostgresServer`; ``server.new_schema()``
(cheap) or ``server.new_database()`` gives the ``postgresql://`` URL of an
empty schema or database (one per test keeps tests independent while the
server is started once). When the server
cannot start, the context manager raises :class:`PostgresUnavailable`; call
:func:`skip_or_fail` with it: under CI (``$CI`` set) that fails the test,
elsewhere it skips.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's postgresql-15 package puts initdb and pg_ctl.
PG_BIN = Path(os.environ.get("SWARMVAR_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: The unprivileged user that runs the server when the tests run as root.
RUN_AS = "nobody"
_START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing or the server would not start."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away server: its socket directory and superuser URL, and the
    server options it was started with, which :meth:`start` starts it with again (no
    default: a restart without ``-k`` would put its socket elsewhere)."""

    socket_dir: Path
    url: str
    options: str

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``: ``fast`` ends every backend), its
        data kept: :meth:`start` brings it back. A test that stops a shared server starts
        it again in a ``finally``."""
        self._pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        """Start the stopped server again, with its first start's options."""
        self._pg_ctl("-l", str(self.socket_dir / "log"), "-t", str(_START_TIMEOUT_S),
                     "-o", self.options, "start")

    def _pg_ctl(self, *args: str) -> None:
        done = subprocess.run(_as_user([str(PG_BIN / "pg_ctl"), "-D",
                                        str(self.socket_dir / "data"), "-w", *args]),
                              capture_output=True, text=True, timeout=_START_TIMEOUT_S + 30,
                              check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl {args[-1]} exited {done.returncode}: "
                                      f"{done.stderr[-2000:]}")

    def new_database(self) -> str:
        """Create an empty database; return its ``postgresql://`` URL.

        Each database copies ``template1`` (~8 MB written): for many small
        tests prefer :meth:`new_schema`.
        """
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def new_schema(self) -> str:
        """Create an empty schema; return a URL whose ``search_path`` is that schema.

        Tables, functions and triggers created through the URL land in the
        schema, so a test sees an empty database at almost no cost.
        """
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url_for('postgres')}&options=-csearch_path%3D{name}"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", RUN_AS, "--", *cmd]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server in a temporary directory; stop it and delete everything on exit.

    Raises
    ------
    PostgresUnavailable
        If initdb/pg_ctl are missing or the server does not come up.
    """
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.exists() and pg_ctl.exists()):
        raise PostgresUnavailable(f"no initdb/pg_ctl in {PG_BIN} (install postgresql-15)")
    # Not under pytest's tmp_path: that is 0700 root-owned, and the server's
    # user must reach its directory; a short path keeps the socket name legal.
    root = Path(tempfile.mkdtemp(prefix="svpg-", dir="/tmp"))
    data, log = root / "data", root / "log"
    if os.geteuid() == 0:
        uid = pwd.getpwnam(RUN_AS).pw_uid
        os.chown(root, uid, -1)
    started = False
    try:
        _run(_as_user([str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--no-sync", "--locale=C"]), "initdb")
        opts = (f"-k {root} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                "-c synchronous_commit=off -c max_connections=60 -c shared_buffers=16MB")
        _run(_as_user([str(pg_ctl), "-D", str(data), "-l", str(log), "-w",
                       "-t", str(_START_TIMEOUT_S), "-o", opts, "start"]), "pg_ctl start", log)
        started = True
        yield PostgresServer(root, f"postgresql://postgres@/postgres?host={root}", opts)
    finally:
        if started:
            subprocess.run(_as_user([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w",
                                     "stop"]), capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise PostgresUnavailable(f"{what} exited {done.returncode}: {done.stderr[-2000:]}{tail}")


def skip_or_fail(exc: PostgresUnavailable) -> None:
    """Skip the test when PostgreSQL cannot start - but fail under CI (``$CI`` set)."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI and did not start: {exc}")
    pytest.skip(f"PostgreSQL unavailable: {exc}")
