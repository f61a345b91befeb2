"""docs/operations.md's blocks that need a running server, against ``swarmvar serve``.

"A first session" (curl against the service, in bash) and the TLS line
(HTTPS with a self-signed certificate), each against a real ``swarmvar
serve`` process on a free loopback port, stopped when the test ends. Both
blocks are in ``_docs_blocks.OWN_TESTS``.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import blocks, commands  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli_env() -> dict[str, str]:
    """The environment with this venv's ``swarmvar`` first on PATH, no config file."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SWARMVAR_CONFIG", None)
    return env


@contextmanager
def _serving(args: list[str], cwd: Path, env: dict[str, str], url: str) -> Iterator[None]:
    """``swarmvar <args>`` as a process until the block is done; waits for ``url``/healthz."""
    import httpx

    server = subprocess.Popen([str(Path(sys.executable).parent / "swarmvar"), *args], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0].decode()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1, verify=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"swarmvar {args} did not answer in 60 s"
            time.sleep(0.2)
        yield
    finally:
        server.terminate()
        try:
            server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_operations_first_session(tmp_path: Path) -> None:
    """docs/operations.md's "A first session" against ``swarmvar serve`` on a loopback port.

    The block runs in bash as written, with two edits: the history's ``...`` becomes 58
    more daily returns (>= 50 for the default swarm, all before the next block's
    2024-03-01) and port 8000 the test's free port. The key is created after the server
    started (the doc's order): the server re-reads its key file.
    """
    (block,) = [b for b in blocks("docs/operations.md")
                if b.code.startswith("KEY=$(swarmvar keys create --role writer)")]
    days = pd.date_range("2024-01-03", "2024-02-29")
    rng = np.random.default_rng(0)
    more = "".join(f', {{"date": "{d.date()}", "return": {0.01 * rng.standard_normal():.5f}}}'
                   for d in days)
    port = _free_port()
    assert block.code.count(", ...]") == 1 and "127.0.0.1:8000" in block.code
    script = block.code.replace(", ...]", more + "]").replace("127.0.0.1:8000",
                                                              f"127.0.0.1:{port}")
    env = _cli_env()
    with _serving(["serve", "--port", str(port)], tmp_path, env, f"http://127.0.0.1:{port}"):
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # three JSON answers, one after the other: the portfolio, the beat, its VaR
    decoder, text, answers = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    assert len(answers) == 3, done.stdout[-2000:]
    assert answers[0]["name"] == "book" and answers[0]["last_date"] == "2024-02-29", answers[0]
    assert answers[1]["stored"] == 1 and answers[1]["results"][0]["seq"] == 1, answers[1]
    assert answers[2]["as_of"] == "2024-03-01", answers[2]
    assert [level["alpha"] for level in answers[2]["levels"]] == [0.99, 0.975]
    assert all(0 < level["var"] < level["es"] < 0.2 for level in answers[2]["levels"])


def _self_signed(folder: Path) -> None:
    """cert.pem / key.pem for 127.0.0.1, valid for a day."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def test_operations_tls_line(tmp_path: Path) -> None:
    """docs/operations.md's TLS line serves HTTPS (a self-signed certificate, a free port
    instead of 8443); plain HTTP to that port gets no HTTP answer, as the page says."""
    import httpx

    (block,) = [b for b in blocks("docs/operations.md")
                if b.code.startswith("swarmvar serve --certfile cert.pem")]
    (command,) = commands(block)
    args = list(command.args)
    port = _free_port()
    args[args.index("--port") + 1] = str(port)
    _self_signed(tmp_path)
    with _serving(args, tmp_path, _cli_env(), f"https://127.0.0.1:{port}"):
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust,
                         timeout=5).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
