"""A portfolio swarm's whole state as bytes: ``state`` and ``restore``.

Methods of :class:`~.beat.PortfolioSwarm`, written as functions of
``self: PortfolioSwarm`` (``restore`` of ``cls``, bound as a classmethod)
and bound in its class body. The executors call them at checkpoints and
when a host's portfolios are restored (:mod:`.executors`, :mod:`._recovery`,
:mod:`._restoring`); the spread consensus (:mod:`.spread`) extends both.
``state`` packs a header (the configuration's fingerprint, the counters,
pending refits, the forecasts and consensus still to be scored, the roles'
small state) and the arrays (returns, guard scores, the track record's and
builders' arrays, each live agent's state, the scouts') into one
checksummed :mod:`.state` blob. ``restore`` refuses a blob made under
another fingerprint (:class:`~swarmvar.errors.ResumeMismatch`) and rebuilds
every field from it. Also the JSON round trips of consensus and forecasts
(``_consensus_dict``, ``_consensus_from``, ``_forecast_from``), which
:mod:`._recovery` and :mod:`.spread` use too.

``state`` reads everything the beat carries and writes ``agents`` only
(with ``rebase``: each live agent replaced by its restored copy);
``restore`` writes every field of the new swarm. An agent whose state cannot
be taken, rebased or restored because its sandbox refused (a
:class:`~swarmvar.errors.SandboxViolation`: a plug-in whose files changed since the
start, in a new worker) is noted (``_note``: the next beat ledgers the violation and
holds it out, its breaker opens) and set to None, as the beat does; it stays out until
a refit brings it back (refused the same way while its files differ). Any other error
(an unreadable state, a worker lost) propagates as before: a resume is refused, a lost
host's restore is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import SandboxViolation
from ..types import Consensus, Forecast
from . import state as packing
from ._beat_types import PortfolioConfig
from .roles import Scouts

if TYPE_CHECKING:
    from .beat import PortfolioSwarm


def state(self: PortfolioSwarm, *, rebase: bool = True) -> bytes:
    """Everything :meth:`restore` needs to continue bit for bit, as one checksummed blob.

    With ``rebase`` (what checkpoints do) each live agent is replaced by
    its own restored copy, so the running swarm and one restored from
    this blob continue from identical objects: an agent whose caches do
    not survive ``state()``/``from_state`` (StudentT's node cache moves
    an ES by ~1e-16 relative) cannot make a resumed run drift from an
    uninterrupted one.
    """
    cfg = self.config
    header: dict[str, Any] = {
        "config": cfg.fingerprint(), "t": self.t, "absorbed": self.absorbed,
        "seq": self.seq,
        "last_as_of": None if self.last_as_of is None else self.last_as_of.isoformat(),
        "alive": [a for a in cfg.agents if self.agents.get(a) is not None],
        "pending": dict(self.pending),
        "forecasts": {a: f.to_dict() for a, f in self.forecasts.items()},
        "consensus": [_consensus_dict(c) for c in self.consensus],
        "outstanding": [[{a: f.to_dict() for a, f in fc.items()},
                         [_consensus_dict(c) for c in cs]] for fc, cs in self.outstanding],
        "scout_flag": bool(self.scouts.flag) if self.scouts else False,
        "scout_scale": self.scouts.scale if self.scouts else None,
        "quiet_until": self.guards.quiet_until.tolist(),
    }
    arrays: dict[str, NDArray[Any]] = {"returns": self.returns,
                                       "guard_scores": self.guards.scores,
                                       **self.track.arrays(), **self.builders.arrays()}
    for name, agent in list(self.agents.items()):
        if agent is None:
            continue
        try:
            data = agent.state()
            arrays[f"agent:{name}"] = packing.as_bytes_array(data)
            if rebase:
                self.agents[name] = self.host.rebased(name, agent, data)
        except SandboxViolation as exc:  # e.g. a plug-in edited since the start, new worker
            self._note(name, exc)  # the next beat records a violation and holds it out
            self.agents[name] = None
    if self.scouts is not None:
        arrays["scouts"] = packing.as_bytes_array(self.scouts.state())
    return packing.pack(header, arrays)


def restore(cls: type[PortfolioSwarm], config: PortfolioConfig, blob: bytes
            ) -> PortfolioSwarm:
    """A swarm from :meth:`state` bytes, under the same configuration."""
    from ..errors import ResumeMismatch

    header, arrays = packing.unpack(blob)
    now = json_roundtrip(config.fingerprint())
    if header["config"] != now:
        raise ResumeMismatch(
            f"portfolio {config.portfolio!r}: this home's checkpoint was made with other "
            f"settings ({differences(header['config'], now)}); resume with the saved "
            "settings, or start afresh in another home (--home on the command line, home= in "
            "Python)")
    self = cls(config)
    self.t, self.absorbed, self.seq = header["t"], header["absorbed"], header["seq"]
    self.last_as_of = (None if header["last_as_of"] is None
                       else datetime.fromisoformat(header["last_as_of"]))
    self.pending = {k: int(v) for k, v in header["pending"].items()}
    self.returns = np.asarray(arrays["returns"], dtype=np.float64)
    self.track.restore(arrays)
    self.builders.restore(arrays)
    self.guards.scores = np.asarray(arrays["guard_scores"], dtype=np.float64)
    self.guards.quiet_until = np.asarray(header["quiet_until"], dtype=np.int64)
    for name in config.agents:
        data = arrays.get(f"agent:{name}")
        self.agents[name] = None
        if data is None:
            continue
        try:
            self.agents[name] = self.host.restored(name, data.tobytes())
        except SandboxViolation as exc:  # e.g. a plug-in edited since the start: held out
            self._note(name, exc)
    if "scouts" in arrays:
        self.scouts = Scouts(float(header["scout_scale"]), config.roles)
        self.scouts.restore(arrays["scouts"].tobytes(), bool(header["scout_flag"]))
    self.forecasts = {a: _forecast_from(d) for a, d in header["forecasts"].items()}
    self.consensus = [_consensus_from(d) for d in header["consensus"]]
    self.outstanding = [({a: _forecast_from(d) for a, d in fc.items()},
                         [_consensus_from(d) for d in cs])
                        for fc, cs in header.get("outstanding", [])]
    return self


def differences(saved: Any, now: Mapping[str, Any]) -> str:
    """The settings that differ between a checkpoint's fingerprint and this configuration's,
    each as ``name: saved X, now Y`` (lists as ``a, b``; a setting one side lacks as
    ``(none)``), in the configuration's order, then any the checkpoint alone has."""
    if not isinstance(saved, Mapping):
        return f"an unreadable record of them, {str(saved)[:80]!r}"
    names = [*now, *(k for k in saved if k not in now)]
    parts = [f"{k}: saved {_shown(saved.get(k))}, now {_shown(now.get(k))}"
             for k in names if saved.get(k) != now.get(k)]
    return "; ".join(parts)


def _shown(value: Any) -> str:
    """One setting's value for a message: a list as ``[a, b]``, a missing one as ``(none)``."""
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def json_roundtrip(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def _consensus_dict(c: Consensus) -> dict[str, Any]:
    from .record import consensus_record

    return consensus_record(c)


def _consensus_from(d: Mapping[str, Any]) -> Consensus:
    return Consensus(
        alpha=d["alpha"], horizon=d["horizon"], var=d["var"], es=d["es"],
        var_interval=(d["var_interval"][0], d["var_interval"][1]),
        es_interval=(d["es_interval"][0], d["es_interval"][1]),
        method=d["method"], used=tuple(d["used"]), trimmed=tuple(d["trimmed"]),
        rejected=dict(d["rejected"]), weights=dict(d["weights"]), available=d["available"],
        total=d["total"], staleness=d["staleness"], degraded=d["degraded"],
        as_of=None if d["as_of"] is None else datetime.fromisoformat(d["as_of"]))


def _forecast_from(d: Mapping[str, Any]) -> Forecast:
    from ..types import RiskMeasure

    return Forecast(d["model"], d["horizon"], tuple(
        RiskMeasure(m["alpha"], m["var"], m["es"], (m["var_interval"][0], m["var_interval"][1]),
                    (m["es_interval"][0], m["es_interval"][1]))
        for m in d["levels"]), d["interval_mass"],
        **({"as_of": datetime.fromisoformat(d["as_of"])} if d.get("as_of") else {}))
