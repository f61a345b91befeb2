"""A folder where the variant store's file should be is refused at once, made or not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from swarmvar.evolution import open_home
from swarmvar.evolution.errors import UnsupportedStore


@pytest.mark.parametrize("create", [True, False])
def test_a_folder_for_the_store_file_is_unsupported_at_once(tmp_path: Path,
                                                            create: bool) -> None:
    """Not retried as a descriptor shortage (VariantStoreUnavailable, 503 for ever)."""
    home = tmp_path / "home"
    (home / "evolution.sqlite").mkdir(parents=True)
    start = time.monotonic()
    with pytest.raises(UnsupportedStore, match="is a directory"):
        open_home(home, create=create)
    assert time.monotonic() - start < 1.0
