"""AES-256-GCM encryption of state chunks at rest.

The key comes from an environment variable or a key file (32 raw bytes, or 64
hex digits, or base64 of 32 bytes). Each chunk gets a fresh 96-bit nonce from
the operating system (a nonce must never repeat under one key, so it cannot
come from a seeded generator) and is authenticated together with its agent,
state version and chunk index, so chunks cannot be swapped between states.
A short key id (a hash of the key) is stored with each state, so that reading
with another key fails with a clear :class:`~swarmvar.evolution.errors.WrongKey`
instead of a decryption error per chunk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CorruptState
from .errors import InvalidKey

KEY_ENV = "SWARMVAR_STATE_KEY"
NONCE_BYTES = 12
TAG_BYTES = 16


@dataclass(frozen=True, repr=False)
class StateKey:
    """A 256-bit AES-GCM key (never printed)."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InvalidKey(f"a state key is 32 bytes, not {len(self.secret)}")

    def __repr__(self) -> str:
        return f"StateKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        """16 hex digits identifying the key without revealing it."""
        return hashlib.sha256(b"swarmvar-state-key\x00" + self.secret).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str | bytes) -> StateKey:
        """A key from 32 raw bytes, 64 hex digits or base64 of 32 bytes."""
        raw = text if isinstance(text, bytes) else text.encode()
        if len(raw) == 32:
            return cls(raw)
        s = raw.strip()
        try:
            if len(s) == 64:
                return cls(binascii.unhexlify(s))
            decoded = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidKey("state key is neither 64 hex digits nor base64 of 32 bytes") from exc
        return cls(decoded)

    @classmethod
    def from_env(cls, name: str = KEY_ENV) -> StateKey | None:
        """The key in environment variable ``name``, or None if it is unset."""
        value = os.environ.get(name)
        if not value:
            return None
        try:
            return cls.parse(value)
        except InvalidKey as exc:
            raise InvalidKey(f"${name}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> StateKey:
        """The key stored in a file."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidKey(f"cannot read key file {path}: {exc.strerror}") from exc
        try:
            return cls.parse(data if len(data) == 32 else data.strip())
        except InvalidKey as exc:
            raise InvalidKey(f"key file {path}: {exc}") from exc

    @classmethod
    def generate(cls) -> StateKey:
        """A fresh random key (from the operating system)."""
        return cls(AESGCM.generate_key(bit_length=256))


def seal(key: StateKey, data: bytes, aad: bytes) -> bytes:
    """nonce || AES-GCM(data) with ``aad`` authenticated."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key.secret).encrypt(nonce, data, aad)


def unseal(key: StateKey, blob: bytes, aad: bytes, where: str) -> bytes:
    """Inverse of :func:`seal`; ``CorruptState`` naming ``where`` if it does not verify."""
    try:
        return AESGCM(key.secret).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise CorruptState(f"{where} does not decrypt with key {key.key_id}") from exc
