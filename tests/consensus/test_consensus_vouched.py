"""An estimate verified once at the trust boundary (``OwnSignatures.vouch``) takes the same
fast path as one this process signed: the very same estimate is neither verified nor
written again (its signing bytes, its ledger record); anything changed in it — a field, the
signature, the ring's key — is written and verified as always, and refused if forged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    KeyRing,
    Policy,
    combine,
    private_key_from_seed,
    sign_estimate,
    signed_bytes,
    signing,
)
from swarmvar.consensus.signing import (
    OwnSignatures,
    RejectionReason,
    estimate_record,
    signing_bytes,
)
from swarmvar.types import Estimate

NOW = datetime(2024, 3, 1, tzinfo=UTC)
KEYS = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(5)}


def _estimate(agent: str, seq: int = 1, **kw: Any) -> Estimate:
    fields: dict[str, Any] = dict(
        agent_id=agent, portfolio="spx", alpha=0.99, horizon=1, var=0.02, es=0.025,
        var_interval=(0.018, 0.022), es_interval=(0.022, 0.028), as_of=NOW, seq=seq)
    fields.update(kw)
    return Estimate(**fields)


class Counting:
    """A ring's public key, counting its verifications."""

    def __init__(self, key: Any, calls: list[bytes]) -> None:
        self.key, self.calls = key, calls

    def verify(self, signature: bytes, message: bytes) -> None:
        self.calls.append(signature)
        self.key.verify(signature, message)


def _counted_ring() -> tuple[KeyRing, list[bytes]]:
    ring = KeyRing({a: k.public_key() for a, k in KEYS.items()})
    calls: list[bytes] = []
    ring._keys = {a: Counting(k, calls) for a, k in ring._keys.items()}  # white box
    return ring, calls


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every estimate whose signing text is written (the direct writer or the dict)."""
    seen: list[str] = []
    direct, general = signed_bytes._payload_text, signed_bytes.canonical_json

    def payload_text(e: Estimate, as_of: str | None = None) -> str | None:
        seen.append(e.agent_id)
        return direct(e, as_of)

    def canonical_json(value: Any) -> bytes:
        seen.append("dict")
        return general(value)

    monkeypatch.setattr(signed_bytes, "_payload_text", payload_text)
    monkeypatch.setattr(signed_bytes, "canonical_json", canonical_json)
    yield seen


def test_a_vouched_estimate_is_not_written_again(written: list[str]) -> None:
    """Counted: the vet's screen writes and verifies each estimate once; the vote's
    screen, combine and the ledger record write nothing more and verify nothing more."""
    theirs = [sign_estimate(_estimate(a), KEYS[a]) for a in sorted(KEYS)]  # another host
    ring, calls = _counted_ring()
    own = OwnSignatures()
    written.clear()
    for e in theirs:  # the spread vet: one at a time, as it screens
        assert ring.screen([e], own=own)[0] == [e]
    assert len(calls) == 5 and sorted(written) == sorted(KEYS)
    assert len(ring.screen(theirs, own=own)[0]) == 5
    records = [estimate_record(e, own) for e in theirs]
    combined = combine(theirs, Policy(f=1), keyring=ring, now=NOW, own=own)
    assert len(calls) == 5 and len(written) == 5  # nothing written or verified again
    # the records are those written from scratch, and the consensus that of a fresh ring
    assert records == [estimate_record(e) for e in theirs]
    fresh = KeyRing({a: k.public_key() for a, k in KEYS.items()})
    assert combined == combine(theirs, Policy(f=1), keyring=fresh, now=NOW)
    # a vouched estimate's bytes are the signing bytes; a signed one's path is unchanged
    assert own.message(theirs[0]) == signing_bytes(theirs[0])
    mine = sign_estimate(_estimate("a0", seq=2), KEYS["a0"], own=own)
    written.clear()
    assert ring.screen([mine], own=own)[0] == [mine] and written == [] and len(calls) == 5


def test_a_vouched_estimate_without_fixed_fields_is_still_admitted_by_its_bytes(
        written: list[str]) -> None:
    """An ``as_of`` whose tzinfo is not a plain ``timezone`` does not fix the bytes: no field
    objects are kept, so each screen writes the bytes again (and admits them, vouched)."""

    class Zone(tzinfo):  # a tzinfo of its own: it could answer differently later
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def dst(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def tzname(self, dt: datetime | None) -> str:
            return "Z"

    e = sign_estimate(_estimate("a1", as_of=datetime(2024, 3, 1, tzinfo=Zone())), KEYS["a1"])
    ring, calls = _counted_ring()
    own = OwnSignatures()
    written.clear()
    for _ in range(3):
        assert ring.screen([e], own=own)[0] == [e]
    assert len(calls) == 1 and written.count("a1") == 3 and own.message(e) is None


FIELDS = {
    "agent_id": st.sampled_from(["a0", "a2", "nobody"]),
    "portfolio": st.sampled_from(["spx", "ndx"]),
    "alpha": st.sampled_from([0.99, 0.975, 0.5]),
    "horizon": st.integers(1, 3),
    "var": st.floats(0.0, 0.03),
    "es": st.floats(0.025, 0.05),
    "var_interval": st.tuples(st.floats(0.0, 0.02), st.floats(0.02, 0.04)),
    "es_interval": st.sampled_from([(0.022, 0.028), (0.02, 0.03)]),
    "as_of": st.sampled_from([NOW, NOW + timedelta(days=1), NOW.astimezone(
        timezone(timedelta(hours=2)))]),
    "seq": st.integers(0, 3),
    "variant_id": st.sampled_from([None, "v1"]),
    "signature": st.binary(min_size=64, max_size=64),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), data=st.data(), in_place=st.booleans(),
       rotate=st.booleans())
def test_a_mutated_vouched_estimate_is_verified_and_refused_if_forged(
        field: str, data: st.DataObject, in_place: bool, rotate: bool) -> None:
    """Property: after an estimate was vouched for, any field changed — in a copy, or in
    place under the frozen dataclass — or the ring's key rotated gives the decision a ring
    without ``own`` gives (full verification): admitted only if the signing bytes, the
    signature and the key are what verified; else refused as forged (or malformed)."""
    e = sign_estimate(_estimate("a0"), KEYS["a0"])
    signature, message = e.signature, signing_bytes(e)
    own = OwnSignatures()
    ring, calls = _counted_ring()
    assert ring.screen([e], own=own)[0] == [e] and len(calls) == 1
    value = data.draw(FIELDS[field], label=field)
    if in_place:  # the very object vouched for, a field swapped
        changed = e
        object.__setattr__(changed, field, value)
    else:
        changed = dataclasses.replace(e, **{field: value})
    if rotate:  # the new key counted too
        ring.register("a0", private_key_from_seed(bytes([99]) * 32).public_key())
        ring._keys["a0"] = Counting(ring._keys["a0"], calls)
    reference = KeyRing({a: k.public_key() for a, k in KEYS.items()})
    if rotate:
        reference.register("a0", private_key_from_seed(bytes([99]) * 32).public_key())
    want = reference.screen([changed])
    got = ring.screen([changed], own=own)
    assert ([x.agent_id for x in got[0]], [r.reason for r in got[1]]) == (
        [x.agent_id for x in want[0]], [r.reason for r in want[1]])
    if got[0]:  # admitted: only the same bytes under the same signature and key
        assert not rotate and changed.signature == signature
        assert signing_bytes(changed) == message and len(calls) == 1  # vouched: no verify
    elif got[1][0].reason is RejectionReason.FORGED:
        assert len(calls) == 2  # verified again, not taken on the vouch
    # the ledger record is never the vouched bytes' unless the estimate still gives them
    if signing.malformation(changed) is None and changed.signature == signature:
        assert estimate_record(changed, own) == estimate_record(changed)
