"""Mends from a tenth review: ``var`` refuses a file where the agents' keys go before the
fit (as ``run`` and ``serve`` do), ``backtest --json``'s ``consensus_rule`` is the rule
alone (as ``var --json``'s, the weights in ``consensus_weights``), and ``run`` reads a home
with a lifecycle database but no ``states`` folder without making one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app

runner = CliRunner()


@pytest.mark.parametrize("blocker", ["keys", "keys/agents"])
def test_var_refuses_a_file_where_the_keys_go_before_the_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocker: str) -> None:
    """Was: a raw NotADirectoryError from ``agent_keys`` after the fit."""
    import swarmvar.cli.var as var_mod

    home = tmp_path / "risk"
    (home / blocker).parent.mkdir(parents=True, exist_ok=True)
    (home / blocker).write_text("not a folder\n", encoding="utf-8")
    toml = tmp_path / "swarmvar.toml"
    toml.write_text(f'home = "{home}"\n', encoding="utf-8")

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was loaded: the refusal came after the work began")

    monkeypatch.setattr(var_mod, "load_series", no_fit)
    result = runner.invoke(app, ["var", "--agents", "nig,bootstrap,student-t", "--last",
                                 "300"], env={"SWARMVAR_CONFIG": str(toml)})
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert f'{toml}: home = "{home}": {home / blocker} is a file where swarmvar keeps a ' \
           "folder" in said, said
    assert "--home" not in said and "Traceback" not in said, said
    assert (home / blocker).read_text(encoding="utf-8") == "not a folder\n"


def test_backtest_json_says_the_rule_alone_and_the_weights_apart(tmp_path: Path) -> None:
    from swarmvar.cli._common import swarm_policy

    result = runner.invoke(app, [
        "backtest", "--agents", "nig,bootstrap,student-t", "--last", "10", "--window", "250",
        "--refit-every", "30", "--no-baseline", "--no-record", "--workers", "1", "--json",
        "--home", str(tmp_path / "h")], env={"SWARMVAR_CONFIG": ""})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rule = swarm_policy(None)
    assert doc["consensus_rule"] == rule.describe(3, weights=False), doc["consensus_rule"]
    assert "weights" not in doc["consensus_rule"], doc["consensus_rule"]
    assert doc["consensus_weights"] == rule.weights_words(), doc["consensus_weights"]
    assert "weights" in doc["consensus_weights"]
    # the text output still says both, once
    assert f"{doc['consensus_rule']}; {doc['consensus_weights']}" == rule.describe(3)


def test_backtest_json_without_a_consensus_has_neither_key(tmp_path: Path) -> None:
    result = runner.invoke(app, [
        "backtest", "--agents", "nig,bootstrap", "--last", "30", "--window", "250",
        "--refit-every", "30", "--no-baseline", "--no-record", "--workers", "1", "--json",
        "--no-consensus", "--home", str(tmp_path / "h")], env={"SWARMVAR_CONFIG": ""})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["consensus_rule"] is None and doc["consensus_weights"] is None


def test_a_home_whose_checkpoint_packs_are_gone_is_refused_before_the_run(
        tmp_path: Path) -> None:
    """A database that lists the run's checkpoint while its ``states`` folder is gone is a
    usage error when read (it is not a fresh start: the arbiter and checkpoint_every
    checks need it before the executor opens); a fresh home still reads as none."""
    import shutil

    import typer

    from swarmvar.cli.run import _home_run
    from swarmvar.evolution import Database, StateStore
    from swarmvar.swarm._records import RUN_KEY

    home = tmp_path / "h"
    home.mkdir()
    Database(home).close()
    before = sorted(p.name for p in home.iterdir())
    assert _home_run(home) == (None, False)  # a database, no checkpoint: a fresh start
    assert sorted(p.name for p in home.iterdir()) == before  # nothing made in the home
    assert not (home / "states").exists()
    db = Database(home)
    try:
        StateStore(db).put(RUN_KEY, b'{"marks": {}}', now=0.0)
    finally:
        db.close()
    assert _home_run(home)[0] == {"marks": {}}
    shutil.rmtree(home / "states")
    with pytest.raises(typer.Exit):
        _home_run(home)
    assert not (home / "states").exists()
