"""The lifecycle wired in: `var` and `backtest` run each agent's champion (or canary) and
feed performance records, so canary checks judge evidence."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.evolution import (
    VariantStatus,
    canary_bucket,
    new_variant,
    open_home,
    start_canary,
)
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.swarm.variants import Role, build_roster, choose_variants, has_registry

runner = CliRunner()
NIG = {NormalInverseGamma.name: NormalInverseGamma}


def _var(home: Path) -> dict[str, object]:
    res = runner.invoke(build_app(), ["var", "--data", "sp500", "--agents", "nig", "--last",
                                      "400", "--no-consensus", "--track-days", "0", "--json",
                                      "--home", str(home)])
    assert res.exit_code == 0, res.output
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def _champion(home: Path, forgetting: float) -> str:
    h = open_home(home)
    v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": forgetting}, NIG,
                                   now=time.time()))
    h.variants.promote(v, now=time.time())
    h.close()
    return v.id


def test_no_registry_means_defaults_and_nothing_created(tmp_path: Path) -> None:
    chosen = choose_variants(tmp_path / "h", ["nig", "bootstrap"], portfolio="p")
    assert [c.role for c in chosen.values()] == [Role.DEFAULT, Role.DEFAULT]
    assert build_roster(chosen) == ["NormalInverseGamma", "BayesianBootstrap"]
    assert not has_registry(tmp_path / "h") and not (tmp_path / "h").exists()


def test_var_uses_the_promoted_champion_and_records_evidence(tmp_path: Path) -> None:
    plain = _var(tmp_path / "a")
    vid = _champion(tmp_path / "b", 0.95)
    promoted = _var(tmp_path / "b")
    assert plain["forecasts"] != promoted["forecasts"]  # forgetting=0.95 changes the VaR
    h = open_home(tmp_path / "b")
    agent = build_roster(choose_variants(h, ["nig"], "S&P 500"))[0]
    assert not isinstance(agent, str) and agent.params()["forgetting"] == 0.95
    assert h.metrics.count(vid) == 1  # the run is evidence about the champion
    h.close()


def test_canary_gets_its_share_of_portfolios(tmp_path: Path) -> None:
    champion = _champion(tmp_path, 0.99)
    h = open_home(tmp_path)
    v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.9}, NIG,
                                   now=time.time()))
    canary = start_canary(h.variants, v, h.config.canary, time.time())
    portfolios = [f"book-{i}" for i in range(400)]
    picks = {p: choose_variants(h, ["nig"], p)["NormalInverseGamma"] for p in portfolios}
    h.close()
    on_canary = {p for p, c in picks.items() if c.role is Role.CANARY}
    assert on_canary == {p for p in portfolios if canary_bucket(canary.id, p) < 0.10}
    assert 20 <= len(on_canary) <= 60  # ~10 % of 400
    assert all(c.variant_id == champion for p, c in picks.items() if p not in on_canary)
    assert canary.status is VariantStatus.CANARY


def test_canary_check_sees_the_records_of_a_run(tmp_path: Path) -> None:
    h = open_home(tmp_path)
    v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.97}, NIG,
                                   now=time.time() - 10))
    canary = start_canary(h.variants, v, h.config.canary, time.time() - 10)
    h.close()
    portfolio = "S&P 500"
    assert canary_bucket(canary.id, portfolio) >= 0 and canary.canary is not None
    # a 100% share, so that this portfolio surely runs the canary
    h = open_home(tmp_path)
    from dataclasses import replace

    stored = h.variants.get(canary.id)
    assert stored.canary is not None
    h.variants.save(replace(stored, canary=replace(stored.canary, step=stored.canary.steps)))
    h.close()
    _var(tmp_path)
    res = runner.invoke(build_app(), ["variants", "canary", "check", canary.id,
                                      "--home", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "0 records" not in res.output
