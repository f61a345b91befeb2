"""Signed CRDT contributions and serving under the partition rule, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from scipy import stats as sps

from swarmvar.consensus.partition import Contribution, NormalStats, StatsCRDT
from swarmvar.errors import RefusedMessage
from swarmvar.mesh import NodeKeyRing
from swarmvar.mesh.stats import DEFAULT_PRIOR, check_contribution, serve, sign_contribution

KEYS = {n: Ed25519PrivateKey.generate() for n in ("a", "b", "c", "d")}
RING = NodeKeyRing({n: k.public_key() for n, k in KEYS.items()})
RNG = np.random.default_rng(11)
DATA = {n: RNG.normal(0.0, 0.01 * (1 + i), 200) for i, n in enumerate(KEYS)}


def _crdt() -> StatsCRDT:
    crdt = StatsCRDT()
    for n, x in DATA.items():
        crdt = crdt.update(n, NormalStats.of(x), 1)
    return crdt


def test_contributions_travel_signed_and_cannot_be_altered_by_a_relay() -> None:
    c = Contribution(3, NormalStats.of(DATA["a"]))
    wire = sign_contribution(KEYS["a"], "a", c)
    assert check_contribution(RING, wire) == ("a", c)
    for field, value in (("total", c.stats.total + 1e-9), ("version", 4), ("count", 1)):
        with pytest.raises(RefusedMessage, match="forged"):
            check_contribution(RING, {**wire, field: value})
    with pytest.raises(RefusedMessage, match="forged"):  # b cannot sign for a
        check_contribution(RING, sign_contribution(KEYS["b"], "a", c))
    with pytest.raises(RefusedMessage, match="unknown_sender"):
        check_contribution(RING, {**wire, "replica": "eve"})
    for bad in ({**wire, "total": math.inf}, {**wire, "count": -1}, {"replica": "a"}):
        with pytest.raises(RefusedMessage, match="malformed"):
            check_contribution(RING, bad)


def test_the_served_var_is_the_closed_form_predictive_quantile() -> None:
    crdt = _crdt()
    s = serve(crdt, sorted(KEYS), set(KEYS), alpha=0.99)
    x = np.concatenate([DATA[n] for n in sorted(KEYS)])
    p = DEFAULT_PRIOR
    n, mean = x.size, x.mean()
    kappa = p.kappa + n
    loc = (p.kappa * p.loc + x.sum()) / kappa
    shape = p.shape + n / 2
    rate = p.rate + 0.5 * ((x - mean) ** 2).sum() + p.kappa * n * (mean - p.loc) ** 2 / (2 * kappa)
    scale = math.sqrt(rate * (kappa + 1) / (shape * kappa))
    want = -loc + scale * sps.t.ppf(0.99, 2 * shape)  # VaR of the loss -r
    assert s.point == pytest.approx(want, rel=1e-9)
    assert s.interval == (s.point, s.point) and not s.degraded and s.count == 800


def test_fewer_available_replicas_widen_the_interval_monotonically() -> None:
    crdt = _crdt()
    widths = []
    for m in range(4, 0, -1):
        s = serve(crdt, sorted(KEYS), set(sorted(KEYS)[:m]))
        assert s.available == m and s.degraded == (m < 4)
        widths.append(s.interval[1] - s.interval[0])
    assert widths[0] == 0.0 and all(b > a for a, b in zip(widths, widths[1:], strict=False))


def test_a_contribution_of_no_data_with_sums_is_refused() -> None:
    """A signed contribution of count 0 is outside ``robust_read``'s bounds (it holds no
    data, so it is summed verbatim): its sums must be 0, else a liar shifts the served
    mean and spread at will. An honest empty contribution (0, 0.0, 0.0) still passes."""
    liar = Contribution(1, NormalStats(0, -1e6, 1e12))
    with pytest.raises(RefusedMessage, match="malformed"):
        check_contribution(RING, sign_contribution(KEYS["d"], "d", liar))
    for total, total_sq in ((0.0, 1.0), (-1e-300, 0.0)):
        with pytest.raises(RefusedMessage, match="malformed"):
            check_contribution(RING, sign_contribution(
                KEYS["d"], "d", Contribution(1, NormalStats(0, total, total_sq))))
    empty = Contribution(2, NormalStats.of([]))
    assert check_contribution(RING, sign_contribution(KEYS["a"], "a", empty)) == ("a", empty)
