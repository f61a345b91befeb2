"""``swarmvar run``'s mends from a fourth review: the arbiter resume check reads the home's
checkpoint (not the ledger's tail), plug-in agents count toward the consensus rule, the
live table keeps every number whole at 3 levels and 80 columns or 2 levels and 50,
``--checkpoint-every`` left out keeps a resumed home's, an alert raised again names its
agents by whole names, and the smaller words (``--last`` against a file's window, the
quarantine line, a missing consensus said again after it returned)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from swarmvar.cli import app
from swarmvar.types import Action, Decision

FAST = ["--agents", "nig,bootstrap,student-t", "--window", "60", "-q"]


def _cli(args: list[str], toml: Path | None = None) -> tuple[int, str]:
    env = {"SWARMVAR_CONFIG": str(toml) if toml is not None else ""}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())


# --- 1. the arbiter resume check ------------------------------------------------------------

def test_a_fresh_home_is_read_without_making_anything(tmp_path: Path) -> None:
    from swarmvar.cli.run import _home_run

    home = tmp_path / "h"
    assert _home_run(home) == (None, False)
    assert not home.exists()


def test_pulses_ledgered_by_arbiter_replay_do_not_refuse_a_run(tmp_path: Path) -> None:
    """``swarmvar arbiter replay --home H`` ledgers pulses into H (here one pulse, as it
    writes them): the home's run never had the arbiter, so a run without it goes on."""
    from swarmvar.arbiter.pulse import Pulse
    from swarmvar.ledger import Ledger

    home = tmp_path / "h"
    ledger = Ledger.open(home)
    try:
        ledger.record_pulse({"portfolio": "sp500", "seq": 1,
                             **Pulse(4.0, 5.0, 2.718281828459045**4, 0.001, 0.02).to_json()})
    finally:
        ledger.close()
    code, out = _cli(["run", "--home", str(home), "--beats", "2", *FAST])
    assert code == 0, out
    assert "arbiter" not in out, out


def test_an_arbiter_home_buried_under_other_entries_is_refused_without_it(
        tmp_path: Path) -> None:
    """A backtest into the same home adds thousands of entries after the run's last pulse;
    the checkpoint still holds the arbiter's state, so a resume without it is refused."""
    from swarmvar.cli.run import _home_run
    from swarmvar.ledger import EntryKind, Ledger

    home = tmp_path / "h"
    code, out = _cli(["run", "--home", str(home), "--beats", "2", "--arbiter", *FAST])
    assert code == 0, out
    assert _home_run(home)[1] is True
    ledger = Ledger.open(home)
    try:  # more entries than the old check's 5,000-entry tail, none a pulse
        ledger.add_entries([(EntryKind.BACKTEST, {"day": i}) for i in range(5_001)])
    finally:
        ledger.close()
    code, out = _cli(["run", "--home", str(home), "--beats", "2", *FAST])
    assert code == 2, out
    assert "this home's run has the arbiter on (its checkpoint holds the arbiter's state)" \
        in out, out
    code, out = _cli(["run", "--home", str(home), "--beats", "2", "--arbiter", *FAST])
    assert code == 0, out


# --- 2. plug-in agents in the quorum --------------------------------------------------------

def test_plugin_agents_count_toward_the_rule(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``--agents nig`` and two plug-ins are three agents: median's 3 are met. The run is
    stopped at the next check (``--spread``) with a code of its own: no plug-in is run."""
    import swarmvar.cli.run as run_mod

    def stop(*_: Any) -> None:
        raise typer.Exit(7)

    monkeypatch.setattr(run_mod, "_check_spread", stop)
    base = ["run", "--home", str(tmp_path / "h"), "--agents", "nig", "--sandbox", "none",
            "--policy", "median", "--window", "60", "-q"]
    code, out = _cli([*base, "--plugin", "m:A", "--plugin", "m:B"])
    assert code == 7, out
    code, out = _cli([*base, "--plugin", "m:A"])  # two agents: refused, both named
    assert code == 2, out
    assert "--policy median" in out and "2 agents are given (NormalInverseGamma, A)" in out, out


# --- 3. the live table ----------------------------------------------------------------------

def _swarm(alphas: tuple[float, ...], n: int = 3) -> Any:
    specs, reports = {}, {}
    for k in range(n):
        name = "book-of-positions" if k == 0 else f"eq{k}"
        specs[name] = SimpleNamespace(net_value=12_345_678.0 if k == 0 else None)
        levels = tuple(SimpleNamespace(alpha=a, var=0.0231 + 0.001 * k + 0.002 * j,
                                       es=0.0312 + 0.001 * k + 0.002 * j, available=5,
                                       total=6, var_interval=(0.019, 0.038))
                       for j, a in enumerate(alphas))
        reports[name] = SimpleNamespace(
            seq=1234 + k, as_of=datetime(2026, 12, 4, tzinfo=UTC), consensus=levels,
            decisions=(SimpleNamespace(action=SimpleNamespace(value="alert"),
                                       agents=("GarchT",)),))
    return SimpleNamespace(specs=specs, configs={"x": SimpleNamespace(alphas=alphas)},
                           portfolios=lambda: list(specs), latest=reports.get)


@pytest.mark.parametrize(("alphas", "width"), [((0.99, 0.975, 0.95), 80),
                                               ((0.99, 0.975), 50), ((0.99,), 40)])
def test_the_table_keeps_every_number_and_name_whole(alphas: tuple[float, ...],
                                                     width: int) -> None:
    import io

    from rich.console import Console

    from swarmvar.cli.run import _table

    swarm = _swarm(alphas)
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(_table(swarm, {}, {}, True, width))
    text = console.export_text()
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width, text
    # the column is there, its header whole
    assert any(line.startswith("┃ portfolio ") for line in text.splitlines()), text
    for name in ("eq1", "eq2"):
        assert re.search(rf"│ {name} ", text), (name, text)
    for name in swarm.portfolios():
        for c in swarm.latest(name).consensus:
            for number in (f"{100 * c.var:.2f}%", f"{100 * c.es:.2f}%"):
                assert number in text, (number, text)


# --- 4. --checkpoint-every ------------------------------------------------------------------

def test_checkpoint_every_left_out_keeps_the_homes(tmp_path: Path) -> None:
    from swarmvar.cli.run import CHECKPOINT_EVERY, _home_run

    fresh = tmp_path / "fresh"
    code, out = _cli(["run", "--home", str(fresh), "--beats", "1", *FAST])
    assert code == 0, out
    run, _ = _home_run(fresh)
    assert run is not None and run["checkpoint_every"] == CHECKPOINT_EVERY

    home = tmp_path / "h"
    code, out = _cli(["run", "--home", str(home), "--beats", "2", "--checkpoint-every", "3",
                      *FAST])
    assert code == 0, out
    code, out = _cli(["run", "--home", str(home), "--beats", "2", *FAST])  # the plain rerun
    assert code == 0, out
    run, _ = _home_run(home)
    assert run is not None and run["checkpoint_every"] == 3
    code, out = _cli(["run", "--home", str(home), "--beats", "2", "--checkpoint-every", "5",
                      *FAST])
    assert code == 2, out
    assert "--checkpoint-every: saved 3, now 5" in out, out


# --- 5. an alert raised again, by whole names -----------------------------------------------

def _alert(signals: dict[str, float], reason: str) -> Decision:
    return Decision(Action.ALERT, "p", 60, ("MarkovSwitching", "MarkovSwitchingGarch"),
                    signals, 0.7, reason)


def test_raised_again_names_agents_whole() -> None:
    from swarmvar.arbiter.decide import RAISED_AGAIN, describe_agents
    from swarmvar.cli.run import decision_words

    signals = {"anomalies:MarkovSwitching": 2.0, "anomalies:MarkovSwitchingGarch": 1.0}
    reason = ("risk signals high, check these agents' forecasts: ... [threat 0.700 >= 0.6]; "
              f"{RAISED_AGAIN} open since beat 48: MarkovSwitchingGarch")
    words = decision_words(_alert(signals, reason))
    new = describe_agents(["MarkovSwitchingGarch"], signals)
    assert words is not None and words.startswith(
        f"alert on p: the alert open since beat 48 now also names {new} (at beat 60"), words
    # the arbiter's structured marks, when it writes them, say the same without the words
    marked = {**signals, "raised_again": 1.0, "episode_since": 48.0,
              "episode_new:MarkovSwitchingGarch": 1.0}
    assert decision_words(_alert(marked, "risk signals high")) == words
    opened = decision_words(_alert({**marked, "raised_again": 0.0}, "risk signals high"))
    assert opened == "alert on p at beat 60: risk signals high"


# --- 6. the smaller words -------------------------------------------------------------------

def test_last_names_the_files_window(tmp_path: Path) -> None:
    toml = tmp_path / "swarmvar.toml"
    toml.write_text("window = 60\n", encoding="utf-8")
    code, out = _cli(["run", "--home", str(tmp_path / "h"), "--last", "50", "--agents",
                      "nig,bootstrap,student-t", "-q"], toml)
    assert code == 2, out
    assert f"must be more than window ({toml}: window = 60)" in out, out
    assert "--window" not in out, out


def test_a_quarantine_says_what_it_does_once() -> None:
    from swarmvar.arbiter.decide import QUARANTINE_OWN
    from swarmvar.cli.run import decision_words

    d = Decision(Action.QUARANTINE, "p", 5, ("NIG",), {}, 0.9, QUARANTINE_OWN)
    words = decision_words(d)
    assert words == ("quarantine on p at beat 5: its own VaR breached far more often than "
                     "its level allows, and its VaR below the others' intervals; the "
                     "consensus goes on without it until probation passes"), words


def test_a_lost_consensus_is_said_again_after_it_returned() -> None:
    from swarmvar.cli.run import _consensus_lost

    def rep(consensus: bool) -> Any:
        return SimpleNamespace(portfolio="p", seq=1, as_of=datetime(2026, 1, 2, tzinfo=UTC),
                               consensus=(object(),) if consensus else (),
                               rejected={"consensus": "too few agents"})

    unagreed: set[str] = set()
    said = [_consensus_lost(rep(c), unagreed) is not None
            for c in (False, False, True, False, False)]
    assert said == [True, False, False, True, False]


def test_an_alert_episodes_end_is_said_in_words() -> None:
    from swarmvar.cli.run import closed_words

    words = closed_words("sp500", {"since": 40, "until": 52, "agents": ["GarchT", "NIG"],
                                   "named": ["lagging:GarchT"]})
    assert words == ("alert on sp500 closed at beat 52 (open since beat 40; it named GarchT, "
                     "NIG)")
    assert closed_words("p", {"since": 1, "until": 6, "agents": []}) == (
        "alert on p closed at beat 6 (open since beat 1)")


def test_a_quarantine_level_alert_inside_an_episode_keeps_its_full_reason() -> None:
    from swarmvar.cli.run import decision_words
    from swarmvar.types import Action, Decision

    reason = "risk signals high, check these agents' forecasts: GarchT: ... [threat 0.97 >= 0.95]"
    d = Decision(Action.ALERT, "p", 9, ("GarchT",), {"raised_again": 1.0, "episode_since": 7.0},
                 0.97, reason)
    assert decision_words(d) == f"alert on p at beat 9: {reason}"


def test_an_episodes_end_is_said_once_for_reports_handed_over_together() -> None:
    """A catch-up hands several reports of one portfolio over at once, after all their
    beats were observed: each report finds the close of its own beat (a close on the middle
    report too), once (none without an arbiter or a close)."""
    from swarmvar.cli.run import closed_on

    event = {"type": "alert_closed", "since": 3, "until": 7, "agents": ["GarchT"]}

    def alert_closed(portfolio: str, seq: int) -> object:
        return event if portfolio == "p" and seq == event["until"] else None

    judge = SimpleNamespace(alert_closed=alert_closed)
    reports = [SimpleNamespace(portfolio="p", seq=s) for s in (6, 7, 8)]
    assert [closed_on(judge, r) for r in reports] == [None, event, None]
    assert closed_on(judge, SimpleNamespace(portfolio="q", seq=7)) is None
    assert closed_on(None, reports[1]) is None
