"""Pack files: how a state's bytes become checksummed, compressed, encrypted chunks.

A pack is one state version's chunks back to back; the index (in SQLite)
holds each chunk's offset, stored and raw length, codec and SHA-256 of the
bytes as stored. These functions are pure apart from reading the pack file;
:mod:`~swarmvar.evolution.statestore` does the bookkeeping.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from ..errors import CorruptState
from .config import StateConfig
from .crypto import StateKey, seal, unseal

#: Keep a chunk compressed only if it shrinks by at least 3 %.
_MIN_GAIN = 0.97
#: Try compressing this much of a chunk first; incompressible data (already
#: compressed arrays, encrypted payloads) is then stored raw without paying
#: for a full deflate pass.
_PROBE = 64 * 1024
_WORKERS = 2
X = TypeVar("X")
Y = TypeVar("Y")


class Codec(IntEnum):
    """How a chunk's bytes are stored (before optional encryption)."""

    RAW = 0
    ZLIB = 1


@dataclass(frozen=True)
class Chunk:
    """Index row of one stored chunk (lengths in bytes, SHA-256 of the stored bytes)."""

    idx: int
    offset: int
    stored: int
    raw: int
    codec: Codec
    sha256: bytes


def encode(data: bytes, agent_id: str, pack: str, config: StateConfig, key: StateKey | None
       ) -> tuple[list[Chunk], list[bytes | memoryview]]:
    """Split, compress, encrypt and checksum a state: the index rows and the pack's pieces."""
    size = config.chunk_bytes
    starts = range(0, max(len(data), 1), size)
    view = memoryview(data)

    def one(i: int, start: int) -> tuple[Codec, bytes | memoryview, int]:
        piece = view[start:start + size]
        codec, blob = Codec.RAW, bytes(piece) if key else piece
        if config.compression and _compressible(piece[:_PROBE], config):
            packed = zlib.compress(piece, config.compression_level)
            if len(packed) < _MIN_GAIN * len(piece):
                codec, blob = Codec.ZLIB, packed
        if key:
            blob = seal(key, bytes(blob), _aad(agent_id, pack, i))
        return codec, blob, len(piece)

    out = parallel_map(lambda a: one(*a), list(enumerate(starts)))
    chunks: list[Chunk] = []
    blobs: list[bytes | memoryview] = []
    offset = 0
    for i, (codec, blob, raw) in enumerate(out):
        digest = hashlib.sha256(blob).digest()
        chunks.append(Chunk(i, offset, len(blob), raw, codec, digest))
        blobs.append(blob)
        offset += len(blob)
    return chunks, blobs


def decode(path: Path, agent_id: str, pack: str, chunks: list[Chunk], where: str,
           key: StateKey | None) -> bytes:
    """Read a pack, verify every chunk's SHA-256, decrypt and decompress it.

    ``key`` is None for an unencrypted state. Raises ``CorruptState``
    naming the first bad chunk (and listing the others).
    """
    encrypted = key is not None
    expected = sum(c.stored for c in chunks)
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError as exc:
        raise CorruptState(f"{where}: pack file {path} is missing") from exc
    if len(blob) != expected:
        raise CorruptState(f"{where}: pack file {path} holds {len(blob)} bytes, "
                           f"the index says {expected}")
    view = memoryview(blob)
    sound = parallel_map(
        lambda c: hashlib.sha256(view[c.offset:c.offset + c.stored]).digest() == c.sha256,
        chunks)
    bad = [c.idx for c, ok in zip(chunks, sound, strict=True) if not ok]
    if bad:
        c = chunks[bad[0]]
        more = f"; also bad: chunks {bad[1:]}" if bad[1:] else ""
        raise CorruptState(
            f"{where}: chunk {c.idx} (bytes {c.offset}..{c.offset + c.stored} of {path.name})"
            f" fails its SHA-256 checksum{more}")
    if not encrypted and all(c.codec is Codec.RAW for c in chunks):
        return blob  # the pack is the state itself: no copy

    def one(c: Chunk) -> bytes:
        piece: bytes = bytes(view[c.offset:c.offset + c.stored])
        if key is not None:
            piece = unseal(key, piece, _aad(agent_id, pack, c.idx),
                           f"{where}: chunk {c.idx}")
        if c.codec is Codec.ZLIB:
            try:
                piece = zlib.decompress(piece)
            except zlib.error as exc:
                raise CorruptState(f"{where}: chunk {c.idx} does not decompress") from exc
        if len(piece) != c.raw:
            raise CorruptState(f"{where}: chunk {c.idx} is {len(piece)} bytes, not {c.raw}")
        return piece

    return b"".join(parallel_map(one, chunks))


def _compressible(probe: memoryview, config: StateConfig) -> bool:
    return len(zlib.compress(probe, config.compression_level)) < _MIN_GAIN * len(probe)


def _aad(agent_id: str, pack: str, idx: int) -> bytes:
    return f"swarmvar-state\x00{agent_id}\x00{pack}\x00{idx}".encode()


def state_digest(size: int, chunks: list[Chunk]) -> str:
    h = hashlib.sha256(f"{size}:".encode())
    for c in chunks:
        h.update(c.sha256)
    return h.hexdigest()


def parallel_map(fn: Callable[[X], Y], items: Sequence[X], workers: int = _WORKERS) -> list[Y]:
    """``map`` on threads when there is more than one item (hashlib, zlib and
    fsync release the GIL, so two cores - or one disk queue - share the work)."""
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
