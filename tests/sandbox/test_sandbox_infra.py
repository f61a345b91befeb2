"""The sandbox's own failures are not the code's violations (real bubblewrap).

A worker that cannot start (it cannot import, a wall cannot be built) raises
``SandboxUnavailable`` with the tail of its error output, and a canary run it
stops counts nothing against the variant's breaker. A swarmvar imported from
a source checkout on PYTHONPATH (which ``python -I`` inside would not see)
runs in the sandbox from that checkout, bound read-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import swarmvar
from swarmvar import data, sandbox
from swarmvar.errors import SandboxUnavailable, SandboxViolation
from swarmvar.evolution import BreakerState, open_home
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.swarm.canary_sandbox import validate_variant

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed")
PROFILE = sandbox.Profile("infra", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                          processes=64, file_bytes=16 << 20)


def test_a_worker_that_cannot_import_is_unavailable_not_a_violation() -> None:
    box = sandbox.BubblewrapSandbox(PROFILE, preload=("numpy", "no_such_module_q7"))
    try:
        with pytest.raises(SandboxUnavailable) as caught:
            box.run(sandbox.Task("swarmvar.models.task:fit_forecast", {}, {}, seed=0))
    finally:
        box.kill()
    assert not isinstance(caught.value, SandboxViolation)
    assert "could not start" in str(caught.value) and "status 1" in str(caught.value)
    # the worker's own words: what it could not import
    assert "ModuleNotFoundError" in caught.value.stderr
    assert "no_such_module_q7" in caught.value.stderr
    health = box.health()
    assert health.violations == 0 and health.tasks == 0


def test_a_crash_inside_a_task_shows_the_workers_last_words(tmp_path: Path) -> None:
    (tmp_path / "sbx_noisy.py").write_text(textwrap.dedent('''
        import os, sys
        def die(params, arrays, seed):
            print("the last thing it said", file=sys.stderr, flush=True)
            os._exit(3)
    '''))
    box = sandbox.BubblewrapSandbox(PROFILE, plugin_paths=[str(tmp_path)])
    try:
        with pytest.raises(SandboxViolation) as caught:
            box.run(sandbox.Task("sbx_noisy:die", {}, {}, seed=0))
    finally:
        box.kill()
    assert "status 3" in caught.value.detail
    assert "the last thing it said" in caught.value.detail


def test_an_unavailable_sandbox_counts_nothing_against_the_breaker(tmp_path: Path,
                                                                   nig_canary) -> None:
    vid = nig_canary(tmp_path)
    broken = sandbox.BubblewrapSandbox(sandbox.VALIDATION, preload=("no_such_module_q7",))
    h = open_home(tmp_path)
    try:
        with Ledger(tmp_path) as ledger:
            size = ledger.size
            with pytest.raises(SandboxUnavailable, match="no_such_module_q7"):
                validate_variant(vid, data.load("sp500").iloc[-700:], home=h, ledger=ledger,
                                 box=broken, clock=time.time, window=500)
            assert ledger.size == size  # no violation recorded
        record = h.breakers.load(vid)
        assert record.state is BreakerState.CLOSED and record.failures == 0
        assert h.metrics.count(vid) == 0
        assert h.variants.get(vid).canary.failed_checks == 0  # type: ignore[union-attr]
    finally:
        broken.kill()
        h.close()


def _checkout(tmp_path: Path) -> Path:
    """A copy of the package outside every installed path: a source checkout."""
    root = tmp_path / "checkout" / "src"
    shutil.copytree(Path(swarmvar.__file__).parent, root / "swarmvar",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_source_checkout_on_pythonpath_runs_in_the_sandbox(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sbx_where.py").write_text(
        "import swarmvar\n"
        "def where(params, arrays, seed):\n"
        "    return {'file': swarmvar.__file__}, {}\n")
    script = textwrap.dedent(f'''
        import swarmvar
        from swarmvar import sandbox
        assert swarmvar.__file__.startswith({str(root)!r}), swarmvar.__file__
        box = sandbox.BubblewrapSandbox(sandbox.Profile("p", cpu_seconds=30, wall_seconds=60,
            memory_bytes=3 << 30, processes=64, file_bytes=16 << 20),
            plugin_paths=[{str(plugins)!r}])
        try:
            print(box.run(sandbox.Task("sbx_where:where", {{}}, {{}}, seed=0)).values["file"])
        finally:
            box.kill()
    ''')
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    # inside, the worker ran the checkout's code (bound read-only at the same path)
    assert done.stdout.strip() == str(root / "swarmvar" / "__init__.py")


def test_only_the_package_folder_of_a_checkout_is_visible_inside(tmp_path: Path) -> None:
    """The checkout's other files (beside the package, or at its top) are not bound."""
    root = _checkout(tmp_path)
    (root / "beside.txt").write_text("not for the sandbox")
    (root.parent / ".env").write_text("KEY=secret")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sbx_look.py").write_text(
        "import os, swarmvar\n"
        "def look(params, arrays, seed):\n"
        "    return {p: os.path.exists(p) for p in params['paths']}, {}\n")
    paths = [str(root / "beside.txt"), str(root.parent / ".env"),
             str(root / "swarmvar" / "__init__.py")]
    script = textwrap.dedent(f'''
        from swarmvar import sandbox
        box = sandbox.BubblewrapSandbox(sandbox.Profile("p", cpu_seconds=30, wall_seconds=60,
            memory_bytes=3 << 30, processes=64, file_bytes=16 << 20),
            plugin_paths=[{str(plugins)!r}])
        try:
            seen = box.run(sandbox.Task("sbx_look:look", {{"paths": {paths!r}}}, {{}},
                                        seed=0)).values
            print(" ".join(str(int(seen[p])) for p in {paths!r}))
        finally:
            box.kill()
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "1"]


def test_canary_run_in_bwrap_from_a_source_checkout(tmp_path: Path, nig_canary) -> None:
    """The user's case: `variants canary run ID --sandbox bwrap` with code on PYTHONPATH."""
    root = _checkout(tmp_path)
    home = tmp_path / "home"
    vid = nig_canary(home)
    done = subprocess.run(
        [sys.executable, "-c", "from swarmvar.cli import main; main()", "variants", "canary",
         "run", vid, "--data", "sp500", "--sandbox", "bwrap", "--last", "300", "--window",
         "300", "--home", str(home)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)},
        cwd=tmp_path, timeout=300)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "evidence recorded: 300 days in bwrap sandbox" in done.stdout
    with Ledger(home, create=False) as ledger:
        events = [e.data for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]
    assert [e["outcome"] for e in events] == ["evidence"]


def test_canary_run_on_an_unavailable_sandbox_says_so(tmp_path: Path, monkeypatch,
                                                      nig_canary) -> None:
    """The CLI names an unavailable sandbox (exit 1), not a bug and not a violation."""
    from typer.testing import CliRunner

    from swarmvar.cli.variants import app

    vid = nig_canary(tmp_path)
    monkeypatch.setattr(sandbox, "create", lambda backend, profile: sandbox.BubblewrapSandbox(
        sandbox.VALIDATION, preload=("no_such_module_q7",)))
    res = CliRunner().invoke(app, ["canary", "run", vid, "--data", "sp500", "--last", "300",
                                   "--window", "300", "--home", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert "sandbox unavailable (bwrap)" in res.output and "no_such_module_q7" in res.output
    h = open_home(tmp_path)
    try:
        assert h.breakers.load(vid).failures == 0
    finally:
        h.close()
