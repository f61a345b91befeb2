"""``Arbiter.check_state``: the restore's checks (the state's bytes, its options) without
restoring or writing anything, for a resume to refuse before it opens anything."""

from __future__ import annotations

import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.errors import ArbiterOptionsMismatch, InvalidState

from .test_checkpoint_options import AGENTS, CountingBreakers, _saved


def test_check_state_refuses_other_options_writing_nothing() -> None:
    blob = _saved(k_flows=4)
    breakers = CountingBreakers()
    arb = Arbiter.from_options(k_flows=3, breakers=breakers)
    with pytest.raises(ArbiterOptionsMismatch, match="saved 4.0, now 3.0"):
        arb.check_state("p", blob)
    assert breakers.writes == 0 and "p" not in arb._portfolios


def test_check_state_passes_what_restores_and_restores_nothing() -> None:
    blob = _saved(k_flows=3)
    breakers = CountingBreakers()
    arb = Arbiter.from_options(k_flows=3, breakers=breakers)
    arb.check_state("p", blob)
    assert breakers.writes == 0 and "p" not in arb._portfolios
    arb.restore_state("p", blob, agents=AGENTS)
    assert "StudentT" in arb.excluded("p")


def test_check_state_refuses_altered_bytes() -> None:
    blob = bytearray(_saved())
    blob[len(blob) // 2] ^= 1
    with pytest.raises(InvalidState):
        Arbiter().check_state("p", bytes(blob))
