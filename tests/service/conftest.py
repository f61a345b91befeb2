"""Fixtures of the service tests: a data home with one key per role, apps, servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from swarmvar.service import KeyFile, Role

with warnings.catch_warnings():  # starlette asks for httpx2 (not installed); httpx works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass(frozen=True)
class Keys:
    reader: str
    writer: str
    admin: str
    writer_id: str

    def of(self, role: str) -> str:
        return str(getattr(self, role))


def history(n: int = 60, start: date = date(2023, 1, 2), seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"date": (start + timedelta(days=i)).isoformat(),
             "return": float(rng.standard_t(5) * 0.01)} for i in range(n)]


def day(i: int, start: date = date(2024, 1, 1)) -> str:
    return (start + timedelta(days=i)).isoformat()


def make_keys(path: Path) -> Keys:
    kf = KeyFile(path)
    _, r = kf.create(Role.READER, rate=0)
    w_key, w = kf.create(Role.WRITER, rate=0)
    _, a = kf.create(Role.ADMIN, rate=0)
    return Keys(r, w, a, w_key.id)


@pytest.fixture(scope="session")
def session_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    path = tmp_path_factory.mktemp("keys") / "api-keys.json"
    return path, make_keys(path)


@contextmanager
def app_with_book(home: Path, keys: Path, writer: str, name: str = "book",
                  n: int = 60) -> Iterator[TestClient]:
    """The real app over ``home`` (keys from ``keys``) with a portfolio ``name`` created from
    ``history(n)`` under the ``writer`` key (asserted 201)."""
    from swarmvar.service import ServiceConfig, create_app

    with TestClient(create_app(ServiceConfig(home=home, keys=keys))) as c:
        r = c.post("/v1/portfolios", json={"name": name, "history": history(n)},
                   headers={"X-API-Key": writer})
        assert r.status_code == 201, r.text
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A real ``swarmvar serve`` on a loopback port."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # uvicorn's --workers children outlive a SIGKILLed parent (they serve on, idle, 200 MB
        # each): the server runs in its own session, so its whole group goes with it
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def start_server(home: Path, keys: Path, *args: str, scheme: str = "http",
                 env: dict[str, str] | None = None, verify: object = False,
                 port: int | None = None) -> Server:
    """A ready ``swarmvar serve`` over ``home``, logging to ``home/server-<port>.log``; on
    ``port`` if given (a server started again on a stopped one's port: the log goes on, so
    that it holds both servers' requests), else on a free one. A start that fails says what
    its own server logged only, not the stopped one's log before it."""
    if port is not None:
        return _start_server(home, keys, *args, scheme=scheme, env=env, verify=verify,
                             port=port)
    # the port is free when picked, bound by the server a moment later: another process may
    # take it in between (a loaded CI); a server that exits on "address in use" is started
    # again on a new port (bounded), anything else is raised at once
    for attempt in range(3):
        try:
            return _start_server(home, keys, *args, scheme=scheme, env=env, verify=verify)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_server(home: Path, keys: Path, *args: str, scheme: str,
                  env: dict[str, str] | None, verify: object, port: int | None = None) -> Server:
    given = port is not None
    port = free_port() if port is None else port
    log = home / f"server-{port}.log"
    start = log.stat().st_size if given and log.exists() else 0  # where this server's begins

    def logged() -> str:
        """What this server logged (not the stopped server's lines before it)."""
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    cmd = [PYTHON, "-c", "from swarmvar.cli import main; main()", "serve", "--port", str(port),
           "--home", str(home), "--keys", str(keys), *args]
    with open(log, "ab" if given else "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=ROOT,
                                start_new_session=True)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # two workers' imports on a loaded 2-core CI take a while
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = logged()
            if "Errno 98" in text or "ddress already in use" in text:
                raise _PortTaken(f"port {port} was taken: {text}")
            raise RuntimeError(f"server exited: {text}")
        try:
            if httpx.get(url + "/readyz", verify=verify, timeout=1).status_code == 200:  # type: ignore[arg-type]
                return Server(proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # not ready (no answer, or not yet 200): ask again in a moment
    Server(proc, url, log).stop(kill=True)
    raise RuntimeError(f"server did not become ready: {logged()}")


@pytest.fixture
def server_factory() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for s in servers:
        s.stop(kill=True)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (ECDSA P-256), and its key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarmvar test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def sqlite_lock_error(folder: Path) -> Exception:
    """SQLite's own error for a lock held past the timeout (SQLITE_BUSY), made for real in
    ``folder`` (an exclusive transaction and a reader that does not wait)."""
    import sqlite3

    path = folder / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    try:
        waiter.execute("SELECT * FROM t")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        waiter.close()
        holder.close()
    raise AssertionError("the exclusive lock did not refuse the reader")


@pytest.fixture
def home_client(tmp_path: Path, session_keys: tuple[Path, Keys]) -> Iterator[TestClient]:
    """The app over a fresh home (``tmp_path/home``) with the session's keys, its lifespan
    run; a 500 is answered, not raised here (the app's catch-all handler answers it)."""
    from starlette.testclient import TestClient as Client

    from swarmvar.service import ServiceConfig, create_app

    path, _ = session_keys
    with Client(create_app(ServiceConfig(home=tmp_path / "home", keys=path)),
                raise_server_exceptions=False) as c:
        yield c

