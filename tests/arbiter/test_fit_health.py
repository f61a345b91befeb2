"""The arbiter's fit-health rule (``signals.fit_failed``): MCMC's bulk/tail ESS against the
absolute 400, the particle weights' ESS as a share of the cloud (of the draws when the cloud's
size is not given); a healthy 500-particle
cloud between rejuvenations is not "no usable forecast"."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from swarmvar.arbiter import Arbiter, ArbiterConfig, SignalConfig, SignalMemory, read_beat
from swarmvar.arbiter.checkpoint import options_of
from swarmvar.arbiter.decide import Thresholds
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.signals import check_beat, fit_failed
from swarmvar.arbiter.threat import FEATURES
from swarmvar.errors import ArbiterOptionsMismatch, InvalidParameter, InvalidSignal
from swarmvar.types import Diagnostics

CONFIG = SignalConfig()
FIT = {"mu": 1.0004, "omega": 1.002}  # a particle agent's fit: R-hat and ESS over its runs


def smc(ess: float, draws: int | None = 2000, bulk: float = 1700.0,
        particles: int | None = 500) -> Diagnostics:
    """A particle agent's diagnostics: 4 runs x 500 particles fitted, a cloud of 500 online,
    ``ess`` now."""
    return Diagnostics(method="smc", rhat=FIT, ess_bulk={k: bulk for k in FIT},
                       ess_tail={k: bulk - 100.0 for k in FIT}, ess=ess, draws=draws,
                       particles=particles)


def test_a_healthy_particle_cloud_between_rejuvenations_passes() -> None:
    d = smc(380.0)  # GarchT's 500 particles at 76 %
    assert d.min_ess == 380.0 and d.min_ess < CONFIG.min_ess  # what the old rule read
    assert d.ess_fraction == pytest.approx(0.76)
    # without the cloud's size the share falls back to the draws (0.19 of 2,000)
    assert smc(380.0, particles=None).ess_fraction == pytest.approx(0.19)
    assert not fit_failed(smc(380.0, particles=None), CONFIG)
    assert not fit_failed(d, CONFIG)
    # at the agents' own resample trigger (half the cloud) too
    assert not fit_failed(smc(250.0), CONFIG)


def test_particle_weights_below_the_share_fail() -> None:
    cut = CONFIG.min_ess_fraction * 500  # of the cloud, not of the 2,000 draws
    assert fit_failed(smc(cut - 1.0), CONFIG)
    assert not fit_failed(smc(cut), CONFIG)
    # the share is the config's: a stricter one fails the healthy cloud
    assert fit_failed(smc(380.0), SignalConfig(min_ess_fraction=0.8))
    # neither the cloud nor the draws given: no share, the absolute ESS is held to min_ess
    assert fit_failed(smc(380.0, draws=None, particles=None), CONFIG)
    assert not fit_failed(smc(450.0, draws=None, particles=None), CONFIG)


def test_mcmc_bulk_and_tail_ess_keep_the_absolute_400() -> None:
    nuts = Diagnostics(method="nuts", rhat={"mu": 1.001}, ess_bulk={"mu": 300.0},
                       ess_tail={"mu": 900.0}, draws=4000)
    assert fit_failed(nuts, CONFIG)
    assert fit_failed(dataclasses.replace(nuts, ess_bulk={"mu": 900.0},
                                          ess_tail={"mu": 300.0}), CONFIG)
    assert not fit_failed(dataclasses.replace(nuts, ess_bulk={"mu": 900.0}), CONFIG)
    # a particle agent's fit over its runs is read as chains: a poor one still fails
    assert fit_failed(smc(480.0, bulk=350.0), CONFIG)
    assert fit_failed(dataclasses.replace(nuts, rhat={"mu": 1.02},
                                          ess_bulk={"mu": 900.0}), CONFIG)
    # no R-hat, no ESS (exact posteriors): nothing to judge
    assert not fit_failed(Diagnostics(method="exact"), CONFIG)
    # an ESS of 0 is a failure (the old rule's `min_ess or inf` let it through)
    assert fit_failed(dataclasses.replace(nuts, ess_bulk={"mu": 0.0}), CONFIG)


@pytest.mark.parametrize("bad", [-0.01, 1.5, math.nan, math.inf, True, "0.05"])
def test_the_share_is_checked(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="min_ess_fraction"):
        SignalConfig(min_ess_fraction=bad)  # type: ignore[arg-type]


def test_read_beat_marks_only_the_unhealthy_agent_failed() -> None:
    history = simulated_history(20, seed=3)
    a, b, c = history.agents[:3]
    report = dataclasses.replace(history.beat(5, "p"), diagnostics={
        a: smc(380.0), b: smc(20.0), c: Diagnostics(method="nuts", rhat={"mu": 1.0},
                                                    ess_bulk={"mu": 300.0})})
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert [signals.agent(n).failed for n in (a, b, c)] == [False, True, True]
    assert signals.features[FEATURES.index("failed")] == 2.0


def test_the_cut_is_not_a_checkpoint_option() -> None:
    """A home saved before the share existed (or under another share) resumes; other
    thresholds are still refused."""
    stricter = ArbiterConfig(signals=SignalConfig(min_ess_fraction=0.2))
    assert options_of(stricter) == options_of(ArbiterConfig())
    blob = Arbiter(stricter).checkpoint_state("p")
    Arbiter().check_state("p", blob)
    Arbiter().restore_state("p", blob)
    other = Arbiter(ArbiterConfig(thresholds=Thresholds(alert=0.5)))
    with pytest.raises(ArbiterOptionsMismatch, match="thresholds.alert"):
        other.check_state("p", blob)


def test_garch_t_between_rejuvenations_is_not_failed() -> None:
    """GarchT (500 particles) fitted on S&P 500 days 1000-2000, 60 online updates: its
    weights' ESS falls under 400 on some days (the old absolute rule's "failed") and
    none is failed now (~1-2 s)."""
    from swarmvar.data import load
    from swarmvar.models import GarchT

    x = load("sp500").to_numpy()
    agent = GarchT()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's own ConvergenceWarning is not asserted
        agent.fit(x[1000:2000], seed=0)
    days = []
    for r in x[2000:2060]:
        agent.update(float(r))
        days.append(agent.diagnostics)
    assert any(d.ess is not None and d.ess < CONFIG.min_ess for d in days)
    assert not any(fit_failed(d, CONFIG) for d in days)


@pytest.mark.slow
def test_the_demo_run_names_no_healthy_agent_unusable(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``swarmvar run --data sp500 --beats 250 --arbiter --quiet`` (make demo's run): no
    "no usable forecast" while every agent's diagnostics pass, though the particle
    agents' weights fall under an ESS of 400 on many beats (100 of 250 before, ~15 s)."""
    from typer.testing import CliRunner

    import swarmvar.arbiter.signals as signals
    from swarmvar.cli import app

    seen: list[Diagnostics] = []
    read = signals._read

    def spy(memory, report, config):  # type: ignore[no-untyped-def]
        seen.extend(report.diagnostics.values())
        return read(memory, report, config)

    monkeypatch.setattr(signals, "_read", spy)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["run", "--data", "sp500", "--beats", "250", "--arbiter",
                                      "--quiet", "--workers", "0", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "250 beats in" in result.output, result.output
    assert sum(d.ess is not None and d.ess < CONFIG.min_ess for d in seen) > 50
    assert not any(fit_failed(d, CONFIG) for d in seen)
    assert "no usable forecast" not in result.output


def _collapsed(particles: int = 500, runs: int = 4) -> Diagnostics:
    """A particle agent's diagnostics after a fit whose every run collapsed onto one point:
    ``mu`` identical in every particle (split R-hat 0/0: NaN), ``omega`` a sound parameter;
    the weights equal (ESS the whole cloud), the bulk/tail ESS the draws (no variance)."""
    from swarmvar.models.diagnostics import smc_diagnostics, summarize

    chains = {"mu": np.full((runs, particles), 3e-4),
              "omega": np.random.default_rng(0).normal(size=(runs, particles))}
    rhat, bulk, tail = summarize(chains)
    return smc_diagnostics({"rhat": rhat, "ess_bulk": bulk, "ess_tail": tail},
                           ess=float(particles), acceptance=0.0, draws=runs * particles,
                           seconds=1.0, particles=particles)


def test_a_collapsed_cloud_fails() -> None:
    """A collapsed cloud's R-hat is NaN, which ``NaN > 1.01`` (False) let through, and its
    ESS figures are all healthy: only the NaN says it collapsed."""
    d = _collapsed()
    assert math.isnan(d.rhat["mu"]) and d.rhat["omega"] < CONFIG.max_rhat
    assert d.min_ess is not None and d.min_ess >= CONFIG.min_ess
    assert d.ess_fraction == 1.0
    assert math.isnan(d.max_rhat or 0.0)
    assert fit_failed(d, CONFIG)
    assert d.doubts(CONFIG.max_rhat, CONFIG.min_ess) == [
        "split R-hat NaN (not a number) > 1.01 for mu"]
    # read from a beat, the agent is failed
    history = simulated_history(20, seed=3)
    a, b = history.agents[:2]
    report = dataclasses.replace(history.beat(5, "p"), diagnostics={a: d, b: smc(380.0)})
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert [signals.agent(n).failed for n in (a, b)] == [True, False]


@pytest.mark.parametrize("order", [("nan", "bad"), ("bad", "nan")])
def test_max_rhat_and_min_ess_say_nan_whatever_the_order(order: tuple[str, str]) -> None:
    """Python's max/min return NaN only when it comes first: a NaN after a real 1.5 was
    hidden, one before it hid the 1.5. Now NaN either way, and both fail."""
    rhat = {"nan": math.nan, "bad": 1.5}
    ess = {"nan": math.nan, "bad": 100.0}
    d = Diagnostics(method="nuts", rhat={k: rhat[k] for k in order},
                    ess_bulk={k: ess[k] for k in order}, draws=4000)
    assert math.isnan(d.max_rhat or 0.0) and math.isnan(d.min_ess or 0.0)
    assert fit_failed(d, CONFIG)
    assert fit_failed(dataclasses.replace(d, rhat={"mu": 1.0}), CONFIG)  # the NaN ESS alone
    assert fit_failed(dataclasses.replace(d, ess_bulk={"mu": 900.0}), CONFIG)  # the R-hat
    # no NaN: the worst value, as before
    clean = Diagnostics(method="nuts", rhat={"a": 1.001, "b": 1.5}, ess_bulk={"a": 900.0,
                                                                            "b": 100.0})
    assert clean.max_rhat == 1.5 and clean.min_ess == 100.0
    # particle weights whose ESS or share is not a number fail too
    assert fit_failed(smc(math.nan), CONFIG)
    assert fit_failed(smc(math.nan, draws=None, particles=None), CONFIG)


@pytest.mark.parametrize("field, bad", [
    ("particles", True), ("particles", -500), ("particles", 0), ("particles", 500.0),
    ("draws", True), ("draws", -1), ("draws", 0), ("ess", True), ("ess", -3.0),
    ("ess", 0.0), ("ess", math.inf), ("ess", "380"),
    ("rhat", {"mu": "1.0"}), ("ess_bulk", {"mu": True})])
def test_the_diagnostics_numbers_are_checked(field: str, bad: object) -> None:
    """A report's diagnostics must hold numbers the rule can read: a boolean cloud size
    (True / 1 = an ESS of 380 would be a share of 380), a negative or zero count, an ESS
    that is infinite, not a number type or not > 0 are refused, naming the agent (a NaN ESS is
    read: the fit fails)."""
    history = simulated_history(20, seed=3)
    a, b = history.agents[:2]
    good = dataclasses.replace(history.beat(5, "p"), diagnostics={a: smc(380.0), b: smc(380.0)})
    read_beat(SignalMemory(), good, CONFIG)
    report = dataclasses.replace(good, diagnostics={
        a: smc(380.0), b: dataclasses.replace(smc(380.0), **{field: bad})})
    with pytest.raises(InvalidSignal, match=f"the diagnostics of {b}: {field} is"):
        read_beat(SignalMemory(), report, CONFIG)
    with pytest.raises(InvalidSignal, match=f"the diagnostics of {b}: {field} is"):
        check_beat(report)


def test_numpy_numbers_and_nan_chains_are_read() -> None:
    """numpy's whole numbers and floats are numbers; a NaN R-hat or chain ESS is read (the
    fit fails), not refused."""
    history = simulated_history(20, seed=3)
    a = history.agents[0]
    d = dataclasses.replace(smc(380.0), particles=np.int64(500), draws=np.int64(2000),
                            ess=np.float64(380.0))
    report = dataclasses.replace(history.beat(5, "p"), diagnostics={a: d})
    check_beat(report)
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert not signals.agent(a).failed
    # numpy float32 / int64 in every field, the chains' too
    d32 = Diagnostics(method="smc", rhat={"mu": np.float32(1.001)},
                      ess_bulk={"mu": np.int64(1700)}, ess_tail={"mu": np.float32(1600.0)},
                      ess=np.float32(380.0), draws=np.int64(2000), particles=np.int64(500))
    report = dataclasses.replace(report, diagnostics={a: d32})
    check_beat(report)
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert not signals.agent(a).failed
    # a weights' ESS that is not a number is read and fails the fit (as a NaN R-hat does)
    report = dataclasses.replace(report, diagnostics={a: smc(math.nan)})
    check_beat(report)
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert signals.agent(a).failed
    report = dataclasses.replace(report, diagnostics={a: _collapsed()})
    check_beat(report)
    _, signals = read_beat(SignalMemory(), report, CONFIG)
    assert signals.agent(a).failed
