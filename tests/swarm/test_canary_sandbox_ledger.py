"""A canary's sandbox violation that rolls its release back notes the rollback in the ledger
inside the variant store's transaction (``event: rollback``, ``by: canary-violation``),
before the run's ``canary_validation`` entry; voided when the store's COMMIT fails after
it. The sandbox here answers a violation without running anything (no process started)."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from swarmvar import sandbox
from swarmvar.errors import SandboxViolation, Violation
from swarmvar.evolution import EvolutionHome, VariantStatus, new_variant, open_home, start_canary
from swarmvar.evolution.errors import VariantStoreUnwritable
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.swarm.canary_sandbox import CanaryVerdict, validate_variant

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from test_cli_variant_void import fail_commit_after, invoke  # noqa: E402


class _Breaks:
    """A sandbox that answers every task with a network violation."""

    backend = "bwrap"

    def __init__(self) -> None:
        box = sandbox.create("none", "validation")  # its profile only: nothing is run
        self.profile = box.profile
        box.kill()

    def run(self, task: object) -> object:
        raise SandboxViolation(Violation.NETWORK, "connect() to 203.0.113.9:443")


def one_failure_from_rollback(h: EvolutionHome) -> str:
    """A canary that has failed all but its last allowed check."""
    now = time.time()
    v = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.96},
                                   {"NormalInverseGamma": NormalInverseGamma}, now=now))
    v = start_canary(h.variants, v, h.config.canary, now)
    assert v.canary is not None
    failed = replace(v.canary, failed_checks=h.config.canary.max_failed_checks - 1)
    return h.variants.save(replace(v, canary=failed, updated=now)).id


def violate(h: EvolutionHome, ledger: Ledger, vid: str) -> object:
    r = np.random.default_rng(0).standard_t(5, 60) * 0.01
    return validate_variant(vid, r, home=h, ledger=ledger, box=_Breaks(),  # type: ignore[arg-type]
                            clock=time.time, window=30)


def test_a_violation_that_rolls_back_is_noted_and_shown_in_history(tmp_path: Path) -> None:
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
        with Ledger(tmp_path) as ledger:
            ev = violate(h, ledger, vid)
            entries = [e for e in ledger.entries(1) if e.kind is EntryKind.VARIANT]
            assert ledger.verify_chain(processes=1).ok
        assert ev.verdict is CanaryVerdict.VIOLATION  # type: ignore[attr-defined]
        assert h.variants.get(vid).status is VariantStatus.ROLLED_BACK
    finally:
        h.close()
    note, run = (e.data for e in entries)
    assert note["event"] == "rollback" and note["variant_id"] == vid
    assert note["by"] == "canary-violation"
    assert run["event"] == "canary_validation" and run["check"] == "rolled_back"
    assert ev.ledger_entries == tuple(e.index for e in entries)  # type: ignore[attr-defined]
    [line] = [x for x in invoke(str(tmp_path), "history").splitlines() if vid in x]
    assert "rollback" in line and line.endswith("by sandbox violation")


def test_a_violations_rollback_whose_commit_fails_is_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = open_home(tmp_path)
    try:
        vid = one_failure_from_rollback(h)
    finally:
        h.close()
    with Ledger(tmp_path) as ledger:
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        h = open_home(tmp_path)  # its connection fails the COMMIT after the note
        try:
            with pytest.raises(VariantStoreUnwritable, match="I/O error"):
                violate(h, ledger, vid)
            assert h.variants.get(vid).status is VariantStatus.CANARY
        finally:
            h.close()
        assert failed == [1] and ledger.size == size + 2
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert note.data["event"] == "rollback" and note.data["by"] == "canary-violation"
        assert void.data["event"] == "void" and void.data["action"] == "rollback"
        assert void.data["voids"] == {"index": size, "hash": note.hash.hex()}
        assert ledger.verify_chain(processes=1).ok
    [line] = [x for x in invoke(str(tmp_path), "history").splitlines() if vid in x]
    assert "by sandbox violation" in line and f"VOIDED by #{size + 1}" in line
