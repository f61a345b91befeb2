"""Loose ends of the CLI and the swarm's start, each failing on the code before it.

1. ``Swarm(...)`` created its home before its configurations refused a refit lag
   beyond the refit rhythm (an empty home left behind); ``run`` kept its own copy of
   that rule, now asked of the runtime before any work, in flags.
2. ``keys create`` read the key file twice (once only to choose the flag to blame);
   a damaged file is now a :class:`~swarmvar.errors.KeyFileUnreadable`, read once.
3. ``var``/``backtest`` capped ``--workers`` at 1,024, ``run``/``serve`` at
   ``max_processes()``: one cap now, refused before any process starts.
4. ``run``'s flags checked by the runtime's own rules (refit rhythm, sandbox, spread,
   the arbiter's pulse) before any work; a mesh node built only after the swarm.

"Before any work" is proved for ``run`` by ``_no_data``: reading ``--data`` fails the
test, and the executor (worker processes, Ray) and the mesh node are only built after
it. ``var``/``backtest`` refusals are proved by ``_no_pools`` (their workers are a
``ProcessPoolExecutor``). No test here runs an accepted large ``--workers``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.cli._common import cli_words, max_processes
from swarmvar.errors import InvalidParameter, KeyFileUnreadable

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import invoke  # noqa: E402

runner = CliRunner()


_cli = invoke


@pytest.fixture
def _no_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process pool (``var``'s and ``backtest``'s workers) started in this test fails it."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process pool was started for a refused command")

    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "__init__", refuse)


@pytest.fixture
def _no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` reading its ``--data`` fails the test: what ``run`` does after that (the
    executor's workers, Ray, the sandbox probe, the swarm's home, the mesh node) cannot
    have started for a refusal that passes with it."""
    def refuse(source: str) -> None:
        raise AssertionError(f"run read --data {source} before refusing")

    monkeypatch.setattr("swarmvar.cli.run._data", refuse)


def _close_spy(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every ``LocalExecutor.close`` call (the executor it closed), closing it as before."""
    from swarmvar.swarm import LocalExecutor

    closed: list[object] = []
    original = LocalExecutor.close

    def close(self: Any) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(LocalExecutor, "close", close)
    return closed


def _returns_csv(path: Path, columns: tuple[str, ...] = ("x",), n: int = 80) -> Path:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(0, 0.01, (n, len(columns))), columns=list(columns),
                         index=pd.bdate_range("2020-01-01", periods=n))
    frame.to_csv(path, index_label="date")
    return path


# --- 1. a refused start leaves no home; the rule is the runtime's ---------------------------

@settings(max_examples=25, deadline=None)
@given(every=st.integers(1, 40), extra=st.integers(1, 40))
def test_swarm_refuses_a_lag_beyond_the_rhythm_before_its_home_exists(every: int,
                                                                      extra: int) -> None:
    """Was: the home was created, then PortfolioConfig refused (an empty home left)."""
    from swarmvar.swarm import RoleConfig, Swarm

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "deep" / "home"
        with pytest.raises(InvalidParameter, match=f"refit_lag {every + extra} .* "
                                                   f"refit_every {every}"):
            Swarm(["p"], home=home, agents=("nig",), window=30, refit_every=every,
                  roles=RoleConfig(refit_lag=every + extra))
        assert not (Path(tmp) / "deep").exists()


@pytest.mark.parametrize("case", ["spread-lag", "spread-clash", "spread-sandbox"])
def test_swarm_refuses_spread_settings_before_its_home_exists(case: str,
                                                              tmp_path: Path) -> None:
    """The spread checks (refit lag, sandboxes, group names clashing with portfolios) ran
    after the home was made, too. LocalExecutor starts no process before ``open``."""
    from swarmvar.swarm import LocalExecutor, RoleConfig, Swarm
    from swarmvar.swarm.sandboxing import SandboxSetup

    home = tmp_path / "home"
    ex = LocalExecutor(2)
    try:
        if case == "spread-lag":
            with pytest.raises(InvalidParameter, match="refit_lag 0"):
                Swarm(["p"], home=home, agents=("nig", "bootstrap"), window=30, spread=2,
                      executor=ex, roles=RoleConfig(refit_lag=1))
        elif case == "spread-sandbox":
            with pytest.raises(InvalidParameter, match="cannot run sandboxed agents"):
                Swarm(["p"], home=home, agents=("nig", "bootstrap"), window=30, spread=2,
                      executor=ex, sandbox=SandboxSetup("none"))
        else:
            with pytest.raises(InvalidParameter, match="clash"):
                Swarm(["p", "p#g0"], home=home, agents=("nig", "bootstrap"), window=30,
                      spread=2, executor=ex)
    finally:
        ex.close()
    assert not home.exists()


def test_swarm_accepts_a_lag_equal_to_the_rhythm_and_makes_its_home(tmp_path: Path) -> None:
    from swarmvar.swarm import RoleConfig, Swarm

    home = tmp_path / "home"
    with Swarm(["p"], home=home, agents=("nig",), window=30, refit_every=3,
               roles=RoleConfig(refit_lag=3)) as swarm:
        assert swarm.roles.refit_lag == 3
    assert (home / "ledger.sqlite").exists()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_run_refuses_the_lag_in_flags_before_any_work(executor: str, tmp_path: Path,
                                                      _no_data: None) -> None:
    """The runtime's rule, asked before the data is read or Ray started: the message names
    the flags, not the dataclass fields, each once, and no home is made."""
    data = _returns_csv(tmp_path / "r.csv")
    code, out = _cli("run", "--data", str(data), "--executor", executor, "--workers", "2",
                     "--refit-every", "5", "--refit-lag", "6", "--quiet",
                     "--home", str(tmp_path / "home"))
    assert code == 2, out
    assert "--refit-lag 6 is longer than --refit-every 5" in out, out
    assert "refit_lag" not in out and "refit_every" not in out, out
    assert out.count("--refit-lag") == 2 and "Invalid value for" not in out, out
    assert not (tmp_path / "home").exists()


def test_the_cli_and_the_swarm_say_the_same_words(tmp_path: Path, _no_data: None) -> None:
    """The early check and the runtime's own refusal read the same in flags; in Python the
    message names the fields only (no command-line hint)."""
    from swarmvar.swarm import RoleConfig, Swarm

    with pytest.raises(InvalidParameter) as engine:
        Swarm(["p"], home=tmp_path / "h", agents=("nig",), window=30, refit_every=4,
              roles=RoleConfig(refit_lag=9))
    said = str(engine.value)
    assert "give a refit_lag of at most refit_every" in said and "--" not in said, said
    code, out = _cli("run", "--refit-every", "4", "--refit-lag", "9", "--quiet",
                     "--home", str(tmp_path / "h"))
    assert code == 2
    assert " ".join(out.split()) == f"error: {cli_words(said)}", out
    assert not (tmp_path / "h").exists()


@settings(max_examples=60, deadline=None)
@given(lag=st.integers(0, 60), every=st.integers(1, 60))
def test_one_refit_rhythm_rule_for_the_config_and_the_cli(lag: int, every: int) -> None:
    """``check_refit_rhythm`` is the rule ``PortfolioConfig`` applies: both refuse exactly
    a lag beyond the rhythm, with one message."""
    from swarmvar.swarm import PortfolioConfig, RoleConfig
    from swarmvar.swarm.beat import check_refit_rhythm

    def said(call: Any) -> str | None:
        try:
            call()
        except InvalidParameter as exc:
            return str(exc)
        return None

    rule = said(lambda: check_refit_rhythm(lag, every))
    config = said(lambda: PortfolioConfig("p", ("nig",), refit_every=every,
                                          roles=RoleConfig(refit_lag=lag)))
    assert rule == config
    assert (rule is None) == (lag <= every)


def test_run_refused_by_the_swarm_itself_leaves_no_home(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal only the runtime makes, after the data is read (portfolio names clashing
    with a spread's groups): exit 2, no home; the executor (lazy: no process yet) is
    closed by the CLI."""
    closed = _close_spy(monkeypatch)
    data = _returns_csv(tmp_path / "assets.csv")
    book = tmp_path / "books.json"
    book.write_text(json.dumps({"a": {"weights": {"x": 1.0}},
                                "a#g0": {"weights": {"x": 1.0}}}), encoding="utf-8")
    code, out = _cli("run", "--data", str(data), "--portfolios", str(book), "--workers", "2",
                     "--spread", "2", "--agents", "nig,bootstrap", "--window", "30",
                     "--quiet", "--home", str(tmp_path / "home"))
    assert code == 2 and "clash" in out, out
    assert not (tmp_path / "home").exists()
    assert len(closed) == 1 and getattr(closed[0], "workers", None) == 2


def test_run_closes_the_executor_on_any_failure_and_raises_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a SwarmVarError (a bug, Ctrl-C): the executor is closed all the same, and the
    failure goes on as it is (not turned into a usage error)."""
    from swarmvar.swarm import Swarm

    closed = _close_spy(monkeypatch)

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the swarm's start")

    monkeypatch.setattr(Swarm, "__init__", broken)
    result = runner.invoke(build_app(), ["run", "--data", str(_returns_csv(tmp_path / "r.csv")),
                                         "--agents", "nig", "--window", "30", "--quiet",
                                         "--home", str(tmp_path / "home")])
    assert isinstance(result.exception, RuntimeError), result.output
    assert len(closed) == 1
    assert not (tmp_path / "home").exists()


# --- 2. a damaged key file: one read, the file and the flag named ----------------------------

def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from swarmvar.service import keys as keys_mod

    reads: list[Path] = []
    original = keys_mod.KeyFile._reload

    def counted(self: Any) -> None:
        reads.append(self.path)
        original(self)

    monkeypatch.setattr(keys_mod.KeyFile, "_reload", counted)
    return reads


@pytest.mark.parametrize("via", ["--keys", "--home"])
def test_keys_create_names_a_damaged_file_and_its_flag_in_one_read(
        via: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: ``kf.list()`` read the file once only to choose the flag, then create again."""
    path = tmp_path / "api-keys.json"
    path.write_bytes(b"{not json")
    reads = _count_reads(monkeypatch)
    where = ["--keys", str(path)] if via == "--keys" else ["--home", str(tmp_path)]
    code, out = _cli("keys", "create", *where)
    assert code == 2, out
    assert f"error: {via}: the key file {path} is unreadable" in " ".join(out.split()), out
    assert "--rate" not in out and "--burst" not in out, out
    assert reads == [path]
    assert path.read_bytes() == b"{not json"


def test_keys_create_reads_a_good_file_once_and_blames_the_rate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.json"
    reads = _count_reads(monkeypatch)
    code, out = _cli("keys", "create", "--keys", str(path), "--name", "a")
    assert code == 0, out
    assert reads == [path]
    code, out = _cli("keys", "create", "--keys", str(path), "--rate", "nan")
    assert code == 2 and "--rate" in out, out
    assert reads == [path]  # the arguments are checked before the file is read


@pytest.mark.parametrize("command", [["list"], ["revoke", "abcd1234"]])
def test_keys_list_and_revoke_name_the_flag_too(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text('{"keys": [{"id": "x"}]}', encoding="utf-8")
    code, out = _cli("keys", *command, "--keys", str(path))
    assert code == 2, out
    assert f"error: --keys: the key file {path} is unreadable" in " ".join(out.split()), out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=64), st.sampled_from([
    b"[]", b"{}", b'{"keys": 3}', b'{"keys": [1]}', b'{"keys": [{"id": "a", "role": "god"}]}',
    b'{"keys": [{"id": "a"}]}'])))
def test_a_damaged_key_file_is_a_key_file_unreadable_naming_it(content: bytes) -> None:
    """Whatever is not a key file raises KeyFileUnreadable (an InvalidParameter, as the
    service's auth catches) naming the file; nothing is written."""
    from swarmvar.service.keys import KeyFile, Role

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.json"
        path.write_bytes(content)
        try:
            rows = KeyFile(path).list()
        except KeyFileUnreadable as exc:
            assert isinstance(exc, InvalidParameter) and str(path) in str(exc)
            with pytest.raises(KeyFileUnreadable, match="unreadable"):
                KeyFile(path).create(Role.READER)
        else:  # content that happens to be a key file (e.g. {"keys": []})
            assert all(k.id for k in rows)
        assert path.read_bytes() == content


# --- 3. one worker cap, refused before any process starts ------------------------------------

@pytest.mark.parametrize("command", [["var"], ["backtest"], ["backtest", "--book", "BOOK"],
                                     ["var", "--positions", "x=100"]])
@pytest.mark.parametrize("above", [1, 99999])
def test_var_and_backtest_cap_workers_as_run_and_serve(command: list[str], above: int,
                                                       tmp_path: Path,
                                                       _no_pools: None) -> None:
    """Was: 1,024 for var/backtest (max_processes() for run/serve); a book's backtest took
    any count unchecked."""
    book = tmp_path / "book.csv"
    book.write_text("asset,position\nx,100\n", encoding="utf-8")
    args = [str(book) if a == "BOOK" else a for a in command]
    value = max_processes() + above if above == 1 else above
    code, out = _cli(*args, "--data", "sp500", "--workers", str(value),
                     "--home", str(tmp_path / "home"))
    assert code == 2, out
    assert "--workers" in out and f"between 1 and {max_processes()}" in out, out
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("command", ["var", "backtest", "run", "serve"])
def test_every_workers_flag_has_the_same_cap(command: str, tmp_path: Path,
                                             _no_pools: None, _no_data: None) -> None:
    code, out = _cli(command, "--workers", str(max_processes() + 1),
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "--workers" in out and str(max_processes()) in out, out
    assert not (tmp_path / "home").exists()


def test_workers_cap_is_the_readme_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap is the rule README states ("--workers N sets the processes (at most 4 per
    CPU, or 8 on a small machine"), read from README, on small and large machines."""
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    rule = re.search(r"`--workers N` sets the processes \(at most (\d+) per CPU, or (\d+) on a "
                     r"small machine", readme)
    assert rule is not None, "README no longer states the --workers cap"
    per_cpu, floor = int(rule[1]), int(rule[2])
    for cpus in (1, 2, floor // per_cpu, floor // per_cpu + 1, 64):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        assert max_processes() == max(floor, per_cpu * cpus), cpus
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one CPU
    assert max_processes() == max(floor, per_cpu)


# --- 4. flags checked twice: the runtime's rule asked early instead of a CLI copy -------------

@pytest.mark.parametrize(("args", "said"), [
    (["--refit-lag", "-1"], "--refit-lag must be a whole number >= 0, not -1"),
    (["--sandbox", "docker"], "unknown sandbox backend 'docker'"),
    (["--sandbox", "e2b", "--plugin", "house_agents:HalfLife"],
     "plug-ins are not shipped to E2B yet: use --sandbox bwrap"),
    (["--arbiter", "--t1", "-1"], "--t1 (base seconds) must be a finite number > 0"),
    (["--arbiter", "--t-threshold", "nan"], "--t-threshold must be a finite number > 0"),
    (["--arbiter", "--k-flows", "0.1"], "raise --k-flows or --p-nodes"),
    (["--workers", "2", "--spread", "2", "--refit-lag", "1"], "spread 2 needs --refit-lag 0"),
    (["--workers", "2", "--spread", "2", "--sandbox", "bwrap"],
     "spread 2 cannot run sandboxed agents yet"),
    (["--spread", "2"], "spread 2 needs as many hosts, but the executor has 1"),
    (["--executor", "ray", "--workers", "2", "--spread", "3"], "the executor has 2"),
    (["--spread", "0"], "spread must be a whole number >= 1, not 0"),
    (["--sandbox", "none", "--plugin", "house-agents.x:HalfLife"],
     "'house-agents.x:HalfLife' is not package.module:Class"),
    (["--sandbox", "none", "--plugin", "house..x:HalfLife"], "is not package.module:Class"),
])
def test_run_asks_the_runtime_before_any_work(args: list[str], said: str, tmp_path: Path,
                                              _no_data: None) -> None:
    """Was: a CLI copy (--refit-lag >= 0, the backend names, spread with a refit lag, a
    plug-in's module path), or (plug-ins in E2B, the arbiter's pulse, spread with a
    sandbox) a refusal only after the data was read and the executor built (Ray started,
    a sandbox probed), in Python's words (t1, t_threshold)."""
    data = _returns_csv(tmp_path / "r.csv")
    code, out = _cli("run", "--data", str(data), "--agents", "nig", "--window", "30",
                     "--quiet", *args, "--home", str(tmp_path / "home"))
    assert code == 2 and said in " ".join(out.split()), out
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("under", ["", "sub"])
def test_swarm_refuses_a_home_that_cannot_be_a_directory(under: str, tmp_path: Path) -> None:
    """Was: FileExistsError / NotADirectoryError from mkdir (not a SwarmVarError)."""
    from swarmvar.swarm import Swarm

    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    home = afile / under if under else afile
    with pytest.raises(InvalidParameter, match="cannot use .* as the swarm's home"):
        Swarm(["p"], home=home, agents=("nig",), window=30)
    assert afile.read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("spec", ["a-b.c:X", "a..b:X", ".a:X", "a.:X", ":X", "a.b:1X", "a.b:"])
def test_sandbox_setup_refuses_a_plugin_that_is_no_module_path(spec: str) -> None:
    """The runtime's rule for a plug-in (each dotted part of its module a name, as import
    reads it); ``run``'s stricter copy of it is gone."""
    from swarmvar.swarm.sandboxing import SandboxSetup

    with pytest.raises(InvalidParameter, match="is not package.module:Class"):
        SandboxSetup("none", (spec,))
    assert SandboxSetup("none", ("house_agents.half:HalfLife",)).plugin_agents == {
        "HalfLife": "house_agents.half:HalfLife"}


def test_run_mesh_refused_by_the_swarm_leaves_no_home_and_no_bound_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the mesh node was built (HOME/mesh made, its ledger opened, the port bound)
    before the data was read and the swarm built; a refusal of the swarm left HOME/mesh.
    The cluster and key live outside the home here, so the home is the start's own."""
    import socket

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swarmvar.mesh import free_ports, write_cluster, write_key

    closed = _close_spy(monkeypatch)
    keys = {n: Ed25519PrivateKey.generate() for n in ("r0", "r1")}
    ports = dict(zip(keys, free_ports(2), strict=True))
    cluster, key = tmp_path / "cluster.json", tmp_path / "r0.key"
    write_cluster(cluster, {n: f"tcp://127.0.0.1:{p}" for n, p in ports.items()}, keys, {})
    write_key(key, keys["r0"])
    data = _returns_csv(tmp_path / "assets.csv")
    book = tmp_path / "books.json"
    book.write_text(json.dumps({"a": {"weights": {"x": 1.0}},
                                "a#g0": {"weights": {"x": 1.0}}}), encoding="utf-8")
    home = tmp_path / "home"
    code, out = _cli("run", "--data", str(data), "--portfolios", str(book), "--workers", "2",
                     "--spread", "2", "--agents", "nig,bootstrap", "--window", "30", "--quiet",
                     "--home", str(home), "--mesh", "--mesh-port", str(ports["r0"]),
                     "--mesh-id", "r0", "--mesh-cluster", str(cluster), "--mesh-key", str(key))
    assert code == 2 and "clash" in out, out
    assert not home.exists()
    assert len(closed) == 1
    with socket.socket() as probe:  # nothing holds the node's port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", ports["r0"]))


@pytest.mark.parametrize("args", [
    ["run", "--refit-every", "5", "--refit-lag", "6"], ["run", "--pace", "rate"],
    ["run", "--rate", "5", "--pace", "none"], ["run", "--peer", "tcp://127.0.0.1:1"],
    ["run", "--follow", "--stdin"], ["run", "--spread", "0"],
    ["arbiter", "replay", "--last", "3"],
])
def test_a_refusal_names_its_flag_once(args: list[str], tmp_path: Path, _no_data: None) -> None:
    """Was: ``Invalid value for --refit-lag: --refit-lag 6 ...``, ``Invalid value for
    --last: --last must be >= 50`` (the flag said by typer's hint, then by the message)."""
    code, out = _cli(*args, "--home", str(tmp_path / "home"))
    said = " ".join(out.split())
    assert code == 2 and ("error:" in said or "Invalid value for" in said), out
    assert not re.search(r"Invalid value for (--[a-z0-9-]+): \1(?![a-z0-9-])", said), out
    assert not (tmp_path / "home").exists()
