"""``swarmvar serve``'s options reach the desk; what the service has no such thing as
(``spread``: its desk runs each portfolio whole in its process) is refused clearly
on the command line and in the workers' configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter
from swarmvar.service import ServiceConfig, create_app
from swarmvar.service.config import CONFIG_ENV

from .conftest import Keys, TestClient, free_port, history


def test_the_service_refuses_a_spread(tmp_path: Path, session_keys: tuple[Path, Keys],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line (a usage error naming ``swarmvar run --spread``, before the home
    is written) and the workers' configuration."""
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


@pytest.mark.parametrize(("value", "words"), [("0.99,0.99", "more than once"),
                                              ("0.4", "strictly between 0.5 and 1"),
                                              ("0.99,x", "not a number")])
def test_serve_reads_alpha_like_every_command(tmp_path: Path, value: str, words: str) -> None:
    """``--alpha`` goes through the commands' one parser: a repeated level too is a usage
    error, before the home is written."""
    res = CliRunner().invoke(build_app(), ["serve", "--home", str(tmp_path / "s"),
                                           "--alpha", value])
    assert res.exit_code == 2 and words in " ".join(res.output.split()), res.output
    assert not (tmp_path / "s").exists()


def test_checkpoint_every_reaches_the_desk(tmp_path: Path, session_keys: tuple[Path, Keys],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --checkpoint-every N`` is checked (a whole number >= 1, else a usage error
    before anything is written) and carried to the workers' desk, which checkpoints the
    arbiter every N beats (where a restart resumes it)."""
    import uvicorn

    from swarmvar.evolution import Database, StateStore
    from swarmvar.service.desk import OBSERVER_PREFIX, CheckpointMark

    for bad in ("0", "-3", "1.5", "x", ""):
        res = CliRunner().invoke(build_app(), ["serve", "--home", str(tmp_path / "bad"),
                                               "--checkpoint-every", bad])
        assert res.exit_code == 2 and "--checkpoint-every" in res.output, (bad, res.output)
    assert not (tmp_path / "bad").exists()
    ran: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: ran.append(kw))
    monkeypatch.setenv(CONFIG_ENV, "")  # restored after the test (serve sets it)
    path, k = session_keys
    home = tmp_path / "home"
    res = CliRunner().invoke(build_app(), ["serve", "--home", str(home), "--keys", str(path),
                                           "--checkpoint-every", "4",
                                           "--port", str(free_port())])  # bound, let go
    assert res.exit_code == 0, res.output
    assert len(ran) == 1 and ran[0]["factory"] is True
    cfg = ServiceConfig.from_env()  # what each worker's app_from_env reads
    assert cfg.checkpoint_every == 4 and cfg.home == home
    with TestClient(create_app(cfg)) as c:
        assert c.app.state.desk.checkpoint_every == 4  # type: ignore[attr-defined]
        h = {"X-API-Key": k.writer}
        assert c.post("/v1/portfolios", json={"name": "b", "history": history(60)},
                      headers=h).status_code == 201
        r = c.post("/v1/portfolios/b/returns", headers=h, json={"returns": [
            {"date": f"2024-01-{i + 1:02d}", "return": 0.001 * i} for i in range(9)]})
        assert r.status_code == 201, r.text
    db = Database(home)
    try:
        store = StateStore(db)
        key = f"{OBSERVER_PREFIX}arbiter:b"
        marks = [CheckpointMark.split(store.get(key, v.version)) for v in store.versions(key)]
    finally:
        db.close()
    assert sorted(m[0].seq for m in marks if m is not None) == [4, 8]


def test_every_serve_option_and_the_checkpoints_are_documented() -> None:
    """docs/operations.md lists each visible ``swarmvar serve`` option and says where the
    desk's checkpoints are, their rhythm and what a restart replays."""
    import typer.main

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "operations.md").read_text()
    group: Any = typer.main.get_command(build_app())
    serve = group.get_command(group.make_context("swarmvar", ["serve", "--help"],
                                                 resilient_parsing=True), "serve")
    options = [o for p in serve.params if p.param_type_name == "option" and not p.hidden
               for o in p.opts if o.startswith("--") and o != "--help"]
    assert "--checkpoint-every" in options
    assert [o for o in options if f"`{o}" not in page] == []
    section = page.split("## Checkpoints of the arbiter", 1)[1].split("\n## ", 1)[0]
    for needle in ("--checkpoint-every", "250", "<home>/states/", "evolution.sqlite",
                   "desk-observer:arbiter:<portfolio>", "replays every beat"):
        assert needle in section, needle
