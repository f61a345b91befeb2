"""Signed estimates: every refusal reason, counters, and the canonical bytes signed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from swarmvar.canonical import canonical_json
from swarmvar.consensus import (
    KeyRing,
    RejectionReason,
    estimate_from_measure,
    malformation,
    rejection_error,
    sign_estimate,
    sign_measures,
    signing_bytes,
)
from swarmvar.errors import InvalidEstimate, InvalidSignature, ReplayedEstimate, UnknownAgent
from swarmvar.types import RiskMeasure

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_valid_estimate_admitted_and_signature_covers_canonical_payload(keys, ring, make, sign):
    e = sign("a0", 0.02)
    assert signing_bytes(e) == canonical_json(e.payload())
    keys["a0"].public_key().verify(e.signature, canonical_json(e.payload()))
    assert ring.admit(e) is None
    assert ring.last_seq("a0") == 1 and ring.admitted == 1


def test_unsigned_forged_unknown_replayed_are_refused_and_counted(keys, ring, make, sign):
    good = sign("a0", 0.02, seq=5)
    assert ring.admit(good) is None
    cases = {
        RejectionReason.UNSIGNED: make("a1", 0.02),
        RejectionReason.FORGED: dataclasses.replace(sign("a1", 0.02), var=0.5, es=0.6),
        RejectionReason.UNKNOWN_AGENT: sign("a2", 0.02, agent_id="ghost"),
        RejectionReason.REPLAYED: good,
    }
    for reason, e in cases.items():
        rejection = ring.admit(e)
        assert rejection is not None and rejection.reason is reason, (reason, rejection)
    # signed by another agent's key: forged
    other = sign_estimate(make("a3", 0.02), keys["a4"])
    assert ring.admit(other).reason is RejectionReason.FORGED
    # wrong-length signature
    short = dataclasses.replace(sign("a5", 0.02), signature=b"x" * 10)
    assert ring.admit(short).reason is RejectionReason.FORGED
    assert ring.refused == {
        RejectionReason.UNSIGNED: 1,
        RejectionReason.FORGED: 3,
        RejectionReason.UNKNOWN_AGENT: 1,
        RejectionReason.REPLAYED: 1,
    }
    # a forged estimate must not advance the agent's sequence
    assert ring.last_seq("a1") is None


def test_replay_needs_strictly_increasing_seq(keys, ring, make, sign):
    assert ring.admit(sign("a0", 0.02, seq=3)) is None
    assert ring.admit(sign("a0", 0.02, seq=3)).reason is RejectionReason.REPLAYED
    assert ring.admit(sign("a0", 0.02, seq=2)).reason is RejectionReason.REPLAYED
    assert ring.admit(sign("a0", 0.02, seq=4)) is None


def test_check_does_not_change_state(keys, ring, make, sign):
    e = sign("a0", 0.02)
    assert ring.check(e) is None and ring.check(e) is None
    assert ring.last_seq("a0") is None and ring.admitted == 0


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(var=float("nan")), "finite"),
        (dict(es=float("inf")), "finite"),
        (dict(var=-0.01, es=0.01), "positive loss"),
        (dict(var_interval=(0.03, 0.01)), "inverted"),
        (dict(es_interval=(0.05, 0.01)), "inverted"),
        (dict(es=0.001), "below VaR"),
        (dict(alpha=1.5), "alpha"),
        (dict(horizon=0), "horizon"),
        (dict(seq=-1), "seq"),
        (dict(agent_id=""), "agent_id"),
        (dict(as_of=datetime(2024, 1, 1)), "timezone"),
        (dict(var_interval=(0.01,)), "pair"),
    ],
)
def test_malformed_estimates_refused_with_reason(keys, ring, make, change, words):
    bad = dataclasses.replace(make("a0", 0.02), **change)
    assert words in (malformation(bad) or "")
    rejection = ring.admit(bad)
    assert rejection is not None and rejection.reason is RejectionReason.MALFORMED
    assert words in str(rejection)
    with pytest.raises(InvalidEstimate, match="cannot sign"):
        sign_estimate(bad, keys["a0"])


def test_rejection_errors_are_the_matching_swarmvar_errors():
    from swarmvar.consensus import Rejection

    assert isinstance(
        rejection_error(Rejection("a", RejectionReason.FORGED, "x")), InvalidSignature
    )
    assert isinstance(
        rejection_error(Rejection("a", RejectionReason.UNSIGNED, "x")), InvalidSignature
    )
    assert isinstance(
        rejection_error(Rejection("a", RejectionReason.REPLAYED, "x")), ReplayedEstimate
    )
    assert isinstance(
        rejection_error(Rejection("a", RejectionReason.UNKNOWN_AGENT, "x")), UnknownAgent
    )


def test_sign_measures_builds_verifiable_estimates(keys, ring, make, sign):
    m = RiskMeasure(
        alpha=0.99, var=0.03, es=0.04, var_interval=(0.025, 0.035), es_interval=(0.035, 0.05)
    )
    out = sign_measures([("a0", m), ("a1", m)], keys, portfolio="spx", horizon=1, as_of=NOW, seq=7)
    assert [ring.admit(e) for e in out] == [None, None]
    assert out[0] == sign_estimate(
        estimate_from_measure("a0", m, portfolio="spx", horizon=1, as_of=NOW, seq=7), keys["a0"]
    )
    with pytest.raises(UnknownAgent):
        sign_measures([("zz", m)], keys, portfolio="spx", horizon=1, as_of=NOW, seq=7)


def test_register_rejects_non_ed25519_key():
    with pytest.raises(InvalidSignature):
        KeyRing().register("a", object())  # type: ignore[arg-type]


def test_admit_all_is_order_independent(keys, ring, make, sign):
    batch = [sign("a0", 0.02, seq=3), sign("a0", 0.021, seq=2)]
    admitted, refused = ring.admit_all(batch)
    assert [e.seq for e in admitted] == [2, 3] and refused == []
    admitted, refused = ring.admit_all([sign("a0", 0.02, seq=3)])
    assert admitted == [] and refused[0].reason is RejectionReason.REPLAYED


def test_screen_changes_nothing_and_commit_is_all_or_nothing(keys, ring, sign):
    batch = [sign("a0", 0.02, seq=4), sign("a1", 0.02, seq=4)]
    admitted, refused = ring.screen(batch)
    assert len(admitted) == 2 and refused == [] and ring.last_seq("a0") is None
    ring.commit(admitted)
    assert ring.last_seq("a0") == 4 and ring.admitted == 2
    # a batch screened before another one overtook it is refused whole at commit
    late, _ = ring.screen([sign("a0", 0.02, seq=6), sign("a1", 0.02, seq=6)])
    ring.admit(sign("a1", 0.02, seq=7))
    with pytest.raises(ReplayedEstimate, match="overtaken"):
        ring.commit(late)
    assert ring.last_seq("a0") == 4 and ring.last_seq("a1") == 7
