"""How a service process is configured: one frozen value, passable to worker processes."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter

#: Environment variable carrying the configuration to uvicorn worker processes.
CONFIG_ENV = "SWARMVAR_SERVICE_CONFIG"
#: Default per-request cap on ingested returns (``serve --max-batch``): about 2.5 s of
#: beats on an idle core at 2.5 ms a beat (docs/operations.md has the measurement).
DEFAULT_MAX_BATCH = 1000
#: Default per-process cap on open event streams (``serve --max-streams``).
DEFAULT_MAX_STREAMS = 64


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of ``swarmvar serve``.

    Attributes
    ----------
    home : data directory (agents' signing keys; the SQLite ledger unless ``db`` is set).
    db : ``postgresql://...`` URL of a shared ledger and evolution database, or None.
    keys : API key file (default ``<home>/api-keys.json``).
    agents, alphas, horizon, seed, window, refit_every : the swarm each new portfolio gets
        (the window is capped at the history's length).
    arbiter : run the arbiter as the beats' observer.
    k_flows, p_nodes, t1, t_threshold : the arbiter's pulse (``serve --k-flows``,
        ``--p-nodes``, ``--t1``, ``--t-threshold``; ``Arbiter.from_options``'s keywords, its
        defaults): k and P (k * P > 1), the base time T1 and the PID's threshold time
        T_threshold, in seconds. A home whose arbiter checkpoints were made under other
        values is refused at the start (``ArbiterOptionsMismatch``). The arbiter's
        thresholds are its defaults (``Thresholds()``): the service takes no others.
    checkpoint_every : beats of a portfolio between checkpoints of the arbiter's state
        under ``home`` (a restart replays it over the beats after the last one only).
    max_body : largest request body accepted, bytes (larger: 413).
    max_batch : most returns one ingest request may carry (more: 413 naming the cap;
        send them in several requests). Each return is one beat, run while the
        portfolio's writes wait.
    max_streams : most event streams (``/events``) this process serves at once (one
        more: 503 with ``Retry-After``); a closed stream frees its slot.
    extra : free-form settings (nothing in the service reads them). An ``arbiter.*`` key
        is refused (the arbiter's options are the typed fields above; it was read once).

    Raises
    ------
    InvalidParameter
        ``extra`` holds an ``arbiter.*`` key.
    """

    home: Path = Path(".swarmvar")
    db: str | None = None
    keys: Path | None = None
    agents: tuple[str, ...] = ("NormalInverseGamma", "BayesianBootstrap")
    alphas: tuple[float, ...] = (0.99, 0.975)
    horizon: int = 1
    seed: int = 0
    window: int = 1000
    refit_every: int = 20
    arbiter: bool = True
    checkpoint_every: int = 250
    max_body: int = 1 << 20
    max_batch: int = DEFAULT_MAX_BATCH
    max_streams: int = DEFAULT_MAX_STREAMS
    extra: dict[str, str] = field(default_factory=dict)
    k_flows: float = 4.0
    p_nodes: float = 5.0
    t1: float = 0.001
    t_threshold: float = 0.02

    def __post_init__(self) -> None:
        keys = sorted(k for k in self.extra if str(k).startswith("arbiter."))
        if keys:
            said = "; ".join(_arbiter_key_words(k) for k in keys)
            raise InvalidParameter(
                f"ServiceConfig.extra sets {', '.join(map(repr, keys))}, which the service "
                f"does not read: {said}")

    @property
    def key_file(self) -> Path:
        return self.keys if self.keys is not None else self.home / "api-keys.json"

    def to_env(self) -> str:
        d = asdict(self)
        d["home"] = str(self.home)
        d["keys"] = None if self.keys is None else str(self.keys)
        return json.dumps(d)

    @classmethod
    def from_env(cls) -> ServiceConfig:
        """The configuration ``swarmvar serve`` handed its workers in
        ``SWARMVAR_SERVICE_CONFIG`` (:meth:`to_env`); the defaults when it is unset.

        Raises
        ------
        InvalidParameter
            An unknown setting, or an arbiter option (``k_flows``, ...) that is not a
            finite number above 0.
        """
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            return cls()
        d = json.loads(raw)
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:  # e.g. "spread": the desk runs each portfolio whole in its process
            raise InvalidParameter(
                f"{CONFIG_ENV} has unknown settings {', '.join(unknown)}; set the service's "
                "options on `swarmvar serve` (see `swarmvar serve --help`)")
        return cls(home=Path(d["home"]), db=d["db"],
                   keys=None if d["keys"] is None else Path(d["keys"]),
                   agents=tuple(d["agents"]), alphas=tuple(d["alphas"]),
                   horizon=int(d["horizon"]), seed=int(d["seed"]), window=int(d["window"]),
                   refit_every=int(d["refit_every"]), arbiter=bool(d["arbiter"]),
                   checkpoint_every=int(d.get("checkpoint_every", 250)),
                   max_body=int(d["max_body"]),
                   max_batch=int(d.get("max_batch", DEFAULT_MAX_BATCH)),
                   max_streams=int(d.get("max_streams", DEFAULT_MAX_STREAMS)),
                   extra=dict(d.get("extra", {})),
                   **{name: _pulse_option(d, name) for name in PULSE_FIELDS})


#: The arbiter's pulse options a :class:`ServiceConfig` carries (its fields of those names).
PULSE_FIELDS = ("k_flows", "p_nodes", "t1", "t_threshold")


def _arbiter_key_words(key: str) -> str:
    """Where the arbiter option ``extra[key]`` (``arbiter.<name>``) is set instead."""
    name = key.removeprefix("arbiter.")
    field = name.replace("-", "_")  # the flag's spelling names the field too
    if field in PULSE_FIELDS:
        return (f"set ServiceConfig.{field} (`swarmvar serve --{field.replace('_', '-')}`) "
                "instead")
    return (f"the service takes no arbiter option {name!r} (only "
            f"{', '.join('ServiceConfig.' + f for f in PULSE_FIELDS)}; a home decided under "
            "others is served from Python by a Desk given that arbiter)")


def _pulse_option(d: dict[str, Any], name: str) -> float:
    """The arbiter option ``name`` of a configuration read from the environment (its
    default when absent), a finite number above 0 (the arbiter checks the rest: k * P > 1).

    Raises
    ------
    InvalidParameter
        It is not a finite number above 0.
    """
    value = d.get(name, next(f.default for f in fields(ServiceConfig) if f.name == name))
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise InvalidParameter(f"{CONFIG_ENV} sets the arbiter's {name} to {value!r}, not a "
                               f"finite number above 0 (`swarmvar serve "
                               f"--{name.replace('_', '-')}`)")
    return float(value)
