"""API keys: stored hashed with scrypt, each with a role; checked once, then cached.

A key reads ``sv_<id>_<secret>``: the id (8 hex digits) is public and names
the key in logs and in the ledger; the secret (32 random bytes, base64url)
is shown once, at creation. The key file (JSON, mode 0600) holds per key its
id, role, scrypt salt and hash, rate limit and whether it was revoked, so it
can be mounted from a Kubernetes Secret. scrypt costs ~50 ms by design, so a
verified key is remembered (by the SHA-256 of the whole key, never the key)
until the file changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import InvalidParameter, KeyFileUnreadable, Unauthenticated

#: scrypt parameters (RFC 7914): n = 2**14, r = 8, p = 1, 32-byte output.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
_PREFIX = "sv"
_MAX_CACHE = 1024


class Role(Enum):
    """What a key may do; each role includes the ones below it."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ("reader", "writer", "admin").index(self.value)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class ApiKey:
    """One stored key (no secret): id, role, rate limit (requests/s, 0 = unlimited)."""

    id: str
    role: Role
    salt: str
    digest: str
    created: str
    rate: float = 50.0
    burst: int = 100
    revoked: str | None = None
    name: str = ""

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["role"] = self.role.value
        return d

    @classmethod
    def from_json(cls, d: dict[str, object]) -> ApiKey:
        return cls(id=str(d["id"]), role=Role(d["role"]), salt=str(d["salt"]),
                   digest=str(d["digest"]), created=str(d["created"]),
                   rate=float(d.get("rate", 50.0)),  # type: ignore[arg-type]
                   burst=int(d.get("burst", 100)),  # type: ignore[call-overload]
                   revoked=None if d.get("revoked") is None else str(d["revoked"]),
                   name=str(d.get("name", "")))


def _scrypt(secret: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(secret)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parse_role(text: str) -> Role:
    try:
        return Role(text.lower())
    except ValueError:
        raise InvalidParameter(
            f"unknown role {text!r}; use one of: reader, writer, admin") from None


class KeyFile:
    """The key file: create, list and revoke keys, and check presented keys.

    Thread-safe (one lock); re-reads the file when its modification time or
    size changes, so ``swarmvar keys revoke`` takes effect on a running server
    within one request.
    """

    def __init__(self, path: str | os.PathLike[str],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._verified: dict[bytes, str] = {}

    # --- file -------------------------------------------------------------

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._verified, self._stamp = {}, {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self.path.read_text())
            keys = {k["id"]: ApiKey.from_json(k) for k in raw["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileUnreadable(f"the key file {self.path} is unreadable ({exc}); "
                                    "restore it or create keys again") from exc
        self._keys, self._verified, self._stamp = keys, {}, stamp

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        text = json.dumps({"keys": [k.to_json() for k in keys.values()]}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._stamp = None

    # --- admin --------------------------------------------------------------

    def create(self, role: Role, *, rate: float = 50.0, burst: int = 100,
               name: str = "") -> tuple[ApiKey, str]:
        """A new key of ``role``: returns the stored record and the full key (shown once).

        Raises
        ------
        InvalidParameter
            A rate that is NaN, infinite or negative, or a burst below 1 (checked first).
        KeyFileUnreadable
            The key file exists but cannot be read or parsed (nothing is written).
        """
        if not (rate >= 0 and rate < float("inf")) or burst < 1:
            raise InvalidParameter(f"rate must be >= 0 requests/s and burst >= 1, "
                                   f"got {rate} and {burst}")
        with self._lock:
            self._reload()
            kid = secrets.token_hex(4)
            while kid in self._keys:
                kid = secrets.token_hex(4)
            secret, salt = secrets.token_bytes(32), secrets.token_bytes(16)
            key = ApiKey(id=kid, role=role, salt=_b64(salt), digest=_b64(_scrypt(secret, salt)),
                         created=self._clock().isoformat(), rate=rate, burst=burst, name=name)
            self._write({**self._keys, kid: key})
            return key, f"{_PREFIX}_{kid}_{_b64(secret)}"

    def list(self) -> list[ApiKey]:
        """Every stored key (none without a file); :class:`KeyFileUnreadable` for a damaged
        one."""
        with self._lock:
            self._reload()
            return list(self._keys.values())

    def revoke(self, key_id: str) -> ApiKey:
        """Mark ``key_id`` revoked now; :class:`InvalidParameter` for an unknown id,
        :class:`KeyFileUnreadable` for a damaged file (nothing is written)."""
        with self._lock:
            self._reload()
            if key_id not in self._keys:
                raise InvalidParameter(f"no key {key_id!r}; `swarmvar keys list` shows the ids")
            key = replace(self._keys[key_id], revoked=self._clock().isoformat())
            self._write({**self._keys, key_id: key})
            return key

    # --- checking -----------------------------------------------------------

    def check(self, presented: str) -> ApiKey:
        """The stored key matching ``presented``.

        Raises
        ------
        Unauthenticated
            Malformed, unknown, wrong or revoked key (the message says which).
        KeyFileUnreadable
            The key file cannot be read or parsed (the server's fault, not the request's).
        """
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX or len(parts[1]) != 8:
            raise Unauthenticated("malformed API key: expected sv_<id>_<secret>")
        kid, secret_text = parts[1], parts[2]
        fingerprint = hashlib.sha256(presented.encode()).digest()
        with self._lock:
            self._reload()
            key = self._keys.get(kid)
            if key is None:
                raise Unauthenticated(f"unknown API key id {kid!r}")
            if key.revoked is not None:
                raise Unauthenticated(f"API key {kid} was revoked at {key.revoked}")
            if self._verified.get(fingerprint) == kid:
                return key
        try:
            secret = _unb64(secret_text)
        except ValueError:
            raise Unauthenticated("malformed API key: the secret is not base64url") from None
        if not hmac.compare_digest(_scrypt(secret, _unb64(key.salt)), _unb64(key.digest)):
            raise Unauthenticated(f"wrong secret for API key {kid}")
        with self._lock:
            if len(self._verified) >= _MAX_CACHE:
                self._verified.clear()
            self._verified[fingerprint] = kid
        return key
