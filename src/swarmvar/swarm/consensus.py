"""Step 2 of the beat, locally: the agents' forecasts, signed, become the swarm's consensus.

Where it sits: after :func:`~swarmvar.swarm.local.run_agents` (step 1) and
before the ledger (:func:`~swarmvar.swarm.record.record_beat`). It composes
engines and owns none of their logic:

* each agent signs its measures with its own Ed25519 key, kept under the data
  home (``<home>/keys/agents/<name>.pem``, mode 0600, created on first use);
* the consensus engine admits them through a :class:`~swarmvar.consensus.KeyRing`
  of the public keys and combines them (:func:`~swarmvar.consensus.combine`)
  under :data:`SWARM_POLICY`;
* the weights come from each agent's *realized* track record — its VaR/ES
  forecasts for the last ``days`` returns at every level, made strictly out
  of sample by the backtest driver and scored by the aggregator against what
  happened — never from what an agent says about itself; one weight per
  agent for all levels (its joint FZ0 skill), so the levels of one beat lean
  on the same agents and do not cross (if they still do after trimming, the
  monotone rearrangement puts them in order and the method says so).

The backtest's consensus row uses the same policy, so what ``swarmvar var``
serves is what ``swarmvar backtest`` validates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..consensus import (
    DEFAULT_POLICY,
    KeyRing,
    Policy,
    TrackRecord,
    Weighting,
    combine,
    rearrange_levels,
    sign_measures,
)
from ..consensus.signing import OwnSignatures
from ..ledger.head import load_or_create_key
from ..types import Consensus
from .local import AgentRun

#: Trading days of realized track record behind the weights: the tempered
#: weights' window (docs/consensus.md has the study behind the choice).
TRACK_DAYS = 1000

#: The swarm's consensus rule (:data:`~swarmvar.consensus.DEFAULT_POLICY`): drop
#: the highest and lowest forecast (f = 1 Byzantine agent tolerated with 3 or more
#: agents; the two highest and lowest from 6 agents on), weight the rest by
#: tempered exponential weights of their per-day mean FZ0 loss (the strictly
#: consistent joint VaR/ES score) over the last TRACK_DAYS days; estimates more
#: than 5 days older than the beat are stale.
SWARM_POLICY = dataclasses.replace(DEFAULT_POLICY, window=TRACK_DAYS)


def agent_keys(home: str | Path, names: Sequence[str]) -> dict[str, Ed25519PrivateKey]:
    """Each agent's signing key from ``<home>/keys/agents``, created (mode 0600) if missing."""
    folder = Path(home) / "keys" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    return {name: load_or_create_key(folder / f"{name}.pem") for name in names}


def check_agent_keys(home: str | Path, names: Sequence[str]) -> int:
    """Load every agent key of ``names`` already in ``<home>/keys/agents``; none is created.

    For a face to refuse a damaged key before it starts serving (the service
    loads them while it starts, where an error would end the process with a
    traceback). Returns how many keys were read.

    Raises
    ------
    KeyFileError
        A key file readable by others, or not an Ed25519 PEM private key, naming the file.
    """
    folder = Path(home) / "keys" / "agents"
    found = [folder / f"{name}.pem" for name in names if (folder / f"{name}.pem").exists()]
    for path in found:
        load_or_create_key(path)  # exists: read and checked, never written
    return len(found)


def swarm_consensus(
    runs: Sequence[AgentRun],
    keys: Mapping[str, Ed25519PrivateKey],
    *,
    as_of: datetime,
    seq: int,
    portfolio: str,
    horizon: int,
    policy: Policy = SWARM_POLICY,
    track: Mapping[float, TrackRecord] | None = None,
) -> list[Consensus]:
    """One consensus per confidence level from the agents that produced a forecast.

    Every measure is signed with its agent's key (level ``k`` of the forecast
    as message ``seq + k``) and checked against the public keys before it
    counts; agents that failed are counted missing
    (availability m/n). Without a ``track`` the policy falls back to equal
    weights (and says so in ``Consensus.method``).

    Raises
    ------
    NotEnoughAgents
        Fewer usable agents than the rule tolerates for ``policy.f``.
    """
    if track is None and policy.weighting is not Weighting.EQUAL:
        policy = dataclasses.replace(policy, weighting=Weighting.EQUAL)
    ring = KeyRing({name: key.public_key() for name, key in keys.items()})
    own = OwnSignatures()  # signed here, combined here: not verified twice (OwnSignatures)
    ok = [run for run in runs if run.ok and run.forecast is not None]
    alphas = ok[0].forecast.alphas if ok and ok[0].forecast is not None else ()
    out = []
    for k, alpha in enumerate(alphas):
        measures = [(run.name, run.forecast.at(alpha)) for run in ok if run.forecast is not None]
        # one message per agent and level: the k-th level goes out as seq + k
        signed = sign_measures(measures, keys, portfolio=portfolio, horizon=horizon,
                               as_of=as_of, seq=seq + k, own=own)
        out.append(combine(signed, policy, keyring=ring, now=as_of, total=len(runs),
                           track_record=None if track is None else list(track.values()),
                           portfolio=portfolio, alpha=alpha, horizon=horizon, own=own))
    return uncrossed(out)


#: What :func:`uncrossed` adds to the method of a level whose figures it moved (it swaps
#: VaR/ES between levels and keeps each level's weights); ``swarmvar var``'s line reads it.
REARRANGED = ", rearranged across levels"


def uncrossed(levels: Sequence[Consensus]) -> list[Consensus]:
    """The consensus of each level with VaR and ES non-decreasing in alpha.

    Levels are combined one by one, so track-record weights may favour
    different agents at neighbouring levels and the values can cross; the
    monotone rearrangement (:func:`~swarmvar.consensus.rearrange_levels`)
    puts them in order, each interval moving with its point.
    """
    if len(levels) < 2 or _in_order(levels):
        return list(levels)
    v, e, vi, ei = rearrange_levels(
        [c.alpha for c in levels],
        [[c.var] for c in levels],
        [[c.es] for c in levels],
        [[c.var_interval] for c in levels],
        [[c.es_interval] for c in levels],
    )
    out = []
    for k, c in enumerate(levels):
        moved = (float(v[k, 0]), float(e[k, 0])) != (c.var, c.es)
        out.append(dataclasses.replace(
            c, var=float(v[k, 0]), es=float(e[k, 0]),
            var_interval=(float(vi[k, 0, 0]), float(vi[k, 0, 1])),
            es_interval=(float(ei[k, 0, 0]), float(ei[k, 0, 1])),
            method=c.method + (REARRANGED if moved else ""),
        ))
    return out


def _in_order(levels: Sequence[Consensus]) -> bool:
    """True if the rearrangement would leave every number as it is (the usual beat).

    VaR and ES non-decreasing in alpha, ``ES >= VaR`` and each ES interval
    around its ES: then sorting moves nothing and the arrays round-trip the
    same floats, so :func:`uncrossed` can skip it (tested equal).
    """
    ordered = sorted(levels, key=lambda c: c.alpha)
    for low, high in zip(ordered, ordered[1:], strict=False):
        if high.var < low.var or high.es < low.es or high.alpha == low.alpha:
            return False
    return all(c.var <= c.es and c.es_interval[0] <= c.es <= c.es_interval[1] for c in levels)
