"""BayesianBootstrap's state bytes are a function of what it absorbed, not of the allocator.

With a history shorter than the window the ring buffer's last slots are never
filled; they are saved with the state, so they must be zeros, not whatever
memory ``np.empty`` handed out (the numbers never read them either way). A
filling ring writes its next return at slot ``count``: a state saying otherwise
is refused.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from swarmvar.errors import InvalidState
from swarmvar.models import BayesianBootstrap

WINDOW = 500


def _dirty_heap(value: float) -> None:
    """Leave freed blocks of the buffer's size full of ``value`` for the next allocation."""
    for _ in range(4):
        junk = np.full(WINDOW, value)
        del junk


def _short_history() -> np.ndarray:
    return np.random.default_rng(3).normal(0.0, 0.01, 120)  # 120 of 500 slots filled


def test_two_identical_fits_give_identical_state_bytes() -> None:
    states = []
    for value in (1.25, -7.5):
        _dirty_heap(value)
        agent = BayesianBootstrap(window=WINDOW).fit(_short_history(), seed=5)
        agent.update(0.004)
        states.append(agent.state())
    assert states[0] == states[1]
    with np.load(io.BytesIO(states[0]), allow_pickle=False) as npz:
        buffer = npz["buffer"]
    assert np.all(buffer[121:] == 0.0)  # 120 fitted + 1 update, the rest unfilled


def test_a_state_with_junk_in_its_unfilled_slots_loads_and_saves_them_as_zeros() -> None:
    agent = BayesianBootstrap(window=WINDOW).fit(_short_history(), seed=5)
    clean = agent.state()
    with np.load(io.BytesIO(clean), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["buffer"] = arrays["buffer"].copy()
    arrays["buffer"][120:] = 3.0e300  # as an older version could have saved them
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    loaded = BayesianBootstrap.from_state(buf.getvalue())
    assert loaded.state() == clean
    assert loaded.forecast((0.99,), seed=2) == agent.forecast((0.99,), seed=2)


def test_a_filling_window_whose_next_slot_is_not_its_count_is_refused() -> None:
    agent = BayesianBootstrap(window=WINDOW).fit(_short_history(), seed=5)
    with np.load(io.BytesIO(agent.state()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays["__header__"]).decode("utf-8"))
    assert (header["scalars"]["count"], header["scalars"]["head"]) == (120, 120)
    for head in (0, 119, 121, WINDOW - 1):  # a ring of 120 of 500 writes at slot 120 next
        header["scalars"]["head"] = head
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        with pytest.raises(InvalidState, match="next slot"):
            BayesianBootstrap.from_state(buf.getvalue())
