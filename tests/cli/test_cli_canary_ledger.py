"""``swarmvar variants canary check`` notes in the ledger the check that promotes or rolls
back a canary, inside the variant store's transaction, by the rule of a change by hand
(``evolution.noted``): one ``variant`` entry (``event`` promote/rollback, ``by:
canary-check``), voided when the store's COMMIT fails after it; a check that only ramps
or counts a failure notes nothing; ``variants history`` says who made the change."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from swarmvar.evolution import VariantStatus, open_home, record_check, start_canary
from swarmvar.ledger import EntryKind, Ledger

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_variant_void import (  # noqa: E402
    check_voided,
    created,
    fail_commit_after,
    invoke,
    stored,
)


def one_pass_from_promotion(home: str) -> str:
    """A variant whose canary started long ago has passed all but its last ramp step, the
    last one more than a check interval ago: the next passed check promotes it."""
    vid = created(home)
    h = open_home(home)
    try:
        cfg = h.config.canary
        t = time.time() - (cfg.ramp_steps + 2) * cfg.health_check_interval_s
        v = start_canary(h.variants, h.variants.get(vid), cfg, t)
        for _ in range(cfg.ramp_steps - 1):
            t += cfg.health_check_interval_s
            v, _ = record_check(h.variants, v, True, cfg, t)
        assert v.status is VariantStatus.CANARY and v.canary is not None
        assert v.canary.step == cfg.ramp_steps - 1 and t < time.time() - 300
    finally:
        h.close()
    return vid


def variant_entries(home: str) -> list[dict[str, object]]:
    with Ledger(home, create=False) as ledger:
        assert ledger.verify_chain(processes=1).ok
        return [e.data for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]


def history_line(home: str, vid: str) -> str:
    [line] = [x for x in invoke(home, "history").splitlines() if vid in x]
    return line


def test_a_check_that_promotes_leaves_one_ledger_note(tmp_path: Path) -> None:
    home = str(tmp_path)
    vid = one_pass_from_promotion(home)
    assert "promoted" in invoke(home, "canary", "check", vid, "--result", "pass")
    assert stored(home, vid)[0] is VariantStatus.ACTIVE
    [note] = variant_entries(home)
    assert note["event"] == "promote" and note["variant_id"] == vid
    assert note["by"] == "canary-check" and note["agent_class"] == "NormalInverseGamma"
    line = history_line(home, vid)
    assert "promote" in line and line.endswith("by canary check")


def test_a_ramp_and_a_counted_failure_note_nothing_the_third_failure_rolls_back(
        tmp_path: Path) -> None:
    home = str(tmp_path)
    vid = created(home)
    invoke(home, "canary", "start", vid)
    assert "held" in invoke(home, "canary", "check", vid, "--result", "pass")
    outs = [invoke(home, "canary", "check", vid, "--result", "fail") for _ in range(3)]
    assert [o.split(":")[0] for o in outs] == ["failed", "failed", "rolled_back"]
    assert stored(home, vid)[0] is VariantStatus.ROLLED_BACK
    [note] = variant_entries(home)  # the rollback only: the ledger made by its note
    assert note["event"] == "rollback" and note["variant_id"] == vid
    assert note["by"] == "canary-check" and note["failed_checks"] == 3
    line = history_line(home, vid)
    assert "rollback" in line and line.endswith("by canary check")


def test_a_counted_failure_alone_creates_no_ledger(tmp_path: Path) -> None:
    home = str(tmp_path)
    vid = created(home)
    invoke(home, "canary", "start", vid)
    invoke(home, "canary", "check", vid, "--result", "fail")
    assert "no promotions or rollbacks recorded" in invoke(home, "history")


@pytest.mark.parametrize("event", ["promote", "rollback"])
def test_a_check_whose_commit_fails_after_its_note_is_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, event: str) -> None:
    home = str(tmp_path)
    vid = one_pass_from_promotion(home)
    if event == "rollback":
        for _ in range(2):
            invoke(home, "canary", "check", vid, "--result", "fail")
    Ledger(tmp_path).close()
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        before = stored(home, vid)
        verdict = "pass" if event == "promote" else "fail"
        out = invoke(home, "canary", "check", vid, "--result", verdict, code=2)
        assert failed == [1] and "I/O error" in out
        assert stored(home, vid) == before  # the store unchanged
        check_voided(home, ledger, size, event, vid)
        assert "by canary check" in history_line(home, vid)


class _Breaks:
    """A sandbox that answers every task with a network violation (nothing is run)."""

    backend = "bwrap"

    def __init__(self) -> None:
        from swarmvar import sandbox

        box = sandbox.create("none", "validation")  # its profile only
        self.profile = box.profile
        box.kill()

    def run(self, task: object) -> object:
        from swarmvar.errors import SandboxViolation, Violation

        raise SandboxViolation(Violation.NETWORK, "connect() to 203.0.113.9:443")

    def kill(self) -> None:
        pass


def test_canary_run_shows_the_rollback_notes_warning_on_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``canary run`` whose violation rolls the release back, the store's answer to its
    COMMIT lost after committing: the rule's warning (the change is stored, the note
    stands) is printed on stderr, not left to a log nobody configured."""
    import swarmvar.sandbox

    home = str(tmp_path)
    vid = one_pass_from_promotion(home)
    for _ in range(2):
        invoke(home, "canary", "check", vid, "--result", "fail")
    Ledger(tmp_path).close()
    box = _Breaks()
    monkeypatch.setattr(swarmvar.sandbox, "create", lambda backend, profile: box)
    with Ledger(tmp_path, create=False) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size, commit_first=True)
        out = invoke(home, "canary", "run", vid, "--last", "30", "--window", "30", code=1)
    assert failed == [1] and "canary failed: sandbox violation (network)" in out
    assert "warning:" in out and "the change is stored" in out and f"#{size} stands" in out
    assert stored(home, vid)[0] is VariantStatus.ROLLED_BACK
    events = [d["event"] for d in variant_entries(home)]
    assert events[-2:] == ["rollback", "canary_validation"]
