"""Errors the variant lifecycle adds to :mod:`swarmvar.errors`.

Each subclasses the closest shared error, so ``except CorruptState`` or
``except InvalidVariant`` in callers keeps catching them.
"""

from __future__ import annotations

from ..errors import CorruptState, InvalidParameter, InvalidVariant, SwarmVarError


class InvalidCapabilities(InvalidVariant):
    """An agent profile's capabilities, preferences or versions are malformed."""


class InvalidConfig(InvalidParameter):
    """An evolution config value is out of range."""


class UnsupportedStore(SwarmVarError, ValueError):
    """A store URL names a backend this installation cannot open."""


class UnknownState(SwarmVarError, LookupError):
    """No stored state for an agent (or for that version of it)."""


class UnknownRollbackPoint(SwarmVarError, LookupError):
    """A rollback point id that is not stored (or has expired)."""


class InvalidTransition(InvalidVariant):
    """A variant status change the lifecycle does not allow (e.g. retired -> active)."""


class WrongKey(CorruptState):
    """An encrypted state was read with a key other than the one it was written with."""


class KeyRequired(CorruptState):
    """An encrypted state was read without any key."""


class InvalidKey(SwarmVarError, ValueError):
    """An encryption key is not 32 bytes (raw, hex or base64)."""


class InvalidMetric(SwarmVarError, ValueError):
    """A performance record has a missing, non-finite or out-of-range value."""


class CorruptStore(SwarmVarError, RuntimeError):
    """The lifecycle database is not one (garbage, another application's) or is damaged."""
