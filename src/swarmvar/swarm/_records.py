"""The beat's records: what step 4 of the beat appends to the ledger, and the checkpoint's keys.

Methods of :class:`~.runtime.Swarm`, written as functions of ``self: Swarm`` and
bound in its class body (``flush = _records.flush``), with the plain-JSON
forms of estimates, decisions, refused ticks and refit jobs, and the state
store's keys of a checkpoint (:data:`RUN_KEY`, :data:`STATE_PREFIX`,
:data:`OBSERVER_PREFIX`) and of a fresh start's history digests (:data:`START_KEY`).

Reads ``ledger``, ``ledger_batch``, ``_owner`` and ``_shells`` (a spread
portfolio's groups and their consensus, for late entries); writes the pending
batch (``_batch``, the very list observers' :class:`_BeatEntries` append to)
and ``_batched_beats``. ``_late_entries`` also calls the shell's
:meth:`~.spread.SpreadConsensus.vet` with ``late=True``: the late key ring's
check, which counts no refusals, but vouches each verified estimate's signing
bytes into the shell's ``own`` signatures (a vet in a beat, ``late=False``,
would count refusals in the portfolio's key ring). Nothing here beats or
restores: it turns what a beat did into ledger entries and commits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..canonical import Canonical, canonical_object
from ..consensus.signing import estimate_record
from ..ledger import EntryKind
from ..types import Decision, Estimate, Tick
from .beat import BeatInput, BeatOutcome
from .record import consensus_record
from .roles import RefitJob, RefitResult, RoleRecord

if TYPE_CHECKING:
    from .runtime import Swarm



#: The run's checkpoint marks and source cursor in the state store.
RUN_KEY = "swarm:__run__"


#: A hosted unit's (a portfolio's or a group's) state in a checkpoint: ``swarm:<name>``.
STATE_PREFIX = "swarm:"


#: Observers' states (the arbiter's) in a checkpoint: ``swarm-observer:<state_key>:<portfolio>``.
OBSERVER_PREFIX = "swarm-observer:"


#: The start histories' digests a fresh start stores, by portfolio (rows, first and last
#: date, sha256 of the values): what a resume's start history must be
#: (:func:`._recovery._check_start`). Written once, in the same atomic step (``put_many``) as
#: the start's first checkpoint; a home started before has none. Portfolio
#: names of the form ``__name__`` are refused (:class:`.ticks.PortfolioSpec`), so no
#: portfolio's state (``swarm:<name>``) is stored here, nor at :data:`RUN_KEY`.
START_KEY = "swarm:__start__"
#: Where homes started by the first version of the start digest stored it (read too).
OLD_START_KEY = "swarm-start-history"


class _BeatEntries:
    """An observer's ledger entries, joined to the current beat's transaction.

    ``commit`` is for what happens between beats (an operator's quarantine or
    release): it joins the pending batch and commits it now, so the action is
    in the ledger — and replayed after a kill -9 — before the call returns.
    """

    def __init__(self, batch: list[tuple[EntryKind, Mapping[str, Any] | Canonical]],
                 flush: Callable[[], None]) -> None:
        self._batch = batch
        self._flush = flush

    def add_entries(self, batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]]
                    ) -> None:
        self._batch.extend(batch)

    def commit(self, batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]]) -> None:
        self._batch.extend(batch)
        self._flush()


def _result_dict(r: RefitResult) -> dict[str, Any]:
    return {"agent": r.agent, "launched": r.launched}


def _estimate_texts(outcome: BeatOutcome) -> list[Canonical] | list[dict[str, Any]]:
    """The beat's estimate records as it wrote them (from the bytes signed), or the dicts."""
    if len(outcome.estimate_records) == len(outcome.estimates):
        return list(outcome.estimate_records)
    return [_estimate_dict(e) for e in outcome.estimates]


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    d = e.payload()
    d["signature"] = None if e.signature is None else e.signature.hex()
    return d


def _decision_dict(d: Decision) -> dict[str, Any]:
    return {"action": d.action.value, "portfolio": d.portfolio, "seq": d.seq,
            "agents": list(d.agents), "signals": {k: float(v) for k, v in d.signals.items()
                                                  if np.isfinite(v)},
            "threat": float(d.threat), "reason": d.reason,
            "weights": {k: float(v) for k, v in d.weights.items()}}


def _tick_repr(tick: Any) -> Any:
    if isinstance(tick, Tick):
        return {"portfolio": str(tick.portfolio)[:100], "as_of": str(tick.as_of)[:40],
                "value": repr(tick.value)[:40],
                "assets": None if tick.assets is None else {
                    str(k)[:40]: repr(v)[:40] for k, v in list(dict(tick.assets).items())[:50]}}
    return repr(tick)[:300]


def _job_dict(job: RefitJob) -> dict[str, Any]:
    return {"portfolio": job.portfolio, "agent": job.agent, "row": job.row, "t": job.t,
            "launched": job.launched, "swap_at": job.swap_at, "seed": job.seed,
            "reason": job.reason, "state_bytes": len(job.state), "n": int(job.returns.size)}


def _job_from(d: Mapping[str, Any], blob: bytes) -> RefitJob:
    k = int(d["state_bytes"])
    return RefitJob(d["portfolio"], d["agent"], int(d["row"]), int(d["t"]), int(d["launched"]),
                    int(d["swap_at"]), blob[:k], np.frombuffer(blob[k:], dtype=np.float64).copy(),
                    int(d["seed"]), d["reason"])


def _record_late(self: Swarm, late: Mapping[tuple[str, int], tuple[datetime, BeatOutcome] | None]
                 ) -> None:
    """Ledger the late entries of groups' catch-up beats the ledger lacks (once)."""
    for (g, t), held in sorted(late.items()):
        if held is not None:
            self._batch.extend(self._late_entries(g, t, held[0], held[1]))
    self.flush()


def _late_entries(self: Swarm, group: str, seq: int, as_of: datetime, outcome: BeatOutcome
                  ) -> list[tuple[EntryKind, Mapping[str, Any] | Canonical]]:
    """What a group did for a tick its portfolio beat without it (host lost), as the
    portfolio's beat records it for the groups that answered: its estimates (those
    its key ring check admits, :meth:`~.spread.SpreadConsensus.vet`; what it sent
    beyond them under ``refused``), its agents' errors (``rejected``) and its role
    records (flows), each tagged ``late`` with the group. One batch, so the estimate
    entry, the key a resume looks for (group, seq), stands for all of them."""
    portfolio = self._owner[group]
    shell = self._shells[portfolio]
    vetted = shell.vet(group, seq, as_of, outcome, late=True)
    record: dict[str, Any] = {  # written from the bytes the vet verified (shell.own)
        "portfolio": portfolio, "group": group, "seq": seq, "late": True,
        "estimates": [estimate_record(e, shell.own) for e in vetted.estimates]}
    if vetted.rejected:
        record["rejected"] = dict(vetted.rejected)
    if vetted.notes:
        record["refused"] = [n[:300] for n in vetted.notes[:50]]
    entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]] = [
        (EntryKind.ESTIMATE, canonical_object(record))]
    for r in vetted.roles:
        entries.append(role_entry(portfolio, seq, r, group=group, late=True))
    return entries


def role_entry(portfolio: str, seq: int, record: RoleRecord, **extra: Any
               ) -> tuple[EntryKind, dict[str, Any]]:
    """A role record's ledger entry (``flow``): ``result`` names the portfolio and the beat
    (``extra``: a late one's ``group`` and ``late``), then the record's own fields."""
    return (EntryKind.FLOW, {"flow": record.role, "result": {
        "portfolio": portfolio, "seq": seq, **extra, **record.to_dict()}})


def _entries(self: Swarm, name: str, tick: BeatInput, outcome: BeatOutcome,
             decisions: Sequence[Decision], optimize: list[list[str]], cursor: Any,
             deferred: Sequence[list[str]] = (), timing: Mapping[str, Any] | None = None,
             *, assets: Sequence[float] | None = None, more_roles: Sequence[RoleRecord] = ()
             ) -> list[tuple[EntryKind, Mapping[str, Any] | Canonical]]:
    """The beat's entries; ``assets``: a book's asset returns of the tick (the ring a resume
    rebuilds for its attribution), ``more_roles``: the swarm's own role records (a skipped
    attribution)."""
    report = outcome.report
    entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]] = [
        (EntryKind.ESTIMATE, canonical_object({"portfolio": name, "seq": tick.seq,
                                               "estimates": _estimate_texts(outcome)})),
        (EntryKind.CONSENSUS, {
            "beat": {"portfolio": name, "seq": tick.seq, "as_of": tick.as_of.isoformat(),
                     "realized": tick.value, "cursor": cursor,
                     "excluded": sorted(tick.excluded), "factors": dict(tick.factors),
                     "requests": [list(r) for r in tick.requests],
                     "swaps": [_result_dict(s) for s in tick.swaps],
                     "optimize": optimize,
                     **({"optimize_deferred": list(deferred)} if deferred else {}),
                     **({"assets": list(assets)} if assets is not None else {}),
                     **(timing or {})},
            "levels": [consensus_record(c) for c in report.consensus],
            "breaches": {k: list(v) for k, v in report.breaches.items()},
            "log_scores": {k: v for k, v in report.log_scores.items() if np.isfinite(v)},
            "rejected": dict(report.rejected),
            "regime_probability": report.regime_probability}),
    ]
    for r in (*outcome.roles, *more_roles):
        entries.append(role_entry(name, tick.seq, r))
    for d in decisions:
        entries.append((EntryKind.DECISION, _decision_dict(d)))
    return entries


def _append(self: Swarm, entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]], *,
            beats: int) -> None:
    self._batch.extend(entries)
    self._batched_beats += beats
    if self._batched_beats >= self.ledger_batch:
        self.flush()


def flush(self: Swarm) -> None:
    """Commit the pending ledger batch (one transaction)."""
    if self._batch:
        self.ledger.add_entries(self._batch)
        self._batch.clear()  # the same list: observers' beat_entries append to it
        self._batched_beats = 0
