"""Fixes from the user audit of the CLI: each refusal up front, each text true."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import RUN_FAST, plain  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("command", [["var"], ["backtest"], ["run"],
                                     ["var", "--positions", "AAPL=600000"],
                                     ["backtest", "--positions", "AAPL=600000"]])
def test_a_level_the_engines_refuse_is_refused_by_the_flag_check(tmp_path: Path,
                                                                  command: list[str]) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, [*command, "--alpha", "0.3", "--home", str(home)])
    assert result.exit_code == 2, result.output
    text = plain(result.output)  # the flag check's words, not an engine's later refusal
    assert "Invalid value for --alpha: 0.3 is not a confidence level" in text, text
    assert "strictly between 0.5 and 1" in text and not home.exists()


@pytest.mark.parametrize("args", [
    ["backtest", "--report", "/proc/nope/r.html"],
    ["backtest", "--plot", "/proc/nope/p.png"],
    ["backtest", "--csv", "/proc/nope"],
    ["var", "--csv", "/proc/nope"],
    ["var", "--positions", "AAPL=600000", "--csv", "/proc/nope"],
    ["backtest", "--positions", "AAPL=600000", "--csv", "/proc/nope"],
])
def test_an_unwritable_output_is_a_usage_error_before_any_work(tmp_path: Path,
                                                               args: list[str]) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, [*args, "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "cannot write /proc/nope" in text and "this is a bug" not in text, text
    assert not home.exists()  # nothing fitted, nothing recorded


def test_the_output_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    from swarmvar.cli._common import check_csv_folder, check_output

    target = tmp_path / "a" / "b" / "r.html"
    assert check_output(target, "--report") == target
    assert list(tmp_path.iterdir()) == []  # the folders it tried are gone again
    existing = tmp_path / "r.html"
    existing.write_text("keep")
    check_output(existing, "--report")
    assert existing.read_text() == "keep" and sorted(tmp_path.iterdir()) == [existing]
    assert check_csv_folder(tmp_path / "tables") == tmp_path / "tables"
    assert sorted(tmp_path.iterdir()) == [existing]


@pytest.mark.parametrize(("args", "words"), [
    (["--agents", "nigg"], "no agent called 'nigg'; did you mean 'nig'?"),
    (["--agents", "nig,GarchTT"], "did you mean 'GarchT'?"),
    (["--log-level", "verbose"], "'verbose' is not a log level; use one of debug, info"),
])
def test_serve_refuses_unknown_agents_and_log_levels_before_anything_is_written(
        tmp_path: Path, args: list[str], words: str) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["serve", *args, "--home", str(home), "--port", "1"])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert words in text and "Traceback" not in result.output, text
    assert not home.exists()


def test_serve_hands_the_service_canonical_agent_names(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from swarmvar.service.config import CONFIG_ENV, ServiceConfig

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(k))
    monkeypatch.setenv(CONFIG_ENV, "")  # restored after the test (serve sets it)
    result = runner.invoke(app, ["serve", "--agents", "nig, garch-evt", "--log-level", "DEBUG",
                                 "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    cfg = ServiceConfig.from_env()
    assert cfg.agents == ("NormalInverseGamma", "GarchEVT")
    assert seen["log_config"]["loggers"]["uvicorn"]["level"] == "DEBUG"  # type: ignore[index]


@pytest.mark.parametrize(("args", "words"), [
    (["run", "--agents", "garchh"], "no agent called 'garchh'; did you mean 'garch'?"),
    (["run", "--agents", "nig,GarchEVTT"], "did you mean 'GarchEVT'?"),
    (["run", "--data", "sp5000"], "no bundled data set or file called 'sp5000'; did you mean "
     "'sp500'?"),
])
def test_run_suggests_the_closest_agent_and_data_set(tmp_path: Path, args: list[str],
                                                     words: str) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, [*args, "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert words in text, text
    assert not home.exists()


def test_variants_create_suggests_the_closest_agent_before_opening_the_home(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["variants", "create", "nigg", "--set", "prior_nu=5",
                                 "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "did you mean 'nig'?" in plain(result.output)
    assert not home.exists()
    result = runner.invoke(app, ["variants", "create", "nig,bb", "--set", "prior_nu=5",
                                 "--home", str(home)])
    assert result.exit_code == 2 and "name one agent class" in plain(result.output)


def test_the_default_swarm_is_named_from_default_agents_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from swarmvar.config import CONFIG_ENV
    from swarmvar.models import DEFAULT_AGENTS
    from swarmvar.swarm import Swarm

    monkeypatch.chdir(tmp_path)  # no swarmvar.toml here
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "│ agents" in line)
    assert "all" not in row.split("│")[2]
    text = plain(shown.output)
    assert all(name in text for name in DEFAULT_AGENTS)
    assert f"the default swarm, {len(DEFAULT_AGENTS)} agents" in text
    doc = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    assert doc["settings"]["agents"]["value"] == list(DEFAULT_AGENTS)
    helped = plain(runner.invoke(app, ["run", "--help"]).output)
    assert "the five" not in helped
    assert f"default: the default swarm, {', '.join(DEFAULT_AGENTS)}" in helped.replace(
        "- ", "-")
    assert "five" not in (Swarm.__doc__ or "") and "DEFAULT_AGENTS" in (Swarm.__doc__ or "")


def test_notional_texts_say_the_currency_es_is_an_upper_bound(tmp_path: Path) -> None:
    from swarmvar.cli.var import UNITS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "exact currency VaR and ES" not in readme
    assert "`--notional` gives the exact currency VaR" in " ".join(readme.split())
    helped = plain(runner.invoke(app, ["var", "--help"]).output)
    assert "VaR in currency (exact) and ES in currency (an upper bound" in helped
    result = runner.invoke(app, ["var", "--agents", "nig", "--last", "300", "--no-consensus",
                                 "--notional", "1e6", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "VaR exact, N (1 - exp(-VaR)); ES an upper bound" in plain(result.output)
    assert "upper bound" in UNITS["var_ccy, es_ccy"]  # what --json and --csv carry


def test_every_console_has_one_width_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli._common import CONSOLE_WIDTH, make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    for stderr in (False, True):  # no terminal here (logs, CI): never rich's 80 columns
        assert make_console(stderr=stderr).width == CONSOLE_WIDTH >= 200
        assert make_console(stderr=stderr, live=True).width == CONSOLE_WIDTH
    monkeypatch.setenv("COLUMNS", "250")  # a wider terminal is used whole
    assert make_console().width == 250


def test_the_book_backtest_table_is_whole_in_logs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", "--positions", "AAPL=600000,MSFT=-400000",
                                 "--last", "30", "--window", "250", "--workers", "1",
                                 "--no-progress", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output, result.output
    assert "McNeil-Frey" in result.output and "zone (last 250 d)" in result.output


def test_the_run_table_goes_through_make_console_and_is_whole_in_logs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--agents", "nig,bootstrap,student-t", "--window", "150",
                                 "--beats", "2", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    table = result.output.split("swarmvar run — consensus per portfolio", 1)[1]
    assert "…" not in table, result.output
    assert "VaR 0.99 [interval]" in table and "last role event" in table


@pytest.mark.parametrize(("args", "flag"), [
    (["var", "--positions", "AAPL=600000", "--notional", "1e6"], "--notional"),
    (["var", "--positions", "AAPL=600000", "--policy", "median"], "--policy"),
    (["backtest", "--positions", "AAPL=600000", "--report", "r.html"], "--report"),
    (["backtest", "--positions", "AAPL=600000", "--horizon", "5"], "--horizon"),
])
def test_single_series_flags_given_with_a_book_are_refused_not_ignored(
        tmp_path: Path, args: list[str], flag: str) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, [*args, "--home", str(home)])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {flag}: {flag} does not apply to a book" in text, text
    if flag == "--notional":
        assert "already amounts in currency" in text
    assert not home.exists()


def test_track_days_help_says_a_book_uses_equal_weights_unless_given() -> None:
    text = plain(runner.invoke(app, ["var", "--help"]).output)
    assert "A book (--book/--positions) uses equal weights unless this is given" in text
    assert "with a book 0" in text


def _day_first_csv(path: Path, start: str, days: int) -> Path:
    import numpy as np

    index = pd.bdate_range(start, periods=days)
    prices = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(0).standard_normal(days)))
    pd.DataFrame({"date": index.strftime("%d/%m/%Y"), "close": prices}).to_csv(path, index=False)
    return path


def test_a_day_first_file_reads_day_first_and_unsorted_is_plain_advice(tmp_path: Path) -> None:
    from swarmvar import data
    from swarmvar.errors import InvalidReturns

    path = _day_first_csv(tmp_path / "dmy.csv", "2013-01-16", 300)
    prices = pd.read_csv(path)["close"]
    dates = pd.bdate_range("2013-01-16", periods=300)
    assert data.read(path).index.equals(dates[1:])  # "01/02/2013" is 1 February, not 2 Jan
    result = runner.invoke(app, ["var", "--data", str(path), "--agents", "nig",
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    frame = pd.DataFrame({"date": dates.strftime("%d/%m/%Y"), "close": prices})
    frame.iloc[[3, 4]] = frame.iloc[[4, 3]].to_numpy()  # two rows swapped: plain advice
    frame.to_csv(tmp_path / "unsorted.csv", index=False)
    with pytest.raises(InvalidReturns, match="sort the series by date") as err:
        data.read(tmp_path / "unsorted.csv")
    assert "not increasing at line 6 (2013-01-22 then 2013-01-21" in str(err.value)


@settings(max_examples=25, deadline=None)
@given(start=st.dates(min_value=datetime.date(1990, 1, 1),
                      max_value=datetime.date(2030, 1, 1)),
       days=st.integers(40, 120))
def test_any_day_first_file_reads_as_its_business_days(tmp_path_factory: Any,
                                                       start: Any, days: int) -> None:
    from swarmvar import data

    path = _day_first_csv(tmp_path_factory.mktemp("d") / "dmy.csv", start.isoformat(), days)
    # 40+ business days always hold a day above 12, which settles the column day-first
    assert data.read(path).index.equals(pd.bdate_range(start, periods=days)[1:])


def test_run_closes_with_refusals_by_reason_and_a_readable_stop(tmp_path: Path) -> None:
    import json
    import logging

    from swarmvar import data

    day = data.load("sp500").index[149]

    def tick(k: int, value: object) -> str:
        return json.dumps({"portfolio": "sp500", "value": value,
                           "as_of": (day + pd.Timedelta(days=k)).isoformat()})

    lines = [tick(1, 0.01), tick(-3, 0.01), tick(-2, 0.01), tick(2, "NaN"), "garbage",
             tick(3, 0.002)]
    logger = logging.getLogger("swarmvar.swarm")
    level, filters = logger.level, list(logger.filters)
    logging.disable(logging.INFO)  # the summary comes from the run itself, not from its log
    try:
        result = runner.invoke(app, ["run", "--stdin", *RUN_FAST, "--home",
                                     str(tmp_path / "h")], input="\n".join(lines) + "\n")
    finally:
        logging.disable(logging.NOTSET)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 beats in" in out and "stopped: stdin ended; 4 ticks refused" in out, out
    assert "(beats)" not in out and "(source)" not in out
    assert "refused ticks, by reason (4 InvalidTick in all" in out
    assert "  2 × tick for 'sp500' dated" in out and "is before its last beat" in out
    assert "  1 × line 5:" in out and "  1 × the return of 'sp500'" in out
    assert logger.level == level and logger.filters == filters  # the logger as it was


def test_beats_counts_all_portfolios_and_a_rerun_runs_that_many_more(tmp_path: Path) -> None:
    import numpy as np

    from swarmvar import data

    sp = data.load("sp500").iloc[:200]
    frame = pd.DataFrame({"x": sp.to_numpy(),
                          "y": np.random.default_rng(0).normal(0, 0.01, 200)}, index=sp.index)
    frame.to_csv(tmp_path / "assets.csv", index_label="date")
    (tmp_path / "books.json").write_text(
        '{"a": {"weights": {"x": 1}}, "b": {"weights": {"y": 1}}, '
        '"c": {"weights": {"x": 0.5, "y": 0.5}}}')
    args = ["run", "--data", str(tmp_path / "assets.csv"), "--portfolios",
            str(tmp_path / "books.json"), "--beats", "4", *RUN_FAST, "--home",
            str(tmp_path / "h")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "6 beats in" in first.output and "stopped: --beats 4 reached" in first.output
    assert "the run ended with the tick that reached 4" in first.output
    assert "a at beat 2, b at beat 2, c at beat 2" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "a at beat 4, b at beat 4, c at beat 4" in again.output
    helped = plain(runner.invoke(app, ["run", "--help"]).output)
    assert "counted over all portfolios" in helped
    assert "A rerun on the same --home resumes where the ledger ends and runs N more" in helped


def test_a_canary_runs_levels_are_checked_before_the_home_is_opened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["variants", "canary", "run", "v1", "--alpha", "0.3",
                                 "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "--alpha: 0.3 is not a confidence level" in plain(result.output)
    assert not home.exists()


def test_run_reads_parquet_and_refuses_an_unreadable_file_as_a_usage_error(
        tmp_path: Path) -> None:
    from swarmvar import data

    garbage = tmp_path / "p.csv"
    garbage.write_bytes(b"\xff\xfed\x00a\x00t\x00e\x00\n\x001,2\n3\n")
    result = runner.invoke(app, ["run", "--data", str(garbage), *RUN_FAST, "--beats", "1",
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    text = plain(result.output)
    assert "p.csv" in text and "--data takes a table of returns" in text
    assert "this is a bug" not in result.output
    frame = data.load("sp500").iloc[:200].rename("r").rename_axis("date").reset_index()
    frame.to_parquet(tmp_path / "r.parquet")
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "r.parquet"), *RUN_FAST,
                                 "--beats", "3", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "r at beat 3" in result.output
