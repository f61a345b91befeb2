"""The online particle agents' shared history buffer and state checks (_online_agent)."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.errors import InvalidState
from swarmvar.models.garch_t import GarchT


def test_history_grows_past_its_buffer_in_order() -> None:
    agent = GarchT(particles=100, runs=2)
    start = np.linspace(-0.01, 0.01, 300)
    agent._start_history(start)
    first = agent._buf.size
    extra = np.arange(2 * first, dtype=float)
    for x in extra.tolist():
        agent._append_return(x)
    assert agent._buf.size > first
    assert np.array_equal(agent._returns, np.concatenate([start, extra]))
    start[0] = 99.0  # the buffer holds a copy
    assert agent._returns[0] == -0.01


@pytest.mark.parametrize("logw", [[0.0, np.nan], [0.0, np.inf], [-np.inf, -np.inf]])
def test_bad_log_weights_are_refused(logw: list[float]) -> None:
    with pytest.raises(InvalidState, match="GarchT state's particle log weights"):
        GarchT(particles=100, runs=2)._check_log_weights(np.array(logw))
    GarchT(particles=100, runs=2)._check_log_weights(np.array([0.0, -np.inf]))
