"""The per-process cap on open event streams (``serve --max-streams``).

Each ``/events`` stream holds a connection and polls the ledger every 0.2 s for as
long as its client stays; without a cap a few clients could open thousands. A
stream takes a slot before its response starts (none free: :class:`TooManyStreams`,
answered 503 with ``Retry-After``) and gives it back when the response ends, however
it ends (client gone, server stopping, an error).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sse_starlette.sse import EventSourceResponse

from ..errors import InvalidParameter, TooManyStreams

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StreamSlots:
    """At most ``cap`` slots taken at once (thread-safe).

    Parameters
    ----------
    cap : int
        Most streams open at once in this process (>= 1).
    """

    def __init__(self, cap: int):
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise InvalidParameter(f"the event-stream cap must be a whole number >= 1, "
                                   f"not {cap!r}")
        self.cap = cap
        self._lock = threading.Lock()
        self._open = 0

    @property
    def open(self) -> int:
        """Slots taken now."""
        return self._open

    def take(self) -> Slot:
        """A slot, or :class:`TooManyStreams` when all ``cap`` are taken."""
        with self._lock:
            if self._open >= self.cap:
                raise TooManyStreams(
                    f"this server process already serves {self.cap} event streams (its cap, "
                    "`swarmvar serve --max-streams`); close one or reconnect after "
                    "Retry-After seconds")
            self._open += 1
        return Slot(self)

    def _give_back(self) -> None:
        with self._lock:
            self._open -= 1


class Slot:
    """One taken slot; :meth:`release` gives it back (once, however often called)."""

    def __init__(self, slots: StreamSlots):
        self._slots: StreamSlots | None = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._give_back()


class SlotStream(EventSourceResponse):
    """An :class:`EventSourceResponse` holding a :class:`Slot` until the response ends."""

    def __init__(self, slot: Slot, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()
