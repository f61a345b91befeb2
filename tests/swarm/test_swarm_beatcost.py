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


def _drift_one_by_one(scores, k, recent=20):
    """The guards' drift z of one agent as it was computed before the vectorized path."""
    import math

    col = scores[:, k]
    col = col[np.isfinite(col)]
    if col.size < 2 * recent + 10:
        return None
    past, last = col[:-recent], col[-recent:]
    sd = float(past.std(ddof=1))
    if not sd > 0:
        return None
    return (float(last.mean()) - float(past.mean())) / (sd / math.sqrt(recent))


@pytest.mark.parametrize("seed", range(6))
def test_guards_drift_equals_the_one_by_one_computation_bit_for_bit(seed):
    """The guards' drift of all agents at once (transposed rows) is each agent's own z,
    bit for bit, and flags the same agents with the same signals; a NaN score takes the
    one-by-one path."""
    from swarmvar.swarm.roles import Guards, RoleConfig

    rng = np.random.default_rng(seed)
    config = RoleConfig(guard_drift=0.5)
    guards = Guards(AGENTS, config)
    flagged = 0
    for beat in range(320):
        shift = -3.0 if beat > 200 and rng.random() < 0.5 else 0.0
        scores = {a: float(rng.normal(3.0 + shift * (k == seed % 5), 0.2 + k))
                  for k, a in enumerate(AGENTS)}
        if rng.random() < 0.03:
            scores[AGENTS[int(rng.integers(5))]] = float("nan")
        quiet_before = guards.quiet_until.copy()
        found = guards.check(beat, scores, {}, cooldown=7)
        want = {}
        for k, a in enumerate(AGENTS):
            z = _drift_one_by_one(guards.scores, k)
            if beat >= quiet_before[k] and z is not None and z < -config.guard_drift:
                want[a] = z
        assert {r.agents[0]: r.detail["score_drift_z"] for r in found} == want
        fast = guards._drift()
        if fast is not None:
            assert fast == [_drift_one_by_one(guards.scores, k) for k in range(5)]
        flagged += len(found)
    assert flagged > 0  # the comparison saw flags, not only quiet beats


@pytest.mark.parametrize("keep, width", [(7, 3), (7, None), (None, 2), (0, None), (50, 6)])
def test_trailing_rows_are_the_concatenated_window_and_never_change_once_handed_out(keep, width):
    """TrailingRows gives what concatenating and cutting the window gave at every append;
    an array it handed out earlier keeps its values; a replaced array (a restore) is
    continued from."""
    from swarmvar.swarm.roles import TrailingRows

    rng = np.random.default_rng(7)
    shape = (0,) if width is None else (0, width)
    want = np.zeros(shape)
    got = np.zeros(shape)
    ring = TrailingRows(got, keep)
    handed: list[tuple[np.ndarray, np.ndarray]] = []
    for step in range(400):
        row = rng.normal(size=() if width is None else (width,))
        if step == 250:  # the owner replaces its array, as restore() does
            got = want.copy()
        want = np.concatenate([want, row[None] if width else np.array([row])])
        want = want[-keep:] if keep else want
        got = ring.append(got, row)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
        if step % 37 == 0:
            handed.append((got, got.copy()))
    for view, copy_then in handed:
        np.testing.assert_array_equal(view, copy_then)


def _builders_reference(rows, alphas, window, days):
    """The builders' windows as the masked one-by-one code computed them (every day)."""
    from swarmvar.validation import fz0_loss

    hits = {a: np.zeros((0, len(rows)), dtype=bool) for a in alphas}
    fz0 = {a: np.zeros((0, len(rows))) for a in alphas}
    for realized, var, es in days:
        for a in alphas:
            v, e = var[a], es[a]
            ok = np.isfinite(v) & np.isfinite(e)
            hit = (-realized > np.where(ok, v, np.inf))[None, :]
            loss = np.where(ok, np.inf, np.nan)
            scored = ok & (np.maximum(np.where(ok, e, 0.0), np.where(ok, v, 0.0)) > 0)
            if scored.any():
                loss[scored] = fz0_loss(np.full(int(scored.sum()), -realized), v[scored],
                                        np.maximum(e[scored], v[scored]), a)
            hits[a] = np.concatenate([hits[a], hit])[-window:]
            fz0[a] = np.concatenate([fz0[a], loss[None, :]])[-window:]
    return hits, fz0


def test_builders_windows_equal_the_masked_computation_bit_for_bit():
    """The builders' unmasked common case (every row forecast, ES > 0) and the masked one
    (a missing row, a non-positive forecast) give the windows the masked code gave."""
    from swarmvar.swarm.roles import Builders

    rng = np.random.default_rng(11)
    rows = (*AGENTS, "consensus")
    days = []
    for day in range(300):
        var = {al: np.abs(rng.normal(0.02, 0.01, len(rows))) for al in ALPHAS}
        es = {al: v * rng.uniform(1.0, 1.5, len(rows)) for al, v in var.items()}
        if day % 13 == 0:
            var[ALPHAS[0]][rng.integers(len(rows))] = np.nan
        if day % 17 == 0:
            var[ALPHAS[1]][0], es[ALPHAS[1]][0] = -0.01, -0.005  # a forecast gain: not scored
        days.append((float(rng.normal(0, 0.02)), var, es))
    builders = Builders(rows, ALPHAS, 120)
    for day in days:
        builders.add(*day)
    hits, fz0 = _builders_reference(rows, ALPHAS, 120, days)
    for a in ALPHAS:
        np.testing.assert_array_equal(builders.hits[a], hits[a])
        np.testing.assert_array_equal(builders.fz0[a], fz0[a])
        assert builders.hits[a].dtype == hits[a].dtype


def test_own_estimates_are_admitted_by_their_very_objects_and_anything_else_by_bytes(
        monkeypatch):
    """sign_measures remembers the field objects of what it signed: the same objects are
    admitted without writing their bytes; an equal copy is admitted by its bytes (no
    verification either); a changed field is verified, and refused as forged; an as_of
    with a tzinfo of its own is never admitted by objects."""
    import dataclasses
    from datetime import UTC, datetime, timedelta, tzinfo

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swarmvar.consensus import KeyRing, RejectionReason, sign_measures, signed_bytes
    from swarmvar.consensus.signing import OwnSignatures
    from swarmvar.types import RiskMeasure

    keys = {a: Ed25519PrivateKey.generate() for a in AGENTS}
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    own = OwnSignatures(limit=64)
    measure = RiskMeasure(0.99, 0.02, 0.025, (0.018, 0.022), (0.022, 0.028))
    when = datetime(2024, 3, 1, tzinfo=UTC)
    signed = sign_measures([(a, measure) for a in AGENTS], keys, portfolio="p", horizon=1,
                           as_of=when, seq=1, own=own)
    written = []
    real = signed_bytes._payload_text  # every writing of signing bytes goes through it
    monkeypatch.setattr(signed_bytes, "_payload_text",
                        lambda e, as_of=None: written.append(e) or real(e, as_of))
    admitted, refused = ring.screen(signed, own=own)
    assert len(admitted) == len(AGENTS) and not refused and not written  # by objects
    copies = [dataclasses.replace(e, var_interval=tuple(list(e.var_interval))) for e in signed]
    admitted, refused = ring.screen(copies, own=own)
    assert len(admitted) == len(AGENTS) and len(written) == len(AGENTS)  # by bytes
    moved = dataclasses.replace(signed[0], var=signed[0].var * 2, es=signed[0].es * 2)
    admitted, refused = ring.screen([moved], own=own)
    assert not admitted and refused[0].reason is RejectionReason.FORGED

    class Shifty(tzinfo):  # a tzinfo that could answer differently later
        def utcoffset(self, dt):
            return timedelta(0)

        def dst(self, dt):
            return timedelta(0)

    odd = sign_measures([(AGENTS[0], measure)], keys, portfolio="p", horizon=1,
                        as_of=datetime(2024, 3, 1, tzinfo=Shifty()), seq=2, own=own)
    assert not own.signed(odd[0], ring._raw[AGENTS[0]])
    assert own.signed(signed[1], ring._raw[AGENTS[1]])
    assert not own.signed(signed[1], ring._raw[AGENTS[0]])  # another agent's key


def test_each_beat_hands_out_its_estimates_ledger_records_written_once(sp500):
    """BeatOutcome.estimate_records are the ledger records of its estimates (canonical JSON
    of payload and signature, the dict path's text), written from the bytes signed."""
    import tempfile
    from datetime import UTC, datetime

    from swarmvar.canonical import canonical_text
    from swarmvar.swarm.beat import BeatInput, PortfolioConfig, PortfolioSwarm

    from .conftest import TINY, TINY_POLICY

    with tempfile.TemporaryDirectory() as home:
        swarm = PortfolioSwarm(PortfolioConfig("sp500", TINY, window=100, home=home,
                                               policy=TINY_POLICY))
        r = sp500.to_numpy()
        swarm.start(r[:100], sp500.index[99].to_pydatetime().replace(tzinfo=UTC))
        for i in range(3):
            when: datetime = sp500.index[100 + i].to_pydatetime().replace(tzinfo=UTC)
            out = swarm.beat(BeatInput(i + 1, when, float(r[100 + i])))
            assert len(out.estimate_records) == len(out.estimates) == 2 * len(TINY)
            for e, record in zip(out.estimates, out.estimate_records, strict=True):
                d = e.payload()
                d["signature"] = e.signature.hex()
                assert record.text == canonical_text(d)
                assert swarm.own.message(e) is not None  # written from the bytes signed
        swarm.close()
