"""One rule for a new portfolio's history: the largest ``min_observations`` of its agents
and never fewer than 30 (the shortest fitting window), stated the same by the schema,
the route, the error and the docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmvar.models.registry import agent_class
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.desk_book import MIN_HISTORY, min_history

from .conftest import Keys, TestClient, history

ROOT = Path(__file__).resolve().parents[2]


def test_min_history_is_the_largest_min_observations() -> None:
    assert min_history(("NormalInverseGamma", "BayesianBootstrap")) == (
        agent_class("BayesianBootstrap").min_observations, "BayesianBootstrap")
    # an agent needing fewer than 30 is held to the floor every portfolio has
    assert agent_class("NormalInverseGamma").min_observations < MIN_HISTORY == 30
    assert min_history(("nig",)) == (30, "every portfolio")


@pytest.mark.parametrize("agents", [("NormalInverseGamma", "BayesianBootstrap"),
                                    ("NormalInverseGamma", "GarchEVT")])
def test_the_schema_states_the_configured_swarms_number(tmp_path: Path,
                                                        agents: tuple[str, ...]) -> None:
    app = create_app(ServiceConfig(home=tmp_path, agents=agents))
    schema = app.openapi()
    field = schema["components"]["schemas"]["PortfolioIn"]["properties"]["history"]
    need, needer = min_history(agents)
    assert field["minItems"] == MIN_HISTORY  # the floor of every request
    assert f"needs {need} ({needer})" in field["description"]
    route = schema["paths"]["/v1/portfolios"]["post"]["description"]
    assert "min_observations" in route and not re.search(r"at least \d", route)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory,
        session_keys: tuple[Path, Keys]) -> Iterator[tuple[TestClient, Keys]]:
    path, keys = session_keys
    with TestClient(create_app(ServiceConfig(home=tmp_path_factory.mktemp("rule"),
                                             keys=path))) as c:
        yield c, keys


def test_one_return_short_is_refused_naming_the_agent(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    need, needer = min_history(ServiceConfig().agents)
    h = {"X-API-Key": k.writer}
    size = c.get("/v1/ledger/head", headers=h).json()["size"]
    r = c.post("/v1/portfolios", json={"name": "short", "history": history(need - 1)},
               headers=h)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert f"send {need} to" in message and f"{needer} needs {need}" in message
    assert c.get("/v1/ledger/head", headers=h).json()["size"] == size  # nothing stored
    r = c.post("/v1/portfolios", json={"name": "enough", "history": history(need)}, headers=h)
    assert r.status_code == 201, r.text


def test_a_request_naming_agents_needs_theirs(api: tuple[TestClient, Keys]) -> None:
    c, k = api
    need, _ = min_history(("NormalInverseGamma",))
    r = c.post("/v1/portfolios", json={"name": "nig-short", "history": history(29),
                                       "agents": ["nig"]}, headers={"X-API-Key": k.writer})
    assert r.status_code == 422 and "every portfolio needs 30" in r.json()["error"]["message"]
    r = c.post("/v1/portfolios", json={"name": "nig-only", "history": history(need),
                                       "agents": ["nig"]}, headers={"X-API-Key": k.writer})
    assert r.status_code == 201, r.text
    r = c.post("/v1/portfolios", json={"name": "evt", "history": history(60),
                                       "agents": ["NormalInverseGamma", "GarchEVT"]},
               headers={"X-API-Key": k.writer})
    assert r.status_code == 422 and "GarchEVT needs" in r.json()["error"]["message"]


def test_the_docs_state_the_default_swarms_number() -> None:
    need, needer = min_history(ServiceConfig().agents)
    ops = " ".join((ROOT / "docs" / "operations.md").read_text().split())
    assert f"{need} for the default swarm (`{needer}`)" in ops
    assert f"minItems {MIN_HISTORY}, maxItems" in (ROOT / "docs" / "api.md").read_text()
