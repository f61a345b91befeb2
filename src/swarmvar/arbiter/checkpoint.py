"""The arbiter's state of one portfolio as bytes, for the swarm's checkpoints.

Everything a restarted arbiter needs to decide as the uninterrupted one
would: the genome weights, the PID's integral and last error, the beat and
late counters, the open alert episode (with its names' quiet counts), the
signal memory (EWMA breach rates and log scores), the agents seen, the last
APPLY_BALANCE factors, the data-time clock, the retraining history, the
threat model (coefficients and version) and the quarantine breakers'
snapshots. Plain JSON (floats round-trip exactly) behind a magic prefix and
a SHA-256 checksum; a cut or altered blob is an
:class:`~swarmvar.errors.InvalidState`. A checkpoint written before alert
episodes existed (no ``episode`` key) restores with no episode open; one from
before the quiet counts (no ``quiet``), with every named kind just seen; one
from before the agents alerted on were kept (no ``alerted``), with the agents
of its names.

The checkpoint also holds the options the arbiter decided with (:func:`options_of`: the
pulse's ``k, p, u, t1, t_threshold`` and the thresholds), so a resume under other options
is refused (:meth:`~swarmvar.arbiter.arbiter.Arbiter.restore_state`); a checkpoint from
before they were stored (no ``options``) restores under any options, as then.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ..errors import InvalidState
from ..evolution import BreakerSnapshot, BreakerState
from .decide import AlertEpisode
from .pid import Genome, PidState
from .signals import AgentMemory, SignalMemory
from .step import ArbiterConfig, ArbiterState
from .threat import ThreatModel

_MAGIC = b"SVARBITER1"


@dataclass(frozen=True)
class PortfolioCheckpoint:
    """One portfolio's arbiter state, as stored (see the module docstring)."""

    state: ArbiterState
    agents: tuple[str, ...]
    factors: Mapping[str, float]
    now: float
    features: tuple[tuple[float, ...], ...]
    breached: tuple[bool, ...]
    model: ThreatModel
    breakers: Mapping[str, BreakerSnapshot]
    #: The options decided with (:func:`options_of`); None: a checkpoint from before them.
    options: Mapping[str, Any] | None = None


#: The pulse's options as stored: (stored name, attribute of Pulse, the command line's flag).
PULSE_OPTIONS = (("k_flows", "k", "--k-flows"), ("p_nodes", "p", "--p-nodes"),
                 ("u", "u", None), ("t1", "t1", "--t1"),
                 ("t_threshold", "t_threshold", "--t-threshold"))


def options_of(config: ArbiterConfig) -> dict[str, Any]:
    """The options of ``config`` a checkpoint keeps, as JSON values: the pulse's (named as
    :data:`PULSE_OPTIONS` does) and each threshold as ``thresholds.<field>``."""
    out: dict[str, Any] = {name: float(getattr(config.pulse, attr))
                           for name, attr, _ in PULSE_OPTIONS}
    th = config.thresholds
    for f in fields(th):
        value = getattr(th, f.name)
        out[f"thresholds.{f.name}"] = value.value if isinstance(value, Enum) else value
    return out


def option_words(name: str) -> str:
    """How a refusal names a stored option: the flag and the keyword for the pulse's
    (``--k-flows on the command line, k_flows in Python``), the field for a threshold."""
    for stored, _, flag in PULSE_OPTIONS:
        if stored == name:
            if flag is None:
                return f"the pulse's {name} ({name}= in Python)"
            return f"the pulse's {stored} ({flag} on the command line, {stored}= in Python)"
    return f"the threshold {name} (ArbiterConfig.{name} in Python)"


def _opt(x: float | None) -> float | None:
    return None if x is None else float(x)


def pack_checkpoint(c: PortfolioCheckpoint) -> bytes:
    """The checkpoint as checksummed bytes."""
    s = c.state
    doc = {
        "genome": list(s.genome.as_tuple()),
        "pid": {"integral": s.pid.integral, "last_error": _opt(s.pid.last_error)},
        "beats": s.beats, "late": s.late,
        "episode": {"open": s.episode.open, "since": s.episode.since, "calm": s.episode.calm,
                    "named": list(s.episode.named), "quiet": list(s.episode.quiet),
                    "alerted": list(s.episode.alerted)},
        "memory": {"alphas": list(s.memory.alphas),
                   "agents": {n: {"rates": list(m.rates), "score": _opt(m.score)}
                              for n, m in s.memory.agents.items()}},
        "agents": sorted(c.agents), "factors": dict(c.factors), "now": c.now,
        "features": [list(f) for f in c.features], "breached": list(c.breached),
        "model": {**c.model.to_parameters(), "version": c.model.version},
        "breakers": {a: {"state": b.state.value, "failures": b.failures,
                         "reset_attempts": b.reset_attempts, "opened_at": _opt(b.opened_at)}
                     for a, b in c.breakers.items()},
    }
    if c.options is not None:
        doc["options"] = dict(c.options)
    try:
        body = _MAGIC + json.dumps(doc, sort_keys=True, allow_nan=False).encode()
    except ValueError as exc:  # a non-finite number in the state: refuse to store it
        raise InvalidState(f"the arbiter's state holds a non-finite number: {exc}") from exc
    return body + hashlib.sha256(body).digest()


def _finite(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"non-finite {x!r}")
    return v


def _check_memory(memory: SignalMemory) -> None:
    """Levels in (0, 1), and per agent one breach rate in [0, 1] per level (what
    :func:`~.signals.read_beat` zips together)."""
    if not all(0.0 < a < 1.0 for a in memory.alphas):
        raise InvalidState(f"the arbiter's state holds levels {memory.alphas} outside (0, 1)")
    for name, m in memory.agents.items():
        if len(m.rates) != len(memory.alphas) or not all(0.0 <= r <= 1.0 for r in m.rates):
            raise InvalidState(f"the arbiter's state holds breach rates {m.rates} for {name!r}; "
                               f"it needs one rate in [0, 1] per level {memory.alphas}")


def unpack_checkpoint(blob: bytes) -> PortfolioCheckpoint:
    """Inverse of :func:`pack_checkpoint`.

    Raises
    ------
    InvalidState
        The blob is not an arbiter state, is cut, or fails its checksum or shape.
    """
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < len(_MAGIC) + 32:
        raise InvalidState("not an arbiter state: too short")
    body, tail = bytes(blob[:-32]), bytes(blob[-32:])
    if not body.startswith(_MAGIC):
        raise InvalidState("not an arbiter state: wrong magic bytes")
    if hashlib.sha256(body).digest() != tail:
        raise InvalidState("the arbiter's state fails its SHA-256 checksum (cut or altered); "
                           "restore an older checkpoint or start the arbiter fresh")
    try:
        d = json.loads(body[len(_MAGIC):].decode())
        g = [_finite(x) for x in d["genome"]]
        if len(g) != 4 or not all(1e-12 <= w <= 1.0 for w in g) or abs(sum(g) - 1.0) > 1e-6:
            raise InvalidState(f"the arbiter's state holds genome weights {g}; they are four "
                               "weights in [1e-12, 1] summing to 1")
        pid = PidState(_finite(d["pid"]["integral"]), None if d["pid"]["last_error"] is None
                       else _finite(d["pid"]["last_error"]))
        memory = SignalMemory(tuple(_finite(a) for a in d["memory"]["alphas"]), {
            str(n): AgentMemory(tuple(_finite(r) for r in m["rates"]),
                                None if m["score"] is None else _finite(m["score"]))
            for n, m in d["memory"]["agents"].items()})
        e = d.get("episode")  # absent in checkpoints from before alert episodes: none open
        # "quiet" is absent in checkpoints from before it: every name seen last beat;
        # "alerted" too: the agents of the names
        if e is not None and not (isinstance(e["named"], list)
                                  and isinstance(e.get("quiet", []), list)
                                  and isinstance(e.get("alerted", []), list)):
            raise InvalidState(f"the arbiter's state holds an alert episode naming "
                               f"{e['named']!r} (quiet {e.get('quiet')!r}, alerted "
                               f"{e.get('alerted')!r}); it needs lists")
        episode = AlertEpisode() if e is None else AlertEpisode(
            e["open"], e["since"], e["calm"], tuple(e["named"]), tuple(e.get("quiet", [])),
            tuple(e.get("alerted", [])))
        state = ArbiterState(Genome(*g), pid, memory, int(d["beats"]), int(d["late"]),
                             episode)
        m = d["model"]
        model = ThreatModel.from_parameters(m, str(m["version"]))
        breakers = {str(a): BreakerSnapshot(BreakerState(b["state"]), int(b["failures"]),
                                            int(b["reset_attempts"]),
                                            None if b["opened_at"] is None
                                            else _finite(b["opened_at"]))
                    for a, b in d["breakers"].items()}
        _check_memory(memory)
        options = d.get("options")  # absent in checkpoints from before it: not compared
        if options is not None and not (isinstance(options, dict) and all(
                isinstance(v, (int, float, str, type(None))) for v in options.values())):
            raise InvalidState(f"the arbiter's state holds options {options!r}; it needs a "
                               "mapping of names to numbers or words")
        return PortfolioCheckpoint(
            state, tuple(str(a) for a in d["agents"]),
            {str(k): _finite(v) for k, v in d["factors"].items()}, _finite(d["now"]),
            tuple(tuple(_finite(x) for x in f) for f in d["features"]),
            tuple(bool(b) for b in d["breached"]), model, breakers,
            None if options is None else {str(k): v for k, v in options.items()})
    except InvalidState:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError,
            OverflowError) as exc:  # OverflowError: an integer too large for a float
        # InvalidParameter (a bad genome or model) is a ValueError too
        raise InvalidState(f"the arbiter's state cannot be read: {exc!r}") from exc


def as_deques(c: PortfolioCheckpoint) -> tuple[deque[tuple[float, ...]], deque[bool]]:
    """The retraining history as the arbiter keeps it."""
    return deque(c.features), deque(c.breached)
