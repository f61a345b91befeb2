"""Self-contained Merkle proofs as a ledger hands them out, and how to check them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidProof
from .merkle import HashAlgorithm, leaf_hash, verify_consistency, verify_inclusion


def _hex(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise InvalidProof(f"{what} must be a hex string, got {value!r}") from None


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` (with chained hash ``entry_hash``) is leaf ``index`` of the tree of ``size``.

    The Merkle leaf is ``H(0x00 || entry_hash)``; ``path`` is the RFC 6962
    audit path, bottom first; ``root`` the tree head at ``size``.
    """

    index: int
    size: int
    entry_hash: bytes
    path: tuple[bytes, ...]
    root: bytes
    algorithm: HashAlgorithm

    def verify(self, root: bytes | None = None) -> None:
        """Check the proof against ``root`` (default: the root it carries).

        Raises
        ------
        InvalidProof
        """
        verify_inclusion(
            self.index,
            self.size,
            leaf_hash(self.entry_hash, self.algorithm),
            self.path,
            self.root if root is None else root,
            self.algorithm,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "entry_hash": self.entry_hash.hex(),
            "path": [p.hex() for p in self.path],
            "root": self.root.hex(),
            "hash_algorithm": self.algorithm.value,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InclusionProof:
        try:
            return cls(
                int(d["index"]),
                int(d["size"]),
                _hex(d["entry_hash"], "entry_hash"),
                tuple(_hex(p, "path node") for p in d["path"]),
                _hex(d["root"], "root"),
                HashAlgorithm(d["hash_algorithm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidProof):
                raise
            raise InvalidProof(f"malformed inclusion proof: {exc!r}") from None


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``size1`` leaves (root ``root1``) is a prefix of the tree of ``size2``."""

    size1: int
    size2: int
    path: tuple[bytes, ...]
    root1: bytes
    root2: bytes
    algorithm: HashAlgorithm

    def verify(self, root1: bytes | None = None, root2: bytes | None = None) -> None:
        """Check the proof against the given roots (default: the ones it carries).

        Raises
        ------
        InvalidProof
        """
        verify_consistency(
            self.size1,
            self.size2,
            self.path,
            self.root1 if root1 is None else root1,
            self.root2 if root2 is None else root2,
            self.algorithm,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size1": self.size1,
            "size2": self.size2,
            "path": [p.hex() for p in self.path],
            "root1": self.root1.hex(),
            "root2": self.root2.hex(),
            "hash_algorithm": self.algorithm.value,
        }
