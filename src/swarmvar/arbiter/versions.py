"""Threat-model coefficients versioned like any model variant (the evolution registry).

A trained :class:`~.threat.ThreatModel` is stored as a variant of the
pseudo agent class ``"ThreatModel"`` whose constructor parameters are the
model's features, weights, bias and label; publishing promotes it to
ACTIVE, which retires the previous one in the same atomic step, and
:meth:`ThreatVersions.roll_back` re-instates the previous champion. The
variant id is the model's version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..errors import InvalidParameter
from ..evolution import MemoryVariantStore, VariantStatus, VariantStore, new_variant
from ..evolution.statestore import check_now
from .threat import ThreatModel

THREAT_CLASS = "ThreatModel"
#: The pseudo constructor the variant store validates threat models against.
CONSTRUCTORS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {THREAT_CLASS: ("features", "weights", "bias", "label")})


class ThreatVersions:
    """Published threat models in a :class:`~swarmvar.evolution.VariantStore`.

    ``clock`` gives the wall (or data) time in seconds stamped on variants.
    """

    def __init__(self, store: VariantStore | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.store = store if store is not None else MemoryVariantStore()
        self._clock = clock or (lambda: 0.0)

    def publish(self, model: ThreatModel, description: str = "",
                now: float | None = None) -> ThreatModel:
        """Store ``model`` as the active threat model; returns it with its version (variant id)."""
        if not isinstance(model, ThreatModel):
            raise InvalidParameter(f"model must be a ThreatModel, not {type(model).__name__}")
        if not isinstance(description, str):
            raise InvalidParameter(f"description must be text, not {description!r}")
        t = self._clock() if now is None else now
        check_now(t)
        variant = self.store.add(new_variant(
            THREAT_CLASS, model.to_parameters(), CONSTRUCTORS, now=t,
            description=description or f"threat model ({model.label or 'untitled'})"))
        promoted = self.store.promote(variant, t)
        return ThreatModel.from_parameters(promoted.parameters, promoted.id)

    def active(self) -> ThreatModel | None:
        """The active threat model, or None if none was published."""
        for v in self.store.list(VariantStatus.ACTIVE):
            if v.agent_class == THREAT_CLASS:
                return ThreatModel.from_parameters(v.parameters, v.id)
        return None

    def roll_back(self, now: float | None = None) -> ThreatModel | None:
        """Roll the active model back; the previous one (if any) becomes active again."""
        t = self._clock() if now is None else now
        check_now(t)
        for v in self.store.list(VariantStatus.ACTIVE):
            if v.agent_class == THREAT_CLASS:
                self.store.roll_back(v, t)
                return self.active()
        return None

    def versions(self) -> list[str]:
        """Every stored threat model's version, oldest first."""
        return [v.id for v in self.store.list() if v.agent_class == THREAT_CLASS]
