"""The service's storage errors: a read (a GET, or any reader route: verify's POST too) that
meets a ledger locked past the timeout or no file descriptor left is a 503 with
``Retry-After`` naming the error (it passes), each reader route documenting it; a ledger
file gone is a 500 naming it (no retry); a locked variant store is a 503 naming that store;
a damaged ledger, another SQLite error and a write stay 500. The start's replay counts its observer
faults in ``swarmvar_observer_beats_skipped_total`` as live beats do. A home or database
the user may not write or create tables in is a usage error of ``serve`` (exit 2), and a
damaged ledger database is named as such, not as a permission."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fd_fill import PRELUDE  # tests/_fd_fill.py (on the path: tests/conftest.py)
from _readonly import read_only  # tests/_readonly.py (the same)
from swarmvar.errors import InvalidSignal, LedgerCorrupted
from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, TestClient, app_with_book, day, history, sqlite_lock_error

SKIPPED = 'swarmvar_observer_beats_skipped_total{observer="Arbiter",reason="fault"}'


_locked = sqlite_lock_error


def _cannot_open(folder: Path) -> sqlite3.OperationalError:
    """SQLite's own error for a file it cannot open (SQLITE_CANTOPEN, as when the process
    has no file descriptor left)."""
    try:
        sqlite3.connect(folder / "no-such-folder" / "x.sqlite")
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError("SQLite opened a file in a missing folder")


@pytest.fixture
def client(home_client: TestClient) -> TestClient:
    return home_client


@pytest.mark.parametrize("make", [_locked, _cannot_open])
def test_a_ledger_that_cannot_be_read_now_is_a_503_naming_the_error(
        make, client: TestClient, session_keys: tuple[Path, Keys], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, k = session_keys
    error = make(tmp_path)

    def refuse() -> None:
        raise error

    ledger = client.app.state.desk.ledger
    monkeypatch.setattr(ledger, "signed_head", refuse)
    r = client.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) > 0
    body = r.json()["error"]
    assert body["type"] == "LedgerUnavailable" and str(error) in body["message"], body
    monkeypatch.undo()  # it passes: the same request is answered once the lock is gone
    assert client.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).status_code == 200


@pytest.mark.parametrize(("error", "kind"), [
    (LedgerCorrupted("entry 3 does not verify"), "LedgerCorrupted"),
    (sqlite3.OperationalError("no such table: entries"), "InternalError"),
    (sqlite3.DatabaseError("database disk image is malformed"), "InternalError"),
])
def test_a_damaged_ledger_or_another_error_stays_a_500(
        error: Exception, kind: str, client: TestClient, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, k = session_keys

    def refuse() -> None:
        raise error

    monkeypatch.setattr(client.app.state.desk.ledger, "signed_head", refuse)
    r = client.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
    assert r.status_code == 500 and r.json()["error"]["type"] == kind, r.text
    assert "Retry-After" not in r.headers


def test_a_lock_met_by_a_write_stays_a_500(client: TestClient, session_keys: tuple[Path, Keys],
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a write can be sent again is not known where the error is caught."""
    _, k = session_keys
    error = _locked(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(client.app.state.desk, "create", refuse)
    r = client.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                    headers={"X-API-Key": k.writer})
    assert r.status_code == 500 and r.json()["error"]["type"] == "InternalError", r.text
    assert "Retry-After" not in r.headers


def test_verify_is_a_read_a_lock_met_there_is_a_503(client: TestClient,
                                                    session_keys: tuple[Path, Keys],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /v1/ledger/verify recomputes and stores nothing (a reader may call it)."""
    _, k = session_keys
    error = _locked(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(client.app.state.desk.ledger, "verify_chain", refuse)
    r = client.post("/v1/ledger/verify", headers={"X-API-Key": k.reader})
    assert r.status_code == 503 and r.json()["error"]["type"] == "LedgerUnavailable", r.text
    assert int(r.headers["Retry-After"]) > 0
    monkeypatch.undo()
    r = client.post("/v1/ledger/verify", headers={"X-API-Key": k.reader})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


@pytest.mark.parametrize("gone", ["ledger file", "home"])
def test_a_ledger_file_gone_is_a_500_naming_it_not_a_retry(
        gone: str, client: TestClient, session_keys: tuple[Path, Keys], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's "unable to open database file" with the ledger file gone: a retry would meet
    it again, so no Retry-After (with the file there it is a 503: no descriptor left)."""
    _, k = session_keys
    error = _cannot_open(tmp_path)
    ledger = client.app.state.desk.ledger

    def refuse() -> None:
        raise error

    monkeypatch.setattr(ledger, "signed_head", refuse)
    path = ledger.store.path
    assert path.is_file()
    if gone == "ledger file":
        path.unlink()
    else:
        shutil.rmtree(path.parent)
    r = client.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
    assert r.status_code == 500, r.text
    body = r.json()["error"]
    assert body["type"] == "LedgerMissing" and str(path) in body["message"], body
    assert "No such file or directory" in body["message"] and "Retry-After" not in r.headers


def test_no_descriptor_left_is_told_from_a_file_gone(tmp_path: Path) -> None:
    """With the process at its open-file limit (EMFILE) the ledger file is there: None (a
    503); a missing file is named as such whatever the limit."""
    there = tmp_path / "ledger.sqlite"
    there.write_bytes(b"")
    script = PRELUDE + f"""
from pathlib import Path
from swarmvar.service.storage import missing
held = fill(64)  # raises unless it ends at EMFILE
print("full", len(held))
print(repr(missing(Path({str(there)!r}))), repr(missing(Path({str(there)!r}) / "x")))
release(held)
print(repr(missing(Path({str(there)!r}))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0].startswith("full ") and 0 < int(lines[0][5:]) < 64, done.stdout
    assert lines[1] == "None 'Not a directory'" and lines[2] == "None", done.stdout


def test_a_locked_variant_store_is_a_503_naming_that_store(
        client: TestClient, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real lock on evolution.sqlite (another connection's write transaction): the answer
    names the variant store, not the ledger."""
    import swarmvar.evolution.db as evolution_db

    _, k = session_keys
    headers = {"X-API-Key": k.reader}
    assert client.get("/v1/variants", headers=headers).status_code == 200  # creates the file
    store = client.app.state.config.home / evolution_db.DB_FILE
    assert store.is_file()
    monkeypatch.setattr(evolution_db, "BUSY_TIMEOUT_MS", 50)  # the wait, not 60 s
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        r = client.get("/v1/variants", headers=headers)
        assert r.status_code == 503, r.text
        body = r.json()["error"]
        assert body["type"] == "VariantStoreLocked", body
        assert f"the variant store {store} is locked" in body["message"], body
        assert "ledger" not in body["message"] and int(r.headers["Retry-After"]) > 0
    finally:
        holder.close()
    assert client.get("/v1/variants", headers=headers).status_code == 200  # it passes


def test_the_head_documents_its_503_and_500(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/v1/ledger/head"]["get"]
    assert "lock held past the timeout" in op["responses"]["503"]["description"]
    assert "damaged" in op["responses"]["500"]["description"]


def test_every_reader_route_documents_the_storage_503(client: TestClient) -> None:
    """The handler answers any read that meets a lock with a 503: each route of the reader
    role says so (verify's POST included); the writers' routes do not."""
    from swarmvar.service.apidoc import route_roles

    paths = client.get("/openapi.json").json()["paths"]
    readers = writers = 0
    for (method, path), role in route_roles().items():
        op = paths.get(path, {}).get(method.lower())
        if op is None or role == "none":
            continue
        text = op["responses"].get("503", {}).get("description", "")
        if role == "reader":
            readers += 1
            variants = path.startswith("/v1/variants")
            assert ("cannot be used now" if variants else "cannot be read now") in text, (
                method, path)
            assert ("CorruptStore" if variants else "LedgerMissing") in op["responses"]["500"][
                "description"], (method, path)
        else:
            writers += 1
            assert "cannot be read now" not in text, (method, path)
    assert ("POST", "/v1/ledger/verify") in route_roles() and readers >= 10 and writers, (
        readers, writers)


def test_the_starts_replay_counts_observer_faults(tmp_path: Path,
                                                   session_keys: tuple[Path, Keys],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.arbiter import Arbiter

    path, k = session_keys
    home = tmp_path / "home"
    with app_with_book(home, path, k.writer) as c:
        # three beats after the book's beat 0 (which observers do not see); beat 1 is
        # checkpointed (a portfolio's first beat in a home with no state of it is), so a
        # restart restores there and replays beats 2 and 3
        for i in (1, 2, 3):
            r = c.post("/v1/portfolios/book/returns", json={"date": day(i), "return": 0.01},
                       headers={"X-API-Key": k.writer})
            assert r.status_code == 201, r.text
        assert SKIPPED not in c.get("/metrics").text

    def fault(self: Arbiter, report: object, beat_seconds: float | None = None) -> None:
        raise InvalidSignal("a fault met while the start replays the ledger")

    monkeypatch.setattr(Arbiter, "replay", fault)
    with TestClient(create_app(ServiceConfig(home=home, keys=path))) as c:
        assert f"{SKIPPED} 2.0" in c.get("/metrics").text  # beats 2 and 3, replayed


# --- serve's start: a home or database it may not write is a usage error --------------------

_STUB = """
import sys, uvicorn
import swarmvar.cli.serve as serve
uvicorn.run = lambda *a, **k: print("uvicorn reached")
serve._check_listen = lambda host, port: None
from swarmvar.cli import app
app(sys.argv[1:], prog_name="swarmvar")
"""


def _unprivileged() -> list[str]:
    """Run as ``nobody`` under root (root writes through permission bits)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: a read-only folder cannot be made for root")
    user = pwd.getpwnam("nobody")
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder ``nobody`` can reach (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="swarmvar-ro-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o777)
        shutil.rmtree(folder, ignore_errors=True)


def _serve(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = folder / "stub.py"
    script.write_text(_STUB, encoding="utf-8")
    script.chmod(0o644)
    return subprocess.run([*_unprivileged(), sys.executable, str(script), "serve", *args],
                          capture_output=True, text=True, timeout=60, cwd=folder, check=False)


@pytest.mark.parametrize("case", ["read-only home", "read-only ledger"])
def test_serve_refuses_a_sqlite_home_it_may_not_write(case: str, open_folder: Path) -> None:
    home = open_folder / "home"
    prefix = _unprivileged()
    made = subprocess.run([*prefix, sys.executable, "-c", "import sys; from swarmvar.ledger "
                           "import Ledger; Ledger.open(sys.argv[1]).close()", str(home)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    if case == "read-only home":
        home.chmod(0o555)
        words = f"cannot write under {home} (permission denied)"
    else:
        (home / "ledger.sqlite").chmod(0o444)
        words = f"cannot write the ledger {home / 'ledger.sqlite'}: Permission denied"
    done = _serve(open_folder, "--home", str(home), "--port", "18999")
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2 and words in text, text
    assert "uvicorn reached" not in text and "Traceback" not in text, text


@pytest.mark.slow  # a real PostgreSQL server (initdb + pg_ctl)
def test_serve_refuses_a_database_user_who_may_not_create_tables(tmp_path: Path,
                                                                 monkeypatch) -> None:
    import importlib.util

    import psycopg
    import uvicorn
    from typer.testing import CliRunner

    import swarmvar.cli.serve as serve_mod
    from swarmvar.cli import app

    spec = importlib.util.spec_from_file_location(
        "swarmvar_tests_pg", Path(__file__).resolve().parents[1] / "pg.py")
    assert spec is not None and spec.loader is not None
    pg = sys.modules.setdefault("swarmvar_tests_pg", importlib.util.module_from_spec(spec))
    if not hasattr(pg, "postgres_server"):
        spec.loader.exec_module(pg)
    reached: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: reached.append(k))
    monkeypatch.setattr(serve_mod, "_check_listen", lambda host, port: None)
    try:
        with pg.postgres_server() as server:
            url = server.new_database()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE ROLE reader_only LOGIN")
                conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            limited = url.replace("postgresql://postgres@", "postgresql://reader_only@")
            result = CliRunner().invoke(app, ["serve", "--db", limited,
                                              "--home", str(tmp_path / "home")])
            text = " ".join(result.output.split())
            assert result.exit_code == 2, text
            assert "--db: the database accepts this user, but swarmvar cannot set up" in text
            # the category and SQLSTATE of PostgreSQL's refusal, never psycopg's own words
            # ('permission denied for schema public'), and the advice an operator can act on
            assert "(permission denied, InsufficientPrivilege, SQLSTATE 42501)" in text, text
            assert "grant the user CREATE" in text and "schema public" not in text, text
            assert "retry" not in text, text  # the advice is CREATE, not a retry
            assert not reached
            result = CliRunner().invoke(app, ["serve", "--db", url,  # the owner may
                                              "--home", str(tmp_path / "home")])
            assert result.exit_code == 0 and reached, result.output
    except pg.PostgresUnavailable as exc:
        pg.skip_or_fail(exc)


@pytest.mark.parametrize("which", ["unreachable", "failed"])
def test_serves_db_check_says_retry_when_the_variant_store_is_out_of_reach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        which: str) -> None:
    """The variant store's server lost (or a lock timeout) after the ledger opened is said
    as the ledger's would be: its message and retry, never "repair or restore it"."""
    import psycopg
    import typer

    import swarmvar.evolution as evolution
    import swarmvar.ledger as ledger
    from swarmvar.cli.serve import _check_db
    from swarmvar.evolution.errors import VariantStoreFailed, VariantStoreUnreachable

    class Opened:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            pass

    error = (VariantStoreUnreachable("postgresql://h/db", "connection refused")
             if which == "unreachable" else
             VariantStoreFailed("database", "LockNotAvailable, SQLSTATE 55P03"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: Opened())
    monkeypatch.setattr(ledger, "Ledger", Opened)
    monkeypatch.setattr(evolution, "open_home", refuse)
    with pytest.raises(typer.Exit) as got:
        _check_db("postgresql://h/db", tmp_path, "--home")
    said = " ".join(capsys.readouterr().err.split())
    assert got.value.exit_code == 2 and f"--db: {error}" in said, said
    assert "repair or restore" not in said and "retry" in said, said


@pytest.mark.parametrize("which", ["ledger read-only", "variant store full"])
def test_serves_db_check_gives_an_unwritable_stores_own_advice_not_repair(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        which: str) -> None:
    """A read-only or full database (LedgerUnwritable, VariantStoreUnwritable: "not
    damaged, do not move it away") is said with its own advice, never "repair or restore
    it", which would contradict it."""
    import psycopg
    import typer

    import swarmvar.evolution as evolution
    import swarmvar.ledger as ledger
    from swarmvar.cli.serve import _check_db
    from swarmvar.errors import LedgerUnwritable
    from swarmvar.evolution.errors import DISK_FULL, READ_ONLY, VariantStoreUnwritable

    class Opened:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            pass

    error: Exception = (
        LedgerUnwritable("database", READ_ONLY, "read-only transaction, SQLSTATE 25006",
                         "open")
        if which == "ledger read-only" else
        VariantStoreUnwritable("database", DISK_FULL, "disk full, SQLSTATE 53100"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: Opened())
    monkeypatch.setattr(ledger, "Ledger", refuse if which == "ledger read-only" else Opened)
    monkeypatch.setattr(evolution, "open_home", refuse)
    with pytest.raises(typer.Exit) as got:
        _check_db("postgresql://h/db", tmp_path, "--home")
    said = " ".join(capsys.readouterr().err.split())
    assert got.value.exit_code == 2 and f"--db: {error}" in said, said
    assert "repair or restore" not in said and "move it away" in said, said


@pytest.mark.parametrize(("url", "seconds"), [
    ("postgresql://h/db?connect_timeout=2", 2), ("postgresql://h/db", 5),
    ("postgresql://h/db?connect_timeout=0", 5)])
def test_serves_db_check_connects_with_the_urls_connect_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, seconds: int) -> None:
    """The pre-check's connect keeps the URL's ``connect_timeout`` (the stores' rule,
    ``connect_seconds``: 0 or none is its 5 s), not a fixed 5 s over it."""
    import psycopg
    import typer

    from swarmvar.cli.serve import _check_db

    asked: list[object] = []

    def connect(*args: object, **kwargs: object) -> None:
        asked.append(kwargs.get("connect_timeout"))
        raise psycopg.OperationalError("connection refused")

    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setattr(psycopg, "connect", connect)
    with pytest.raises(typer.Exit):
        _check_db(url, tmp_path, "--home")
    assert asked == [seconds]


@pytest.mark.slow  # a real PostgreSQL server (initdb + pg_ctl)
def test_serve_says_a_damaged_database_ledger_is_not_usable_not_a_permission(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only PostgreSQL's refused privilege (SQLSTATE 42501) gets the CREATE advice; a ledger
    there that does not open (an unknown hash algorithm in its metadata) is named so."""
    import psycopg
    import uvicorn
    from typer.testing import CliRunner

    import swarmvar.cli.serve as serve_mod
    from swarmvar.cli import app
    from swarmvar.service.config import CONFIG_ENV

    reached: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: reached.append(k))
    monkeypatch.setattr(serve_mod, "_check_listen", lambda host, port: None)
    monkeypatch.setenv(CONFIG_ENV, "")
    args = ["serve", "--db", postgres_url, "--home", str(tmp_path / "home")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and reached, result.output  # the tables are made
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE ledger_meta SET value = 'bogus' WHERE key = 'hash_algorithm'")
    reached.clear()
    result = CliRunner().invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and not reached, text
    assert "--db: the ledger database there is not usable (unknown hash algorithm 'bogus' " \
        "in ledger_meta)" in text, text
    assert "grant" not in text and "CREATE" not in text, text


def test_a_read_only_variant_store_is_a_503_that_changes_nothing(
        client: TestClient, session_keys: tuple[Path, Keys],
        request: pytest.FixtureRequest) -> None:
    """evolution.sqlite read-only for real: the list is read (200); a promotion is a 503
    VariantStoreUnwritable naming the store and "read-only", saying nothing was changed and
    not to move it away, with Retry-After; the variant is unchanged and is promoted once
    the file is writable again."""
    import time

    from swarmvar.evolution import new_variant, open_home
    from swarmvar.evolution.db import DB_FILE
    from swarmvar.models import registry

    _, k = session_keys
    home = client.app.state.config.home
    constructors = {"NormalInverseGamma": registry.agent_class("nig").parameter_names()}
    h = open_home(home)
    try:
        v = h.variants.add(new_variant("NormalInverseGamma", {constructors[
            "NormalInverseGamma"][0]: 2.0}, constructors, now=time.time()))
    finally:
        h.close()
    store = home / DB_FILE
    admin, reader = {"X-API-Key": k.admin}, {"X-API-Key": k.reader}
    with read_only(store, request):
        assert client.get("/v1/variants", headers=reader).status_code == 200
        r = client.post(f"/v1/variants/{v.id}/promote", headers=admin)
        assert r.status_code == 503, r.text
        body = r.json()["error"]
        assert body["type"] == "VariantStoreUnwritable", body
        said = body["message"]
        assert said.startswith(f"the variant store {store} cannot be written: read-only "
                               "(attempt to write a readonly database); nothing was "
                               "changed"), said
        assert "do not move it away" in said and "writable" in said, said
        assert int(r.headers["Retry-After"]) > 0
    listed = client.get("/v1/variants", headers=reader).json()
    assert [(x["id"], x["status"]) for x in listed] == [(v.id, "draft")]
    assert client.post(f"/v1/variants/{v.id}/promote", headers=admin).status_code == 200


def test_the_variant_store_errors_that_are_not_damage_are_503() -> None:
    """Every VariantStoreUnavailable (disk full, read-only, I/O error; a PostgreSQL server
    out of reach; any other error that is not damage) is a 503 (Retry-After: it says
    retry); only damage (CorruptStore) and a store gone (VariantStoreMissing) are 500."""
    from swarmvar.evolution.errors import (
        DISK_FULL,
        IO_ERROR,
        CorruptStore,
        VariantStoreFailed,
        VariantStoreMissing,
        VariantStoreUnreachable,
        VariantStoreUnwritable,
    )
    from swarmvar.service.app import _status

    for err in (VariantStoreUnwritable("/h/evolution.sqlite", DISK_FULL, "full"),
                VariantStoreUnwritable("/h/evolution.sqlite", IO_ERROR, "disk I/O error"),
                VariantStoreUnreachable("postgresql://me@db/x", "connection refused"),
                VariantStoreFailed("/h/evolution.sqlite", "out of memory (SQLITE_NOMEM)")):
        assert _status(err) == 503, err
    assert _status(CorruptStore("/h/evolution.sqlite: damaged")) == 500
    assert _status(VariantStoreMissing("/h/evolution.sqlite", "gone")) == 500
