"""Byte forms of the runtime's own state: a JSON header plus named arrays, checksummed.

The agents serialize themselves (:meth:`~swarmvar.models.base.Agent.state`);
this packs a portfolio swarm's counters, buffers and the agents' bytes into
one blob for the state store, and refuses a blob that was cut or altered.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidState

_MAGIC = b"SVSWARM1"


def pack(header: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> bytes:
    """``header`` (plain JSON) and ``arrays`` as one checksummed blob."""
    buf = io.BytesIO()
    head = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, allow_pickle=False, __header__=head, **arrays)
    body = _MAGIC + buf.getvalue()
    return body + hashlib.sha256(body).digest()


def unpack(blob: bytes) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Inverse of :func:`pack`.

    Raises
    ------
    InvalidState
        If the blob is not a swarm state, is truncated or fails its checksum.
    """
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < len(_MAGIC) + 32:
        raise InvalidState("not a swarm state: too short")
    body, tail = bytes(blob[:-32]), bytes(blob[-32:])
    if not body.startswith(_MAGIC):
        raise InvalidState("not a swarm state: wrong magic bytes")
    if hashlib.sha256(body).digest() != tail:
        raise InvalidState("swarm state fails its SHA-256 checksum (cut or altered); "
                           "restore an older checkpoint")
    try:
        with np.load(io.BytesIO(body[len(_MAGIC):]), allow_pickle=False) as npz:
            header = json.loads(npz["__header__"].tobytes().decode())
            arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    except (ValueError, KeyError, OSError, EOFError, UnicodeError, RuntimeError,
            zipfile.BadZipFile, zlib.error) as exc:  # RuntimeError: an entry flagged encrypted
        raise InvalidState(f"swarm state cannot be read: {exc}") from exc
    return header, arrays


def as_bytes_array(data: bytes) -> NDArray[np.uint8]:
    """Bytes as a uint8 array (for :func:`pack`)."""
    return np.frombuffer(data, dtype=np.uint8).copy()
