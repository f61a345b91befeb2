"""Model variants: which agent class, which constructor parameters differ, and
where the variant stands in its lifecycle.

A variant is the challenger of MLflow's champion/challenger: it names an agent
class (``"NormalInverseGamma"``) and the constructor parameters it changes
(``{"forgetting": 0.97}``). Changes are validated against the agent's
constructor by dependency injection - the caller passes
``{cls.name: cls.parameter_names()}`` - so this package never imports the
models.
"""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Any, Self

from ..canonical import NotCanonical, canonical_json
from ..errors import InvalidVariant
from .errors import InvalidTransition
from .versions import Version

#: A constructor parameter value: what ``Agent.params()`` may hold.
ParamValue = None | bool | int | float | str | tuple[Any, ...]
#: ``{agent_class_name: constructor}`` (the agent class, which is then built
#: with the variant's parameters to validate them) or, where no constructor is
#: at hand, ``{agent_class_name: constructor parameter names}`` (names only).
Constructors = Mapping[str, "Callable[..., object] | Sequence[str]"]
#: Most parameters one variant may change, and the longest text/tuple value.
MAX_PARAMETERS = 64
MAX_VALUE_ITEMS = 10_000


class VariantStatus(Enum):
    """Where a variant stands: draft -> canary -> active -> retired (or rolled_back)."""

    DRAFT = "draft"
    CANARY = "canary"
    ACTIVE = "active"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


#: Allowed status changes, declared as data. RETIRED -> ACTIVE re-instates a
#: champion when its successor is rolled back; ROLLED_BACK -> DRAFT lets a
#: fixed variant try again.
TRANSITIONS: Mapping[VariantStatus, frozenset[VariantStatus]] = MappingProxyType({
    VariantStatus.DRAFT: frozenset({VariantStatus.CANARY, VariantStatus.ACTIVE,
                                    VariantStatus.RETIRED}),
    VariantStatus.CANARY: frozenset({VariantStatus.ACTIVE, VariantStatus.ROLLED_BACK}),
    VariantStatus.ACTIVE: frozenset({VariantStatus.RETIRED, VariantStatus.ROLLED_BACK}),
    VariantStatus.RETIRED: frozenset({VariantStatus.ACTIVE}),
    VariantStatus.ROLLED_BACK: frozenset({VariantStatus.DRAFT}),
})

#: Statuses that count against ``max_variants`` and can be selected.
LIVE = frozenset({VariantStatus.DRAFT, VariantStatus.CANARY, VariantStatus.ACTIVE})


@dataclass(frozen=True)
class CanaryProgress:
    """How far a canary release has ramped.

    The fraction of agents routed to the canary is
    ``initial + (1 - initial) * step / steps``: 10 %, 28 %, 46 %, 64 %, 82 %,
    100 % with the defaults.
    """

    initial_fraction: float
    steps: int
    step: int = 0
    passed_checks: int = 0
    failed_checks: int = 0
    started_at: float = 0.0
    last_check_at: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of agents (0..1) currently routed to the canary."""
        return self.initial_fraction + (1.0 - self.initial_fraction) * self.step / self.steps

    @property
    def complete(self) -> bool:
        """True once the ramp has reached 100 %."""
        return self.step >= self.steps

    def to_json(self) -> dict[str, Any]:
        return {"initial_fraction": self.initial_fraction, "steps": self.steps,
                "step": self.step, "passed_checks": self.passed_checks,
                "failed_checks": self.failed_checks, "started_at": self.started_at,
                "last_check_at": self.last_check_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True)
class Variant:
    """One model variant and its lifecycle record.

    Attributes
    ----------
    id : str
        UUID4, as text.
    agent_class : str
        Name of the agent class the variant configures.
    parameters : Mapping[str, ParamValue]
        Constructor parameters that differ from the class defaults.
    requirements : Mapping[str, Version]
        Capabilities (name -> minimum version) an agent needs to run it.
    version : int
        Optimistic-locking counter; a write with a stale one raises
        :class:`~swarmvar.errors.VersionConflict`.
    created, updated : float
        Wall times, seconds since the Unix epoch.
    """

    id: str
    agent_class: str
    description: str
    parameters: Mapping[str, ParamValue]
    status: VariantStatus
    created: float
    updated: float
    version: int = 1
    requirements: Mapping[str, Version] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    canary: CanaryProgress | None = None

    def moved_to(self, status: VariantStatus, now: float) -> Variant:
        """This variant with a new status, if the lifecycle allows the move.

        Raises
        ------
        InvalidTransition
            If ``status`` is not reachable from the current status.
        """
        if status not in TRANSITIONS[self.status]:
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.status])) or "none"
            raise InvalidTransition(
                f"variant {self.id} is {self.status.value}; it cannot become {status.value} "
                f"(allowed: {allowed})"
            )
        return replace(self, status=status, updated=now)

    def body(self) -> bytes:
        """Canonical JSON of the parts stored as one document."""
        return canonical_json({
            "parameters": {k: _jsonable(v) for k, v in self.parameters.items()},
            "requirements": {k: str(v) for k, v in self.requirements.items()},
            "metadata": dict(self.metadata),
            "canary": self.canary.to_json() if self.canary else None,
        })


def new_variant(
    agent_class: str,
    parameters: Mapping[str, ParamValue],
    constructors: Constructors,
    *,
    now: float,
    description: str = "",
    requirements: Mapping[str, object] | None = None,
    metadata: Mapping[str, Any] | None = None,
    variant_id: str | None = None,
) -> Variant:
    """A validated draft variant.

    Parameters
    ----------
    constructors : Mapping[str, callable or Sequence[str]]
        ``{agent_class_name: agent class}`` from the models (the runtime or CLI
        passes it: this package never imports them); the agent is built with
        ``parameters`` and whatever its constructor refuses is refused here.
        Parameter names alone (no constructor) check names and plain values only.
    now : float
        Creation time, seconds since the Unix epoch.

    Raises
    ------
    InvalidVariant
        If the class is unknown, a parameter is not in its constructor, a value
        is not a plain finite value, or the metadata is not JSON.
    InvalidCapabilities
        If a requirement's version is malformed.
    """
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise InvalidVariant(f"now={now!r} must be a finite number of seconds since the epoch")
    validate_changes(agent_class, parameters, constructors)
    reqs = {_name(k, "requirement"): Version.parse(v, what=f"requirement {k!r}")
            for k, v in (requirements or {}).items()}
    meta = dict(metadata or {})
    try:
        canonical_json(meta)
    except NotCanonical as exc:
        raise InvalidVariant(f"variant metadata is not plain JSON: {exc}") from exc
    if not isinstance(description, str):
        raise InvalidVariant(f"description must be text, not {description!r}")
    vid = variant_id if variant_id is not None else str(uuid.uuid4())
    try:
        if uuid.UUID(vid).version != 4:
            raise ValueError
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidVariant(f"variant id {vid!r} is not a UUID4") from exc
    return Variant(id=vid, agent_class=agent_class, description=description,
                   parameters=params_from_json({k: _jsonable(v) for k, v in parameters.items()}),
                   status=VariantStatus.DRAFT, created=now,
                   updated=now, requirements=reqs, metadata=meta)


def validate_changes(
    agent_class: str, parameters: Mapping[str, ParamValue], constructors: Constructors
) -> None:
    """Check a variant's changes against the agent's constructor.

    Raises
    ------
    InvalidVariant
        Naming the unknown class or parameter and listing what is allowed.
    """
    if not isinstance(agent_class, str) or agent_class not in constructors:
        known = ", ".join(sorted(constructors)) or "none registered"
        raise InvalidVariant(f"unknown agent class {agent_class!r}; known: {known}")
    if not isinstance(parameters, Mapping) or not parameters:
        raise InvalidVariant("a variant must change at least one constructor parameter")
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidVariant(f"{len(parameters)} parameters; a variant changes at most "
                             f"{MAX_PARAMETERS}")
    ctor = constructors[agent_class]
    allowed = _parameter_names(ctor)
    for name, value in parameters.items():
        if name not in allowed:
            raise InvalidVariant(
                f"{agent_class} has no constructor parameter {name!r}; "
                f"its parameters are: {', '.join(allowed) or 'none'}"
            )
        _check_value(f"{agent_class}.{name}", value)
    if callable(ctor):
        build(agent_class, ctor, parameters)


def _parameter_names(ctor: Callable[..., object] | Sequence[str]) -> tuple[str, ...]:
    if not callable(ctor):
        return tuple(ctor)
    names = getattr(ctor, "parameter_names", None)
    if callable(names):
        return tuple(names())
    return tuple(p for p in inspect.signature(ctor).parameters if p != "self")


def build(agent_class: str, ctor: Callable[..., object],
          parameters: Mapping[str, ParamValue]) -> object:
    """The agent ``ctor(**parameters)``; InvalidVariant naming what it refused.

    This is how a variant's values are validated: the agent's own
    constructor checks types and ranges (a string for a float,
    ``forgetting=-5``, ``window=1``), so a variant is never stored that its
    agent would refuse later.
    """
    try:
        return ctor(**dict(parameters))
    except (MemoryError, RecursionError, OverflowError) as exc:
        raise InvalidVariant(f"{agent_class}({_show(parameters)}) cannot be built: "
                             f"{type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - any refusal by the constructor is the answer
        raise InvalidVariant(f"{agent_class}({_show(parameters)}) is refused by the agent: "
                             f"{exc}") from None


def _show(parameters: Mapping[str, ParamValue]) -> str:
    return ", ".join(f"{k}={v!r:.40}" for k, v in parameters.items())


def _check_value(where: str, value: object, depth: int = 0) -> None:
    if depth > 4:
        raise InvalidVariant(f"{where} nests tuples more than 4 deep")
    if isinstance(value, str) and len(value) > MAX_VALUE_ITEMS:
        raise InvalidVariant(f"{where} is text of {len(value):,} characters; at most "
                             f"{MAX_VALUE_ITEMS:,}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise InvalidVariant(f"{where} = {value}; integers must fit in 64 bits")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidVariant(f"{where} = {value!r}; parameter values must be finite")
        return
    if isinstance(value, (tuple, list)):
        if len(value) > MAX_VALUE_ITEMS:
            raise InvalidVariant(f"{where} has {len(value):,} items; at most {MAX_VALUE_ITEMS:,}")
        for i, item in enumerate(value):
            _check_value(f"{where}[{i}]", item, depth + 1)
        return
    raise InvalidVariant(
        f"{where} is a {type(value).__name__}; parameters must be numbers, text, bools, "
        "None or tuples of those"
    )


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidVariant(f"{what} name {value!r} must be non-empty text")
    return value


def _jsonable(value: ParamValue) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def params_from_json(data: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Inverse of the JSON form: lists become tuples again."""
    def back(v: Any) -> Any:
        return tuple(back(x) for x in v) if isinstance(v, list) else v
    return {k: back(v) for k, v in data.items()}
