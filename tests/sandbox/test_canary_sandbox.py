"""The canary of a variant fits and validates it inside a sandbox (issue 15, item 4).

A clean run stores the backtest evidence ``canary check`` judges; a variant
that breaks its sandbox fails its canary, trips its breaker and is in the
ledger with the violation; ``--sandbox none`` leaves a warning entry.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar import data, sandbox
from swarmvar.errors import SwarmVarError, Violation
from swarmvar.evolution import (
    BreakerState,
    VariantStatus,
    new_variant,
    open_home,
    start_canary,
)
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.models import BayesianBootstrap
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.models.task import forecast_path
from swarmvar.swarm.canary_sandbox import CanaryVerdict, validate_variant
from swarmvar.validation import kupiec, pinball_loss

runner = CliRunner()
NIG = {NormalInverseGamma.name: NormalInverseGamma}
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is not installed")


def _canary(home: Path, forgetting: float = 0.95, *, started_ago: float = 400.0,
            bootstrap_draws: int | None = None) -> str:
    """A NIG (or bootstrap) variant in a canary release started ``started_ago`` seconds ago."""
    h = open_home(home)
    agent, params, ctor = ("NormalInverseGamma", {"forgetting": forgetting}, NIG) \
        if bootstrap_draws is None else \
        ("BayesianBootstrap", {"draws": bootstrap_draws},
         {"BayesianBootstrap": BayesianBootstrap})
    try:
        v = h.variants.add(new_variant(agent, params, ctor,  # type: ignore[arg-type]
                                       now=time.time() - started_ago))
        return start_canary(h.variants, v, h.config.canary, time.time() - started_ago).id
    finally:
        h.close()


def _cli(*args: str) -> tuple[int, str, str]:
    from swarmvar.cli import build_app

    res = runner.invoke(build_app(), ["variants", *args])
    return res.exit_code, res.stdout, res.stderr


def _events(home: Path) -> list[dict[str, object]]:
    with Ledger(home, create=False) as ledger:
        return [e.data for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]


@needs_bwrap
def test_a_good_variant_validated_in_bwrap_ramps_its_canary(tmp_path: Path) -> None:
    vid = _canary(tmp_path)
    code, out, err = _cli("canary", "run", vid, "--data", "sp500", "--sandbox", "bwrap",
                          "--last", "600", "--window", "500", "--home", str(tmp_path))
    assert code == 0, (out, err)
    assert "evidence recorded: 600 days in bwrap sandbox" in out
    # the records are the backtest's own statistics of the same row run here
    r = data.load("sp500").to_numpy()[-1100:]
    _, arrays = forecast_path({"agent": "nig", "options": {"forgetting": 0.95},
                               "alphas": [0.99, 0.975], "window": 500, "refit_every": 20},
                              {"returns": r}, 0)
    losses = -r[500:]
    h = open_home(tmp_path)
    try:
        rows = h.db.read("SELECT breach_rate, kupiec_p, pinball_loss, success_rate FROM metrics "
                         "WHERE variant_id=? ORDER BY rowid", (vid,))
        for j, (alpha, row) in enumerate(zip((0.99, 0.975), rows, strict=True)):
            hits = losses > arrays["var"][:, j]
            assert row[0] == hits.mean()
            assert row[1] == pytest.approx(kupiec(hits, alpha).pvalue, rel=1e-12)
            assert row[2] == pytest.approx(
                pinball_loss(losses, arrays["var"][:, j], alpha).mean(), rel=1e-12)
            assert row[3] == 1.0
        assert h.breakers.load(vid).state is BreakerState.CLOSED
    finally:
        h.close()
    (event,) = _events(tmp_path)
    assert event["event"] == "canary_validation" and event["outcome"] == "evidence"
    assert event["variant_id"] == vid and event["backend"] == "bwrap" and event["days"] == 600
    code, out, _ = _cli("canary", "check", vid, "--home", str(tmp_path))
    assert code == 0 and out.splitlines()[-1].startswith("ramped"), out


@needs_bwrap
@pytest.mark.parametrize(("limits", "kind"), [
    ({"cpu_seconds": 60, "wall_seconds": 0.05}, Violation.WALL_TIMEOUT),
    ({"cpu_seconds": 0.2, "wall_seconds": 120}, Violation.CPU_TIME),
])
def test_a_violation_fails_the_canary_trips_the_breaker_and_is_recorded(
        tmp_path: Path, limits: dict[str, float], kind: Violation) -> None:
    # the CPU budget is whole seconds (RLIMIT_CPU): a bootstrap with 20,000 draws needs
    # ~45 s of CPU for this row, a NIG row well under one
    vid = _canary(tmp_path, bootstrap_draws=20_000 if kind is Violation.CPU_TIME else None)
    tiny = replace(sandbox.VALIDATION, name="tiny", **limits)
    r = data.load("sp500")
    h = open_home(tmp_path)
    try:
        with Ledger(tmp_path) as ledger, sandbox.create("bwrap", tiny) as box:
            ev = validate_variant(vid, r, home=h, ledger=ledger, box=box, clock=time.time,
                                  window=500)
        assert ev.verdict is CanaryVerdict.VIOLATION and ev.violation is kind
        assert not ev.passed and ev.breaker is BreakerState.OPEN
        assert h.breakers.load(vid).state is BreakerState.OPEN  # at once, not after 5
        v = h.variants.get(vid)
        assert v.status is VariantStatus.CANARY and v.canary is not None
        assert v.canary.failed_checks == 1 and h.metrics.count(vid) == 1
    finally:
        h.close()
    (event,) = _events(tmp_path)
    assert event["outcome"] == "violation" and event["violation"] == kind.value
    assert event["variant_id"] == vid and event["breaker"] == "open"
    assert event["check"] == "failed" and event["profile"]["name"] == "tiny"  # type: ignore[index]
    code, out, _ = _cli("canary", "check", vid, "--home", str(tmp_path))
    assert "circuit breaker is open" in out and out.splitlines()[-1].startswith("failed")
    # an open breaker refuses the next run before anything starts
    code, out, err = _cli("canary", "run", vid, "--sandbox", "none", "--home", str(tmp_path))
    assert code == 1 and "OPEN" in err and len(_events(tmp_path)) == 1


def test_the_agents_own_error_counts_one_failure_and_rolls_back_at_the_third(
        tmp_path: Path) -> None:
    h = open_home(tmp_path)
    v = h.variants.add(new_variant("BayesianBootstrap", {"draws": 200},
                                   {"BayesianBootstrap": BayesianBootstrap}, now=time.time()))
    vid = start_canary(h.variants, v, h.config.canary, time.time()).id
    r = data.load("sp500").to_numpy()[:200]
    try:
        with Ledger(tmp_path) as ledger, sandbox.create("none", "validation") as box:
            outcomes = []
            for _ in range(3):  # a 10-day window is shorter than the bootstrap's 50
                ev = validate_variant(vid, r, home=h, ledger=ledger, box=box,
                                      clock=time.time, window=10)
                assert ev.verdict is CanaryVerdict.TASK_FAILED and ev.violation is None
                assert "InvalidReturns" in ev.detail
                outcomes.append((ev.check, h.breakers.load(vid).failures, ev.breaker))
        assert [o[1] for o in outcomes] == [1, 2, 3]  # counted, below the threshold of 5
        assert all(o[2] is BreakerState.CLOSED for o in outcomes)
        assert [o[0].value for o in outcomes if o[0]] == ["failed", "failed", "rolled_back"]
        assert h.variants.get(vid).status is VariantStatus.ROLLED_BACK
    finally:
        h.close()
    events = _events(tmp_path)
    # the third failure's rollback noted inside the store's transaction, before the run's entry
    assert [e["event"] for e in events] == ["sandbox_warning", "canary_validation"] * 2 + [
        "sandbox_warning", "rollback", "canary_validation"]
    assert events[-2]["by"] == "canary-task-failure" and events[-2]["variant_id"] == vid
    assert events[-1]["outcome"] == "task_failed" and events[-1]["status"] == "rolled_back"


def test_sandbox_none_runs_with_a_warning_in_the_ledger(tmp_path: Path) -> None:
    vid = _canary(tmp_path)
    code, out, err = _cli("canary", "run", vid, "--sandbox", "none", "--last", "250",
                          "--window", "300", "--alpha", "0.975", "--home", str(tmp_path))
    assert code == 0, (out, err)
    assert "without a sandbox" in err and "evidence recorded: 250 days in none" in out
    warning, result = _events(tmp_path)
    assert warning["event"] == "sandbox_warning" and warning["backend"] == "none"
    assert warning["variant_id"] == vid and "without isolation" in str(warning["warning"])
    assert result["outcome"] == "evidence" and len(result["levels"]) == 1  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("e2b") is None, reason="the e2b SDK is not installed")
def test_the_canary_in_e2b_against_the_fake_api(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_e2b import serve_fake_e2b

    vid = _canary(tmp_path)
    series = data.load("sp500").iloc[-400:]
    h = open_home(tmp_path)
    try:
        with serve_fake_e2b() as (fake, url), Ledger(tmp_path) as ledger:
            box = sandbox.create("e2b", "validation", api_key="e2b_test_key", api_url=url,
                                 sandbox_url=url, python=sys.executable)
            try:
                ev = validate_variant(vid, series, home=h, ledger=ledger, box=box,
                                      clock=time.time, alphas=(0.975,), window=300)
            finally:
                box.kill()
        assert ev.passed and ev.backend == "e2b" and ev.days == 100
        assert fake.created[-1]["allow_internet_access"] is False
        x = series.to_numpy()
        _, arrays = forecast_path({"agent": "nig", "options": {"forgetting": 0.95},
                                   "alphas": [0.975], "window": 300, "refit_every": 20},
                                  {"returns": x}, 0)
        assert ev.records[0].breach_rate == (-x[300:] > arrays["var"][:, 0]).mean()
    finally:
        h.close()


@pytest.mark.parametrize(("args", "says"), [
    (["--sandbox", "docker"], "docker"),
    (["--last", "0"], "--last"),
    (["--data", "nosuchdata"], "nosuchdata"),
    (["--alpha", "1.5"], "not a confidence level"),
    (["--window", "1"], "--window"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    vid = _canary(tmp_path)
    code, out, err = _cli("canary", "run", vid, "--sandbox", "none", *args,
                          "--home", str(tmp_path))
    assert code == 2 and says in out + err, (out, err)
    assert not (tmp_path / "ledger.jsonl").exists() or _events(tmp_path) == []


def test_unknown_drafts_and_e2b_without_a_key_exit_2(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _cli("canary", "run", "not-a-variant", "--home", str(tmp_path))
    assert code == 2 and "no variant" in err
    h = open_home(tmp_path)
    draft = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.9}, NIG,
                                       now=time.time())).id
    h.close()
    code, _, err = _cli("canary", "run", draft, "--sandbox", "none", "--last", "50",
                        "--window", "100", "--home", str(tmp_path))
    assert code == 2 and "canary start" in err
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    vid = _canary(tmp_path)
    code, _, err = _cli("canary", "run", vid, "--sandbox", "e2b", "--home", str(tmp_path))
    assert code == 2 and "e2b" in err.lower()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=st.sampled_from(["nan", "inf", "2d", "short", "alpha", "window", "refit", "seed"]),
       value=st.floats(-1e6, 1e6, allow_nan=False))
def test_bad_input_is_refused_before_anything_runs_or_is_stored(bad: str, value: float) -> None:
    r = np.random.default_rng(0).normal(0, 0.01, 200)
    kwargs: dict[str, object] = {"window": 100}
    if bad == "nan":
        r[int(abs(value)) % 200] = np.nan
    elif bad == "inf":
        r[int(abs(value)) % 200] = np.inf
    elif bad == "2d":
        r = r.reshape(100, 2)
    elif bad == "short":
        kwargs["window"] = 200 + int(abs(value)) % 50
    elif bad == "alpha":
        kwargs["alphas"] = (value,) if not 0.5 <= value < 1 else (0.99, 0.99)
    elif bad == "window":
        kwargs["window"] = int(value) if int(value) < 2 else 1.5
    elif bad == "refit":
        kwargs["refit_every"] = min(0, int(value))
    else:
        kwargs["seed"] = -1 - int(abs(value))
    with tempfile.TemporaryDirectory() as folder:
        vid = _canary(Path(folder))
        h = open_home(folder)
        box = sandbox.create("none", "validation")
        try:
            with Ledger(folder) as ledger:
                before = len(list(ledger.entries(0)))
                with pytest.raises(SwarmVarError):
                    validate_variant(vid, r, home=h, ledger=ledger, box=box,
                                     clock=time.time, **kwargs)  # type: ignore[arg-type]
                assert len(list(ledger.entries(0))) == before
            assert h.metrics.count(vid) == 0 and box.health().workers_started == 0
            assert h.breakers.load(vid).state is BreakerState.CLOSED
        finally:
            box.kill()
            h.close()


@pytest.mark.parametrize("broken", ["shape", "dtype", "nan", "es_below", "missing"])
def test_a_malformed_row_from_inside_is_a_violation(broken: str) -> None:
    from swarmvar.errors import SandboxViolation
    from swarmvar.swarm.canary_sandbox import _checked

    var = np.full((5, 2), 0.02)
    arrays: dict[str, np.ndarray] = {"var": var, "es": var * 1.2}
    if broken == "shape":
        arrays["var"] = var[:4]
    elif broken == "dtype":
        arrays["es"] = (var * 1.2).astype(np.float32)
    elif broken == "nan":
        arrays["var"] = np.where(np.eye(5, 2) > 0, np.nan, var)
    elif broken == "es_below":
        arrays["es"] = var * 0.5
    else:
        del arrays["es"]
    with pytest.raises(SandboxViolation) as caught:
        _checked(arrays, 5, 2)
    assert caught.value.violation is Violation.MALFORMED_RESULT
    good_var, good_es = _checked({"var": var, "es": var * 1.2}, 5, 2)
    assert good_var is var and np.array_equal(good_es, var * 1.2)
