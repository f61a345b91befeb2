"""A damaged store is a 500, never a 503 inviting a retry that would meet it again."""

from __future__ import annotations

from swarmvar.errors import LedgerCorrupted, SwarmVarError
from swarmvar.evolution.errors import CorruptStore
from swarmvar.service.app import _status


def test_damage_of_either_store_is_a_500_and_other_errors_keep_their_status() -> None:
    assert _status(CorruptStore("evolution.sqlite is not an SQLite database")) == 500
    assert _status(LedgerCorrupted("entry 5 is bad")) == 500
    assert _status(SwarmVarError("the key file is unreadable")) == 503
