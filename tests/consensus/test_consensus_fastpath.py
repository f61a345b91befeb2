"""combine's per-beat fast paths give the same bits as the general ones; weights= is checked."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.canonical import NotCanonical, canonical_json
from swarmvar.consensus import (
    Aggregator,
    KeyRing,
    Policy,
    TrackRecord,
    Weighting,
    agent_weights,
    combine,
    private_key_from_seed,
    sign_estimate,
)
from swarmvar.consensus.combine import _aggregate_list, _trimmed_rows, aggregate_rows
from swarmvar.consensus.robust import robust_aggregate
from swarmvar.consensus.signing import PAYLOAD_KEYS, signing_bytes
from swarmvar.errors import InvalidParameter
from swarmvar.types import Estimate

NOW = datetime(2024, 3, 1, tzinfo=UTC)
finite = st.floats(-1e100, 1e100, allow_nan=False, allow_subnormal=True)


@st.composite
def rows_and_weights(draw):
    n = draw(st.integers(1, 9))
    rows = [tuple(draw(st.lists(finite, min_size=6, max_size=6))) for _ in range(n)]
    if draw(st.booleans()):  # ties and repeated values: the stable order matters
        rows = [tuple(draw(st.sampled_from([0.0, -0.0, 1.0, 2.0])) for _ in range(6))
                for _ in range(n)]
    w = draw(st.lists(st.floats(0, 1e3, allow_subnormal=True), min_size=n, max_size=n))
    return rows, w


@settings(max_examples=150, deadline=None)
@given(rows_and_weights(), st.integers(0, 4))
def test_trimmed_rows_equal_the_numpy_rule_bit_for_bit(data, f):
    rows, w = data
    if len(rows) < 2 * f + 1:
        f = (len(rows) - 1) // 2
    agg = robust_aggregate(np.array(rows), Aggregator.TRIMMED_MEAN, f, np.array(w))
    values, share = _trimmed_rows(rows, f, w)
    assert values == agg.value.tolist()
    assert share == agg.weights[:, 0].tolist()


@settings(max_examples=60, deadline=None)
@given(rows_and_weights(), st.sampled_from([Aggregator.TRIMMED_MEAN, Aggregator.MEAN,
                                            Aggregator.MEDIAN]),
       st.integers(1, 12), st.floats(0, 1e6))
def test_aggregate_list_equals_aggregate_rows(data, aggregator, extra, staleness):
    rows, w = data
    # as admitted estimates are: 0 <= VaR <= ES, lower <= upper (widening stays finite)
    rows = [(abs(r[0]) * 1e-90, (abs(r[0]) + abs(r[1])) * 1e-90, *sorted(x * 1e-90 for x in r[2:4]),
             *sorted(x * 1e-90 for x in r[4:])) for r in rows]
    f = 0 if aggregator is Aggregator.MEAN else (len(rows) - 1) // 2
    policy = Policy(aggregator=aggregator, f=f)
    total = len(rows) + extra
    wa = np.array(w) if sum(w) > 0 else None
    want = aggregate_rows(np.array(rows), policy, wa, total=total, staleness=staleness)
    got = _aggregate_list(rows, policy, w if wa is not None else [1 / len(rows)] * len(rows),
                          total, staleness)
    assert got[:4] == want[:4]
    assert list(got[4]) == want[4].tolist()


def _estimate(**kw):
    fields = dict(agent_id="a0", portfolio="spx", alpha=0.99, horizon=1, var=0.02, es=0.025,
                  var_interval=(0.018, 0.022), es_interval=(0.022, 0.028), as_of=NOW, seq=1)
    fields.update(kw)
    return Estimate(**fields)


texts = st.text(min_size=1, max_size=12)  # includes quotes, controls, non-ASCII, surrogates


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent=texts, portfolio=texts, variant=st.none() | texts,
       numbers=st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5),
                        min_size=7, max_size=7),
       seq=st.integers(-2, 2**70), horizon=st.integers(-2, 2**70),
       offset=st.integers(-86_399, 86_399), micro=st.integers(0, 999_999))
def test_signing_bytes_equal_the_canonical_payload(agent, portfolio, variant, numbers, seq,
                                                   horizon, offset, micro):
    a, v, e, vl, vh, el, eh = numbers
    as_of = datetime(2024, 3, 1, 12, 0, 0, micro, tzinfo=timezone(timedelta(seconds=offset)))
    est = _estimate(agent_id=agent, portfolio=portfolio, variant_id=variant, alpha=a, var=v,
                    es=e, var_interval=(vl, vh), es_interval=(el, eh), seq=seq,
                    horizon=horizon, as_of=as_of)
    try:
        want: bytes | type = canonical_json(est.payload())
    except NotCanonical:
        want = NotCanonical
    if want is NotCanonical:
        with pytest.raises(NotCanonical):
            signing_bytes(est)
    else:
        assert signing_bytes(est) == want


def test_signing_bytes_knows_every_payload_key():
    assert tuple(sorted(_estimate().payload())) == PAYLOAD_KEYS


def _signed_batch(keys, seq, vars_):
    return [sign_estimate(_estimate(agent_id=a, var=v, es=1.25 * v,
                                    var_interval=(0.9 * v, 1.1 * v),
                                    es_interval=(1.1 * v, 1.4 * v), seq=seq), keys[a])
            for a, v in zip(sorted(keys), vars_, strict=True)]


@pytest.fixture
def five():
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(5)}
    return keys, KeyRing({a: k.public_key() for a, k in keys.items()})


def test_weights_give_what_the_track_record_gives(five):
    """weights= of agent_weights' own numbers: the same consensus, bit for bit."""
    keys, ring = five
    rng = np.random.default_rng(3)
    agents = tuple(sorted(keys))
    r = rng.normal(0, 0.01, 300)
    var = np.abs(rng.normal(0.023, 0.004, (300, 5)))
    record = TrackRecord(agents, r, 0.99, var, 1.2 * var)
    policy = Policy(f=1, weighting=Weighting.TEMPERED, window=250, eta=30.0)
    known = agent_weights(list(agents), policy, record)
    vars_ = [0.020, 0.022, 0.025, 0.021, 0.030]
    other = KeyRing({a: k.public_key() for a, k in keys.items()})
    want = combine(_signed_batch(keys, 1, vars_), policy, keyring=ring, now=NOW,
                   track_record=record, total=6)
    got = combine(_signed_batch(keys, 1, vars_), policy, keyring=other, now=NOW,
                  weights=dict(zip(agents, known.tolist(), strict=True)), total=6)
    assert got == want
    again = combine(_signed_batch(keys, 2, vars_), policy, keyring=other, now=NOW,
                    weights=known, total=6)  # an array in keyring.agents order
    assert dataclasses.replace(again, as_of=want.as_of) == want
    # without one agent's estimate, the others' weights are renormalized as agent_weights does
    part = combine(_signed_batch(keys, 3, vars_)[1:], policy, keyring=other, now=NOW,
                   weights=known, total=5)
    sub = agent_weights(list(agents[1:]), policy, record)
    assert sum(part.weights.values()) == pytest.approx(1.0)
    used = [a for a in agents[1:] if a in part.used]
    np.testing.assert_allclose([part.weights[a] for a in used],
                               sub[[agents[1:].index(a) for a in used]]
                               / sub[[agents[1:].index(a) for a in used]].sum(), rtol=1e-15)


@pytest.mark.parametrize("weights, words", [
    ({"a0": float("nan")}, "finite"),
    ({"a0": -1.0}, ">= 0"),
    ({"a0": "x"}, "number"),
    ({"zz": 1.0}, "registered"),
    ({}, "empty"),
    ([1.0, 2.0], "keyring.agents"),
    (np.ones((5, 1)), "keyring.agents"),
    ({"a0": True}, "number"),
])
def test_bad_weights_are_refused_and_nothing_is_recorded(five, weights, words):
    keys, ring = five
    with pytest.raises(InvalidParameter, match=words):
        combine(_signed_batch(keys, 1, [0.02] * 5), Policy(f=1), keyring=ring, now=NOW,
                weights=weights)
    assert ring.admitted == 0 and ring.last_seq("a0") is None


def test_weights_and_a_track_record_together_are_refused(five):
    keys, ring = five
    record = TrackRecord(tuple(sorted(keys)), np.zeros(3), 0.99, np.full((3, 5), 0.02),
                         np.full((3, 5), 0.025))
    with pytest.raises(InvalidParameter, match="not both"):
        combine(_signed_batch(keys, 1, [0.02] * 5), Policy(f=1), keyring=ring, now=NOW,
                weights={"a0": 1.0}, track_record=record)


# --- OwnSignatures: verify at trust boundaries -------------------------------------


def test_own_signatures_skip_only_what_this_process_signed(five):
    from swarmvar.consensus.signing import OwnSignatures, RejectionReason

    keys, ring = five
    own = OwnSignatures()
    mine = [sign_estimate(_estimate(agent_id=a, seq=1), keys[a], own=own) for a in sorted(keys)]
    assert len(own) == 5
    admitted, refused = ring.screen(mine, own=own)
    assert len(admitted) == 5 and refused == []
    # white box: a remembered (message, key) pair is trusted without verification, so a
    # signature recorded as made here is not checked again ...
    fake = dataclasses.replace(mine[0], signature=bytes(64))
    own._made[bytes(64)] = (signing_bytes(fake), keys["a0"].public_key().public_bytes_raw())
    assert ring.screen([fake], own=own)[0] == [fake]
    # ... and without own the same estimate is forged: the skip is the only difference
    assert ring.screen([fake])[1][0].reason is RejectionReason.FORGED
    # changed content under a real signature made here: the bytes differ, so verified, forged
    moved = dataclasses.replace(mine[1], var=0.5, es=0.6, var_interval=(0.4, 0.6),
                                es_interval=(0.5, 0.7))
    assert ring.screen([moved], own=own)[1][0].reason is RejectionReason.FORGED
    # a rotated key in the ring: the key differs, so verified, forged
    other = KeyRing({a: k.public_key() for a, k in keys.items()})
    other.register("a2", private_key_from_seed(bytes([99]) * 32).public_key())
    assert other.screen([mine[2]], own=own)[1][0].reason is RejectionReason.FORGED
    # signed elsewhere (not remembered): verified as always, admitted when valid
    theirs = sign_estimate(_estimate(agent_id="a3", seq=2), keys["a3"])
    assert ring.screen([theirs], own=own)[0] == [theirs]
    # replay and malformation checks still apply to own estimates
    ring.commit(admitted)
    assert ring.screen([mine[4]], own=own)[1][0].reason is RejectionReason.REPLAYED
    bad = dataclasses.replace(mine[3], seq=5, var=float("nan"))
    assert ring.screen([bad], own=own)[1][0].reason is RejectionReason.MALFORMED


def test_a_signature_verified_once_is_not_verified_again(five):
    """``screen(own=)`` vouches for what verified: a spread group's estimate is verified
    when vetted and admitted by its bytes when combined; anything else is verified."""
    from swarmvar.consensus.signing import OwnSignatures, RejectionReason

    keys, ring = five
    calls: list[bytes] = []

    class Counting:  # the ring's public key, counting its verifications
        def __init__(self, key):
            self.key = key

        def verify(self, signature, message):
            calls.append(signature)
            self.key.verify(signature, message)

    ring._keys = {a: Counting(k) for a, k in ring._keys.items()}  # white box
    own = OwnSignatures()
    theirs = [sign_estimate(_estimate(agent_id=a, seq=1), keys[a]) for a in sorted(keys)]
    assert len(ring.screen(theirs, own=own)[0]) == 5 and len(calls) == 5
    assert len(ring.screen(theirs, own=own)[0]) == 5 and len(calls) == 5  # vouched
    copies = [dataclasses.replace(e) for e in theirs]  # equal bytes, other objects
    assert len(ring.screen(copies, own=own)[0]) == 5 and len(calls) == 5
    moved = dataclasses.replace(theirs[0], var=0.5, es=0.6, var_interval=(0.4, 0.6),
                                es_interval=(0.5, 0.7))
    assert ring.screen([moved], own=own)[1][0].reason is RejectionReason.FORGED
    fake = dataclasses.replace(theirs[1], signature=bytes(64))
    for _ in range(2):  # a signature that failed is not remembered: refused every time
        assert ring.screen([fake], own=own)[1][0].reason is RejectionReason.FORGED
    assert len(calls) == 8
    assert len(ring.screen(theirs)[0]) == 5 and len(calls) == 13  # without own: verified
    assert len(ring.screen(theirs, own=OwnSignatures())[0]) == 5 and len(calls) == 18


def test_combine_with_own_signatures_gives_the_same_consensus(five):
    from swarmvar.consensus.signing import OwnSignatures

    keys, ring = five
    own = OwnSignatures(limit=3)  # bounded: older signatures are verified again
    vars_ = [0.020, 0.022, 0.025, 0.021, 0.030]
    signed = [sign_estimate(e, keys[e.agent_id], own=own) for e in _signed_batch(keys, 1, vars_)]
    assert len(own) == 3
    other = KeyRing({a: k.public_key() for a, k in keys.items()})
    assert (combine(signed, Policy(f=1), keyring=ring, now=NOW, own=own)
            == combine(signed, Policy(f=1), keyring=other, now=NOW))
    with pytest.raises(InvalidParameter, match="OwnSignatures"):
        combine(signed, Policy(f=1), keyring=other, now=NOW, own=object())
    with pytest.raises(InvalidParameter, match="limit"):
        OwnSignatures(limit=0)


@settings(max_examples=300, deadline=None)
@given(agent=st.sampled_from(["a0", ""]), horizon=st.sampled_from([1, 0, True, 2.0]),
       seq=st.sampled_from([0, -1, 3, False]),
       numbers=st.lists(st.sampled_from([0.0, -0.0, 0.5, 0.99, 1.0, -1.0, 2.0, 1e100, -1e100,
                                         1e101, float("nan"), float("inf"), 1, True]),
                        min_size=7, max_size=7),
       naive=st.booleans(), variant=st.sampled_from([None, "v", 3]),
       interval=st.sampled_from([tuple, list]))
def test_malformation_fast_path_agrees_with_the_checks_one_by_one(agent, horizon, seq, numbers,
                                                                  naive, variant, interval):
    from swarmvar.consensus.signing import malformation

    @dataclasses.dataclass(frozen=True)
    class Other(Estimate):  # not exactly an Estimate: the one-by-one checks
        pass

    a, v, e, vl, vh, el, eh = numbers
    fields = dict(agent_id=agent, portfolio="spx", alpha=a, horizon=horizon, var=v, es=e,
                  var_interval=interval((vl, vh)), es_interval=interval((el, eh)),
                  as_of=NOW.replace(tzinfo=None) if naive else NOW, seq=seq,
                  variant_id=variant)
    assert malformation(Estimate(**fields)) == malformation(Other(**fields))


def test_sign_estimate_copies_every_field():
    """The signed copy is dataclasses.replace(estimate, signature=...) field for field."""
    key = private_key_from_seed(bytes([7]) * 32)
    e = _estimate(variant_id="v2", seq=9)
    signed = sign_estimate(e, key)
    assert signed == dataclasses.replace(e, signature=signed.signature)
    # sign_estimate names these fields: a new field must be added there too
    assert [f.name for f in dataclasses.fields(Estimate)] == [
        "agent_id", "portfolio", "alpha", "horizon", "var", "es", "var_interval",
        "es_interval", "as_of", "seq", "variant_id", "signature"]
