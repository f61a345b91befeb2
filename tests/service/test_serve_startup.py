"""``swarmvar serve`` refuses what would fail after it starts: each is a usage error (exit
2, one line naming what was wrong, no traceback) before uvicorn runs. uvicorn.run is
replaced here by a recorder, so a check that failed to refuse starts nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.service import ServiceConfig
from swarmvar.service.config import CONFIG_ENV

from .conftest import Keys


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv(CONFIG_ENV, "")  # serve sets it; restored after the test
    yield calls


def _serve(tmp_path: Path, keys: Path, *args: str, home: Path | None = None) -> Any:
    return CliRunner().invoke(build_app(), ["serve", "--home", str(home or tmp_path / "h"),
                                            "--keys", str(keys), *args])


def _refused(res: Any, *words: str) -> None:
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in text, (w, res.output)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_taken_port_and_a_bad_host(tmp_path: Path, session_keys: tuple[Path, Keys],
                                     ran: list[dict[str, Any]]) -> None:
    keys, _ = session_keys
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        _refused(_serve(tmp_path, keys, "--port", str(port)), f"--port {port}",
                 "already in use")
    _refused(_serve(tmp_path, keys, "--host", "no-such-host.invalid", "--port", "8000"),
             "--host", "no-such-host.invalid")
    _refused(_serve(tmp_path, keys, "--host", "192.0.2.1", "--port", str(_closed_port())),
             "--host 192.0.2.1", "not an address of this machine")
    assert ran == []
    res = _serve(tmp_path, keys, "--port", str(_closed_port()))  # free: it would start
    assert res.exit_code == 0 and len(ran) == 1, res.output


def test_a_bad_home_keys_or_tls(tmp_path: Path, session_keys: tuple[Path, Keys],
                                ran: list[dict[str, Any]]) -> None:
    keys, _ = session_keys
    afile = tmp_path / "file"
    afile.write_text("x")
    port = str(_closed_port())
    _refused(_serve(tmp_path, keys, "--port", port, home=afile), "--home", "is a file")
    _refused(_serve(tmp_path, keys, "--port", port, home=afile / "below"), "--home")
    # not writable, even by root (tried for real, not by permission bits)
    _refused(_serve(tmp_path, keys, "--port", port, home=Path("/proc/sys/swarmvar-x")),
             "--home")
    _refused(_serve(tmp_path, tmp_path, "--port", port), "--keys", "unreadable")
    _refused(_serve(tmp_path, keys, "--port", port, "--certfile", str(tmp_path / "no.pem"),
                    "--keyfile", str(tmp_path / "no.key")), "no such file")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    _refused(_serve(tmp_path, keys, "--port", port, "--certfile", str(junk),
                    "--keyfile", str(junk)), "--certfile", "not a PEM certificate")
    assert ran == []


def test_a_file_where_the_service_writes(tmp_path: Path, session_keys: tuple[Path, Keys],
                                         ran: list[dict[str, Any]]) -> None:
    """The agents' key folder, the metrics folder of several workers, and with --db the
    ledger's signing key: a file in the way (or a damaged key) is said before starting."""
    keys, _ = session_keys
    port = str(_closed_port())
    home = tmp_path / "k"
    home.mkdir()
    (home / "keys").write_text("x")
    _refused(_serve(tmp_path, keys, "--port", port, home=home), "--home", "keys/agents")
    home = tmp_path / "p"
    home.mkdir()
    (home / "prometheus").write_text("x")
    _refused(_serve(tmp_path, keys, "--port", port, "--workers", "2", home=home),
             "--home", "prometheus")
    home = tmp_path / "d"
    home.mkdir()
    (home / "ledger.key").write_text("garbage")
    (home / "ledger.key").chmod(0o600)
    _refused(_serve(tmp_path, keys, "--port", port, "--db",
                    f"postgresql://swarmvar@127.0.0.1:{port}/x", home=home),
             "--home", "ledger.key")
    assert ran == []


def test_an_unreachable_database(tmp_path: Path, session_keys: tuple[Path, Keys],
                                 ran: list[dict[str, Any]]) -> None:
    keys, _ = session_keys
    url = f"postgresql://swarmvar@127.0.0.1:{_closed_port()}/swarmvar"
    _refused(_serve(tmp_path, keys, "--port", str(_closed_port()), "--db", url),
             "--db: cannot connect to the database")
    assert ran == []


@pytest.mark.parametrize(("flag", "value"), [("--max-batch", "0"), ("--max-batch", "10001"),
                                             ("--max-streams", "0"), ("--max-batch", "x")])
def test_the_limits_are_checked(tmp_path: Path, session_keys: tuple[Path, Keys],
                                ran: list[dict[str, Any]], flag: str, value: str) -> None:
    keys, _ = session_keys
    _refused(_serve(tmp_path, keys, flag, value), flag)
    assert ran == [] and not (tmp_path / "h").exists()


def test_the_limits_reach_the_workers(tmp_path: Path, session_keys: tuple[Path, Keys],
                                      ran: list[dict[str, Any]]) -> None:
    keys, _ = session_keys
    res = _serve(tmp_path, keys, "--port", str(_closed_port()), "--max-batch", "7",
                 "--max-streams", "3")
    assert res.exit_code == 0 and len(ran) == 1, res.output
    cfg = ServiceConfig.from_env()
    assert (cfg.max_batch, cfg.max_streams) == (7, 3)
    defaults = json.loads(ServiceConfig().to_env())
    assert (defaults["max_batch"], defaults["max_streams"]) == (1000, 64)


def test_a_database_that_never_answers_is_one_try_of_5_s(
        tmp_path: Path, session_keys: tuple[Path, Keys], ran: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener that takes the connection and never speaks: the check gives up after
    its 5 s connect timeout, having tried once (psycopg's connect is watched, not replaced)."""
    import time

    import psycopg

    keys, _ = session_keys
    tries: list[dict[str, Any]] = []
    real = psycopg.connect

    def watched(*args: Any, **kwargs: Any) -> Any:
        tries.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", watched)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes the handshake; nothing is ever sent
        url = f"postgresql://swarmvar@127.0.0.1:{silent.getsockname()[1]}/swarmvar"
        started = time.monotonic()
        res = _serve(tmp_path, keys, "--port", str(_closed_port()), "--db", url)
        took = time.monotonic() - started
    _refused(res, "--db: cannot connect to the database")
    assert [t.get("connect_timeout") for t in tries] == [5]
    assert 4.5 <= took < 30, took  # the timeout ended it (the bound only catches a hang)
    assert ran == []


def test_a_port_below_1024_without_the_privilege(tmp_path: Path,
                                                 session_keys: tuple[Path, Keys]) -> None:
    """Run as root without CAP_NET_BIND_SERVICE (setpriv drops it from the bounding set),
    the real serve is refused before it starts: binding port 1000 is EACCES."""
    import os
    import shutil
    import subprocess

    from .conftest import PYTHON, ROOT

    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to drop the privilege")
    keys, _ = session_keys
    out = subprocess.run(
        [setpriv, "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", PYTHON,
         "-c", "from swarmvar.cli import main; main()", "serve", "--port", "1000",
         "--home", str(tmp_path / "h"), "--keys", str(keys)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2, text
    assert "--port 1000: permission denied" in text and "Traceback" not in text


@pytest.mark.parametrize(("args", "words"), [
    (("--k-flows", "0.1"), ["k * P > 1", "--k-flows"]),
    (("--p-nodes", "0.2"), ["k * P > 1", "--p-nodes"]),
    (("--t1", "-1"), ["t1"]),
    (("--t-threshold", "0"), ["threshold"]),
])
def test_the_arbiters_options_are_checked(tmp_path: Path, session_keys: tuple[Path, Keys],
                                          ran: list[dict[str, Any]], args: tuple[str, ...],
                                          words: list[str]) -> None:
    """As ``run --arbiter`` checks them: before anything is written."""
    keys, _ = session_keys
    _refused(_serve(tmp_path, keys, "--port", str(_closed_port()), *args), *words)
    assert ran == [] and not (tmp_path / "h").exists()


def test_the_arbiters_options_reach_the_workers(tmp_path: Path, session_keys: tuple[Path, Keys],
                                                ran: list[dict[str, Any]]) -> None:
    from swarmvar.service import create_app

    from .conftest import TestClient

    keys, _ = session_keys
    res = _serve(tmp_path, keys, "--port", str(_closed_port()), "--k-flows", "3",
                 "--p-nodes", "6", "--t1", "0.002", "--t-threshold", "0.05")
    assert res.exit_code == 0 and len(ran) == 1, res.output
    cfg = ServiceConfig.from_env()  # what each worker's app_from_env reads
    assert (cfg.k_flows, cfg.p_nodes, cfg.t1, cfg.t_threshold) == (3.0, 6.0, 0.002, 0.05)
    assert cfg.extra == {}  # typed fields, not loose strings
    with TestClient(create_app(cfg)) as c:
        (arbiter,) = c.app.state.desk.observers  # type: ignore[attr-defined]
        pulse = arbiter.config.pulse
        assert (pulse.k, pulse.p, pulse.t1, pulse.t_threshold) == (
            3.0, 6.0, 0.002, 0.05)


def test_service_configs_pulse_defaults_are_the_arbiters() -> None:
    """A ServiceConfig built in Python runs the arbiter ``Arbiter.from_options`` makes."""
    import inspect

    from swarmvar.arbiter import Arbiter
    from swarmvar.service.config import PULSE_FIELDS

    sig = inspect.signature(Arbiter.from_options).parameters
    cfg = ServiceConfig()
    assert {n: getattr(cfg, n) for n in PULSE_FIELDS} == {n: sig[n].default
                                                          for n in PULSE_FIELDS}


@pytest.mark.parametrize(("value", "shown"), [
    ("3", "'3'"), (None, "None"), (True, "True"), (0, "0"), (-1.5, "-1.5"),
    ("nan", "'nan'"), (float("inf"), "inf")])
def test_a_workers_arbiter_option_is_checked(monkeypatch: pytest.MonkeyPatch, value: Any,
                                             shown: str) -> None:
    """What ``serve`` hands its workers is read back typed: an option that is not a finite
    number above 0 is refused naming it and the flag that sets it."""
    from swarmvar.errors import InvalidParameter

    d = json.loads(ServiceConfig(t1=0.002).to_env())
    assert d["t1"] == 0.002
    monkeypatch.setenv(CONFIG_ENV, json.dumps(d))
    assert ServiceConfig.from_env().t1 == 0.002
    d["t1"] = value
    raw = json.dumps(d)  # json writes inf as Infinity, which it reads back
    monkeypatch.setenv(CONFIG_ENV, raw)
    with pytest.raises(InvalidParameter, match="arbiter's t1") as got:
        ServiceConfig.from_env()
    assert shown in str(got.value) and "--t1" in str(got.value)
    del d["t1"]  # a configuration from before the field: the default
    monkeypatch.setenv(CONFIG_ENV, json.dumps(d))
    assert ServiceConfig.from_env().t1 == ServiceConfig().t1


def test_arbiter_keys_in_extra_are_refused_naming_the_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``extra['arbiter.k_flows']`` was read once; now it would be ignored silently: it is
    refused naming the typed field (and an option the service does not take as such), in
    Python and in what the workers read. Other extra keys pass."""
    from swarmvar.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as got:
        ServiceConfig(extra={"arbiter.k_flows": "3", "arbiter.u": "20"})
    said = str(got.value)
    for words in ("'arbiter.k_flows'", "set ServiceConfig.k_flows (`swarmvar serve "
                  "--k-flows`) instead", "no arbiter option 'u'"):
        assert words in said, said
    assert ServiceConfig(extra={"team": "risk"}).extra == {"team": "risk"}
    # the flag's spelling names the field too
    with pytest.raises(InvalidParameter, match=r"set ServiceConfig\.k_flows \(`swarmvar serve "
                       r"--k-flows`\) instead"):
        ServiceConfig(extra={"arbiter.k-flows": "3"})
    d = json.loads(ServiceConfig().to_env())
    d["extra"] = {"arbiter.t1": "0.002"}
    monkeypatch.setenv(CONFIG_ENV, json.dumps(d))
    with pytest.raises(InvalidParameter, match=r"ServiceConfig\.t1"):
        ServiceConfig.from_env()
