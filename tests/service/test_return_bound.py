"""A return the agents would refuse (|r| > 1: percent, not a fraction) is refused at the door.

The service holds every return to the data layer's rule (what the agents apply): a 422
naming the row, its date, the value and the percent hint, nothing stored, the portfolio
still forecasting. A ledger written before that check (one holding such a return) still
replays: the VaR answer then says why there is no consensus (each agent's own refusal,
since which beat) and the agents forecast again once a refit no longer sees the return.
A new portfolio whose agents cannot be fitted is refused with each agent's own reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.data import MAX_ABS_RETURN
from swarmvar.errors import InvalidReturns
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service import desk as desk_module
from swarmvar.service.desk_book import DatedReturn

from .conftest import Keys, TestClient, app_with_book, day, history


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory,
        session_keys: tuple[Path, Keys]) -> Iterator[tuple[TestClient, Keys]]:
    path, keys = session_keys
    with app_with_book(tmp_path_factory.mktemp("bound"), path, keys.writer) as c:
        yield c, keys


def _size(c: TestClient, k: Keys) -> int:
    return int(c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).json()["size"])


def _forecasts(c: TestClient, k: Keys, name: str = "book") -> dict[str, Any]:
    var = c.get(f"/v1/portfolios/{name}/var", headers={"X-API-Key": k.reader}).json()
    assert [level["alpha"] for level in var["levels"]] == [0.99, 0.975], var
    assert var["detail"] == "", var
    return dict(var)


def _hinted(message: str) -> bool:
    """The data layer's hint: percent (divide by 100), or a price (|r| >= 100)."""
    return "if these are percent, divide them by 100" in message or "price" in message


# values around the bound: just beyond it (the next float), percent-looking, far out
beyond = st.one_of(
    st.sampled_from([math.nextafter(MAX_ABS_RETURN, 2.0), -math.nextafter(MAX_ABS_RETURN, 2.0),
                     1.5, -1.5, 2.0, 12.5, -99.0, 1e300]),
    st.floats(min_value=MAX_ABS_RETURN, max_value=1e6, exclude_min=True),
    st.floats(min_value=-1e6, max_value=-MAX_ABS_RETURN, exclude_max=True))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=beyond, at=st.integers(0, 2), batch=st.booleans())
def test_a_return_beyond_the_bound_is_refused_and_stores_nothing(
        api: tuple[TestClient, Keys], value: float, at: int, batch: bool) -> None:
    c, k = api
    before, last = _size(c, k), _forecasts(c, k)["seq"]
    start = 1000 + last * 3  # later than anything recorded
    items = [{"date": day(start + i), "return": value if i == at else 0.001 * i}
             for i in range(3)]
    body: dict[str, Any] = {"returns": items} if batch else items[at]
    r = c.post("/v1/portfolios/book/returns", json=body, headers={"X-API-Key": k.writer})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    row = at if batch else 0
    assert f"returns[{row}] ({items[at]['date']}) is {value!r}" in message, message
    assert _hinted(message) and f"|r| <= {MAX_ABS_RETURN:g}" in message, message
    assert _size(c, k) == before  # nothing stored
    assert _forecasts(c, k)["seq"] == last  # and the portfolio forecasts as before


def test_the_bound_itself_is_accepted_and_the_portfolio_forecasts_after(
        api: tuple[TestClient, Keys]) -> None:
    c, k = api
    last = _forecasts(c, k)["seq"]
    items = [{"date": day(20_000 + last + i), "return": v}
             for i, v in enumerate((MAX_ABS_RETURN, -MAX_ABS_RETURN, 0.01))]
    r = c.post("/v1/portfolios/book/returns", json={"returns": items},
               headers={"X-API-Key": k.writer})
    assert r.status_code == 201, r.text
    after = _forecasts(c, k)
    assert after["seq"] == last + 3 and not after["rejected"], after


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=beyond, at=st.integers(0, 59))
def test_a_history_with_such_a_return_is_refused_naming_its_row(
        api: tuple[TestClient, Keys], value: float, at: int) -> None:
    c, k = api
    before = _size(c, k)
    rows = history(60, seed=at)
    rows[at]["return"] = value
    r = c.post("/v1/portfolios", json={"name": "fresh", "history": rows},
               headers={"X-API-Key": k.writer})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert f"history[{at}] ({rows[at]['date']}) is {value!r}" in message, message
    assert _hinted(message) and "longer history" not in message, message
    assert _size(c, k) == before
    assert c.get("/v1/portfolios/fresh", headers={"X-API-Key": k.reader}).status_code == 404


def test_the_schema_states_the_bound(api: tuple[TestClient, Keys]) -> None:
    c, _ = api
    field = c.get("/openapi.json").json()["components"]["schemas"]["ReturnIn"]["properties"][
        "return"]
    assert field["minimum"] == -MAX_ABS_RETURN and field["maximum"] == MAX_ABS_RETURN, field
    assert "percent" in field["description"], field


def _unchecked(items: Sequence[DatedReturn], what: str) -> None:
    """The check as it was (ae82d2e): only |r| > 10 refused - to write a ledger like it."""
    if any(abs(it.value) > 10.0 for it in items):
        raise InvalidReturns(f"{what}: beyond 10")


def test_a_ledger_holding_such_a_return_says_why_and_recovers(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger written by the older service holds a return of 1.5: a restart replays it;
    the VaR answer names each agent's refusal instead of a bare "no forecast", and once
    the agents' refit window (60 returns here) no longer holds it, they forecast again."""
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    with TestClient(create_app(ServiceConfig(home=tmp_path, keys=path))) as c:
        assert c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                      headers=w).status_code == 201
        with monkeypatch.context() as m:
            m.setattr(desk_module, "check_returns", _unchecked)
            r = c.post("/v1/portfolios/book/returns", json={"date": day(1), "return": 1.5},
                       headers=w)
            assert r.status_code == 201, r.text
    with TestClient(create_app(ServiceConfig(home=tmp_path, keys=path))) as c:  # restart
        var = c.get("/v1/portfolios/book/var", headers=w).json()
        assert var["seq"] == 1 and var["levels"] == [], var
        assert "no consensus at beat 1" in var["detail"], var
        for agent in ("NormalInverseGamma", "BayesianBootstrap"):
            why = var["rejected"][agent]
            assert "since beat 1 (2024-01-02)" in why and "1.5" in why, why
            assert _hinted(why) and "every 20 beats" in why, why
        # the reason stays while they stay silent (later beats alone would say "no forecast")
        more = [{"date": day(2 + i), "return": 0.01 * ((-1) ** i) * (1 + i % 3)}
                for i in range(30)]
        assert c.post("/v1/portfolios/book/returns", json={"returns": more},
                      headers=w).status_code == 201
        var = c.get("/v1/portfolios/book/var", headers=w).json()
        assert var["levels"] == [] and "since beat 1" in var["rejected"]["BayesianBootstrap"]
        # beat 80 refits on returns 21..80 (the window of 60): 1.5 has left it
        more = [{"date": day(32 + i), "return": 0.01 * ((-1) ** i) * (1 + i % 4)}
                for i in range(50)]
        assert c.post("/v1/portfolios/book/returns", json={"returns": more},
                      headers=w).status_code == 201
        _forecasts(c, k)


def test_a_portfolio_whose_agents_cannot_be_fitted_says_why(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the door's check (the older one here), each agent's own fit error is the
    answer, not a guess at "a longer history"; nothing is stored."""
    path, k = session_keys
    w = {"X-API-Key": k.writer}
    rows = history(300)
    rows[100]["return"] = 1.5
    monkeypatch.setattr(desk_module, "check_returns", _unchecked)
    with TestClient(create_app(ServiceConfig(home=tmp_path, keys=path))) as c:
        before = _size(c, k)
        r = c.post("/v1/portfolios", json={"name": "book", "history": rows}, headers=w)
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "longer history" not in message, message
        for agent in ("NormalInverseGamma", "BayesianBootstrap"):
            assert f"{agent}: " in message, message
        assert message.count("beyond |r| <= 1") == 2 and "nothing was stored" in message
        assert _size(c, k) == before


def test_metrics_carry_no_created_series(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    c.post("/v1/portfolios/book/returns", json={"date": day(40_000), "return": 0.002},
           headers={"X-API-Key": k.writer})
    text = c.get("/metrics").text
    assert "swarmvar_beats_total{" in text and "swarmvar_http_requests_total{" in text
    assert "swarmvar_beat_duration_seconds_bucket{" in text
    assert [line for line in text.splitlines() if "_created" in line] == []
