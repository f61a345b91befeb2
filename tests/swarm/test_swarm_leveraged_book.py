"""A leveraged book whose start history holds its crash day: it starts and beats
(``_recovery.check_start_history`` refuses only what a book's agents cannot take).

Its assets' returns pass the door (``|r| <= 1``), but with leverage the book's own log
return can go past it (a 65% one-day loss is -1.05). The runtime widens a book's agents
(``Agent.take_book_returns``: ``|r| <= MAX_BOOK_RETURN``), so they are fitted on it; a
book that would be wiped out, or move beyond that bound, is refused with ``InvalidBook``
naming the day, the move and the bound, never the percent hint meant for typed returns,
and ``Swarm.check_start_history`` refuses it before any home is opened.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from swarmvar.data._returns import MAX_BOOK_RETURN
from swarmvar.errors import InvalidBook
from swarmvar.ledger import Ledger
from swarmvar.swarm import RoleConfig, Swarm
from swarmvar.types import Tick

from .conftest import CHEAP

WINDOW = 60
CRASH = 30  # the start history's row where x loses 52% (a log return of -0.73)
LEVERED = {"lev": {"positions": {"x": 100000, "y": -20000}}}
#: 100 net on 100k gross: x's +20% day is a gain of 200 times its value (beyond 5)
TOO_LEVERED = {"lev": {"positions": {"x": 100000, "y": -99900}}}


@pytest.fixture(scope="module")
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    days = pd.date_range("2020-01-01", periods=WINDOW + 4, freq="D")
    frame = pd.DataFrame({"x": rng.normal(0, 0.01, len(days)),
                          "y": rng.normal(0, 0.012, len(days))}, index=days)
    frame.iloc[CRASH, 0] = math.log(0.48)
    return frame


@pytest.fixture(scope="module")
def boom(assets: pd.DataFrame) -> pd.DataFrame:
    """y moving with x (so TOO_LEVERED moves as x on calm days), but flat on the crash's
    row, where x gains 20% (within |r| <= 1): the book's gain is 200 times its value."""
    frame = assets.copy()
    frame["y"] = frame["x"]
    frame.iloc[CRASH] = [math.log(1.2), 0.0]
    return frame


def _loss(frame: pd.DataFrame) -> float:
    """The book's one-day loss at the crash, as a fraction of its net value (80,000)."""
    x, y = frame.iloc[CRASH]
    return -(100000 * math.expm1(x) - 20000 * math.expm1(y)) / 80000


def _tick(frame: pd.DataFrame, i: int) -> Tick:
    row = frame.iloc[i]
    return Tick("lev", frame.index[i].to_pydatetime(), assets={"x": float(row["x"]),
                                                               "y": float(row["y"])})


def test_a_levered_book_starts_on_its_crash_day_and_beats(tmp_path, assets):
    loss = _loss(assets)
    assert math.log1p(-loss) < -1 < math.log(0.48)  # the book is beyond 1, its assets not
    Swarm.check_start_history(LEVERED, assets.iloc[:WINDOW])  # no refusal now
    with Swarm(LEVERED, home=tmp_path / "home", agents=CHEAP, window=WINDOW, fsync=False,
               roles=RoleConfig.quiet()) as swarm:
        swarm.start(assets.iloc[:WINDOW])
        assert swarm.seq == {"lev": 0}
        reports = [swarm.step(_tick(assets, i)) for i in range(WINDOW, len(assets))]
    for r in reports:
        assert not r.rejected, (r.seq, r.rejected)
        assert set(r.forecasts) == set(CHEAP), (r.seq, sorted(r.forecasts))
        assert r.consensus and all(math.isfinite(c.var) for c in r.consensus)
    # the crash in the window: the book's VaR is above anything its assets' calm days give
    assert all(r.consensus[0].var > 0.05 for r in reports)


def test_a_book_beyond_its_agents_bound_is_refused_before_a_home(tmp_path, boom):
    with pytest.raises(InvalidBook) as info:
        Swarm.check_start_history(TOO_LEVERED, boom.iloc[:WINDOW])
    message = " ".join(str(info.value).split())
    assert f"its return on {boom.index[CRASH].date()}" in message
    assert "a one-day gain of 200 times its net value" in message, message
    assert "gross exposure is 2e+03 times its net value" in message, message
    assert f"|r| <= {MAX_BOOK_RETURN:g}" in message and "99.3%" in message
    assert "percent" not in message and "divide" not in message
    assert list(tmp_path.iterdir()) == []  # nothing opened


def test_a_wiped_out_book_is_refused_in_its_words(tmp_path, assets):
    # 1,000 net on 199,000 gross: its first calm day loses more than all its value
    wiped = {"lev": {"positions": {"x": 100000, "y": -99000}}}
    x, y = assets.iloc[0]
    loss = -(100000 * math.expm1(x) - 99000 * math.expm1(y)) / 1000
    assert loss > 1
    with pytest.raises(InvalidBook, match=rf"on {assets.index[0].date()}, .* would be a one-day "
                                          rf"loss of {loss:.1%} of its net value, a book wiped "
                                          "out"):
        Swarm.check_start_history(wiped, assets.iloc[:WINDOW])


def test_start_refuses_it_too_and_records_no_start(tmp_path, boom):
    home = tmp_path / "home"
    with pytest.raises(InvalidBook, match="cannot be fitted"), Swarm(
            TOO_LEVERED, home=home, agents=CHEAP, window=WINDOW, fsync=False,
            roles=RoleConfig.quiet()) as swarm:
        swarm.start(boom.iloc[:WINDOW])
    with Ledger.open(home) as ledger:
        assert [e.kind for e in ledger.entries()] == ["genesis"]  # no swarm-start entry


def _run(tmp_path, frame: pd.DataFrame, book: dict[str, object]):
    import json

    from typer.testing import CliRunner

    from swarmvar.cli import app

    data = tmp_path / "assets.csv"
    frame.rename_axis("date").to_csv(data)
    path = tmp_path / "book.json"
    path.write_text(json.dumps(book), encoding="utf-8")
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["run", "--data", str(data), "--portfolios", str(path),
                                      "--agents", "nig,bootstrap,student-t", "--window",
                                      str(WINDOW), "--beats", "2", "--home", str(home)])
    return result, " ".join(result.output.split()), home


def test_run_starts_the_levered_book(tmp_path, assets):
    result, said, home = _run(tmp_path, assets, LEVERED)
    assert result.exit_code == 0, said
    assert home.exists() and "cannot be fitted" not in said


def test_run_refuses_a_book_beyond_the_bound_before_the_home_is_made(tmp_path, boom):
    result, said, home = _run(tmp_path, boom, TOO_LEVERED)
    assert result.exit_code == 2, said
    assert "cannot be fitted" in said and "divide" not in said, said
    assert not home.exists()
