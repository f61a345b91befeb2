"""Signed tree heads: an Ed25519 signature over (size, root, time, hash algorithm).

A signed head is what a ledger hands to an auditor. Later, a consistency
proof from the head's size to the ledger's current size shows that nothing
recorded before the head was changed, removed or reordered.

The signed message is the canonical JSON of
``{"hash_algorithm", "root" (hex), "size", "timestamp"}``.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..canonical import canonical_json
from ..errors import SwarmVarError
from .merkle import HashAlgorithm


class InvalidHead(SwarmVarError, ValueError):
    """A signed tree head is malformed, its signature fails, or the ledger contradicts it."""


class KeyFileError(SwarmVarError, PermissionError):
    """The ledger's signing key file is unreadable, malformed or readable by others."""


@dataclass(frozen=True)
class SignedHead:
    """A ledger's size and Merkle root at a time, signed with Ed25519.

    Attributes
    ----------
    size : int
        Number of entries covered.
    root : bytes
        Merkle root (32 bytes) of those entries.
    timestamp : str
        UTC ISO 8601 time of signing.
    hash_algorithm : HashAlgorithm
    public_key : bytes
        Raw 32-byte Ed25519 public key of the signer.
    signature : bytes
        64-byte Ed25519 signature over :meth:`message`.
    """

    size: int
    root: bytes
    timestamp: str
    hash_algorithm: HashAlgorithm
    public_key: bytes
    signature: bytes

    def message(self) -> bytes:
        """The signed bytes."""
        return head_message(self.size, self.root, self.timestamp, self.hash_algorithm)

    def verify_signature(self, trusted_key: bytes | None = None) -> None:
        """Check the signature (and, if given, that the signer is ``trusted_key``).

        Raises
        ------
        InvalidHead
        """
        if trusted_key is not None and trusted_key != self.public_key:
            raise InvalidHead("signed head was signed by a different key than the trusted one")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                self.signature, self.message()
            )
        except (_BadSignature, ValueError):
            raise InvalidHead(
                f"signature of the head at size {self.size} does not verify"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
            "hash_algorithm": self.hash_algorithm.value,
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignedHead:
        """Parse :meth:`to_dict` output; raises InvalidHead naming the bad field."""
        try:
            return cls(
                int(d["size"]),
                bytes.fromhex(d["root"]),
                str(d["timestamp"]),
                HashAlgorithm(d["hash_algorithm"]),
                bytes.fromhex(d["public_key"]),
                bytes.fromhex(d["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidHead(f"malformed signed head: {exc!r}") from None


def head_message(size: int, root: bytes, timestamp: str, algorithm: HashAlgorithm) -> bytes:
    """Canonical bytes that a head's signature covers."""
    return canonical_json(
        {
            "hash_algorithm": algorithm.value,
            "root": root.hex(),
            "size": size,
            "timestamp": timestamp,
        }
    )


def sign_head(
    size: int, root: bytes, timestamp: str, algorithm: HashAlgorithm, key: Ed25519PrivateKey
) -> SignedHead:
    """Sign (size, root, timestamp, algorithm) with ``key``."""
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature = key.sign(head_message(size, root, timestamp, algorithm))
    return SignedHead(size, root, timestamp, algorithm, public, signature)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in ``path`` (PEM, PKCS#8), created with mode 0600 if missing.

    Raises
    ------
    KeyFileError
        If the file is readable by group or others, or is not an Ed25519 key.
    """
    path = Path(path)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Write a private temp file, then link it into place: readers never see a partial key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its key
            return load_or_create_key(path)
        finally:
            tmp.unlink()
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"signing key {path} has permissions {mode:o}; it must be private: chmod 600 {path}"
        )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(loaded).__name__}, not an Ed25519 key")
    return loaded
