"""Property over the ledger's public entry points: a correct result, or a SwarmVarError
(CLI: a message and exit 2, or exit 1 for a failed verification) and nothing stored changed.

Entry points: ``Ledger.add_entry``/``add_entries``/``entry``/``entries``/proofs/
``verify_chain``, ``verify_inclusion``/``verify_consistency``, ``InclusionProof.from_dict``,
``SignedHead.from_dict``, ``import_jsonl`` and the ``swarmvar ledger`` commands.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli.ledger import app
from swarmvar.errors import SwarmVarError
from swarmvar.ledger import (
    EntryKind,
    InclusionProof,
    Ledger,
    SignedHead,
    export_jsonl,
    import_jsonl,
)
from swarmvar.ledger.merkle import HashAlgorithm, verify_consistency, verify_inclusion

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(5, 37)))
FIXED = datetime(2025, 1, 1, tzinfo=UTC)
runner = CliRunner()
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.binary(max_size=8), st.just(object()), st.sampled_from([set(), frozenset({1}), 1j]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none()), inner,
                        max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
KINDS = st.one_of(st.sampled_from(list(EntryKind)), st.sampled_from(
    ["estimate", "genesis", "GENESIS", "nope", "", 3, None]))
INDEXES = st.one_of(st.integers(-50, 50), st.integers(-(2**70), 2**70), st.text(max_size=3),
                    st.floats(allow_nan=True), st.none(), st.booleans())


def _state(ledger: Ledger) -> tuple[int, bytes]:
    return ledger.size, ledger.compute_merkle_root()


def _fresh() -> Ledger:
    led = Ledger.in_memory(signing_key=KEY, clock=lambda: FIXED)
    led.add_entries([(EntryKind.ESTIMATE, {"i": i}) for i in range(9)])
    return led


def _correct_or_refused(ledger: Ledger, call: Any) -> Any:
    before = _state(ledger)
    try:
        return call()
    except SwarmVarError:
        assert _state(ledger) == before
        return None


@SETTINGS
@given(kind=KINDS, data=st.one_of(JSONISH, st.dictionaries(st.text(max_size=5), JSONISH)),
       when=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)),
                      st.datetimes(), st.just(datetime(1, 1, 1, tzinfo=timezone(timedelta(
                          hours=5))))))
def test_add_entry(kind: Any, data: Any, when: datetime | None) -> None:
    led = _fresh()
    got = _correct_or_refused(led, lambda: led.add_entry(kind, data, timestamp=when))
    if got is not None:
        assert led.entry(-1) == got and got.data == json.loads(json.dumps(got.data))
        assert led.verify_chain().ok


@SETTINGS
@given(batch=st.one_of(
    st.lists(st.tuples(KINDS, st.dictionaries(st.text(max_size=5), JSONISH, max_size=3)),
             max_size=30),
    st.lists(JSONISH, max_size=3), JSONISH))
def test_add_entries(batch: Any) -> None:
    led = _fresh()
    got = _correct_or_refused(led, lambda: led.add_entries(batch))
    if got is not None:
        assert got.stop == led.size and led.verify_chain().ok


@SETTINGS
@given(a=INDEXES, b=st.one_of(st.none(), INDEXES))
def test_reads_and_proofs(a: Any, b: Any) -> None:
    led = _fresh()
    for call in (lambda: led.entry(a), lambda: list(led.entries(a, b)),
                 lambda: led.inclusion_proof(a, b), lambda: led.consistency_proof(a, b),
                 lambda: led.compute_merkle_root(a)):
        result = _correct_or_refused(led, call)
        if hasattr(result, "verify"):
            result.verify()


HASHES = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40),
                   st.text(max_size=4), st.none())


@SETTINGS
@given(s1=INDEXES, s2=INDEXES, proof=st.one_of(st.lists(HASHES, max_size=6), HASHES),
       r1=HASHES, r2=HASHES)
def test_proof_verifiers(s1: Any, s2: Any, proof: Any, r1: Any, r2: Any) -> None:
    for call in (lambda: verify_consistency(s1, s2, proof, r1, r2, HashAlgorithm.SHA256),
                 lambda: verify_inclusion(s1, s2, r1, proof, r2, HashAlgorithm.SHA256)):
        try:
            call()
        except SwarmVarError:
            pass


@SETTINGS
@given(d=st.one_of(JSONISH, st.dictionaries(st.sampled_from(
    ["index", "size", "entry_hash", "path", "root", "hash_algorithm", "timestamp",
     "public_key", "signature", "x"]), JSONISH)))
def test_proof_and_head_parsers(d: Any) -> None:
    for parse in (InclusionProof.from_dict, SignedHead.from_dict):
        try:
            parse(d)
        except SwarmVarError:
            pass


def _export(folder: Path) -> bytes:
    with Ledger(folder / "src", signing_key=KEY, clock=lambda: FIXED) as led:
        led.add_entries([(EntryKind.PULSE, {"i": i, "s": "é"}) for i in range(6)])
        export_jsonl(led, folder / "x.jsonl")
    return (folder / "x.jsonl").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 2000), flip=st.integers(0, 2000), junk=st.binary(max_size=30),
       latin=st.booleans())
def test_import_of_damaged_exports(cut: int, flip: int, junk: bytes, latin: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = bytearray(_export(folder))
        if flip < len(raw):
            raw[flip] ^= 0x20
        text = bytes(raw[: max(cut, 1)]) + junk
        if latin:
            text = text.decode("utf-8", "replace").encode("latin-1", "replace")
        (folder / "in.jsonl").write_bytes(text)
        target = folder / "t"
        try:
            with import_jsonl(folder / "in.jsonl", target) as back:
                assert back.verify_chain().ok
        except SwarmVarError:
            assert not (target / "ledger.sqlite").exists()
            assert [p for p in target.glob("*")] == [] if target.exists() else True


COMMANDS = st.sampled_from([
    ["verify"], ["show"], ["show", "{i}"], ["tail", "-n", "{i}"], ["prove", "{i}"],
    ["prove", "{i}", "--size", "{j}"], ["consistency", "{i}", "{j}"], ["head"],
    ["export", "{f}"], ["import", "{f}"], ["verify", "--against", "{f}"],
])
ARGS = st.one_of(st.integers(-20, 20).map(str), st.sampled_from(
    ["", "x", "1e3", "nan", "99999999999999999999999", "-0", " 3", "\x00"]))
FILES = st.sampled_from(["out.jsonl", "missing/dir/out.jsonl", "garbage.jsonl", "dir",
                         "head.json", ""])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=COMMANDS, i=ARGS, j=ARGS, f=FILES)
def test_cli(command: list[str], i: str, j: str, f: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Ledger(folder / "home", signing_key=KEY) as led:
            led.add_entries([(EntryKind.PULSE, {"i": k}) for k in range(12)])
            before = _state(led)
        (folder / "garbage.jsonl").write_bytes(b"\xff\x00 not json")
        (folder / "dir").mkdir()
        (folder / "head.json").write_text('{"size": 3}')
        args = [a.format(i=i, j=j, f=str(folder / f)) for a in command]
        res = runner.invoke(app, [*args, "--home", str(folder / "home")])
        assert res.exit_code in (0, 1, 2), (args, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (
            args, repr(res.exception))
        if res.exit_code == 1:
            assert command[0] == "verify"
        with Ledger(folder / "home", create=False) as led:
            assert _state(led) == before
