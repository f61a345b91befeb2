"""One suite for every backend: the same tasks, files and health answers on each.

The E2B backend runs it too, through the e2b SDK against ``fake_e2b`` (a
local fake of E2B's HTTP API: its cloud cannot be reached from here).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from swarmvar import data, sandbox
from swarmvar.errors import InvalidParameter, SandboxError, TaskFailed
from swarmvar.models import task as model_tasks

BACKENDS = [
    pytest.param("bwrap", marks=pytest.mark.skipif(
        shutil.which("bwrap") is None, reason="bubblewrap is not installed")),
    "none",
    pytest.param("e2b", marks=pytest.mark.skipif(
        importlib.util.find_spec("e2b") is None, reason="the e2b SDK is not installed")),
]


@pytest.fixture(scope="module")
def fake_e2b_url() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_e2b import serve_fake_e2b

    with serve_fake_e2b() as (_, url):
        yield url


@pytest.fixture(params=BACKENDS)
def box(request: pytest.FixtureRequest) -> Iterator[sandbox.Sandbox]:
    profile = sandbox.Profile("suite", cpu_seconds=30, wall_seconds=60,
                              memory_bytes=3 << 30, processes=64, file_bytes=16 << 20,
                              tasks_per_worker=3)
    if request.param == "e2b":
        url = request.getfixturevalue("fake_e2b_url")
        created = sandbox.create("e2b", profile, api_key="e2b_test_key", api_url=url,
                                 sandbox_url=url, python=sys.executable)
    else:
        created = sandbox.create(request.param, profile)
    yield created
    created.kill()


def nig_task(seed: int = 3) -> sandbox.Task:
    r = data.load("sp500").to_numpy()[:1000]
    return sandbox.Task("swarmvar.models.task:fit_forecast",
                        {"agent": "nig", "options": {}, "alphas": [0.99, 0.975]},
                        {"returns": r}, seed=seed)


def test_a_fit_gives_the_in_process_numbers_bit_for_bit(box: sandbox.Sandbox) -> None:
    task = nig_task()
    inside = box.run(task)
    values, arrays = model_tasks.fit_forecast(task.params, task.arrays, task.seed)
    assert inside.values == values
    assert inside.arrays["state"].tobytes() == arrays["state"].tobytes()


def test_a_backtest_row_gives_the_in_process_numbers(box: sandbox.Sandbox) -> None:
    r = data.load("sp500").to_numpy()[:400]
    task = sandbox.Task("swarmvar.models.task:forecast_path",
                        {"agent": "bootstrap", "options": {"window": 250}, "alphas": [0.99],
                         "window": 300, "refit_every": 20}, {"returns": r}, seed=5)
    inside = box.run(task)
    _, arrays = model_tasks.forecast_path(task.params, task.arrays, task.seed)
    np.testing.assert_array_equal(inside.arrays["var"], arrays["var"])
    np.testing.assert_array_equal(inside.arrays["es"], arrays["es"])


def test_files_go_in_and_out_of_the_scratch_folder(box: sandbox.Sandbox) -> None:
    box.put_file("in/data.bin", b"\x00\x01swarm")
    assert box.get_file("in/data.bin") == b"\x00\x01swarm"
    with pytest.raises(SandboxError):
        box.get_file("missing.bin")
    with pytest.raises(SandboxError):
        box.put_file("../../escape.bin", b"x")


def test_the_worker_stays_warm_and_is_recycled(box: sandbox.Sandbox) -> None:
    if box.backend == "e2b":
        pytest.skip("an E2B task is one command in its VM: no warm worker to recycle")
    for _ in range(4):
        box.run(nig_task())
    health = box.health()
    assert health.tasks == 4 and health.violations == 0
    assert health.workers_started == 2  # recycled after tasks_per_worker = 3


def test_task_errors_and_bad_tasks(box: sandbox.Sandbox) -> None:
    with pytest.raises(TaskFailed, match="unknown agent|UnknownAgent"):
        box.run(sandbox.Task("swarmvar.models.task:fit_forecast",
                             {"agent": "no-such-agent"}, {"returns": np.zeros(10)}))
    with pytest.raises(TaskFailed, match="ModuleNotFoundError"):
        box.run(sandbox.Task("no_such_module:f"))
    with pytest.raises(SandboxError):
        box.run("not a task")  # type: ignore[arg-type]
    assert box.health().alive


@pytest.mark.parametrize("entry", ["nocolon", "a:", ":f", "a:1bad"])
def test_malformed_entries_are_refused_before_anything_runs(entry: str) -> None:
    with pytest.raises(InvalidParameter):
        sandbox.Task(entry)


def test_bad_arrays_and_seeds_are_refused() -> None:
    with pytest.raises(InvalidParameter):
        sandbox.Task("m:f", arrays={"x": np.array([object()])})
    with pytest.raises(InvalidParameter):
        sandbox.Task("m:f", arrays={"x": [1.0, 2.0]})  # type: ignore[dict-item]
    with pytest.raises(InvalidParameter):
        sandbox.Task("m:f", seed=-1)


def test_unknown_backend_and_profile() -> None:
    with pytest.raises(SandboxError, match="unknown sandbox backend"):
        sandbox.create("docker")
    with pytest.raises(InvalidParameter, match="unknown sandbox profile"):
        sandbox.create("none", "gpu")
    with pytest.raises(InvalidParameter):
        sandbox.Profile("x", cpu_seconds=float("nan"), wall_seconds=1, memory_bytes=1,
                        processes=1, file_bytes=1)
