"""The ``swarmvar variants`` command group, through typer's CliRunner on a real home."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from swarmvar.cli.variants import app
from swarmvar.evolution import MetricRecord, VariantStatus, open_home, record_check
from swarmvar.ledger import EntryKind, Ledger

runner = CliRunner()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def run(home: Path, *args: str, code: int = 0) -> str:
    res = runner.invoke(app, [*args, "--home", str(home)])
    assert res.exit_code == code, (res.output, res.stderr)
    return res.output + (res.stderr if code else "")


def create(home: Path, forgetting: str = "0.95") -> str:
    out = run(home, "create", "nig", "--set", f"forgetting={forgetting}",
              "--description", "shorter memory", "--require", "numpy=1.26")
    m = UUID.search(out)
    assert m and "NormalInverseGamma(forgetting=0.95)" in out.replace(forgetting, "0.95")
    return m.group(0)


def test_create_list_promote_and_roll_back(tmp_path: Path) -> None:
    first = create(tmp_path, "0.99")
    second = create(tmp_path)
    out = run(tmp_path, "list", "--status", "draft")
    assert first in out and second in out and "shorter memory" in out
    refused = run(tmp_path, "promote", first, code=2)
    assert "refused" in refused and "canary" in refused and "--force" in refused
    assert "promoted" in run(tmp_path, "promote", first, "--force")
    run(tmp_path, "promote", second, "--force")
    with Ledger(tmp_path, create=False) as ledger:  # both forced promotions are on record
        events = [e.data for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]
    assert [(e["variant_id"], e["forced"]) for e in events] == [(first, True), (second, True)]
    assert events[0]["parameters"] == {"forgetting": 0.99} and events[0]["skipped_checks"]
    home = open_home(tmp_path)
    assert home.variants.get(first).status is VariantStatus.RETIRED
    home.close()
    out = run(tmp_path, "rollback", "variant", second)
    assert f"re-instated {first}" in out
    assert "no variants" in run(tmp_path, "list", "--status", "canary")


def test_canary_flow_with_metrics(tmp_path: Path) -> None:
    vid = create(tmp_path)
    assert "canary 10%" in run(tmp_path, "canary", "start", vid)
    assert "held" in run(tmp_path, "canary", "check", vid, "--result", "pass")
    out = run(tmp_path, "canary", "check", vid)  # auto, but no metrics yet
    assert "0 records" in out and out.splitlines()[-1].startswith("failed")
    home = open_home(tmp_path)
    v = home.variants.get(vid)
    home.metrics.record([MetricRecord(vid, v.canary.last_check_at + 0.001, 0.5, 0.1)])
    home.close()
    out = run(tmp_path, "canary", "check", vid)
    assert "success rate 0.500 < 0.95" in out
    out = run(tmp_path, "canary", "check", vid, "--result", "fail")
    assert out.startswith("rolled_back")
    assert "rolled_back" in run(tmp_path, "canary", "status", vid)


def test_breaker_and_rollback_points(tmp_path: Path) -> None:
    vid = create(tmp_path)
    home = open_home(tmp_path)
    b = home.breaker(vid, clock=lambda: 0.0)
    for _ in range(5):
        b.record_failure()
    home.assignments.assign("agent-1", vid)
    home.close()
    assert "open  failures=5" in run(tmp_path, "breaker", "status", vid)
    assert "closed  failures=0" in run(tmp_path, "breaker", "reset", vid)
    out = run(tmp_path, "rollback", "snapshot", "--label", "pre-release")
    point = UUID.search(out).group(0)
    assert point in run(tmp_path, "rollback", "points")
    home = open_home(tmp_path)
    home.assignments.assign("agent-1", "other")
    home.close()
    assert "restored" in run(tmp_path, "rollback", "to", point)
    home = open_home(tmp_path)
    assert home.assignments.get("agent-1") == vid
    home.close()


def test_errors_are_clear_and_store_nothing(tmp_path: Path) -> None:
    assert "no agent called 'nope'" in run(tmp_path, "create", "nope", "--set", "a=1", code=2)
    out = run(tmp_path, "create", "nig", "--set", "forgeting=0.9", code=2)
    assert "no constructor parameter 'forgeting'" in out
    assert "not NAME=VALUE" in run(tmp_path, "create", "nig", "--set", "oops", code=2)
    assert "requirement 'numpy'" in run(tmp_path, "create", "nig", "--set", "forgetting=0.9",
                                        "--require", "numpy=new", code=2)
    assert "no variants" in run(tmp_path, "list")
    assert "no variant with id 'xyz'" in run(tmp_path, "promote", "xyz", code=2)
    assert "no variant with id 'xyz'" in run(tmp_path, "breaker", "reset", "xyz", code=2)
    assert "no rollback point" in run(tmp_path, "rollback", "to", "xyz", code=2)
    res = runner.invoke(app, ["list", "--home", "mysql://h/db"])
    assert res.exit_code == 2 and "scheme 'mysql' is not supported" in res.stderr
    res = runner.invoke(app, ["list", "--home", "postgresql://nobody@/db?host=/nonexistent"])
    assert res.exit_code == 2 and "cannot connect to the variant store" in res.stderr


def test_promotion_after_a_passed_canary_needs_no_force(tmp_path: Path) -> None:
    vid = create(tmp_path)
    run(tmp_path, "canary", "start", vid)
    assert "refused" in run(tmp_path, "promote", vid, code=2)  # no check has passed yet
    home = open_home(tmp_path)  # one passed check, a full interval after the start
    v = home.variants.get(vid)
    assert v.canary is not None
    v, _ = record_check(home.variants, v, True, home.config.canary,
                        v.canary.last_check_at + home.config.canary.health_check_interval_s)
    home.close()
    assert v.canary is not None and v.canary.passed_checks == 1
    out = run(tmp_path, "promote", vid)
    assert "promoted" in out and "forced" not in out
    with Ledger(tmp_path, create=False) as ledger:
        last = ledger.entry(-1)
    assert last.kind is EntryKind.VARIANT and last.data["forced"] is False


def test_variants_commands_on_a_postgres_url(postgres_url: str) -> None:
    res = runner.invoke(app, ["create", "nig", "--set", "forgetting=0.96", "--home",
                              postgres_url])
    assert res.exit_code == 0, res.output
    m = UUID.search(res.output)
    assert m
    res = runner.invoke(app, ["promote", m.group(0), "--force", "--home", postgres_url])
    assert res.exit_code == 0 and "forced" in res.output, (res.output, res.stderr)
    listed = runner.invoke(app, ["list", "--home", postgres_url])
    assert "active" in listed.output and m.group(0) in listed.output
    with Ledger(postgres_url, create=False) as ledger:  # the promotion is in the same database
        assert ledger.entry(-1).data["variant_id"] == m.group(0)
