"""What the CLI shows a risk user: the consensus rule in words for the roster it met, plain
help of every command (no boxes, every option explained, defaults shown), currency VaR of a
positions portfolio in ``run``, units and ledger paths, and the arbiter's alerts in words."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import _COMMANDS, _load, app
from swarmvar.consensus import DEFAULT_POLICY, Aggregator, Weighting
from swarmvar.errors import InvalidParameter
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.types import Action, Decision

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()

#: The ledger's (machine) name of the default rule: unchanged, only the printed words move.
LEDGER_NAME = "trimmed_mean(f=1 (f=2 from 6 agents on), tempered)"
BOXES = set("╭╮╰╯│─━┃┏┓┗┛┡┩╇┳┻")


# --- 1. the consensus rule in words --------------------------------------------------------


def test_the_rule_in_words_follows_the_roster_and_keeps_the_ledger_name() -> None:
    assert DEFAULT_POLICY.method == LEDGER_NAME
    assert SWARM_POLICY.describe(6) == (
        "trimmed mean of 6 agents dropping the 2 highest and 2 lowest of each figure; "
        "tempered weights from each agent's FZ0 loss over its last 1000 forecasts")
    assert SWARM_POLICY.describe(5).startswith(
        "trimmed mean of 5 agents dropping the highest and the lowest of each figure; ")
    assert SWARM_POLICY.describe(2) == ("a trimmed mean dropping the highest and the lowest "
                                        "needs at least 3 agents")
    equal = dataclasses.replace(SWARM_POLICY, weighting=Weighting.EQUAL, f=0)
    assert equal.describe(2) == "mean of 2 agents (nothing trimmed); equal weights"
    krum = dataclasses.replace(SWARM_POLICY, aggregator=Aggregator.KRUM)
    assert krum.describe(4) == "a Krum tolerating 1 faulty agent needs at least 5 agents"
    assert krum.describe(5).startswith("Krum (the agent closest to the others) of 5 agents, "
                                       "tolerating 1 faulty agent; ")
    multi = dataclasses.replace(SWARM_POLICY, aggregator=Aggregator.MULTI_KRUM)
    assert "mean of the 6 agents closest" in multi.describe(7)
    track = dataclasses.replace(SWARM_POLICY, weighting=Weighting.TRACK_RECORD, window=None)
    assert track.describe(3).endswith("weights from each agent's FZ0 loss over its whole record")


def test_the_words_name_the_record_the_weights_used() -> None:
    """``var --track-days 60``'s weights use 60 forecasts, not the policy's 1000; at a
    horizon above 1 its record scores non-overlapping h-day windows, ceil(days / h) of them."""
    from swarmvar.cli.var import rule_words
    from swarmvar.types import Consensus

    assert SWARM_POLICY.describe(3, record=60).endswith("FZ0 loss over its last 60 forecasts")
    assert SWARM_POLICY.describe(3, record=5000).endswith("its last 1000 forecasts")
    assert SWARM_POLICY.describe(3, record=12, horizon=5).endswith(
        "its last 12 non-overlapping 5-day windows")
    assert SWARM_POLICY.describe(3, record=1).endswith("its last 1 forecast")
    whole = dataclasses.replace(SWARM_POLICY, window=None)
    assert whole.describe(3, record=60).endswith("its last 60 forecasts")
    assert whole.describe(3).endswith("its whole record")
    for bad in ({"record": -1}, {"record": 2.5}, {"horizon": 0}, {"horizon": True}):
        with pytest.raises(InvalidParameter):
            SWARM_POLICY.describe(3, **bad)
    # var's table names the rule alone: its note says the weights once (weights_note)
    c = Consensus(0.99, 1, 0.02, 0.03, (0.01, 0.03), (0.02, 0.04), SWARM_POLICY.method,
                  ("a", "b", "c"), available=3, total=3)
    rule = "trimmed mean of 3 agents dropping the highest and the lowest of each figure"
    assert rule_words(c, SWARM_POLICY) == rule == SWARM_POLICY.describe(3, weights=False)
    assert SWARM_POLICY.describe(3) == f"{rule}; {SWARM_POLICY.weights_words()}"
    moved = dataclasses.replace(c, method=SWARM_POLICY.method + ", rearranged across levels")
    assert rule_words(moved, SWARM_POLICY) == f"{rule}, rearranged across levels"
    fallback = dataclasses.replace(  # no track record: the swarm's equal-weight fallback
        c, method=dataclasses.replace(SWARM_POLICY, weighting=Weighting.EQUAL).method)
    assert rule_words(fallback, SWARM_POLICY) == rule
    assert rule_words(c, None) == SWARM_POLICY.method


@given(aggregator=st.sampled_from(list(Aggregator)), weighting=st.sampled_from(list(Weighting)),
       f=st.integers(0, 4), m=st.integers(0, 30))
def test_the_words_never_show_the_machine_name(aggregator: Aggregator, weighting: Weighting,
                                               f: int, m: int) -> None:
    if aggregator is Aggregator.MEAN:
        f = 0
    policy = dataclasses.replace(SWARM_POLICY, aggregator=aggregator, weighting=weighting, f=f)
    words = policy.describe(m)
    assert words and "f=" not in words and "_" not in words
    assert ("needs at least" in words) == (m < aggregator.min_agents(f))


@pytest.mark.parametrize("m", [-1, 2.5, True, "3", None])
def test_describe_refuses_a_count_that_is_not_one(m: Any) -> None:
    with pytest.raises(InvalidParameter, match="number of agents"):
        SWARM_POLICY.describe(m)


def test_var_says_the_rule_in_words_for_two_and_three_agents(tmp_path: Path) -> None:
    two = runner.invoke(app, ["var", "--agents", "nig,bootstrap", "--track-days", "0",
                              "--last", "500", "--home", str(tmp_path / "a")])
    assert two.exit_code == 0, two.output
    assert ("no consensus: 2 agents produced a forecast, and a trimmed mean dropping the "
            "highest and the lowest needs at least 3 agents") in plain(two.output)
    assert "trimmed_mean(" not in two.output
    three = runner.invoke(app, ["var", "--agents", "nig,bootstrap,student-t", "--track-days",
                                "0", "--last", "500", "--json", "--home", str(tmp_path / "b")])
    assert three.exit_code == 0, three.output
    doc = json.loads(three.stdout)
    words = "trimmed mean of 3 agents dropping the highest and the lowest of each figure"
    assert doc["consensus_rule"] == words  # added beside the records' machine "method"
    assert doc["note"] == "consensus: equal weights (no track record: track_days=0)"
    assert {c["method"] for c in doc["consensus"]} == {
        "trimmed_mean(f=1 (f=2 from 6 agents on), equal)"}
    shown = runner.invoke(app, ["var", "--agents", "nig,bootstrap,student-t", "--track-days",
                                "0", "--last", "500", "--home", str(tmp_path / "b")])
    assert f"swarm consensus (signed estimates): {words}" in plain(shown.output)
    assert "trimmed_mean(" not in shown.output


@pytest.mark.parametrize(("horizon", "span"), [
    (1, "its last 60 forecasts"), (5, "its last 60 days in 12 non-overlapping 5-day windows")])
def test_var_names_the_track_record_it_was_given(tmp_path: Path, horizon: int,
                                                  span: str) -> None:
    """Was: "over its last 1000 days" (the policy's window) beside a 60-forecast note; then
    the record said twice, in the rule and in the note: now once, in the note."""
    result = runner.invoke(app, ["var", "--agents", "nig,bootstrap,student-t", "--track-days",
                                 "60", "--horizon", str(horizon), "--last", "500", "--workers",
                                 "1", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["consensus_rule"] == ("trimmed mean of 3 agents dropping the highest and the "
                                     "lowest of each figure"), doc["consensus_rule"]
    assert doc["note"].startswith(f"consensus: tempered weights from each agent's FZ0 loss "
                                  f"over {span}, out of sample"), doc["note"]
    said = json.dumps([doc["consensus_rule"], doc["note"]])
    assert said.count("weights") == 1 and said.count("forecasts") <= 1 and said.count(
        "non-overlapping") <= 1, said
    assert doc["consensus_kept"] == ("the trimmed mean keeps 1 of 3 agents for each figure, "
                                     "the middle one (shown: the VaR's); weights cannot "
                                     "change it")


def test_backtest_says_the_rule_in_words_then_its_ledger_name(tmp_path: Path) -> None:
    args = ["backtest", "--last", "20", "--window", "300", "--refit-every", "20",
            "--no-baseline", "--no-progress", "--workers", "1"]
    three = runner.invoke(app, [*args, "--agents", "nig,bootstrap,student-t", "--home",
                                str(tmp_path / "a")])
    assert three.exit_code == 0, three.output
    assert (f"consensus: {SWARM_POLICY.describe(3)} (in the ledger: {LEDGER_NAME})"
            in plain(three.output))
    two = runner.invoke(app, [*args, "--agents", "nig,bootstrap", "--home",
                              str(tmp_path / "b")])
    assert two.exit_code == 0, two.output
    assert ("no consensus row: 2 agents, and a trimmed mean dropping the highest and the "
            "lowest needs at least 3 agents") in plain(two.output)


# --- 2 and 3. help: plain, every option explained, defaults shown ---------------------------


def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, [*path, name])
    return found


COMMANDS = [found for name in _COMMANDS for found in _walk(_load(name), [name])]


def _option_problems(path: list[str], command: Any) -> list[str]:
    import typer

    ctx = typer.Context(command, info_name=path[-1])
    problems = []
    for p in command.params:
        if p.param_type_name != "option" or getattr(p, "hidden", False):
            continue  # a hidden option (serve's --spread: a pointer to run) is not listed
        record = p.get_help_record(ctx)
        text = record[1] if record else ""
        if not text.split("[default:")[0].split("[required]")[0].strip():
            problems.append(f"{p.opts[0]}: no help")
        if p.default not in (None, False, "", (), []) and "[default:" not in text:
            problems.append(f"{p.opts[0]}: default {p.default!r} not shown")
    return problems


@pytest.mark.parametrize(("path", "command"), COMMANDS,
                         ids=[" ".join(path) for path, _ in COMMANDS])
def test_every_help_is_plain_and_explains_every_option(path: list[str], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert not BOXES & set(result.output), result.output
    assert "<bool>" not in result.output
    listing = result.output.split("\nCommands:\n", 1)
    if len(listing) == 2:  # a group: each subcommand's first sentence whole, not cut short
        assert not re.search(r"\.\.\.$", listing[1], re.M), result.output
    assert _option_problems(path, command) == []


def test_run_help_names_what_a_left_out_option_does() -> None:
    out = plain(runner.invoke(app, ["run", "--help"]).output)
    assert "[default: (0.99,0.975)]" in out  # typer brackets a text default
    assert "Left out: no limit, the run goes on until the data runs out" in out
    assert re.search(r"--checkpoint-every <int> checkpoint a portfolio's state", out)
    arbiter = plain(runner.invoke(app, ["arbiter", "--help"]).output)
    assert "compare the consensus with and without its actions." in arbiter


# --- 4. run: positions in currency, % of net value -------------------------------------------


def _assets(folder: Path) -> tuple[Path, Path]:
    from swarmvar.books import load_stocks

    frame = load_stocks().iloc[:215][["AAPL", "MSFT", "XOM"]]
    frame.index.name = "date"
    frame.to_csv(folder / "assets.csv")
    (folder / "books.json").write_text(json.dumps({
        "hedged": {"positions": {"AAPL": 600_000, "MSFT": -400_000, "XOM": 300_000}},
        "short": {"positions": {"AAPL": -600_000, "MSFT": 100_000}},
        "even": {"weights": {"AAPL": 0.5, "MSFT": 0.5}}}), encoding="utf-8")
    return folder / "assets.csv", folder / "books.json"


def test_run_shows_a_positions_portfolio_in_currency_of_its_net_value(tmp_path: Path) -> None:
    from swarmvar.books import currency_loss

    data, books = _assets(tmp_path)
    result = runner.invoke(app, ["run", "--data", str(data), "--portfolios", str(books),
                                 "--agents", "nig,bootstrap,student-t", "--window", "200",
                                 "--beats", "9", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    out = plain(result.output)
    assert "a positions portfolio: % of its net value, and in currency" in out
    assert "hedged (net 500,000)" in out and "VaR 0.99 (ccy)" in out
    line = next(x for x in result.output.splitlines() if x.startswith("hedged (positions"))
    found = re.search(r"VaR 0\.99 ([\d.]+)% = ([\d,]+), ES", line)
    assert found, line
    pct, money = float(found[1]) / 100, float(found[2].replace(",", ""))
    assert abs(money - currency_loss(500_000, pct)) <= 0.5 + 500_000 * 5e-5  # % shown rounded
    assert "(% of net value; ES in currency an upper bound)" in line
    # a net-short book: its returns are of |net| (500k), so it is shown in currency the same way
    short = next(x for x in result.output.splitlines() if x.startswith("short (positions"))
    found = re.search(r"net value 500,000\) as of .*: VaR 0\.99 ([\d.]+)% = ([\d,]+), ES", short)
    assert found, short
    pct, money = float(found[1]) / 100, float(found[2].replace(",", ""))
    assert abs(money - currency_loss(500_000, pct)) <= 0.5 + 500_000 * 5e-5
    assert short.endswith("(% of net value; ES in currency an upper bound)")
    assert "short (net 500,000)" in out
    assert not any(x.startswith("even (") for x in result.output.splitlines())


def test_the_currency_lines_keep_positions_portfolios_before_the_cap() -> None:
    """Twelve weights portfolios first, then twelve positions ones: the first ten of the
    positions portfolios are shown (not none: the cap comes after the filter), then how
    many more."""
    from types import SimpleNamespace

    from swarmvar.cli.run import CURRENCY_LINES, _currency_lines
    from swarmvar.swarm.ticks import PortfolioSpec
    from swarmvar.types import Consensus

    specs = {f"w{i}": PortfolioSpec(f"w{i}", weights={"A": 1.0}) for i in range(12)}
    specs |= {f"p{i}": PortfolioSpec(f"p{i}", positions={"A": 1000.0 * (i + 1)})
              for i in range(12)}
    level = Consensus(0.99, 1, 0.02, 0.03, (0.01, 0.03), (0.02, 0.04), "m", ("a",))
    report = SimpleNamespace(consensus=[level], as_of=pd.Timestamp("2024-01-02"))
    swarm = SimpleNamespace(specs=specs, latest=lambda name: report)
    lines = _currency_lines(swarm)
    assert [x.split(" ")[0] for x in lines[:-1]] == [f"p{i}" for i in range(CURRENCY_LINES)]
    assert lines[-1].startswith("and 2 more positions portfolios")
    assert lines[0].startswith("p0 (positions, net value 1,000) as of 2024-01-02: VaR 0.99 "
                               "2.00% = 20, ES 3.00% = 30")


# --- 5. units and the ledger's path ---------------------------------------------------------


def test_the_book_backtest_names_its_ledger(tmp_path: Path) -> None:
    home = tmp_path / "h"
    result = runner.invoke(app, ["backtest", "--positions", "AAPL=600000,MSFT=-400000",
                                 "--last", "20", "--window", "250", "--workers", "1",
                                 "--no-progress", "--home", str(home)])
    assert result.exit_code == 0, result.output
    found = re.search(r"recorded entries (\d+)-(\d+) \(daily forecasts, tests, summary\) in "
                      r"the ledger at (\S+) \(Merkle root ([0-9a-f]{64})\)", plain(result.output))
    assert found, result.output
    from swarmvar.ledger import Ledger

    with Ledger.open(home, create=False) as ledger:
        assert Path(found[3]) == Path(str(ledger.path))
        assert int(found[2]) == ledger.size - 1 and found[4] == ledger.compute_merkle_root().hex()


def test_the_book_table_gives_the_marginal_es_its_unit(tmp_path: Path) -> None:
    result = runner.invoke(app, ["var", "--positions", "AAPL=600000,MSFT=-400000", "--last",
                                 "300", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "marg. ES (per unit of ccy)" in result.output


# --- 6. the arbiter's alerts in words --------------------------------------------------------


def test_decisions_in_words_say_where_and_give_the_arbiters_reason() -> None:
    """The arbiter's reason already says the action, the agents and the kinds of anomaly in
    words (``arbiter.decide``); the face adds where and when, and what a quarantine does."""
    from swarmvar.cli.run import decision_words

    reason = ("risk signals high, check these agents' forecasts: NIG: breached its VaR at 2 "
              "levels (up to 99%) this beat [threat 0.723 >= 0.6]")
    alert = Decision(Action.ALERT, "sp500", 48, ("NIG", "StudentT"),
                     {"threat": 0.723, "anomalies:NIG": 2.0, "anomalies:StudentT": 1.0},
                     0.723, reason)
    assert decision_words(alert) == f"alert on sp500 at beat 48: {reason}"
    held = decision_words(dataclasses.replace(alert, action=Action.QUARANTINE,
                                              agents=("NIG",)))
    assert held == (f"quarantine on sp500 at beat 48: {reason}; the consensus goes on "
                    "without it until probation passes")
    assert decision_words(dataclasses.replace(alert, action=Action.NOOP)) is None


def test_run_prints_the_arbiters_alerts_in_words(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from swarmvar.swarm._beating import ALERT_LOG

    caplog.set_level(logging.WARNING, logger="swarmvar.swarm")
    result = runner.invoke(app, ["run", "--agents", "nig,bootstrap,student-t", "--window",
                                 "150", "--beats", "60", "--arbiter", "--quiet", "--home",
                                 str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    alerts = [x for x in result.output.splitlines() if x.startswith("alert on ")]
    assert alerts, result.output  # the seeded replay alerts at beats 32 and 48 (today)
    closed = [x for x in alerts if " closed at beat " in x]  # an episode's end, in words
    assert closed and re.match(r"alert on sp500 closed at beat \d+ \(open since beat \d+",
                               closed[0]), closed
    for line in (x for x in alerts if x not in closed):  # the swarm's log line is held back
        assert "risk signals high" in line and re.search(r"\[threat [\d.]+ >= ", line), line
        assert "dominant core" not in line and "anomalies)" not in line, line
    # the swarm's log line (ALERT_LOG) never leaves its logger: pytest captures log records
    # away from the runner's output, so look for them where they would go
    assert not [r for r in caplog.records if r.name == "swarmvar.swarm" and r.msg == ALERT_LOG]


def test_only_the_swarms_alert_log_line_is_held_back() -> None:
    """The filter matches the log call's format (ALERT_LOG), not a message's first words."""
    import logging

    from swarmvar.cli.run import _said_here
    from swarmvar.swarm._beating import ALERT_LOG

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("swarmvar.swarm", logging.WARNING, __file__, 1, msg, args,
                                 None)

    assert not _said_here(record(ALERT_LOG, "sp500", 48, "threat 0.72 >= 0.6"))
    copy = "".join(list(ALERT_LOG))  # an equal string, not the same object
    assert copy == ALERT_LOG and copy is not ALERT_LOG
    assert not _said_here(record(copy, "sp500", 48, "threat 0.72 >= 0.6"))  # by value
    assert _said_here(record("alert on %s: a failure", "sp500"))  # another line is said
    assert _said_here(record("agent %s quarantined", "NIG"))


def test_the_api_note_names_the_forecasts_the_weights_used() -> None:
    """A track record longer than the policy's window: the weights use the window's last
    forecasts, and the note says so (not the whole record's length)."""
    import dataclasses

    import numpy as np

    import swarmvar
    from swarmvar.swarm.consensus import SWARM_POLICY

    r = np.random.default_rng(3).standard_t(5, 400) * 0.01
    res = swarmvar.var(r, agents=["nig", "bootstrap", "t"], track_days=80,
                       policy=dataclasses.replace(SWARM_POLICY, window=30))
    assert "over its last 30 forecasts, out of sample" in res.note


def test_an_equal_weight_policy_says_so_and_builds_no_track_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: an EQUAL policy still backtested a whole track record, and the note spoke of
    FZ0 loss whatever the policy's weighting."""
    import numpy as np

    import swarmvar
    import swarmvar.api as api
    from swarmvar.swarm.consensus import SWARM_POLICY

    built: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        built.append(1)
        raise AssertionError("an equal-weight consensus needs no track record")

    monkeypatch.setattr(api, "_instance_track", counting)
    r = np.random.default_rng(3).standard_t(5, 400) * 0.01
    res = swarmvar.var(r, agents=["nig", "bootstrap", "t"], track_days=80,
                       policy=dataclasses.replace(SWARM_POLICY, weighting=Weighting.EQUAL))
    assert built == [] and res.agreed and res.record is None
    assert "equal weights" in res.note and "FZ0" not in res.note
