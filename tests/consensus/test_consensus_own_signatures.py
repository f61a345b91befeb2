"""``OwnSignatures`` copied and pickled with the swarm that holds it (the service's trial
beats deep-copy a PortfolioSwarm)."""

from __future__ import annotations

import copy
import pickle

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.consensus.signing import OwnSignatures


def test_a_copy_remembers_what_was_signed_and_signs_on_its_own() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    own = OwnSignatures(limit=4)
    sig = own.sign(b"beat 1", key)
    for twin in (copy.deepcopy(own), pickle.loads(pickle.dumps(own))):
        assert twin.made(sig, b"beat 1", raw) and not twin.made(sig, b"beat 2", raw)
        later = twin.sign(b"beat 2", key)
        assert twin.made(later, b"beat 2", raw) and not own.made(later, b"beat 2", raw)
        for k in range(5):
            twin.sign(f"more {k}".encode(), key)
        assert len(twin) == 4  # the limit went along
