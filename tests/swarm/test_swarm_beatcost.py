"""The beat's online weights: the batch numbers, carried through a checkpoint bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.consensus import Weighting, agent_weights
from swarmvar.swarm.beat import OnlineTrackRecord
from swarmvar.swarm.consensus import SWARM_POLICY

AGENTS = ("a", "b", "c", "d", "e")
ALPHAS = (0.975, 0.99)


def _push(track, rng, days):
    for _ in range(days):
        var = {al: np.abs(rng.normal(0.02 * (1 + al - 0.975), 0.004, len(AGENTS)))
               for al in ALPHAS}
        if rng.random() < 0.1:  # an agent without a forecast that day
            for al in ALPHAS:
                var[al][rng.integers(len(AGENTS))] = np.nan
        es = {al: v * 1.25 for al, v in var.items()}
        track.push(float(rng.normal(0, 0.01)), var, es)


@pytest.mark.parametrize("window, days", [(50, 30), (50, 120)])
def test_online_weights_equal_the_track_records(window, days):
    policy = SWARM_POLICY.__class__(**{**SWARM_POLICY.__dict__, "window": window})
    rng = np.random.default_rng(4)
    track = OnlineTrackRecord(AGENTS, ALPHAS, window, policy=policy)
    assert track.weights() is None
    _push(track, rng, days)
    online = track.weights()
    assert online is not None and list(online) == list(AGENTS)
    batch = agent_weights(list(AGENTS), policy, track.records())
    np.testing.assert_allclose(list(online.values()), batch, rtol=1e-12)


def test_online_weights_survive_a_checkpoint_bit_for_bit():
    rng = np.random.default_rng(5)
    policy = SWARM_POLICY.__class__(**{**SWARM_POLICY.__dict__, "window": 40})
    track = OnlineTrackRecord(AGENTS, ALPHAS, 40, policy=policy)
    _push(track, rng, 90)
    arrays = track.arrays()
    again = OnlineTrackRecord(AGENTS, ALPHAS, 40, policy=policy)
    again.restore(arrays)
    assert again.weights() == track.weights()
    _push(track, np.random.default_rng(6), 7)
    _push(again, np.random.default_rng(6), 7)
    assert again.weights() == track.weights()
    # a checkpoint from before the accumulator: the rows are scored again (to rounding)
    old = {k: v for k, v in arrays.items() if k != "track_tempered"}
    rebuilt = OnlineTrackRecord(AGENTS, ALPHAS, 40, policy=policy)
    rebuilt.restore(old)
    want = OnlineTrackRecord(AGENTS, ALPHAS, 40, policy=policy)
    want.restore(arrays)
    np.testing.assert_allclose(list(rebuilt.weights().values()),
                               list(want.weights().values()), rtol=1e-12)


def test_other_weightings_keep_the_record_path():
    policy = SWARM_POLICY.__class__(**{**SWARM_POLICY.__dict__,
                                       "weighting": Weighting.TRACK_RECORD})
    track = OnlineTrackRecord(AGENTS, ALPHAS, 30, policy=policy)
    _push(track, np.random.default_rng(7), 5)
    assert track.tempered is None and track.weights() is None
    assert "track_tempered" not in track.arrays()


def test_uncrossed_skips_only_what_the_rearrangement_would_not_move(monkeypatch):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    import swarmvar.swarm.consensus as sc
    from swarmvar.types import Consensus

    def level(alpha, var, es, lo, hi):
        return Consensus(alpha=alpha, horizon=1, var=var, es=es, var_interval=(lo, var + hi),
                         es_interval=(es - lo, es + hi), method="m", used=("a",))

    small = st.floats(0, 0.1, allow_subnormal=False)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(small, small, small, small), min_size=2, max_size=3))
    def check(values):
        alphas = (0.95, 0.99, 0.975)[: len(values)]
        levels = [level(a, v, v + d, lo, hi)
                  for a, (v, d, lo, hi) in zip(alphas, values, strict=False)]
        fast = sc.uncrossed(levels)
        with monkeypatch.context() as m:
            m.setattr(sc, "_in_order", lambda _: False)
            full = sc.uncrossed(levels)
        assert fast == full

    check()


def test_the_beat_skips_its_own_verifications_and_its_estimates_still_verify(tmp_path, sp500):
    """The beat remembers what it signed (so it does not verify it again); from outside, a
    fresh key ring of the agents' public keys (what an auditor holds) verifies every ledgered
    estimate, and a changed one is refused as forged."""
    import dataclasses
    from datetime import datetime

    from swarmvar.consensus import KeyRing, RejectionReason
    from swarmvar.ledger import Ledger
    from swarmvar.swarm import LocalExecutor
    from swarmvar.types import Estimate, Tick

    from .conftest import TINY, TINY_POLICY, make_swarm

    executor = LocalExecutor()
    with make_swarm(tmp_path, agents=TINY, policy=TINY_POLICY, window=100,
                    executor=executor) as swarm:
        swarm.start({"sp500": sp500.iloc[:100]})
        for i in range(3):
            report = swarm.step(Tick("sp500", sp500.index[100 + i].to_pydatetime(),
                                     value=float(sp500.iloc[100 + i])))
            assert len(report.consensus) == 2  # both levels combined
        host = executor.local("sp500")
        assert 0 < len(host.own) <= max(16, 2 * len(TINY) * 2)
        assert host.ring.admitted == 4 * len(TINY) * 2  # the start's forecast and three beats
        auditor = KeyRing({a: k.public_key() for a, k in host.keys.items()})
    with Ledger.open(tmp_path) as ledger:
        rows = [d for entry in ledger.entries() if entry.kind == "estimate"
                for d in entry.data["estimates"]]
    assert len(rows) == 3 * len(TINY) * 2  # three beats, every agent, both levels
    for d in rows:
        e = Estimate(**{**d, "var_interval": tuple(d["var_interval"]),
                        "es_interval": tuple(d["es_interval"]),
                        "as_of": datetime.fromisoformat(d["as_of"]),
                        "signature": bytes.fromhex(d["signature"])})
        assert auditor.check(e) is None
        moved = dataclasses.replace(e, var=e.var * 2, es=e.es * 2,
                                    var_interval=(e.var_interval[0], e.var * 3),
                                    es_interval=(e.es_interval[0], e.es * 3))
        assert auditor.check(moved).reason is RejectionReason.FORGED
