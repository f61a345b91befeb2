"""The arbiter's checkpoint blob: a blob whose checksum holds but whose content is not an
arbiter state (another version's, a hand-made one) is an InvalidState, never a raw error."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import Arbiter
from swarmvar.arbiter.checkpoint import _MAGIC
from swarmvar.errors import InvalidState

_DOC: dict[str, Any] = json.loads(Arbiter().checkpoint_state("p")[len(_MAGIC):-32])


def _paths(d: Any, pre: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [pre] if pre else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*pre, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*pre, i))
    return out


def _sealed(doc: dict[str, Any]) -> bytes:
    body = _MAGIC + json.dumps(doc, sort_keys=True).encode()
    return body + hashlib.sha256(body).digest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**400, 10**400) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(_paths(_DOC)), value=json_values)
def test_a_checksummed_blob_of_the_wrong_content_is_invalid_state(path: tuple[Any, ...],
                                                                  value: Any) -> None:
    doc = copy.deepcopy(_DOC)
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    try:
        Arbiter().restore_state("p", _sealed(doc), agents=["NormalInverseGamma"])
    except InvalidState:
        pass


def test_a_huge_integer_in_the_genome_is_invalid_state() -> None:
    doc = copy.deepcopy(_DOC)
    doc["genome"][0] = 10**400
    with pytest.raises(InvalidState):
        Arbiter().restore_state("p", _sealed(doc))


@pytest.mark.parametrize("order", [("old", "new"), ("new", "old")])
def test_the_newest_checkpoints_threat_model_wins_in_any_restore_order(
        order: tuple[str, str]) -> None:
    """Portfolios checkpointed at different times carry different threat models; the one
    arbiter serving them all resumes with the newest, not the last restored."""
    docs = {}
    for name, now, weight in (("old", 10.0, 0.5), ("new", 20.0, 0.9)):
        doc = copy.deepcopy(_DOC)
        doc["now"] = now
        doc["model"] = dict(doc["model"], version=name, weights=[weight])
        docs[name] = doc
    arbiter = Arbiter()
    for name in order:
        arbiter.restore_state(f"p-{name}", _sealed(docs[name]))
    assert arbiter.model.version == "new"
    assert arbiter.model.weights == (0.9,)
