"""``swarmvar run``'s mends from three reviews: a consensus rule the roster cannot meet is
refused before the home exists (and a beat without consensus says why, once); a file's key
is named only in the forms the engines name settings; the file's settings said at start;
one wording of a bound and of a file-given home; a file where ``keys`` goes is a usage
error; an alert inside an open episode said as such; an arbiter home not resumed without
its arbiter."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.config import Setting
from swarmvar.types import Action, Decision

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import with_config as _cli  # noqa: E402
from _cli_text import write_toml as _toml

# --- 1. a rule the roster cannot meet -------------------------------------------------------

def test_krum_of_three_agents_is_refused_before_the_home(tmp_path: Path) -> None:
    home = tmp_path / "h"
    code, out = _cli(["run", "--home", str(home), "--agents", "nig,bootstrap,student-t",
                      "--policy", "krum", "--window", "60", "--beats", "2", "-q"])
    assert code == 2, out
    assert out.startswith("error: --policy krum: a Krum tolerating 1 faulty agent needs at "
                          "least 5 agents, and 3 agents are given"), out
    assert "give more --agents or another --policy" in out
    assert not home.exists()


def test_a_files_policy_too_big_for_the_roster_names_the_key(tmp_path: Path) -> None:
    home = tmp_path / "h"
    toml = _toml(tmp_path, f'home = "{home}"\npolicy = "trimmed_mean"\nagents = ["nig", '
                           '"bootstrap"]\n')
    code, out = _cli(["run", "--beats", "1", "-q"], toml)
    assert code == 2 and f'{toml}: policy = "trimmed_mean": a trimmed mean' in out, out
    assert "--policy" in out.split(";")[-1] and not home.exists()
    # enough agents for the same rule: no refusal on that ground
    from swarmvar.cli.run import _check_quorum

    settings = {"policy": Setting("policy", "median", "flag"),
                "agents": Setting("agents", "nig,bootstrap,student-t", "flag")}
    assert _check_quorum("median", ["A", "B", "C"], settings) is None


def test_the_default_rule_below_its_roster_warns_and_runs() -> None:
    from swarmvar.cli.run import _check_quorum

    settings = {"policy": Setting("policy", None, "default"),
                "agents": Setting("agents", "nig", "flag")}
    words = _check_quorum(None, ["NormalInverseGamma"], settings)
    assert words is not None and words.startswith("warning: no consensus in this run: a "
                                                  "trimmed mean dropping"), words
    assert "1 agent is given (NormalInverseGamma)" in words


def test_a_beat_without_consensus_says_why() -> None:
    from swarmvar.cli.run import no_consensus_words

    rep = SimpleNamespace(portfolio="book", seq=7, as_of=datetime(2024, 1, 5, tzinfo=UTC),
                          consensus=(), rejected={"consensus": "too few agents",
                                                  "StudentT": "quarantined"})
    words = no_consensus_words(rep)
    assert words is not None and words.startswith(
        "no consensus for book at beat 7 (2024-01-05): too few agents (agents out: "
        "StudentT: quarantined)"), words
    assert no_consensus_words(SimpleNamespace(**{**vars(rep), "consensus": (object(),)})
                              ) is None


# --- 2. a file's key named only where the engines name a setting ------------------------------

def _settings(**given: tuple[object, str]) -> dict[str, Setting]:
    return {k: Setting(k, v, src) for k, (v, src) in given.items()}


def test_a_book_mismatch_does_not_blame_the_files_agents(tmp_path: Path) -> None:
    from swarmvar.cli.run import _file_words

    toml = str(tmp_path / "swarmvar.toml")
    message = ("this home's run beats book A with agents NormalInverseGamma; the agents "
               "given differ: window: saved 60, now 80")
    words = _file_words(message, _settings(agents=(["nig"], toml), window=(80, toml)))
    assert "agents = " not in words, words  # the word "agents" is not the file's key
    assert words.endswith(f"(window = 80 in {toml})"), words


def test_a_dotted_key_stays_the_checkpoints_name(tmp_path: Path) -> None:
    from swarmvar.cli.run import _file_words

    toml = str(tmp_path / "swarmvar.toml")
    message = "roles.refit_lag: saved 0, now 2; refit_every: saved 5, now 6"
    words = _file_words(message, _settings(refit_every=(6, toml)))
    assert words == f"roles.refit_lag: saved 0, now 2; refit_every: saved 5, now 6 " \
                    f"(refit_every = 6 in {toml})", words
    flagged = _file_words(message, _settings(refit_every=(6, "flag")))
    assert flagged == "roles.refit_lag: saved 0, now 2; --refit-every: saved 5, now 6"


# --- 3. the file's settings said at start; 4. one wording ----------------------------------

def test_run_says_which_settings_the_file_gave(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import swarmvar.swarm as swarm_mod

    class Stop(Exception):
        pass

    def capture(*args: object, **kwargs: object) -> None:
        raise Stop

    capture.check_start_history = swarm_mod.Swarm.check_start_history  # type: ignore[attr-defined]
    monkeypatch.setattr(swarm_mod, "Swarm", capture)
    toml = _toml(tmp_path, f'home = "{tmp_path / "h"}"\nwindow = 60\n')
    result = CliRunner().invoke(app, ["run", "-q"], env={"SWARMVAR_CONFIG": str(toml)})
    assert isinstance(result.exception, Stop), result.output
    assert (f'settings: {toml} gives home = "{tmp_path / "h"}", window = 60 (a flag '
            "overrides each)") in result.output


def test_window_bound_in_the_shared_wording() -> None:
    code, out = _cli(["run", "--window", "20", "-q", "--home", "/nonexistent-x3/h"])
    assert code == 2 and "20 is out of range; it must be at least 30" in out, out


# --- 5. a file where the keys folder goes ----------------------------------------------------

def test_a_file_in_place_of_the_keys_folder_is_a_usage_error(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "keys").write_text("not a folder", encoding="utf-8")
    code, out = _cli(["run", "--home", str(home), "--agents", "nig,bootstrap,student-t",
                      "--window", "60", "--beats", "1", "-q"])
    assert code == 2, out
    assert f"--home {home}: {home / 'keys'} is a file where swarmvar keeps a folder" in out
    assert not (home / "ledger.sqlite").exists()


# --- 6. an alert inside an open episode ------------------------------------------------------

def test_an_alert_raised_again_names_the_episode() -> None:
    from swarmvar.arbiter.decide import RAISED_AGAIN
    from swarmvar.cli.run import decision_words

    d = Decision(Action.ALERT, "sp500", 60, ("NIG", "StudentT"),
                 {"anomalies:NIG": 2.0, "anomalies:StudentT": 1.0}, 0.71,
                 f"risk signals high: NIG, StudentT [threat 0.710 >= 0.6]; {RAISED_AGAIN} "
                 "open since beat 48: StudentT")
    words = decision_words(d)
    assert words is not None and words.startswith(
        "alert on sp500: the alert open since beat 48 now also names StudentT: "), words
    fresh = decision_words(Decision(Action.ALERT, "sp500", 48, ("NIG",), {}, 0.7, "high"))
    assert fresh is not None and "open since" not in fresh


# --- 7. an arbiter home resumed ----------------------------------------------------------------

def test_an_arbiter_home_is_not_resumed_without_it(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The evidence is the home's checkpoint holding the arbiter's state (``_home_run``);
    the options are not in it and not checked (tests/cli/test_run_review_mends.py runs it)."""
    import typer

    from swarmvar.cli.run import _check_arbiter_resume

    _check_arbiter_resume("--home H", False, False)  # no arbiter state: runs
    _check_arbiter_resume("--home H", True, True)  # resumed with it
    with pytest.raises(typer.Exit):
        _check_arbiter_resume("--home H", False, True)
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("error: --home H: this home's run has the arbiter on (its "
                           "checkpoint holds the arbiter's state)"), said


def test_decision_words_true_to_the_arbiters_episode_reason() -> None:
    """The reason as ``arbiter.decide`` writes it today: an episode open since beat 7
    naming "bad", then a beat over the alert level naming a new agent too."""
    from swarmvar.arbiter import AgentSignals, AlertEpisode, BeatSignals, DecisionVector, decide
    from swarmvar.arbiter.threat import FEATURES
    from swarmvar.cli.run import decision_words

    def agent(name: str, *, drifting: bool = False, lagging: bool = False) -> AgentSignals:
        return AgentSignals(name, (drifting, drifting), (3.0 if drifting else 0.0, 0.0),
                            -0.2 if lagging else 0, drifting, False, False, drifting, lagging)

    agents = (agent("bad", drifting=True), agent("newcomer", lagging=True),
              *(agent(n) for n in "cde"))
    total = float(sum(a.anomalies for a in agents))
    signals = BeatSignals("p", 9, 0.0, agents, (False, False), (0.0, 0.0), 0.0, False,
                          (total,) + (0.0,) * (len(FEATURES) - 1))
    d = decide(DecisionVector(0.7, 0.0, 0.0, 0.0, (0.0, 0.0, 0.7, 0.0)), signals, (),
               episode=AlertEpisode(True, 7, 0, ("bad",)))
    assert d.action is Action.ALERT, d
    words = decision_words(d)
    assert words is not None and words.startswith(
        "alert on p: the alert open since beat 7 now also names newcomer: log score "
        "lagging"), words
    assert "bad" not in words, words  # the episode's agent is not new


def test_a_missing_consensus_is_said_once_per_portfolio(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's wiring: every beat goes through ``_consensus_lost`` (once per portfolio
    until the consensus returns: tests/cli/test_run_review_mends.py) and its words are said."""
    import swarmvar.cli.run as run_mod

    calls: list[int] = []

    def first_beat(rep: Any, unagreed: set[str]) -> str | None:
        calls.append(1)
        return f"no consensus for {rep.portfolio} (stub)" if len(calls) == 1 else None

    monkeypatch.setattr(run_mod, "_consensus_lost", first_beat)
    code, out = _cli(["run", "--home", str(tmp_path / "h"), "--agents",
                      "nig,bootstrap,student-t", "--window", "60", "--beats", "3", "-q"])
    assert code == 0, out
    assert len(calls) == 3 and out.count("(stub)") == 1, out
