"""What a portfolio's beat is configured with, takes and gives.

:class:`PortfolioConfig` fixes one portfolio swarm's numbers (or one group's
of a spread portfolio, :mod:`.spread`); :class:`BeatInput` is one tick and
the instructions that came with it; :class:`BeatOutcome` what
:meth:`~.beat.PortfolioSwarm.beat` produced. The runtime (:mod:`.runtime`)
builds the configurations and inputs and hands them, through its executor,
to the portfolio swarms (:mod:`.beat`), whose outcomes come back the same
way. ``CONSENSUS`` is the consensus's name beside the agents' (the builders'
row, its breaches, its rejection).

Frozen data, no state. Configurations, inputs and outcomes cross process
boundaries pickled (worker processes, Ray actors), within one run only:
checkpoints are :mod:`.state` blobs (JSON header and arrays) and ledger
records canonical JSON, neither holds a class's module path. All names are
importable from :mod:`.beat`, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..canonical import Canonical
from ..consensus import Policy
from ..errors import InvalidParameter
from ..types import BeatReport, Estimate
from .consensus import SWARM_POLICY
from .roles import RefitJob, RefitResult, RoleConfig, RoleRecord
from .sandboxing import SandboxSetup

FloatArray = NDArray[np.float64]
CONSENSUS = "consensus"


def check_refit_rhythm(refit_lag: int, refit_every: int) -> None:
    """Refuse a deferred refit's lag beyond the refit rhythm.

    A deferred refit still pending skips the next scheduled one (``_refits``):
    a lag beyond the rhythm would drop refits silently. Asked by
    :class:`PortfolioConfig` and by ``swarmvar run`` before any work.

    Parameters
    ----------
    refit_lag : int
        Beats a refit is swapped in after it starts (``RoleConfig.refit_lag``).
    refit_every : int
        Beats between scheduled refits.

    Raises
    ------
    InvalidParameter
        ``refit_lag > refit_every`` (numbers only: their own checks say the rest).
    """
    if (isinstance(refit_every, int) and not isinstance(refit_every, bool)
            and isinstance(refit_lag, int) and refit_lag > refit_every):
        raise InvalidParameter(
            f"refit_lag {refit_lag} is longer than refit_every {refit_every}: each refit "
            "would still be pending when the next is due, and that one would be skipped; "
            "give a refit_lag of at most refit_every")


@dataclass(frozen=True)
class PortfolioConfig:
    """Everything that fixes one portfolio swarm's numbers (picklable, JSON-able).

    ``params`` maps an agent name to constructor arguments (a variant's), if
    any, and ``variants`` to the variant id its estimates are signed with.
    Both are chosen when the swarm starts; a resumed swarm keeps the agents
    (and parameters) of its checkpoint, and the variant ids and parameters its
    run record holds (``_recovery._adopt_variants``), so neither is part of the
    fingerprint.
    """

    portfolio: str
    agents: tuple[str, ...]
    alphas: tuple[float, ...] = (0.99, 0.975)
    horizon: int = 1
    window: int = 1000
    refit_every: int = 20
    seed: int = 0
    home: str = ".swarmvar"
    roles: RoleConfig = field(default_factory=RoleConfig)
    policy: Policy = SWARM_POLICY
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)
    #: where the agents live (None: in the beat's process); not in the fingerprint
    #: (sandboxed agents give the same numbers)
    sandbox: SandboxSetup | None = None
    #: agent groups the portfolio is spread over (:mod:`.spread`; 1: not spread)
    spread: int = 1
    #: a group of a spread portfolio: the portfolio its agents sign for (they sign, the
    #: runtime combines); None: a whole portfolio, combined here
    group_of: str | None = None
    #: the agents' rows in that portfolio (their seeds, as the backtest's); (): 0..n-1
    rows: tuple[int, ...] = ()
    #: a book over assets (weights or positions): its return is computed, and with leverage
    #: may pass ``|r| <= 1``, so its agents take a book's returns
    #: (:meth:`~swarmvar.models.Agent.take_book_returns`); not in the fingerprint (a resumed
    #: book's states from before the flag are widened when restored)
    book: bool = False

    def __post_init__(self) -> None:
        check_refit_rhythm(self.roles.refit_lag, self.refit_every)

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed under this configuration."""
        spread = ({"spread": self.spread, "group_of": self.group_of, "rows": list(self.rows)}
                  if self.spread > 1 else {})
        return {"portfolio": self.portfolio, "agents": list(self.agents),
                "alphas": list(self.alphas), "horizon": self.horizon, "window": self.window,
                "refit_every": self.refit_every, "seed": self.seed,
                "refit_lag": self.roles.refit_lag, "policy": self._policy_in_force(), **spread}

    def row(self, agent: str) -> int:
        """The agent's row in its portfolio (what seeds its fits and forecasts)."""
        k = self.agents.index(agent)
        return self.rows[k] if self.rows else k

    def _policy_in_force(self) -> str:
        """The policy as this roster meets it: f steps it never reaches leave no trace, so a
        home checkpointed before a step existed resumes when its numbers are unchanged.

        Written in the spelling checkpoints have always held (the steps reached said for every
        rule), not :attr:`Policy.method`'s, which since 2026-12-07 says steps for the trimmed
        mean only: a home run under Krum or the median with six agents keeps resuming."""
        p = self.policy
        steps = "; ".join(f"f={fn} from {n} agents on" for n, fn in p.f_steps
                          if len(self.agents) >= n)
        return f"{p.aggregator.value}(f={p.f}{f' ({steps})' if steps else ''}, {p.weighting.value})"


@dataclass(frozen=True)
class BeatInput:
    """One beat's tick and the instructions that came with it.

    ``excluded`` agents are held out of the consensus (quarantine);
    ``factors`` multiply their weights (APPLY_BALANCE); ``swaps`` are finished
    refits due now; ``requests`` are refits asked for (agent or ``"*"``, reason).
    """

    seq: int
    as_of: datetime
    value: float
    excluded: frozenset[str] = frozenset()
    factors: Mapping[str, float] = field(default_factory=dict)
    swaps: tuple[RefitResult, ...] = ()
    requests: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BeatOutcome:
    """What a beat produced: the report, the signed estimates, refit jobs and role records.

    ``estimate_records`` are the ledger's records of ``estimates``, one each,
    written from the bytes just signed (:func:`~swarmvar.consensus.signing.estimate_record`:
    the canonical JSON of each estimate's payload and signature, not written again).
    """

    report: BeatReport
    estimates: tuple[Estimate, ...]
    jobs: tuple[RefitJob, ...] = ()
    roles: tuple[RoleRecord, ...] = ()
    validation: Mapping[str, Mapping[float, Any]] = field(default_factory=dict)
    seconds: Mapping[str, float] = field(default_factory=dict)
    estimate_records: tuple[Canonical, ...] = ()
