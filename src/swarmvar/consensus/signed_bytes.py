"""The bytes an estimate's signature covers, its ledger record, and the signatures this
process made or verified over them.

:func:`signing_bytes` writes an :class:`~swarmvar.types.Estimate`'s signing
bytes (canonical JSON of every field but the signature) directly when its
fields are plain, through :func:`~swarmvar.canonical.canonical_json`
otherwise; :func:`estimate_record` writes its ledger record from those bytes;
:class:`OwnSignatures` remembers the signatures this process made (or
verified once at a trust boundary) with the bytes, the key and, where they fix
the bytes, the field objects, so :class:`~.signing.KeyRing` and the ledger
need not write or verify them again. Signing and the key ring are in
:mod:`.signing`, which re-exports these names.
"""

from __future__ import annotations

import json.encoder
import sys
import threading
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..canonical import Canonical, canonical_json, canonical_text
from ..errors import InvalidParameter
from ..types import Estimate

_FLOAT_MAX = sys.float_info.max

#: The payload's keys in canonical (sorted) order: :func:`_payload_text` writes them.
PAYLOAD_KEYS = ("agent_id", "alpha", "as_of", "es", "es_interval", "horizon", "portfolio",
                "seq", "var", "var_interval", "variant_id")
#: Ints written directly by :func:`_payload_text` (longer ones take the general path).
_SHORT_INT = 10**18
_quote = json.encoder.encode_basestring  # the C encoder's own string writer (ensure_ascii off)


def _payload_text(e: Estimate, as_of: str | None = None) -> str | None:
    """``canonical_text(e.payload())`` written directly, or ``None`` when unsure.

    ``as_of``, if given, is ``_quote(e.as_of.isoformat())`` already written
    (a batch of estimates sharing one ``as_of`` object writes it once).

    Only exact ``str``/``int``/finite ``float``/``datetime`` fields take this
    path (what every agent's estimate holds); the text is what the C JSON
    encoder writes for them with sorted keys: ``repr`` for floats and ints,
    the encoder's own string escaping (tested equal on generated estimates).
    Anything else returns ``None`` and goes through :func:`canonical_json`,
    which names what is wrong.
    """
    vi, ei, variant = e.var_interval, e.es_interval, e.variant_id
    if (type(e.agent_id) is not str or type(e.portfolio) is not str
            or type(e.horizon) is not int or type(e.seq) is not int
            or not -_SHORT_INT < e.horizon < _SHORT_INT or not -_SHORT_INT < e.seq < _SHORT_INT
            or type(e.as_of) is not datetime or (variant is not None and type(variant) is not str)
            or type(vi) is not tuple or type(ei) is not tuple or len(vi) != 2 or len(ei) != 2):
        return None
    numbers = (e.alpha, e.var, e.es, vi[0], vi[1], ei[0], ei[1])
    for v in numbers:
        if type(v) is not float or not -_FLOAT_MAX <= v <= _FLOAT_MAX:  # NaN, inf: general path
            return None
    alpha, var, es, var_lo, var_hi, es_lo, es_hi = map(float.__repr__, numbers)
    if as_of is None:
        as_of = _quote(e.as_of.isoformat())
    return (f'{{"agent_id":{_quote(e.agent_id)},"alpha":{alpha},'
            f'"as_of":{as_of},"es":{es},"es_interval":[{es_lo},{es_hi}],'
            f'"horizon":{e.horizon},"portfolio":{_quote(e.portfolio)},"seq":{e.seq},'
            f'"var":{var},"var_interval":[{var_lo},{var_hi}],'
            f'"variant_id":{"null" if variant is None else _quote(variant)}}}')


def _signed_fields(e: Estimate) -> tuple[object, ...]:
    """The objects an estimate's signing bytes are written from (every field but the signature)."""
    return (e.agent_id, e.portfolio, e.alpha, e.horizon, e.var, e.es, e.var_interval,
            e.es_interval, e.as_of, e.seq, e.variant_id)


def signing_bytes(estimate: Estimate) -> bytes:
    """The exact bytes an estimate's signature covers (canonical JSON of its payload)."""
    return _message(estimate)[0]


def _message(estimate: Estimate, as_of: str | None = None
             ) -> tuple[bytes, tuple[object, ...] | None]:
    """:func:`signing_bytes`, and the field objects they were written from if those fix them.

    The fields (taken once, before the text is written) are given when the
    bytes were written by :func:`_payload_text`'s direct path (exact
    ``str``/``int``/``float``/``tuple``/``datetime`` fields) from an exact
    :class:`~swarmvar.types.Estimate` whose ``as_of`` carries a fixed-offset
    ``timezone`` (a tzinfo subclass could answer ``utcoffset`` differently
    later): then the very same field objects always give the same bytes, and
    :class:`OwnSignatures` may remember them. ``as_of`` as in :func:`_payload_text`.
    """
    fields = _signed_fields(estimate)
    text = _payload_text(estimate, as_of)
    if text is not None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: canonical_json says so
            pass
        else:
            fixed = (type(estimate) is Estimate and type(estimate.as_of) is datetime
                     and type(estimate.as_of.tzinfo) is timezone)
            return data, fields if fixed else None
    return canonical_json(estimate.payload()), None


def estimate_record(estimate: Estimate, own: OwnSignatures | None = None) -> Canonical:
    """The ledger's record of an estimate: canonical JSON of its payload and its signature.

    The text of ``canonical_text({**estimate.payload(), "signature": hex})``
    (``null`` when unsigned), written from the signing bytes: the payload's
    keys are sorted and ``"signature"`` sorts between ``"seq"`` and ``"var"``,
    so the record is the signing text with ``"signature":...,`` inserted
    before the one ``,"var":`` outside a string (a JSON string cannot hold
    an unescaped quote). With ``own``, an estimate this process signed or
    verified once (its very field objects, :meth:`OwnSignatures.signed`,
    :meth:`OwnSignatures.vouch`) reuses the bytes signed or verified, and no
    float is written again. Tested equal on generated estimates.

    Raises
    ------
    NotCanonical
        A field with no canonical JSON form (NaN, a non-JSON object).
    """
    signature = estimate.signature
    sig = "null" if signature is None else f'"{signature.hex()}"'
    message = None
    if own is not None and signature is not None:
        message = own.message(estimate)
    if message is None:
        text = _payload_text(estimate)
        if text is None:  # the general path: the dict, encoded as the ledger would
            payload = estimate.payload()
            payload["signature"] = None if signature is None else signature.hex()
            return Canonical(canonical_text(payload), vouched=True)
    else:
        text = message.decode("utf-8")
    cut = text.index(',"var":')
    return Canonical(f'{text[:cut]},"signature":{sig}{text[cut:]}', vouched=True)


class OwnSignatures:
    """The signatures this process made (or verified) lately, with the exact bytes and key
    each covers.

    Verify at trust boundaries: an estimate that arrives from outside (the
    mesh, a service POST, a ledger audit) is always verified. Inside one
    process the runtime signs its agents' estimates and combines them a few
    microseconds later; checking those signatures again would only test the
    Ed25519 library against itself. So :meth:`~.signing.KeyRing.screen` (and
    ``combine``) given an ``OwnSignatures`` admits an estimate without
    re-verifying when, and only when, this process signed exactly its
    signing bytes with the private key whose public key the ring holds for
    that agent, or already verified those very bytes with that key once
    (:meth:`vouch`: an estimate from outside is verified when it arrives,
    not again when it is combined; the bytes and the key are compared, so
    any change to the estimate or a rotated key falls back to verification). Every other
    check — malformed, unknown agent, unsigned, replayed — still applies,
    and the signatures are still made and ledgered for anyone outside to
    verify. At most ``limit`` signatures are remembered (oldest dropped).
    """

    def __init__(self, limit: int = 1024) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidParameter(f"limit must be an int >= 1, got {limit!r}")
        self._limit = limit
        self._lock = threading.Lock()
        self._made: dict[bytes, tuple[bytes, bytes]] = {}
        #: signature -> the field objects of the estimate signed (see :meth:`signed`)
        self._fields: dict[bytes, tuple[object, ...]] = {}
        self._public: dict[int, tuple[Ed25519PrivateKey, bytes]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._made)

    def __getstate__(self) -> dict[str, object]:
        """Copied or pickled (a swarm deep-copied for a trial beat, shipped to a worker):
        the remembered signatures go along; the lock, the key cache and the signed
        estimates' field objects do not (a copy's estimates are other objects: they are
        admitted by their bytes, :meth:`made`)."""
        with self._lock:
            return {"limit": self._limit, "made": dict(self._made)}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._limit = int(state["limit"])  # type: ignore[call-overload]
        self._lock = threading.Lock()
        self._made = dict(state["made"])  # type: ignore[call-overload]
        self._fields = {}
        self._public = {}

    def sign(self, message: bytes, private_key: Ed25519PrivateKey, *,
             fields: tuple[object, ...] | None = None) -> bytes:
        """Sign ``message`` with ``private_key`` and remember it.

        ``fields``: the field objects of the estimate ``message`` was written
        from, exact immutable types only (see :meth:`signed`; internal to
        :func:`~.signing.sign_estimate`).
        """
        signature = private_key.sign(message)
        with self._lock:
            held = self._public.get(id(private_key))
            if held is None or held[0] is not private_key:
                held = (private_key, private_key.public_key().public_bytes_raw())
                if len(self._public) >= self._limit:
                    self._public.clear()
                self._public[id(private_key)] = held
            self._remember_locked(signature, message, held[1], fields)
        return signature

    def _remember_locked(self, signature: bytes, message: bytes, public_raw: bytes,
                         fields: tuple[object, ...] | None = None) -> None:
        """Keep ``signature`` over ``message`` by ``public_raw`` (and the field objects
        ``message`` was written from, if given), the oldest dropped past the limit (the
        caller holds the lock). Field objects kept for other bytes or another key under
        the same signature are dropped: they never answer for what they were not written
        into."""
        if fields is not None:
            self._fields[signature] = fields
        elif self._made.get(signature) != (message, public_raw):
            self._fields.pop(signature, None)
        self._made[signature] = (message, public_raw)
        while len(self._made) > self._limit:
            oldest = next(iter(self._made))
            del self._made[oldest]
            self._fields.pop(oldest, None)

    def _held_for(self, estimate: Estimate) -> tuple[bytes, bytes] | None:
        """``(message, public key)`` remembered under ``estimate``'s signature if the
        estimate is built of the very field objects remembered with it, else None."""
        signature = estimate.signature
        with self._lock:
            fields = self._fields.get(signature)  # type: ignore[arg-type]
            held = self._made.get(signature) if fields is not None else None  # type: ignore[arg-type]
        if held is None or fields is None:
            return None
        for a, b in zip(fields, _signed_fields(estimate), strict=True):
            if a is not b:
                return None
        return held

    def message(self, estimate: Estimate) -> bytes | None:
        """The bytes signed for ``estimate`` if it is built of the very field objects this
        process signed or verified under its signature (:meth:`signed`, any key), else
        None."""
        held = self._held_for(estimate)
        return None if held is None else held[0]

    def signed(self, estimate: Estimate, public_raw: bytes) -> bool:
        """True if ``estimate`` is built of the very field objects of an estimate this
        process signed into its signature with the key ``public_raw``, or verified
        under it with that key (:meth:`vouch`).

        The same objects give the same signing bytes without writing them again:
        only estimates whose fields are exact immutable types (``str``, ``int``,
        ``float``, tuples of floats, a ``datetime`` with a ``timezone``) are
        remembered (:func:`~.signing.sign_estimate`, :meth:`~.signing.KeyRing.screen`), and their
        bytes are a function of those values alone. Anything else — another
        object with equal values (a deep copy, one parsed again), a changed
        field — answers False, and :meth:`made` compares bytes.
        """
        held = self._held_for(estimate)
        return held is not None and held[1] == public_raw

    def made(self, signature: bytes, message: bytes, public_raw: bytes) -> bool:
        """True if this process signed exactly ``message`` with the key ``public_raw`` into
        it, or verified it so (:meth:`vouch`)."""
        with self._lock:
            return self._made.get(signature) == (message, public_raw)

    def vouch(self, signature: bytes, message: bytes, public_raw: bytes, *,
              fields: tuple[object, ...] | None = None) -> None:
        """Remember that ``signature`` over ``message`` verified with the key ``public_raw``.

        Called by :meth:`~.signing.KeyRing.screen` (given this object) after a signature
        from outside verified: the trust boundary was crossed once. Ed25519
        verification is a function of those three byte strings, so a later
        screen of the very same bytes and key (a spread portfolio's group
        estimate, vetted, then combined) is admitted by :meth:`made` without
        verifying again; any other bytes or key are verified as always.

        ``fields``: the field objects of the estimate ``message`` was written
        from, exact immutable types only (as :meth:`sign` takes them; internal
        to :meth:`~.signing.KeyRing.screen`): then that very estimate is admitted by
        :meth:`signed` and its ledger record written from ``message``
        (:func:`estimate_record`) with no bytes written again, as for one this
        process signed. A changed field is another object, so it is written and
        verified as always.
        """
        with self._lock:
            self._remember_locked(signature, message, public_raw, fields)
