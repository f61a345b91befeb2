"""The consensus's note says how its weights were made once, in words, for every weighting
and horizon; with ``track_days=0`` too (was: an empty note beside equal weights)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import swarmvar
from swarmvar.consensus import Weighting
from swarmvar.errors import InvalidParameter
from swarmvar.swarm.consensus import SWARM_POLICY


def _repeats(words: str) -> list[str]:
    """Words said twice in a row ("weights: weights") or a phrase said twice."""
    tokens = re.findall(r"[a-z0-9-]+", words.lower())
    twice = [a for a, b in zip(tokens, tokens[1:], strict=False) if a == b]
    return twice + [p for p in ("non-overlapping", "out of sample", "weights", "forecasts",
                                "windows") if words.count(p) > 1]


#: each weighting's words around the span of forecasts its weights used
WORDS = {
    Weighting.TEMPERED: "consensus: tempered weights from each agent's FZ0 loss over {}, out "
                        "of sample",
    Weighting.TRACK_RECORD: "consensus: weights from each agent's FZ0 loss over {}, out of "
                            "sample",
    Weighting.BMA: "consensus: Bayesian model averaging weights (log scores over {}), out of "
                   "sample",
}


@pytest.mark.parametrize("weighting", list(Weighting))
@pytest.mark.parametrize(("horizon", "scored", "span"), [
    (1, 60, "its last 60 forecasts"),
    (1, 1, "its last 1 forecast"),
    (1, 1500, "its last 1000 forecasts"),  # the policy's window, not the record's length
    (5, 12, "its last 60 days in 12 non-overlapping 5-day windows"),
    (5, 1500, "its last 5000 days in 1000 non-overlapping 5-day windows")])
def test_the_weights_note_reads_once(weighting: Weighting, horizon: int, scored: int,
                                     span: str) -> None:
    policy = dataclasses.replace(SWARM_POLICY, weighting=weighting)
    note = policy.weights_note(scored, horizon)
    assert note.startswith("consensus: ") and not _repeats(note), note
    if weighting is Weighting.EQUAL:
        assert note == "consensus: equal weights"
    else:
        assert note == WORDS[weighting].format(span)
    # no track record: equal weights, whatever the policy
    assert policy.weights_note(None, horizon) == "consensus: equal weights"


def test_the_track_record_weighting_is_not_weights_of_weights() -> None:
    """Was: "weights: weights from each agent's FZ0 loss ..."."""
    policy = dataclasses.replace(SWARM_POLICY, weighting=Weighting.TRACK_RECORD)
    assert policy.weights_note(30) == ("consensus: weights from each agent's FZ0 loss over "
                                       "its last 30 forecasts, out of sample")
    whole = dataclasses.replace(policy, window=None)
    assert whole.weights_note(30, 5) == (
        "consensus: weights from each agent's FZ0 loss over its last 150 days in 30 "
        "non-overlapping 5-day windows, out of sample")


@pytest.mark.parametrize("bad", [{"scored": -1}, {"scored": 2.5}, {"scored": True},
                                 {"scored": 3, "horizon": 0}])
def test_the_weights_note_refuses_what_it_cannot_say(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        SWARM_POLICY.weights_note(**bad)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.random.default_rng(3).standard_t(5, 400) * 0.01


def test_no_track_record_says_equal_weights(returns: np.ndarray) -> None:
    """``track_days=0`` under the tempered default: equal weights, and the note says why
    (was: ``note == ""`` beside ``record is None``)."""
    res = swarmvar.var(returns, agents=["nig", "bootstrap", "t"], track_days=0)
    assert res.agreed and res.record is None
    assert res.note == "consensus: equal weights (no track record: track_days=0)"
    assert all(c.method.endswith(", equal)") for c in res.agreed)  # what the note says
    assert res.note in res.summary()
    equal = dataclasses.replace(SWARM_POLICY, weighting=Weighting.EQUAL)
    res = swarmvar.var(returns, agents=["nig", "bootstrap", "t"], track_days=0, policy=equal)
    assert res.note == "consensus: equal weights (the policy's)" and res.record is None
    res = swarmvar.var(returns, agents=["nig", "bootstrap", "t"], consensus=False)
    assert res.note == "" and not res.agreed  # the one empty note: no consensus asked for


def test_an_h_day_record_is_said_once(returns: np.ndarray) -> None:
    """Was: "...over its last 4 non-overlapping 5-day windows (the 4 non-overlapping 5-day
    windows of the last 20 days, out of sample)"."""
    res = swarmvar.var(returns, agents=["nig", "bootstrap", "t"], track_days=20, horizon=5,
                       workers=1)
    assert res.record == 4
    assert res.note == ("consensus: tempered weights from each agent's FZ0 loss over its last "
                        "20 days in 4 non-overlapping 5-day windows, out of sample"), res.note
    assert not _repeats(res.note)
