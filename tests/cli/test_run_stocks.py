"""`swarmvar run` as a risk team meets it: the bundled 20 stocks (`sp500-stocks`) stream as
`var --positions` reads them, `--last N` replays up to today without trimming a CSV, `-q`
is `--quiet`, and `--help` says the first `--window` rows are the start history."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import RUN_FAST, invoke  # noqa: E402

BOOKS = {"eq": {"weights": {"AAPL": 0.5, "BAC": 0.5}},
         "pos": {"positions": {"AAPL": 100_000, "CVX": -20_000}}}


def test_run_streams_the_bundled_stocks_up_to_their_last_day(tmp_path: Path) -> None:
    books = tmp_path / "books.json"
    books.write_text(json.dumps(BOOKS), encoding="utf-8")
    home = tmp_path / "home"
    code, text = invoke("run", "--data", "sp500-stocks", "--portfolios", str(books),
                        *[a for a in RUN_FAST if a != "--quiet"], "-q", "--last", "155",
                        "--home", str(home))
    assert code == 0, text
    # 155 rows: the first 150 start the swarm, the last 5 are beaten, for each portfolio
    assert "10 beats" in text and "eq at beat 5, pos at beat 5" in text, text
    assert "pos (positions, net value 80,000) as of 2022-12-28: VaR 0.99" in text, text


@pytest.mark.parametrize(("args", "words"), [
    (["--last", "150"], "--last: must be more than --window (150)"),
    (["--follow"], "sp500-stocks is a bundled data set, which does not"),
])
def test_last_and_follow_are_refused_before_the_home_opens(tmp_path: Path, args: list[str],
                                                           words: str) -> None:
    home = tmp_path / "home"
    code, text = invoke("run", "--data", "sp500-stocks", *RUN_FAST, *args, "--home", str(home))
    assert code == 2 and words in text, text
    assert not home.exists()


def test_a_name_that_is_no_data_set_lists_them_after_a_full_stop(tmp_path: Path) -> None:
    code, text = invoke("run", "--data", "zzzz", *RUN_FAST, "--home", str(tmp_path / "h"))
    assert code == 2, text
    assert "no bundled data set or file called 'zzzz'. Bundled: sp500, nasdaq, sp500-stocks" \
        in text, text


def test_a_one_series_command_says_where_the_stocks_go(tmp_path: Path) -> None:
    code, text = invoke("var", "--data", "sp500-stocks", "--home", str(tmp_path / "h"))
    assert code == 2, text
    assert "'sp500-stocks' is the bundled multi-asset data set" in text, text
    assert "--positions" in text, text


def test_help_says_the_window_is_the_start_history_and_q_is_quiet() -> None:
    code, text = invoke("run", "--help")
    assert code == 0, text
    for words in ("Its first --window rows are the start history",
                  "the replay beats from the row after them",
                  "-q, --quiet", "alerts, quarantines and the closing summary still print",
                  "--last"):
        assert words in text, words


def test_the_cli_names_every_bundled_stock_data_set() -> None:
    from swarmvar import books
    from swarmvar.cli._common import BUNDLED_STOCKS

    assert set(BUNDLED_STOCKS) == set(books.STOCK_DATASETS)


def test_a_rerun_with_last_on_grown_data_beats_only_the_new_rows(tmp_path: Path) -> None:
    from swarmvar.books import load_stocks

    rows = load_stocks()[["AAPL"]].iloc[:303]
    path, home = tmp_path / "aapl.csv", tmp_path / "home"
    rows.iloc[:300].to_csv(path, index_label="date")
    code, text = invoke("run", "--data", str(path), *RUN_FAST, "--last", "155",
                        "--home", str(home))
    assert code == 0 and "5 beats" in text and "AAPL at beat 5" in text, text
    rows.to_csv(path, index_label="date")  # three more days arrive
    code, text = invoke("run", "--data", str(path), *RUN_FAST, "--last", "155",
                        "--home", str(home))
    assert code == 0 and "3 beats" in text and "AAPL at beat 8" in text, text
