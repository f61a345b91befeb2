"""Text written once serves twice: a signed estimate's record from its signing bytes.

``estimate_record`` writes the ledger's record of an estimate (payload and
signature) from the signing text; ``canonical_object`` composes such texts;
the ledger stores a ``Canonical`` as written. Each is compared here with the
dict path: ``canonical_text`` of the same values, and the entry (text and
hash) a twin ledger writes from the dict.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.canonical import Canonical, NotCanonical, canonical_object, canonical_text
from swarmvar.consensus import sign_measures
from swarmvar.consensus.signing import OwnSignatures, estimate_record
from swarmvar.errors import InvalidEntry
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.types import Estimate, RiskMeasure

STAMP = datetime(2025, 1, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

# names that try to break the splice: quotes, the key it looks for, escapes, any Unicode
names = st.text(min_size=1, max_size=12) | st.sampled_from(
    [',"var":', '","var":1,"', '\\",\\"var\\":', '"', "\\", "var", "seq", "é€😀", "\u2028"])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def estimates(draw: Any) -> Estimate:
    var = draw(st.floats(min_value=0.0, max_value=10.0, allow_nan=False))
    es = var + draw(st.floats(min_value=0.0, max_value=10.0, allow_nan=False))
    lo, hi = sorted((draw(finite), draw(finite)))
    offset = draw(st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]))
    return Estimate(
        agent_id=draw(names), portfolio=draw(names),
        alpha=draw(st.floats(min_value=0.5, max_value=0.999)),
        horizon=draw(st.integers(1, 10**6)), var=var, es=es, var_interval=(lo, hi),
        es_interval=(lo, hi + 1.0), as_of=datetime(2024, 3, 1, 12, 30, tzinfo=offset),
        seq=draw(st.integers(0, 10**12)), variant_id=draw(st.none() | names),
        signature=draw(st.none() | st.binary(min_size=64, max_size=64)))


def _record_dict(e: Estimate) -> dict[str, Any]:
    d = e.payload()
    d["signature"] = None if e.signature is None else e.signature.hex()
    return d


@settings(max_examples=300, deadline=None)
@given(estimates())
def test_the_record_is_the_canonical_text_of_payload_and_signature(e: Estimate) -> None:
    assert estimate_record(e).text == canonical_text(_record_dict(e))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(names, finite, finite), min_size=1, max_size=4, unique_by=lambda x: x[0]),
       names)
def test_own_estimates_reuse_the_bytes_signed_and_say_the_same(
        rows: list[tuple[str, float, float]], portfolio: str) -> None:
    keys = {a: KEY for a, _, _ in rows}
    own = OwnSignatures()
    measures = [(a, RiskMeasure(0.99, abs(v), abs(v) + abs(w), (abs(v), abs(v) + 1.0),
                                (abs(v), abs(v) + abs(w) + 1.0))) for a, v, w in rows]
    signed = sign_measures(measures, keys, portfolio=portfolio, horizon=1,
                           as_of=datetime(2024, 3, 1, tzinfo=UTC), seq=3, own=own)
    for e in signed:
        assert own.message(e) is not None  # the reuse path is taken
        assert estimate_record(e, own).text == canonical_text(_record_dict(e))
        assert estimate_record(e, own) == estimate_record(e)


def test_odd_fields_take_the_dict_path_and_nan_is_refused() -> None:
    e = Estimate("a", "p", 0.99, 1, 0.02, 0.03, (0.01, 0.02), (0.02, 0.04),
                 datetime(2024, 3, 1, tzinfo=UTC), 1, signature=b"\x01" * 64)
    odd = Estimate(**{**e.__dict__, "var_interval": [0.01, 0.02]})  # a list, not a tuple
    assert estimate_record(odd).text == canonical_text(_record_dict(odd))
    with pytest.raises(NotCanonical):
        estimate_record(Estimate(**{**e.__dict__, "var": float("nan")}))


def test_canonical_object_is_the_canonical_text_of_the_values() -> None:
    records = [{"b": [1.5, None], "a": "x\"y"}, {"z": True}]
    composed = canonical_object({"seq": 7, "estimates": [Canonical(canonical_text(r))
                                                         for r in records],
                                 "portfolio": "é", "levels": (1, 2.5)})
    assert composed.text == canonical_text({"seq": 7, "estimates": records, "portfolio": "é",
                                            "levels": [1, 2.5]})
    assert canonical_text(composed) == composed.text
    with pytest.raises(NotCanonical, match="non-string key"):
        canonical_object({1: 2})  # type: ignore[dict-item]
    with pytest.raises(NotCanonical):  # a Canonical only composes through canonical_object
        canonical_text({"a": Canonical("1")})


def test_the_ledger_stores_a_composed_entry_as_the_dict_would_be_stored(tmp_path: Path) -> None:
    """The same data text and the same chained hash as the dict path, in a twin ledger."""
    when = datetime(2024, 3, 1, tzinfo=UTC)
    measures = [(a, RiskMeasure(0.99, 0.02 + k / 100, 0.03 + k / 100, (0.01, 0.04),
                                (0.02, 0.05))) for k, a in enumerate(["GarchT", "NIG", "x\"y"])]
    own = OwnSignatures()
    signed = sign_measures(measures, {a: KEY for a, _ in measures}, portfolio="sp500",
                           horizon=1, as_of=when, seq=4, own=own)
    composed = canonical_object({"portfolio": "sp500", "seq": 4, "estimates": [
        estimate_record(e, own) for e in signed]})
    plain = {"portfolio": "sp500", "seq": 4, "estimates": [_record_dict(e) for e in signed]}
    assert composed.vouched  # written by vouching writers only: taken as written
    with Ledger(tmp_path / "a") as a, Ledger(tmp_path / "b") as b:
        # the genesis entries differ (creation time): compare the texts, and the hash
        # each ledger gives the other's text on its own chain
        a.add_entries([(EntryKind.ESTIMATE, composed), (EntryKind.ACTION, {"k": 1})],
                      timestamp=STAMP)
        b.add_entries([(EntryKind.ESTIMATE, plain), (EntryKind.ACTION, {"k": 1})],
                      timestamp=STAMP)
        ea, eb = a.entry(1), b.entry(1)
        assert ea.data == eb.data == plain
        rows_a, rows_b = list(a._store.rows(1, 3)), list(b._store.rows(1, 3))
        assert [r[3] for r in rows_a] == [r[3] for r in rows_b] == [
            composed.text, canonical_text({"k": 1})]
        assert a.verify_chain().ok and b.verify_chain().ok
        single = a.add_entry(EntryKind.ESTIMATE, composed, timestamp=STAMP)
        assert single.data == plain


@pytest.mark.parametrize("text, match", [
    ("[1,2]", "JSON object"), ("", "JSON object"), ('{"a":"\udc80"}', "not canonical"),
    ("{" + '"a":"' + "x" * (1 << 20) + '"}', "over the limit"),
    ('{"a":' + "[" * 80 + "]" * 80 + "}", "nests"),
])
def test_a_bad_composed_entry_is_refused_and_nothing_is_written(
        tmp_path: Path, text: str, match: str) -> None:
    with Ledger(tmp_path) as ledger:
        with pytest.raises(InvalidEntry, match=match):
            ledger.add_entries([(EntryKind.ACTION, {"ok": 1}), (EntryKind.ESTIMATE,
                                                               Canonical(text))])
        with pytest.raises(InvalidEntry, match=match):
            ledger.add_entry(EntryKind.ESTIMATE, Canonical(text))
        assert ledger.size == 1


@pytest.mark.parametrize("text", [
    '{"a":1},"index":9,"z":{}',  # two objects glued: an ambiguous hash preimage
    '{"b":1,"a":2}',  # keys out of order
    '{"a": 1}',  # not compact
    '{"a":NaN}',
])
def test_a_hand_made_canonical_must_be_the_canonical_text_it_claims(
        tmp_path: Path, text: str) -> None:
    """Review: only writers that vouch (canonical_object, estimate_record) are taken as
    written; any other Canonical is parsed back and refused unless it is canonical."""
    with Ledger(tmp_path) as ledger:
        with pytest.raises(InvalidEntry, match="not canonical"):
            ledger.add_entry(EntryKind.ACTION, Canonical(text))
        assert ledger.size == 1
        ledger.add_entry(EntryKind.ACTION, Canonical('{"a":2,"b":1}'))  # canonical: stored
        assert ledger.entry(1).data == {"a": 2, "b": 1}


def test_a_composed_entry_holding_a_hand_made_part_is_checked_too(tmp_path: Path) -> None:
    bad = canonical_object({"x": Canonical('{"b":1,"a":2}')})
    good = canonical_object({"x": Canonical('{"a":2,"b":1}'), "y": 1})
    assert not bad.vouched and not good.vouched
    with Ledger(tmp_path) as ledger:
        with pytest.raises(InvalidEntry, match="not canonical"):
            ledger.add_entry(EntryKind.ACTION, bad)
        ledger.add_entry(EntryKind.ACTION, good)
        assert ledger.entry(1).data == {"x": {"a": 2, "b": 1}, "y": 1}
