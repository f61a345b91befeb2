"""Signed estimates: Ed25519 signatures, a key ring, and admission with reasons.

Every agent holds an Ed25519 key pair. An :class:`~swarmvar.types.Estimate`
is signed over ``canonical_json(estimate.payload())`` (every field but the
signature). A :class:`KeyRing` holds the registered public keys and, per
agent, the highest sequence number it has admitted; :meth:`KeyRing.admit`
checks an estimate and refuses it with a :class:`RejectionReason` when it is
malformed, from an unknown agent, unsigned, forged, or replayed (its ``seq``
does not increase). Refusals are counted per reason. The signing bytes, the
ledger records and :class:`OwnSignatures` are in :mod:`.signed_bytes`
(re-exported here).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..canonical import NotCanonical
from ..errors import (
    InvalidEstimate,
    InvalidSignature,
    ReplayedEstimate,
    UnknownAgent,
)
from ..types import Estimate, RiskMeasure
from .signed_bytes import PAYLOAD_KEYS as PAYLOAD_KEYS  # re-exported: the API stays here
from .signed_bytes import OwnSignatures as OwnSignatures
from .signed_bytes import _message, _quote
from .signed_bytes import estimate_record as estimate_record
from .signed_bytes import signing_bytes as signing_bytes

SIGNATURE_BYTES = 64

#: Largest |VaR|, |ES| or interval bound an estimate may carry: far beyond any
#: loss in any unit, and small enough that squares and sums of squares in the
#: consensus (spreads, interval widening) stay finite (1e154 squared overflows).
MAX_MAGNITUDE = 1e100

_NUMBER_NAMES = ("alpha", "var", "es", "var_interval[0]", "var_interval[1]", "es_interval[0]",
                 "es_interval[1]")


class RejectionReason(Enum):
    """Why an estimate was refused (the value is the short text shown to people)."""

    MALFORMED = "malformed"
    UNKNOWN_AGENT = "unknown agent"
    UNSIGNED = "unsigned"
    FORGED = "forged"
    REPLAYED = "replayed"
    MISMATCHED = "mismatched target"
    STALE = "stale"


@dataclass(frozen=True)
class Rejection:
    """One refused estimate: who, why, and the detail a person needs to act on it."""

    agent_id: str
    reason: RejectionReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


_ERRORS: Mapping[RejectionReason, type[InvalidEstimate]] = {
    RejectionReason.UNSIGNED: InvalidSignature,
    RejectionReason.FORGED: InvalidSignature,
    RejectionReason.REPLAYED: ReplayedEstimate,
}


def rejection_error(rejection: Rejection) -> InvalidEstimate | UnknownAgent:
    """The :class:`~swarmvar.errors.SwarmVarError` matching a rejection (to raise it)."""
    message = f"estimate from agent {rejection.agent_id!r} refused, {rejection}"
    if rejection.reason is RejectionReason.UNKNOWN_AGENT:
        return UnknownAgent(message)
    return _ERRORS.get(rejection.reason, InvalidEstimate)(message)


def malformation(estimate: Estimate) -> str | None:
    """Say what is structurally wrong with an estimate, or ``None`` if nothing is.

    Checked: agent id and portfolio are non-empty strings; ``0 < alpha < 1``;
    ``horizon >= 1``; ``seq >= 0``; VaR, ES and the four interval bounds are
    finite; ``VaR >= 0``; ``ES >= VaR``; each interval has ``lower <= upper``;
    ``as_of`` is a timezone-aware datetime (data times are compared across
    agents, so naive times are ambiguous); every number's magnitude is at
    most :data:`MAX_MAGNITUDE`. Anything that is not an ``Estimate`` is
    malformed.
    """
    if type(estimate) is Estimate and _plainly_valid(estimate):
        return None  # the common case in one pass; anything else is told apart below
    if not isinstance(estimate, Estimate):
        return f"not an Estimate (got {type(estimate).__name__})"
    if not isinstance(estimate.agent_id, str) or not estimate.agent_id:
        return "agent_id must be a non-empty string"
    if not isinstance(estimate.portfolio, str) or not estimate.portfolio:
        return "portfolio must be a non-empty string"
    if isinstance(estimate.horizon, bool) or not isinstance(estimate.horizon, int):
        return f"horizon must be an int, got {estimate.horizon!r}"
    if isinstance(estimate.seq, bool) or not isinstance(estimate.seq, int) or estimate.seq < 0:
        return f"seq must be a non-negative int, got {estimate.seq!r}"
    if estimate.horizon < 1:
        return f"horizon must be >= 1, got {estimate.horizon}"
    for name, interval in (
        ("var_interval", estimate.var_interval),
        ("es_interval", estimate.es_interval),
    ):
        if not isinstance(interval, (tuple, list)) or len(interval) != 2:
            return f"{name} must be a (lower, upper) pair, got {interval!r}"
    var_lo, var_hi = estimate.var_interval
    es_lo, es_hi = estimate.es_interval
    numbers = (estimate.alpha, estimate.var, estimate.es, var_lo, var_hi, es_lo, es_hi)
    plain = True
    for v in numbers:  # a loop, not all(genexpr): this runs for every estimate of every beat
        if type(v) is not float or not -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
            plain = False
            break
    if not plain:
        for name, value in zip(_NUMBER_NAMES, numbers, strict=True):  # say which, and why
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{name} must be a number, got {value!r}"
            if not math.isfinite(value):
                return f"{name} is {value!r}; VaR/ES fields must be finite"
            if abs(value) > MAX_MAGNITUDE:
                return f"{name} is {value!r}; its magnitude is beyond {MAX_MAGNITUDE:g}"
    if not 0.0 < estimate.alpha < 1.0:
        return f"alpha must be in (0, 1), got {estimate.alpha}"
    if estimate.var < 0.0:
        return f"VaR is a positive loss, got {estimate.var}"
    if estimate.es < estimate.var:
        return f"ES ({estimate.es}) is below VaR ({estimate.var}); ES >= VaR always"
    for name, (lower, upper) in (("var", estimate.var_interval), ("es", estimate.es_interval)):
        if lower > upper:
            return f"{name}_interval is inverted ({lower} > {upper})"
    if not isinstance(estimate.as_of, datetime) or estimate.as_of.utcoffset() is None:
        return "as_of must be a timezone-aware datetime"
    if estimate.variant_id is not None and not isinstance(estimate.variant_id, str):
        return "variant_id must be a string or None"
    return None


def _plainly_valid(e: Estimate) -> bool:
    """True when every check of :func:`malformation` passes on exact types (one pass).

    Exact ``str``/``int``/``float``/``tuple``/``datetime`` fields only (what
    agents produce); a False here decides nothing: :func:`malformation`'s
    checks then run one by one and say which failed.
    """
    vi, ei, variant = e.var_interval, e.es_interval, e.variant_id
    if not (type(e.agent_id) is str and e.agent_id and type(e.portfolio) is str
            and e.portfolio and type(e.horizon) is int and e.horizon >= 1
            and type(e.seq) is int and e.seq >= 0 and type(vi) is tuple and len(vi) == 2
            and type(ei) is tuple and len(ei) == 2 and type(e.as_of) is datetime
            and (variant is None or type(variant) is str)):
        return False
    alpha, var, es = e.alpha, e.var, e.es
    (var_lo, var_hi), (es_lo, es_hi) = vi, ei
    top = MAX_MAGNITUDE
    return (type(alpha) is float and type(var) is float and type(es) is float
            and type(var_lo) is float and type(var_hi) is float and type(es_lo) is float
            and type(es_hi) is float and 0.0 < alpha < 1.0 and 0.0 <= var <= es <= top
            and -top <= var_lo <= var_hi <= top and -top <= es_lo <= es_hi <= top
            and e.as_of.utcoffset() is not None)


def sign_estimate(estimate: Estimate, private_key: Ed25519PrivateKey, *,
                  own: OwnSignatures | None = None) -> Estimate:
    """Return a copy of ``estimate`` carrying an Ed25519 signature by ``private_key``.

    With ``own``, the signature is remembered there (see :class:`OwnSignatures`).

    Raises
    ------
    InvalidEstimate
        If the estimate is malformed (a malformed estimate is never signed).
    """
    return _sign(estimate, private_key, own, None, fresh=False)


def _sign(estimate: Estimate, private_key: Ed25519PrivateKey, own: OwnSignatures | None,
          as_of: str | None, *, fresh: bool) -> Estimate:
    """:func:`sign_estimate`; ``as_of`` as in :func:`_payload_text` (the same ``as_of`` object).

    ``fresh``: ``estimate`` was just built by the caller and nobody else holds
    it, so it takes its signature in place instead of being copied.
    """
    problem = malformation(estimate)
    if problem is not None:
        raise InvalidEstimate(f"cannot sign estimate from {estimate.agent_id!r}: {problem}")
    message, fields = _message(estimate, as_of)
    if own is None:
        signature = private_key.sign(message)
    else:  # the field objects too, if they fix the bytes: its own combine admits it by them
        signature = own.sign(message, private_key, fields=fields)
    if type(estimate) is not Estimate:
        return dataclasses.replace(estimate, signature=signature)
    e = estimate
    if fresh:  # built by sign_measures a moment ago and held by no one else
        object.__setattr__(e, "signature", signature)
        return e
    # dataclasses.replace's field walk costs twice this
    return Estimate(agent_id=e.agent_id, portfolio=e.portfolio, alpha=e.alpha,
                    horizon=e.horizon, var=e.var, es=e.es, var_interval=e.var_interval,
                    es_interval=e.es_interval, as_of=e.as_of, seq=e.seq,
                    variant_id=e.variant_id, signature=signature)


def estimate_from_measure(
    agent_id: str,
    measure: RiskMeasure,
    *,
    portfolio: str,
    horizon: int,
    as_of: datetime,
    seq: int,
    variant_id: str | None = None,
) -> Estimate:
    """Build an unsigned :class:`~swarmvar.types.Estimate` from an agent's RiskMeasure."""
    return Estimate(
        agent_id=agent_id,
        portfolio=portfolio,
        alpha=float(measure.alpha),
        horizon=int(horizon),
        var=float(measure.var),
        es=float(measure.es),
        var_interval=(float(measure.var_interval[0]), float(measure.var_interval[1])),
        es_interval=(float(measure.es_interval[0]), float(measure.es_interval[1])),
        as_of=as_of,
        seq=int(seq),
        variant_id=variant_id,
    )


def sign_measures(
    measures: Sequence[tuple[str, RiskMeasure]],
    private_keys: Mapping[str, Ed25519PrivateKey],
    *,
    portfolio: str,
    horizon: int,
    as_of: datetime,
    seq: int,
    variant_ids: Mapping[str, str] | None = None,
    own: OwnSignatures | None = None,
) -> list[Estimate]:
    """Turn ``(agent_id, RiskMeasure)`` pairs into signed estimates, one per pair.

    With ``own``, every signature is remembered there (see :class:`OwnSignatures`).

    Raises
    ------
    UnknownAgent
        If an agent has no private key in ``private_keys``.
    """
    signed = []
    when = (_quote(as_of.isoformat())  # written once for the batch (one as_of object)
            if type(as_of) is datetime and type(as_of.tzinfo) is timezone else None)
    for agent_id, measure in measures:
        if agent_id not in private_keys:
            raise UnknownAgent(f"no private key for agent {agent_id!r}; generate one first")
        estimate = estimate_from_measure(
            agent_id,
            measure,
            portfolio=portfolio,
            horizon=horizon,
            as_of=as_of,
            seq=seq,
            variant_id=(variant_ids or {}).get(agent_id),
        )
        signed.append(_sign(estimate, private_keys[agent_id], own, when, fresh=True))
    return signed


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key from a 32-byte seed (for tests and reproducible demos)."""
    if len(seed) != 32:
        raise InvalidEstimate(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


class KeyRing:
    """Registered agents' public keys, plus replay state and refusal counters.

    State: per agent, the highest admitted ``seq``; per reason, how many
    estimates were refused. All methods are thread-safe (one lock).
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._raw: dict[str, bytes] = {}  # each key's 32 raw bytes (for OwnSignatures)
        self._last_seq: dict[str, int] = {}
        self._refused: Counter[RejectionReason] = Counter()
        self._admitted = 0
        for agent_id, key in (keys or {}).items():
            self.register(agent_id, key)

    def register(self, agent_id: str, public_key: Ed25519PublicKey) -> None:
        """Register (or rotate) an agent's public key; replay state is kept."""
        if not isinstance(agent_id, str) or not agent_id:
            raise InvalidEstimate("agent_id must be a non-empty string")
        if not isinstance(public_key, Ed25519PublicKey):
            raise InvalidSignature(
                f"public key for {agent_id!r} must be an Ed25519PublicKey, "
                f"got {type(public_key).__name__}"
            )
        raw = public_key.public_bytes_raw()
        with self._lock:
            self._keys[agent_id] = public_key
            self._raw[agent_id] = raw

    @property
    def agents(self) -> tuple[str, ...]:
        """Registered agent ids, sorted."""
        with self._lock:
            return tuple(sorted(self._keys))

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def __contains__(self, agent_id: object) -> bool:
        with self._lock:
            return agent_id in self._keys

    def last_seq(self, agent_id: str) -> int | None:
        """Highest admitted ``seq`` of an agent, ``None`` if none yet."""
        with self._lock:
            return self._last_seq.get(agent_id)

    @property
    def refused(self) -> Mapping[RejectionReason, int]:
        """Count of refused estimates per reason (a copy)."""
        with self._lock:
            return dict(self._refused)

    @property
    def admitted(self) -> int:
        """Count of admitted estimates."""
        with self._lock:
            return self._admitted

    def check(self, estimate: Estimate) -> Rejection | None:
        """Verify without changing any state: ``None`` if it would be admitted."""
        with self._lock:
            return self._check_locked(estimate, self._last_seq)

    def _check_locked(self, estimate: Estimate, last_seq: Mapping[str, int],
                      own: OwnSignatures | None = None) -> Rejection | None:
        problem = malformation(estimate)
        agent = (estimate.agent_id if problem is None and type(estimate.agent_id) is str
                 and len(estimate.agent_id) <= 200
                 else str(getattr(estimate, "agent_id", "?"))[:200])
        if problem is not None:
            return Rejection(agent, RejectionReason.MALFORMED, problem)
        key = self._keys.get(estimate.agent_id)
        if key is None:
            return Rejection(agent, RejectionReason.UNKNOWN_AGENT, "no registered public key")
        signature = estimate.signature
        if signature is None:
            return Rejection(agent, RejectionReason.UNSIGNED, "no signature")
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            return Rejection(agent, RejectionReason.FORGED, "signature is not 64 bytes")
        try:
            raw = self._raw[estimate.agent_id]
            # this process's own estimate, the very objects it signed: no bytes, no verify
            if own is None or not own.signed(estimate, raw):
                message, fields = _message(estimate)
                if own is None or not own.made(signature, message, raw):
                    key.verify(signature, message)
                    if own is not None:  # crossed the trust boundary once (vouch), and
                        # its field objects, if they fix the bytes: admitted by them next
                        own.vouch(signature, message, raw, fields=fields)
        except _CryptoInvalidSignature:
            return Rejection(agent, RejectionReason.FORGED, "signature does not verify")
        except NotCanonical as err:
            return Rejection(agent, RejectionReason.MALFORMED, str(err))
        last = last_seq.get(estimate.agent_id)
        if last is not None and estimate.seq <= last:
            return Rejection(
                agent,
                RejectionReason.REPLAYED,
                f"seq {estimate.seq} does not exceed last admitted seq {last}",
            )
        return None

    def admit(self, estimate: Estimate) -> Rejection | None:
        """Verify and, if valid, record its ``seq``; count a refusal otherwise."""
        admitted, refused = self.admit_all([estimate])
        return refused[0] if refused else None

    def count(self, reason: RejectionReason) -> None:
        """Count a refusal decided outside the key ring (mismatched target, stale)."""
        with self._lock:
            self._refused[reason] += 1

    def screen(self, estimates: Iterable[Estimate], *, own: OwnSignatures | None = None
               ) -> tuple[list[Estimate], list[Rejection]]:
        """Verify a batch in ``seq`` order, recording no seq; return (admitted, refused).

        With ``own``, an estimate whose exact signing bytes this process
        signed (or already verified) with the ring's key for its agent is not
        verified again (:class:`OwnSignatures`: verify at trust boundaries);
        every other check applies to it. A signature from outside that
        verifies is recorded into ``own`` (:meth:`OwnSignatures.vouch`), so
        the very same bytes and key are not verified twice; the key ring's
        seqs and refusal counts change only at :meth:`commit`.

        Estimates are taken in increasing ``seq`` (stable), so arrival order
        within a batch does not matter: an agent's seq 3 and seq 2 both pass
        (``combine`` then keeps the newest), and a repeated seq is refused as
        replayed. Nothing changes until :meth:`commit`, so a caller that
        fails afterwards (e.g. ``combine`` refusing a stale consensus) leaves
        the key ring as it was.
        """
        admitted: list[Estimate] = []
        refused: list[Rejection] = []
        def seq_of(e: object) -> int:
            seq = getattr(e, "seq", None)
            return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1

        ordered = sorted(estimates, key=seq_of)
        with self._lock:
            seen = dict(self._last_seq)
            for estimate in ordered:
                rejection = self._check_locked(estimate, seen, own)
                if rejection is None:
                    seen[estimate.agent_id] = estimate.seq
                    admitted.append(estimate)
                else:
                    refused.append(rejection)
        return admitted, refused

    def commit(self, admitted: Iterable[Estimate], refused: Iterable[Rejection] = ()) -> None:
        """Record screened estimates' seqs and count refusals, all or nothing.

        Raises
        ------
        ReplayedEstimate
            If another batch recorded a seq at or above one of these since
            they were screened (nothing is recorded then).
        """
        batch = list(admitted)
        with self._lock:
            latest: dict[str, int] = {}
            for e in batch:
                last = self._last_seq.get(e.agent_id)
                if last is not None and e.seq <= last:
                    raise ReplayedEstimate(
                        f"estimate from {e.agent_id!r} with seq {e.seq} was overtaken by seq "
                        f"{last} admitted since it was screened"
                    )
                latest[e.agent_id] = max(e.seq, latest.get(e.agent_id, e.seq))
            self._last_seq.update(latest)
            self._admitted += len(batch)
            for rejection in refused:
                self._refused[rejection.reason] += 1

    def admit_all(self, estimates: Iterable[Estimate]) -> tuple[list[Estimate], list[Rejection]]:
        """Screen a batch and commit it at once; return (admitted, refused) (see :meth:`screen`)."""
        with self._lock:  # re-entrant: screen and commit as one step
            admitted, refused = self.screen(estimates)
            self.commit(admitted, refused)
        return admitted, refused
