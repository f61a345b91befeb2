"""A leveraged book whose start history holds a day its agents cannot take
(``_recovery.check_start_history``).

Its assets' returns pass the door (``|r| <= 1``), but with leverage the book's own log
return can go past it (a 65% one-day loss is -1.05): refused with ``InvalidBook``
naming the day, the loss and the agents' limit, never the percent hint meant for typed
returns; ``Swarm.check_start_history`` refuses it before any home is opened.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from swarmvar.errors import InvalidBook
from swarmvar.ledger import Ledger
from swarmvar.swarm import RoleConfig, Swarm

from .conftest import TINY, TINY_POLICY

WINDOW = 60
CRASH = 30  # the start history's row where x loses 52% (a log return of -0.73)
LEVERED = {"lev": {"positions": {"x": 100000, "y": -20000}}}


@pytest.fixture(scope="module")
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    days = pd.date_range("2020-01-01", periods=WINDOW + 4, freq="D")
    frame = pd.DataFrame({"x": rng.normal(0, 0.01, len(days)),
                          "y": rng.normal(0, 0.012, len(days))}, index=days)
    frame.iloc[CRASH, 0] = math.log(0.48)
    return frame


def _loss(frame: pd.DataFrame) -> float:
    """The book's one-day loss at the crash, as a fraction of its net value (80,000)."""
    x, y = frame.iloc[CRASH]
    return -(100000 * math.expm1(x) - 20000 * math.expm1(y)) / 80000


def test_a_levered_books_day_beyond_the_agents_is_refused_before_a_home(tmp_path, assets):
    loss = _loss(assets)
    assert math.log1p(-loss) < -1 < math.log(0.48)  # the book is beyond, its assets are not
    with pytest.raises(InvalidBook) as info:
        Swarm.check_start_history(LEVERED, assets.iloc[:WINDOW])
    message = str(info.value)
    assert f"its return on {assets.index[CRASH].date()}" in message
    assert f"a one-day loss of {loss:.1%} of its net value" in message
    assert "|r| <= 1" in message and "63.2%" in message and "gross exposure is 1.5" in message
    assert "percent" not in message and "divide" not in message
    assert list(tmp_path.iterdir()) == []  # nothing opened


def test_start_refuses_it_too_and_records_no_start(tmp_path, assets):
    home = tmp_path / "home"
    with pytest.raises(InvalidBook, match="cannot be fitted"), Swarm(
            LEVERED, home=home, agents=TINY, policy=TINY_POLICY, window=WINDOW, fsync=False,
            roles=RoleConfig.quiet()) as swarm:
        swarm.start(assets.iloc[:WINDOW])
    with Ledger.open(home) as ledger:
        assert [e.kind for e in ledger.entries()] == ["genesis"]  # no swarm-start entry


def test_the_same_day_in_a_book_within_the_limit_starts(tmp_path, assets):
    """Unlevered, the crash is a 52% loss of the book's value at most: it starts."""
    books = {"even": {"weights": {"x": 0.5, "y": 0.5}},
             "long": {"positions": {"x": 100000, "y": 20000}}}
    Swarm.check_start_history(books, assets.iloc[:WINDOW])
    with Swarm(books, home=tmp_path / "home", agents=TINY, policy=TINY_POLICY,
               window=WINDOW, fsync=False, roles=RoleConfig.quiet()) as swarm:
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq == {"even": 0, "long": 0}


def test_run_refuses_it_before_the_home_is_made(tmp_path, assets):
    import json

    from typer.testing import CliRunner

    from swarmvar.cli import app

    data = tmp_path / "assets.csv"
    assets.rename_axis("date").to_csv(data)
    book = tmp_path / "book.json"
    book.write_text(json.dumps(LEVERED), encoding="utf-8")
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["run", "--data", str(data), "--portfolios", str(book),
                                      "--agents", "nig,bootstrap,student-t", "--window",
                                      str(WINDOW), "--beats", "2", "--home", str(home)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "cannot be fitted" in said and "divide" not in said, said
    assert not home.exists()
