"""The escape battery: every attempt is contained and reported as a typed violation."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from swarmvar import sandbox
from swarmvar.errors import SandboxViolation, TaskFailed, Violation


def attack(box: sandbox.Sandbox, name: str, **params: object) -> SandboxViolation:
    with pytest.raises(SandboxViolation) as caught:
        box.run(sandbox.Task(f"sbx_attacks:{name}", params))
    return caught.value


def test_a_plain_task_runs_and_is_checked(bwrap_box: sandbox.Sandbox) -> None:
    x = np.arange(5.0)
    result = bwrap_box.run(sandbox.Task("sbx_attacks:ok", {}, {"x": x}))
    assert result.values == {"sum": 10.0}
    np.testing.assert_array_equal(result.arrays["y"], 2 * x)


def test_tcp_to_a_host_server_on_loopback_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        server.settimeout(3)
        try:
            conn, _ = server.accept()
            got.append(conn.recv(100))
        except OSError:
            pass

    waiter = threading.Thread(target=accept)
    waiter.start()
    v = attack(bwrap_box, "connect", port=port)
    waiter.join()
    server.close()
    assert v.violation is Violation.NETWORK
    assert got == []


def test_name_resolution_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "resolve").violation is Violation.NETWORK


def test_the_data_home_is_not_there(bwrap_box: sandbox.Sandbox, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "agents" / "nig.pem"
    key.parent.mkdir(parents=True)
    key.write_text("PRIVATE KEY")
    (tmp_path / "ledger.sqlite").write_bytes(b"SQLite format 3\0")
    for path in (key, tmp_path / "ledger.sqlite"):
        v = attack(bwrap_box, "read_file", path=str(path))
        assert v.violation is Violation.READ_FORBIDDEN


def test_writes_outside_the_scratch_folder_are_refused(
        bwrap_box: sandbox.Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    for path in (str(target), "/usr/escaped", str(Path(sandbox.__file__).parent / "x.py")):
        assert attack(bwrap_box, "write_file", path=path).violation is Violation.WRITE_OUTSIDE
    assert not target.exists()


def test_host_environment_of_pid_1_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "environ").violation is Violation.READ_FORBIDDEN


def test_signalling_or_tracing_the_parent_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "signal_parent").violation is Violation.SIGNAL
    assert attack(bwrap_box, "ptrace_parent").violation is Violation.NATIVE
    assert bwrap_box.run(sandbox.Task("sbx_attacks:ok", {}, {"x": np.ones(2)})).values


def test_a_fork_bomb_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "fork_bomb").violation is Violation.PROCESS


def test_a_child_left_running_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "leave_child").violation is Violation.PROCESS


def test_allocating_8_gb_is_a_memory_violation(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "allocate", bytes=8 << 30).violation is Violation.MEMORY


def test_spinning_forever_hits_the_cpu_limit(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "spin").violation in (Violation.CPU_TIME, Violation.WALL_TIMEOUT)


def test_sleeping_forever_hits_the_wall_clock(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "sleep_forever").violation is Violation.WALL_TIMEOUT


def test_a_2_gb_file_hits_the_file_size_limit(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "big_file", mib=2048).violation is Violation.FILE_SIZE


@pytest.mark.parametrize("name", ["malformed", "object_array", "not_json"])
def test_malformed_results_are_refused(bwrap_box: sandbox.Sandbox, name: str) -> None:
    assert attack(bwrap_box, name).violation is Violation.MALFORMED_RESULT


def test_an_oversized_result_is_refused(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "oversized", bytes=64 << 20).violation is Violation.OVERSIZED_RESULT


def test_a_crashed_worker_is_replaced(bwrap_box: sandbox.Sandbox) -> None:
    assert attack(bwrap_box, "crash").violation is Violation.CRASHED
    result = bwrap_box.run(sandbox.Task("sbx_attacks:ok", {}, {"x": np.ones(3)}))
    assert result.values == {"sum": 3.0}
    health = bwrap_box.health()
    assert health.alive and health.workers_started == 2 and health.violations == 1


def test_a_task_error_is_its_own_not_a_violation(bwrap_box: sandbox.Sandbox) -> None:
    with pytest.raises(TaskFailed, match="InvalidParameter"):
        bwrap_box.run(sandbox.Task("swarmvar.models.task:fit_forecast", {"agent": "nig"}, {}))
    assert bwrap_box.health().violations == 0


def test_the_data_home_inside_a_bound_folder_is_refused() -> None:
    import sys
    with pytest.raises(sandbox.SandboxError, match="must stay hidden"):
        sandbox.BubblewrapSandbox(sandbox.TRAINING, hidden=[os.path.join(sys.prefix, "home")])


# --- the kernel's walls hold with the reporting hook switched off -----------


def unguarded(box: sandbox.Sandbox, what: str, **params: object) -> dict[str, object]:
    return dict(box.run(sandbox.Task("sbx_attacks:unguarded", {"what": what, **params})).values)


def test_without_the_hook_loopback_is_still_another_network(bwrap_box: sandbox.Sandbox) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    out = unguarded(bwrap_box, "connect", port=port)
    with pytest.raises(OSError):  # nothing ever reached the host's server
        server.accept()
    server.close()
    assert out["outcome"] == "refused"


def test_without_the_hook_the_data_home_does_not_exist(
        bwrap_box: sandbox.Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "keys.pem"
    secret.write_text("PRIVATE KEY")
    out = unguarded(bwrap_box, "read", path=str(secret))
    assert out == {"outcome": "refused", "errno": 2, "error": "FileNotFoundError"}


def test_without_the_hook_the_host_is_read_only(bwrap_box: sandbox.Sandbox) -> None:
    target = Path(sandbox.__file__).parent / "escaped.py"
    out = unguarded(bwrap_box, "write", path=str(target))
    assert out["outcome"] == "refused" and not target.exists()


def test_without_the_hook_pid_1_is_the_sandbox_and_its_environment_is_clear(
        bwrap_box: sandbox.Sandbox) -> None:
    out = unguarded(bwrap_box, "environ")
    data = str(out.get("data", ""))
    assert "HOME=/root" not in data and "SWARMVAR" not in data
    listed = unguarded(bwrap_box, "processes")
    assert len(listed["pids"]) <= 3  # bwrap's init, the worker (and nothing of the host)
