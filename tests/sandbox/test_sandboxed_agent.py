"""An agent that lives in a sandbox gives the numbers of one that lives here.

Also: a plug-in agent class is imported only inside the sandbox; a recycled
worker is recovered from the last state plus the returns since; a malformed
forecast from inside is refused.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from swarmvar import data, sandbox
from swarmvar.errors import InvalidParameter, NotFitted, SandboxViolation, Violation
from swarmvar.models import NormalInverseGamma
from swarmvar.swarm.sandboxed import SandboxedAgent, forecast_from_dict

BACKENDS = [pytest.param("bwrap", marks=pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed")), "none"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sandboxed_agent_follows_the_local_one_bit_for_bit(backend: str) -> None:
    r = data.load("sp500").to_numpy()
    profile = sandbox.Profile("live", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                              processes=64, file_bytes=1 << 20, tasks_per_worker=25)
    with sandbox.create(backend, profile) as box:
        remote = SandboxedAgent(box, agent="nig", options={"forgetting": 0.98},
                                checkpoint_every=7).fit(r[:500], seed=1)
        local = NormalInverseGamma(forgetting=0.98).fit(r[:500], seed=1)
        for i, x in enumerate(r[500:560]):  # 25 tasks per worker: the worker is recycled
            assert remote.update(x) == local.update(x)
            if i % 10 == 0:
                assert remote.forecast((0.99, 0.975), seed=i) == local.forecast(
                    (0.99, 0.975), seed=i)
        assert remote.state() == local.state()
        assert box.health().workers_started >= 2


def test_a_plugin_class_is_imported_only_inside(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent("""
        from swarmvar.models import NormalInverseGamma

        class HalfLife(NormalInverseGamma):
            name = "HalfLife"

            def __init__(self, forgetting=0.9):
                super().__init__(forgetting=forgetting)
    """))
    r = data.load("sp500").to_numpy()[:400]
    with sandbox.BubblewrapSandbox(sandbox.TRAINING, plugin_paths=[str(tmp_path)]) as box:
        agent = SandboxedAgent(box, plugin="my_plugin:HalfLife").fit(r, seed=0)
        fc = agent.forecast((0.99,))
    assert "my_plugin" not in sys.modules
    assert agent.name == "HalfLife" and fc.model == "HalfLife"
    expected = NormalInverseGamma(forgetting=0.9).fit(r, seed=0).forecast((0.99,))
    assert fc.levels == expected.levels


def test_arguments_and_order_are_checked() -> None:
    box = sandbox.create("none", "realtime")
    try:
        with pytest.raises(InvalidParameter):
            SandboxedAgent(box)
        with pytest.raises(InvalidParameter):
            SandboxedAgent(box, agent="nig", plugin="m:C")
        with pytest.raises(NotFitted):
            SandboxedAgent(box, agent="nig").update(0.01)
    finally:
        box.kill()


@pytest.mark.parametrize("broken", [
    {}, {"levels": []}, {"model": "x", "horizon": 1, "levels": [{"alpha": 0.99}]},
    {"model": "x", "horizon": 1, "levels": [{"alpha": 0.99, "var": float("nan"), "es": 1,
                                             "var_interval": [0, 1], "es_interval": [0, 1]}]},
    {"model": "x", "horizon": 1, "levels": [{"alpha": 0.99, "var": 1, "es": 1,
                                             "var_interval": [2, 1], "es_interval": [0, 1]}]},
])
def test_a_malformed_forecast_from_inside_is_refused(broken: dict[str, object]) -> None:
    with pytest.raises(SandboxViolation) as caught:
        forecast_from_dict(broken)
    assert caught.value.violation is Violation.MALFORMED_RESULT


def test_forecasts_round_trip_through_their_plain_form() -> None:
    fc = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 300)).forecast(
        (0.99, 0.975), 5)
    assert forecast_from_dict(fc.to_dict()) == fc
