"""What a new user reads when something is wrong: the cause and one fix, as the CLI prints it
(prices read as returns, a resume under other settings, a zero-sum book, a bad JSON line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from swarmvar import data
from swarmvar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import RUN_FAST, plain  # noqa: E402

runner = CliRunner()


def _prices(path: Path, n: int = 200) -> Path:
    days = pd.bdate_range("2016-08-12", periods=n)
    close = 2184.05 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": close}).to_csv(path, index=False)
    return path


def test_var_on_prices_read_as_returns_says_kind_price(tmp_path: Path) -> None:
    path = _prices(tmp_path / "my_prices.csv")
    result = runner.invoke(app, ["var", "--data", str(path), "--column", "close", "--kind",
                                 "return", "--home", str(tmp_path / "h")])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "my_prices.csv: return at 2016-08-12 is 2" in text, text
    assert "looks like a price" in text and "(--kind price)" in text, text
    assert "percent" not in text and "00:00:00" not in text and "row 0" not in text, text


def test_run_on_prices_gives_one_hint_that_agrees_with_itself(tmp_path: Path) -> None:
    path = _prices(tmp_path / "prices.csv")
    result = runner.invoke(app, ["run", "--data", str(path), *RUN_FAST, "--beats", "2",
                                 "--home", str(tmp_path / "h")])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "return at 2016-08-12 is" in text and "looks like a price" in text, text
    assert "percent" not in text and "--kind" not in text, text  # run has no --kind


def test_a_resume_under_other_settings_names_what_differs(tmp_path: Path) -> None:
    home = str(tmp_path / "h3")
    first = runner.invoke(app, ["run", "--data", "sp500", *RUN_FAST, "--beats", "2",
                                "--home", home])
    assert first.exit_code == 0, first.output
    again = [a if a != "nig,bootstrap,student-t" else "nig,bootstrap" for a in RUN_FAST]
    result = runner.invoke(app, ["run", "--data", "sp500", *again, "--beats", "2",
                                 "--home", home])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert ("agents: saved [NormalInverseGamma, BayesianBootstrap, StudentT], now "
            "[NormalInverseGamma, BayesianBootstrap]") in text, text
    assert "{" not in text and "'window'" not in text and "window:" not in text, text
    assert "resume with the saved settings, or start afresh in another home (--home)" in text


def test_a_zero_sum_book_in_run_says_why_and_what_to_run(tmp_path: Path) -> None:
    book = tmp_path / "pf.json"
    book.write_text(json.dumps({"book": {"positions": {"AAPL": 500000, "MSFT": -500000}}}))
    result = runner.invoke(app, ["run", "--data", "sp500", "--portfolios", str(book),
                                 *RUN_FAST, "--beats", "1", "--home", str(tmp_path / "h")])
    text = plain(result.output)
    assert result.exit_code == 2, result.output
    assert "sum to zero" in text and "fraction of the net value" in text, text
    assert "swarmvar var --data ASSET_RETURNS.csv --kind return --positions" in text, text
    assert not (tmp_path / "h").exists()


def test_a_bad_stdin_line_is_quoted_and_shown_the_shape_of_a_line(tmp_path: Path) -> None:
    day = data.load("sp500").index[149]
    good = json.dumps({"portfolio": "sp500", "as_of": (day + pd.Timedelta(days=1)).isoformat(),
                       "value": 0.001})
    result = runner.invoke(app, ["run", "--stdin", *RUN_FAST, "--home", str(tmp_path / "h")],
                           input=f"{good}\n\nclose,2184.05\n")
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "line 3: 'close,2184.05' is not JSON (Expecting value at character 1)" in text, text
    assert 'each line must be one JSON object with "portfolio", "as_of"' in text, text
    assert '"value": -0.0042}' in text and "line 1 column 1" not in text, text
