"""``swarmvar serve``'s options reach the desk; what the service has no such thing as
(``spread``: its desk runs each portfolio whole in its process) is refused clearly
wherever a user could pass it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.config import CONFIG_ENV
from swarmvar.service.desk import Desk

from .conftest import Keys, TestClient, history


def test_the_service_refuses_a_spread(tmp_path: Path, session_keys: tuple[Path, Keys],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line (a usage error naming ``swarmvar run --spread``, before the home
    is written), the workers' configuration, the API's portfolio body and the desk."""
    for value in ("2", "1", "x"):
        res = CliRunner().invoke(build_app(), ["serve", "--home", str(tmp_path / "s"),
                                               "--spread", value])
        assert res.exit_code == 2, res.output
        assert "--spread" in res.output and "swarmvar run --spread K" in " ".join(
            res.output.split())
    assert not (tmp_path / "s").exists()
    monkeypatch.setenv(CONFIG_ENV, json.dumps({**json.loads(ServiceConfig().to_env()),
                                               "spread": 2}))
    with pytest.raises(InvalidParameter, match=r"unknown settings spread"):
        ServiceConfig.from_env()
    monkeypatch.delenv(CONFIG_ENV)
    path, k = session_keys
    with TestClient(create_app(ServiceConfig(home=tmp_path / "h", keys=path))) as c:
        r = c.post("/v1/portfolios", json={"name": "b", "history": history(60), "spread": 2},
                   headers={"X-API-Key": k.writer})
        assert r.status_code == 422 and "spread" in r.text
        assert c.get("/v1/portfolios", headers={"X-API-Key": k.reader}).json() == []
    with Ledger.in_memory() as ledger, pytest.raises(TypeError, match="spread"):
        Desk(ledger, tmp_path, spread=2)  # type: ignore[call-arg]
