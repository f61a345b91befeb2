"""The E2B backend through the e2b SDK against a local fake of E2B's HTTP API.

E2B's cloud cannot be reached from here, so this is the accepted fake: the
SDK's real client code talks HTTP and connect-RPC to ``fake_e2b`` on a
loopback port. The same checks as the local backends' suite: numbers bit for
bit, files, errors, violations, health.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar import data, sandbox
from swarmvar.errors import (
    SandboxError,
    SandboxUnavailable,
    SandboxViolation,
    TaskFailed,
    Violation,
)
from swarmvar.models import task as model_tasks

pytestmark = pytest.mark.skipif(importlib.util.find_spec("e2b") is None,
                                reason="the e2b SDK is not installed (pip install swarmvar[e2b])")

sys.path.insert(0, str(Path(__file__).parent))
from fake_e2b import serve_fake_e2b  # noqa: E402

PROFILE = sandbox.Profile("e2b-test", cpu_seconds=30, wall_seconds=60, memory_bytes=2 << 30,
                          processes=64, file_bytes=16 << 20, result_bytes=8 << 20)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[object, str]]:
    with serve_fake_e2b() as served:
        yield served


@pytest.fixture
def box(fake: tuple[object, str]) -> Iterator[sandbox.Sandbox]:
    _, url = fake
    created = sandbox.create("e2b", PROFILE, api_key="e2b_test_key", api_url=url,
                             sandbox_url=url, python=sys.executable)
    yield created
    created.kill()


def test_a_fit_in_e2b_gives_the_in_process_numbers(
        box: sandbox.Sandbox, fake: tuple[Any, str]) -> None:
    r = data.load("sp500").to_numpy()[:1000]
    task = sandbox.Task("swarmvar.models.task:fit_forecast",
                        {"agent": "nig", "alphas": [0.99, 0.975]}, {"returns": r}, seed=4)
    result = box.run(task)
    values, arrays = model_tasks.fit_forecast(task.params, task.arrays, task.seed)
    assert result.values == values
    assert result.arrays["state"].tobytes() == arrays["state"].tobytes()
    state, _ = fake
    assert ("POST", "/v2/sandboxes") in state.requests and ("POST", "/files") in state.requests
    assert state.created[-1]["allow_internet_access"] is False


def test_files_errors_and_health(box: sandbox.Sandbox) -> None:
    box.put_file("in/x.bin", b"\x00e2b")
    assert box.get_file("in/x.bin") == b"\x00e2b"
    with pytest.raises(SandboxError):
        box.get_file("missing.bin")
    with pytest.raises(SandboxError):
        box.put_file("../escape", b"x")
    with pytest.raises(TaskFailed, match="ModuleNotFoundError"):
        box.run(sandbox.Task("no_such_module:f"))
    box.put_file("bad.py", b"def go(p, a, s):\n    return 'not a tuple'\n")
    with pytest.raises(SandboxViolation) as caught:
        box.run(sandbox.Task("bad:go"))
    assert caught.value.violation is Violation.MALFORMED_RESULT
    assert box.health().alive
    box.kill()
    assert not box.health().alive


def test_a_network_attempt_inside_is_reported(box: sandbox.Sandbox, tmp_path: Path) -> None:
    box.put_file("probe.py", b"import socket\n"
                 b"def go(p, a, s):\n    socket.create_connection(('127.0.0.1', 9), 1)\n")
    with pytest.raises(SandboxViolation) as caught:
        box.run(sandbox.Task("probe:go"))
    assert caught.value.violation is Violation.NETWORK


def test_a_bad_api_key_is_a_clear_error(fake: tuple[object, str]) -> None:
    _, url = fake
    with pytest.raises(SandboxUnavailable, match="cannot create an E2B sandbox"):
        sandbox.create("e2b", PROFILE, api_key="wrong", api_url=url, sandbox_url=url)


def test_no_api_key_names_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(SandboxError, match="E2B_API_KEY"):
        sandbox.create("e2b", PROFILE)


def test_results_are_checked_like_the_local_ones(box: sandbox.Sandbox) -> None:
    x = np.arange(3.0)
    box.put_file("echo.py", b"def go(p, a, s):\n    return {'n': 3}, {'y': a['x'] * 2}\n")
    result = box.run(sandbox.Task("echo:go", {}, {"x": x}))
    np.testing.assert_array_equal(result.arrays["y"], 2 * x)
