"""A state whose zip entry claims to be encrypted (a flipped flag bit, as a fuzzer found):
``InvalidState``, not zipfile's bare ``RuntimeError`` ("password required")."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from swarmvar.errors import InvalidState
from swarmvar.models import NormalInverseGamma


def _encrypted(blob: bytes) -> bytes:
    """``blob`` with the encrypted flag (bit 0) set on every local and central zip entry."""
    out = bytearray(blob)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := out.find(signature, start)) >= 0:
            (flags,) = struct.unpack_from("<H", out, at + flag_at)
            struct.pack_into("<H", out, at + flag_at, flags | 1)
            start = at + 4
    return bytes(out)


def test_an_encrypted_entry_is_an_invalid_state() -> None:
    agent = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 200))
    with pytest.raises(InvalidState, match="corrupt or truncated"):
        NormalInverseGamma.from_state(_encrypted(agent.state()))
