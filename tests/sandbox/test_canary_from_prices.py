"""A canary runs on returns worked out from prices: judged at its entry, not in the sandbox.

``validate_variant`` judges its returns where they enter (``data.as_array``:
returns from prices carry a mark and pass); the mark does not travel into the
sandbox, so it tells the ``forecast_path`` task (``judged``) and the task's fits
do not judge each window again. A task called without it judges every window,
and ``variants canary run --data prices.csv`` keeps the mark on the last days
it takes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from swarmvar import sandbox
from swarmvar.data import as_array, moves_like_prices, prices_to_returns
from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.evolution import BreakerState, new_variant, open_home, start_canary
from swarmvar.ledger import Ledger
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.models.task import forecast_path
from swarmvar.swarm.canary_sandbox import CanaryVerdict, validate_variant

NIG = {NormalInverseGamma.name: NormalInverseGamma}
TASK = {"agent": "NormalInverseGamma", "options": {}, "alphas": [0.99], "window": 100,
        "refit_every": 20}


def _steep_prices(n: int = 300) -> pd.Series:
    """A price whose daily log returns are ~8%, one-signed and wandering: typed as returns,
    the door refuses them as prices; given as prices, they are returns."""
    r = 0.08 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.0, 0.01, n)))
    days = pd.bdate_range("2020-01-01", periods=n + 1)
    return pd.Series(100.0 * np.exp(np.r_[0.0, np.cumsum(r)]), index=days, name="X")


def _canary(home: Path) -> str:
    """A NIG variant in a canary release started 400 seconds ago."""
    h = open_home(home)
    try:
        v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.95},
                                       NIG,  # type: ignore[arg-type]
                                       now=time.time() - 400))
        return start_canary(h.variants, v, h.config.canary, time.time() - 400).id
    finally:
        h.close()


def test_a_canary_on_returns_from_prices_gives_evidence(tmp_path: Path) -> None:
    rets = prices_to_returns(_steep_prices())
    assert moves_like_prices(rets.to_numpy()[:100]) is not None  # typed as returns: refused
    vid = _canary(tmp_path)
    h = open_home(tmp_path)
    box = sandbox.create("none", "validation")
    try:
        with Ledger(tmp_path) as ledger:
            ev = validate_variant(vid, rets, home=h, ledger=ledger, box=box, clock=time.time,
                                  alphas=(0.99,), window=100, refit_every=20, seed=0,
                                  source="steep")
    finally:
        box.kill()
        h.close()
    assert ev.passed and ev.verdict is CanaryVerdict.EVIDENCE, ev.detail
    assert ev.days == 200 and ev.breaker is BreakerState.CLOSED and ev.check is None


def test_the_task_judges_its_windows_unless_told_they_were_judged() -> None:
    x = as_array(prices_to_returns(_steep_prices()))
    sent = np.frombuffer(x.tobytes())  # what arrives in a sandbox: the mark does not travel
    with pytest.raises(InvalidReturns, match="look like prices"):
        forecast_path(TASK, {"returns": sent}, 0)  # a direct caller is still checked
    values, arrays = forecast_path({**TASK, "judged": True}, {"returns": sent}, 0)
    assert values == {"days": 200} and arrays["var"].shape == (200, 1)
    assert np.all(np.isfinite(arrays["var"])) and np.all(arrays["es"] >= arrays["var"])
    with pytest.raises(InvalidParameter, match="'judged' must be true or false"):
        forecast_path({**TASK, "judged": "yes"}, {"returns": sent}, 0)


def test_canary_run_takes_a_file_of_prices(tmp_path: Path) -> None:
    from swarmvar.cli import build_app

    _steep_prices().to_frame().to_csv(tmp_path / "steep.csv", index_label="date")
    vid = _canary(tmp_path / "home")
    res = CliRunner().invoke(build_app(), [
        "variants", "canary", "run", vid, "--data", str(tmp_path / "steep.csv"), "--sandbox",
        "none", "--last", "150", "--window", "100", "--alpha", "0.99",
        "--home", str(tmp_path / "home")])
    assert res.exit_code == 0, (res.stdout, res.stderr)
    assert "evidence recorded: 150 days in none sandbox" in res.stdout
