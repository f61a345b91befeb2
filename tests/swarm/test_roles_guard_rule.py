"""The variance guards flag a fit by the fit-health rule itself (``Diagnostics.rhat_over``,
``Diagnostics.share_under``, what ``Diagnostics.doubts`` says), not by a copy of its
NaN handling: over R-hats and weights' shares on both sides of the cuts, NaN and
infinities included, a guard flags exactly what ``doubts`` doubts at the guard's cuts,
and reports the value ``doubts`` names."""

from __future__ import annotations

import itertools
import math

import pytest

from swarmvar.swarm.roles import Guards, RoleConfig
from swarmvar.types import Diagnostics, _num

NAN, INF = math.nan, math.inf
RHATS: list[dict[str, float]] = [
    {}, {"mu": 1.01}, {"mu": 1.05}, {"mu": 1.0500001, "nu": 1.0}, {"mu": 1.2, "nu": NAN},
    {"mu": NAN}, {"mu": INF}, {"mu": 1.0, "nu": INF, "omega": NAN}]
WEIGHTS: list[tuple[float | None, int | None, int | None]] = [
    (None, None, None), (400.0, 1600, 400), (20.0, 1600, 400), (19.9, 1600, 400),
    (NAN, 1600, 400), (INF, 1600, 400), (79.0, 1600, None), (81.0, 1600, None),
    (10.0, None, None), (10.0, 1600, 0)]


def _flags(diag: Diagnostics, config: RoleConfig) -> dict[str, float]:
    found = Guards(("a",), config).check(1, {"a": 1.0}, {"a": diag}, cooldown=5)
    return dict(found[0].detail) if found else {}


@pytest.mark.parametrize(("rhat", "weights"), list(itertools.product(RHATS, WEIGHTS)))
def test_a_guard_flags_what_the_fit_health_rule_doubts(
        rhat: dict[str, float], weights: tuple[float | None, int | None, int | None]) -> None:
    config = RoleConfig()
    ess, draws, particles = weights
    diag = Diagnostics(method="smc", rhat=rhat, ess=ess, draws=draws, particles=particles)
    flags = _flags(diag, config)
    # min_ess -inf: the rule's absolute ESS cut (which guards do not apply) never doubts
    doubts = diag.doubts(config.guard_max_rhat, -INF, config.guard_min_ess)
    said_rhat = [d for d in doubts if d.startswith("split R-hat")]
    said_share = [d for d in doubts if " of the " in d]
    assert bool(said_rhat) == bool({"rhat", "rhat_not_a_number"} & set(flags))
    assert bool(said_share) == bool({"ess_fraction", "ess_fraction_not_a_number"} & set(flags))
    over = diag.rhat_over(config.guard_max_rhat)
    if over is not None:
        assert said_rhat == [f"split R-hat {_num(over[1], '.3f')} > "
                             f"{config.guard_max_rhat} for {over[0]}"]
        assert flags.get("rhat", NAN) == over[1] or not math.isfinite(over[1])
    share = diag.share_under(config.guard_min_ess)
    if share is not None and math.isfinite(share):
        assert flags["ess_fraction"] == share == diag.ess_fraction
