"""``swarmvar arbiter replay``: the table from a cached history, recorded in the home's
ledger; the cache lives in the home and is keyed on the code; bad flags exit 2."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.arbiter.history import cache_path, code_fingerprint, simulated_history
from swarmvar.cli import build_app
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.models import DEFAULT_AGENTS, agent_class

runner = CliRunner()

#: The shortest window the default swarm fits on (its agents' largest ``min_observations``,
#: read here from the classes, not from ``window_floor``): the replays below use it.
WINDOW = max(agent_class(n).min_observations for n in DEFAULT_AGENTS)


def _seed_cache(folder: Path) -> Path:
    """A simulated history where the replay of sp500 --last 400 --window WINDOW looks."""
    path = cache_path("sp500", last=400, window=WINDOW, refit_every=20, alphas=(0.99, 0.975),
                      seed=0, agents=DEFAULT_AGENTS, cache=folder)
    simulated_history(days=400, seed=7).save(path)
    return path


def test_replay_prints_counts_auc_and_the_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = _seed_cache(home / "cache" / "arbiter")  # the cache lives in the home
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--data", "sp500", "--last", "400", "--window", str(WINDOW),
        "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("decisions", "alert", "AUC trained", "design's fixed model", "without",
                 "Kupiec", "FZ0", "recorded entries", "399 beats", "cached at"):
        assert text in out
    _check_difference(" ".join(out.split()), path)
    with Ledger.open(home, create=False) as ledger:  # the replay is in the home's ledger
        assert ledger.verify_chain().ok
        entries = [ledger.entry(i) for i in range(ledger.size)]
    kinds = [e.kind for e in entries]
    assert kinds.count(EntryKind.PULSE) == 399  # one per beat
    summary = entries[-1]
    assert summary.kind is EntryKind.ACTION and summary.data["type"] == "arbiter.replay"
    assert summary.data["details"]["beats"] == 399
    assert summary.data["details"]["cache"] == path.name
    assert f"recorded entries 1-{len(entries) - 1}" in " ".join(out.split())


def _check_difference(out: str, path: Path) -> None:
    """The trained-minus-design AUC difference and its DeLong se, as the study computes them
    on the same replay."""
    from swarmvar.arbiter import Arbiter, BeatHistory
    from swarmvar.arbiter.replay import replay, threat_study

    found = re.search(r"AUC trained (\d\.\d{3}), the design's fixed model (\d\.\d{3})", out)
    diff = re.search(r"trained minus the design's model: ([+-]\d\.\d{3}) \(DeLong se "
                     r"(\d\.\d{3});", out)
    assert found and diff, out
    trained, seed = float(found[1]), float(found[2])
    difference, se = float(diff[1]), float(diff[2])
    assert abs(difference - (trained - seed)) <= 0.0011  # each printed to 3 decimals
    assert 0.0 < se < 0.2  # a few hundred test beats: a se of a few hundredths
    outcome = replay(BeatHistory.load(path), Arbiter())
    study = threat_study(outcome.features[1:], outcome.breached[1:])
    assert difference == round(study.auc_trained - study.auc_seed, 3)
    assert se == round(study.difference_se, 3)


def test_an_explicit_cache_folder_is_used(tmp_path: Path) -> None:
    _seed_cache(tmp_path / "shared")
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home",
        str(tmp_path / "home"), "--cache", str(tmp_path / "shared")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "home" / "cache").exists()


def test_every_source_the_cache_key_hashes_exists() -> None:
    """A renamed module would silently leave the fingerprint (missing paths are skipped)."""
    import swarmvar
    from swarmvar.arbiter.history import SOURCES

    package = Path(swarmvar.__file__).parent
    assert [name for name in SOURCES if not (package / name).exists()] == []


def test_the_cache_key_holds_the_version_and_the_code(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import swarmvar

    package = Path(swarmvar.__file__).parent
    copy = tmp_path / "pkg"
    shutil.copytree(package / "models", copy / "models",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = code_fingerprint(copy, ("models",))
    assert before == code_fingerprint(copy, ("models",))  # stable
    agent = copy / "models" / "bootstrap.py"
    agent.write_text(agent.read_text() + "\n# a change to an agent\n")
    assert code_fingerprint(copy, ("models",)) != before
    args = {"last": 400, "window": WINDOW, "refit_every": 20, "alphas": (0.99, 0.975),
            "seed": 0, "agents": DEFAULT_AGENTS, "cache": tmp_path}
    old = _seed_cache(tmp_path)
    assert cache_path("sp500", **args) == old  # the same code and version: a hit
    assert cache_path("sp500", **args, fingerprint=before) != old
    monkeypatch.setattr(swarmvar, "__version__", "99.0")
    assert cache_path("sp500", **args) != old  # a new version misses


def test_a_code_change_misses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a cached file in place, 'changed agents' make the replay run the backtest again
    (stopped here, it would take minutes) instead of reading the stale file."""
    import swarmvar.validation
    from swarmvar.arbiter import history
    from swarmvar.errors import InvalidParameter

    home = tmp_path / "home"
    old = _seed_cache(home / "cache" / "arbiter")
    ran: list[int] = []

    def backtest(*args: object, **kwargs: object) -> object:
        ran.append(1)
        raise InvalidParameter("the backtest ran")

    monkeypatch.setattr(swarmvar.validation, "backtest", backtest)
    argv = ["arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home", str(home)]
    assert runner.invoke(build_app("arbiter"), argv).exit_code == 0 and not ran  # a hit
    monkeypatch.setattr(history, "code_fingerprint", lambda *a, **k: "an agent changed")
    result = runner.invoke(build_app("arbiter"), argv)
    assert ran == [1] and result.exit_code == 2 and "the backtest ran" in result.output
    assert old.exists()  # left in place, never read again


@pytest.mark.parametrize("args", [["--data", "ftse"], ["--k-flows", "0.1", "--p-nodes", "1"],
                                  ["--last", "3"], ["--t-threshold", "nan"],
                                  ["--workers", "0"], ["--workers", "99999"]])
def test_bad_flags_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(build_app("arbiter"), ["arbiter", "replay", *args,
                                                  "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "home" / "ledger.sqlite").exists()  # nothing recorded
    assert not (tmp_path / "home" / "cache").exists()  # nothing computed or cached


def test_the_cache_line_names_the_file_cached_history_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reports cached_history's own path and hit (no copy of its defaults): with a
    different default, the message and the ledger still name the file that was read."""
    from swarmvar.arbiter import history

    monkeypatch.setitem(history.cached_history.__kwdefaults__, "refit_every", 10)
    home = tmp_path / "home"
    path = cache_path("sp500", last=400, window=WINDOW, refit_every=10, alphas=(0.99, 0.975),
                      seed=0, agents=DEFAULT_AGENTS, cache=home / "cache" / "arbiter")
    simulated_history(days=400, seed=7).save(path)
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "cached at" in result.output and "computed once" not in result.output
    assert path.name in "".join(result.output.split())
    with Ledger.open(home, create=False) as ledger:
        assert ledger.entry(ledger.size - 1).data["details"]["cache"] == path.name


def _seed_named_cache(folder: Path) -> Path:
    """The simulated history under the default swarm's names (the drill resolves real agents),
    where the replay of sp500 --last 400 --window WINDOW looks."""
    from swarmvar.arbiter import BeatHistory

    path = cache_path("sp500", last=400, window=WINDOW, refit_every=20, alphas=(0.99, 0.975),
                      seed=0, agents=DEFAULT_AGENTS, cache=folder)
    h = simulated_history(days=400, seed=7, scales=(1.0,) * len(DEFAULT_AGENTS))
    BeatHistory(h.name, h.dates, h.returns, h.alphas, tuple(DEFAULT_AGENTS), h.cols,
                h.consensus, h.logscore).save(path)
    return path


def test_the_drift_drill_prints_the_beats_to_alert_and_quarantine(tmp_path: Path) -> None:
    """An agent scaled to 0.3 of its risk from day 150: the CLI's beats and reason are the
    drill's own (swarmvar.arbiter.drill on the same history), and the ledger records them."""
    from swarmvar.arbiter import Arbiter, BeatHistory, Drift, drill

    home = tmp_path / "home"
    path = _seed_named_cache(home / "cache" / "arbiter")
    agent = DEFAULT_AGENTS[0]
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home", str(home),
        "--drift", "nig" if agent == "NormalInverseGamma" else agent, "--drift-start", "150",
        "--drift-scale", "0.3"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    expected = drill(BeatHistory.load(path), Arbiter(), Drift(agent, 150, scale=0.3))
    assert expected.first_quarantine is not None and expected.first_alert is not None
    assert f"drift drill: {agent} (scale 0.3 from day 150" in out
    assert f"first ALERT naming it after {expected.first_alert} beat" in out
    assert f"QUARANTINE after {expected.first_quarantine} beat" in out
    assert "binomial" in expected.reason
    assert f"quarantine reason: {' '.join(expected.reason.split())}" in out
    with Ledger.open(home, create=False) as ledger:
        details = ledger.entry(ledger.size - 1).data["details"]
    assert details["drift"] == {"agent": agent, "start": 150, "scale": 0.3, "frozen": False,
                                "first_alert": expected.first_alert,
                                "first_quarantine": expected.first_quarantine,
                                "reason": expected.reason}


def test_a_clean_swarm_frozen_late_is_never_quarantined(tmp_path: Path) -> None:
    """Frozen on the second-to-last day: one beat left, too little evidence: 'never'."""
    home = tmp_path / "home"
    _seed_named_cache(home / "cache" / "arbiter")
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home", str(home),
        "--drift", DEFAULT_AGENTS[1], "--drift-start", "398", "--drift-frozen"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"drift drill: {DEFAULT_AGENTS[1]} (frozen from day 398" in out
    assert "QUARANTINE after never" in out and "quarantine reason" not in out


@pytest.mark.parametrize(("args", "says"), [
    (["--drift", "nigg", "--drift-start", "5", "--drift-scale", "0.5"], "did you mean 'nig'"),
    (["--drift", "nig", "--drift-scale", "0.5"], "--drift-start"),
    (["--drift", "nig", "--drift-start", "0", "--drift-scale", "0.5"], ">= 1"),
    (["--drift", "nig", "--drift-start", "5"], "exactly one"),
    (["--drift", "nig", "--drift-start", "5", "--drift-scale", "0.5", "--drift-frozen"],
     "exactly one"),
    (["--drift", "nig", "--drift-start", "5", "--drift-scale", "nan"], "positive finite"),
    (["--drift", "nig", "--drift-start", "5", "--drift-scale", "-1"], "positive finite"),
    (["--drift-start", "5", "--drift-frozen"], "--drift AGENT"),
    (["--drift", "HarArch", "--drift-start", "5", "--drift-frozen"], "not in the replayed"),
    (["--drift", "nig", "--drift-start", "400", "--drift-frozen"], "past the history"),
])
def test_bad_drift_flags_are_usage_errors(args: list[str], says: str, tmp_path: Path) -> None:
    """Refused with exit 2 before the ledger is opened; the agent and the start against the
    cached history (a cache hit), before any beat."""
    home = tmp_path / "home"
    _seed_named_cache(home / "cache" / "arbiter")
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(WINDOW), "--home", str(home), *args])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert not (home / "ledger.sqlite").exists()


def _replay_alerts(tmp_path: Path, *flags: str) -> tuple[Any, list[Any], list[Any]]:
    home = tmp_path / "home"
    _seed_cache(home / "cache" / "arbiter")
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--data", "sp500", "--last", "400", "--window", str(WINDOW),
        "--home", str(home), *flags])
    assert result.exit_code == 0, result.output
    with Ledger.open(home, create=False) as ledger:
        entries = [ledger.entry(i) for i in range(ledger.size)]
    return result, entries, [e.data["details"] for e in entries
                             if e.kind is EntryKind.ACTION and e.data["type"] == "alert"]


def test_the_alerts_line_counts_the_episodes_the_ledger_records(tmp_path: Path) -> None:
    """``alerts: N on B beats (E alert episodes opened, R raised again ...)`` agrees with the
    ALERT decisions recorded in the home's ledger (their ``raised_again`` signal, not their
    words), and every episode but the last closes with an ``alert_closed`` event."""
    result, entries, alerts = _replay_alerts(tmp_path)
    again = sum(a["signals"]["raised_again"] == 1.0 for a in alerts)
    opened = [a for a in alerts if a["signals"]["raised_again"] == 0.0]
    assert len(opened) + again == len(alerts)
    assert all(a["signals"]["episode_since"] == a["seq"] for a in opened)
    assert entries[-1].data["details"]["alert_episodes"] == {"opened": len(opened),
                                                             "raised_again": again}
    assert alerts and again  # the simulated swarm (one agent at 0.6 x the volatility) alerts
    closed = [e.data["details"] for e in entries
              if e.kind is EntryKind.ACTION and e.data["type"] == "alert_closed"]
    assert [c["since"] for c in closed] == [a["seq"] for a in opened][:len(closed)]
    assert len(opened) - 1 <= len(closed) <= len(opened)
    assert (f"alerts: {len(alerts)} on 399 beats ({len(opened)} alert episodes "
            f"opened, {again} raised again") in " ".join(result.output.split())


def test_seed_thresholds_say_every_beat_alerts_and_record_no_episodes(tmp_path: Path) -> None:
    result, entries, alerts = _replay_alerts(tmp_path, "--seed-thresholds")
    assert alerts and entries[-1].data["details"]["alert_episodes"] is None
    assert not any("raised_again" in a["signals"] for a in alerts)
    assert (f"alerts: {len(alerts)} on 399 beats (every-beat alerts (no episodes))"
            in " ".join(result.output.split()))
