"""The arbiter's checkpoint holds the options it decided with (the pulse's, the thresholds):
restoring it under other options is refused, naming each "saved X, now Y", before anything
is restored or written; a checkpoint from before options were stored restores as then."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.arbiter.checkpoint import _MAGIC, options_of, unpack_checkpoint
from swarmvar.arbiter.decide import Thresholds
from swarmvar.errors import ArbiterOptionsMismatch, InvalidState, ResumeMismatch
from swarmvar.evolution import MemoryBreakerStorage
from swarmvar.evolution.breaker import BreakerSnapshot

AGENTS = ["NormalInverseGamma", "StudentT"]


class CountingBreakers(MemoryBreakerStorage):
    """Breaker storage counting its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def update(self, name: str, change: Any) -> tuple[BreakerSnapshot, BreakerSnapshot]:
        self.writes += 1
        return super().update(name, change)


def _doc(blob: bytes) -> dict[str, Any]:
    return json.loads(blob[len(_MAGIC):-32])  # type: ignore[no-any-return]


def _sealed(doc: dict[str, Any]) -> bytes:
    body = _MAGIC + json.dumps(doc, sort_keys=True).encode()
    return body + hashlib.sha256(body).digest()


def _saved(**options: Any) -> bytes:
    """An arbiter's checkpoint of portfolio "p" (made under ``options``) holding two agents,
    StudentT quarantined (its breaker open)."""
    doc = _doc(Arbiter.from_options(**options).checkpoint_state("p"))
    doc["agents"] = AGENTS
    doc["breakers"] = {"StudentT": {"state": "open", "failures": 1, "reset_attempts": 0,
                                    "opened_at": 0.0}}
    return _sealed(doc)


def test_the_checkpoint_holds_the_options() -> None:
    blob = _saved(k_flows=4, p_nodes=6, t1=0.002, t_threshold=0.03)
    options = _doc(blob)["options"]
    assert (options["k_flows"], options["p_nodes"], options["t1"], options["t_threshold"]) == (
        4.0, 6.0, 0.002, 0.03)
    assert options["thresholds.alert"] == Thresholds().alert
    assert unpack_checkpoint(blob).options == options
    assert options == options_of(Arbiter.from_options(k_flows=4, p_nodes=6, t1=0.002,
                                                      t_threshold=0.03).config)


def test_other_options_are_refused_naming_each_before_anything_is_written() -> None:
    blob = _saved(k_flows=4)
    breakers = CountingBreakers()
    arb = Arbiter.from_options(k_flows=3, thresholds=Thresholds(alert=0.5), breakers=breakers)
    with pytest.raises(ArbiterOptionsMismatch) as got:
        arb.restore_state("p", blob, agents=AGENTS)
    assert isinstance(got.value, ResumeMismatch) and isinstance(got.value, InvalidState)
    message = str(got.value)
    assert "k_flows (--k-flows on the command line, k_flows= in Python): saved 4.0, now 3.0" \
        in message, message
    assert "thresholds.alert" in message and "saved 0.6, now 0.5" in message, message
    assert "p_nodes" not in message and "t_threshold" not in message, message
    assert breakers.writes == 0 and "p" not in arb._portfolios  # nothing restored or written


def test_the_same_options_restore() -> None:
    blob = _saved(k_flows=3, p_nodes=4)
    arb = Arbiter.from_options(k_flows=3, p_nodes=4)
    arb.restore_state("p", blob, agents=AGENTS)
    assert "StudentT" in arb.excluded("p")
    assert _doc(arb.checkpoint_state("p"))["options"] == _doc(blob)["options"]


def test_a_checkpoint_from_before_options_restores_under_any() -> None:
    doc = _doc(_saved(k_flows=4))
    del doc["options"]
    old = _sealed(doc)
    assert unpack_checkpoint(old).options is None
    arb = Arbiter.from_options(k_flows=3, thresholds=Thresholds(alert=0.5))
    arb.restore_state("p", old, agents=AGENTS)
    assert "StudentT" in arb.excluded("p")


@pytest.mark.parametrize("options", [[1, 2], {"k_flows": [4.0]}, "k=4"])
def test_malformed_options_are_invalid_state(options: Any) -> None:
    doc = _doc(_saved())
    doc["options"] = options
    with pytest.raises(InvalidState, match="options"):
        Arbiter().restore_state("p", _sealed(doc), agents=AGENTS)
