"""``Arbiter.check_state`` refuses a malformed retraining history as ``restore_state`` does,
so a resume refuses it before the executor opens."""

from __future__ import annotations

from dataclasses import replace

import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.arbiter.checkpoint import pack_checkpoint, unpack_checkpoint
from swarmvar.errors import InvalidState

from .test_checkpoint_options import AGENTS, CountingBreakers, _saved


@pytest.mark.parametrize("features, breached", [
    (((1.0, 2.0), (1.0,)), (False, True)),  # rows of different lengths
    (((1.0, 2.0), (3.0, 4.0)), (False,)),  # not one breach flag per row
])
def test_check_state_refuses_a_malformed_history_writing_nothing(
        features: tuple[tuple[float, ...], ...], breached: tuple[bool, ...]) -> None:
    c = unpack_checkpoint(_saved(k_flows=3))
    blob = pack_checkpoint(replace(c, features=features, breached=breached))
    breakers = CountingBreakers()
    arb = Arbiter.from_options(k_flows=3, breakers=breakers)
    with pytest.raises(InvalidState, match="retraining history of 'p' is malformed"):
        arb.check_state("p", blob)
    assert breakers.writes == 0 and "p" not in arb._portfolios
    with pytest.raises(InvalidState, match="retraining history of 'p' is malformed"):
        arb.restore_state("p", blob, agents=AGENTS)
    # the same checkpoint with a well-formed history passes both
    good = pack_checkpoint(replace(c, features=((1.0, 2.0), (3.0, 4.0)), breached=(False, True)))
    arb.check_state("p", good)
    arb.restore_state("p", good, agents=AGENTS)
    assert "p" in arb._portfolios
