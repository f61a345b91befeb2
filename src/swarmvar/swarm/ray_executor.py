"""The Ray executor: shards of portfolio swarms as Ray actors, foragers as Ray tasks.

``pip install swarmvar[ray]``. Each shard (a group of portfolios, by a stable
hash of their names) is one actor running the same :class:`~.executors.Shard`
code as a local worker process, so the numbers are the local executor's bit
for bit. A dead actor (killed, its node lost) surfaces as
:class:`~.executors.HostLost` (a :class:`~swarmvar.errors.WorkerFailed`)
naming its portfolios; :meth:`reset` starts a fresh actor and the runtime
restores it from the last checkpoint and replays the ticks it missed, in
the background, while the other actors keep beating.

Ray is imported here only. ``RayExecutor()`` joins a running cluster if
``ray.init`` was called, or starts a local one with ``num_cpus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from ..errors import InvalidParameter
from .beat import BeatInput, BeatOutcome, PortfolioConfig
from .executors import Shard, ShardedFanOut, StartRequest, place
from .roles import RefitJob, RefitResult, run_refit


class RayExecutor(ShardedFanOut):
    """Portfolio swarms on Ray actors (see the module docstring).

    Parameters
    ----------
    shards : int
        Actors; portfolios are spread over them by a stable hash of their names.
    num_cpus : int, optional
        CPUs of the local cluster started when Ray is not initialized yet.
    actor_cpus : float
        CPUs each actor reserves (fractions let several share a core).
    """

    name = "ray"

    def __init__(self, shards: int = 2, *, num_cpus: int | None = 2,
                 actor_cpus: float = 0.5) -> None:
        import os

        import ray

        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise InvalidParameter(f"shards must be a whole number >= 1, not {shards!r}")
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            # configure_logging=False: Ray does not set up its own console output, so its
            # INFO lines ("Started a local Ray instance") no longer print past `swarmvar run
            # --quiet`; its warnings still reach stderr (Python's last-resort handler)
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self._owns_ray = True
        else:
            self._owns_ray = False
        self._ray = ray
        self.shards = shards
        self._actor_cls = ray.remote(num_cpus=actor_cpus, max_restarts=0)(_ShardActor)
        self._refit = ray.remote(num_cpus=actor_cpus)(run_refit)
        self._actors: dict[int, Any] = {}
        self._placement: dict[str, int] = {}
        self._configs: dict[str, PortfolioConfig] = {}

    def _actor(self, k: int) -> Any:
        if k not in self._actors:
            self._actors[k] = self._actor_cls.remote()
        return self._actors[k]

    def _fan(self, calls: Mapping[int, tuple[str, Any]]) -> dict[int, Any]:
        refs = {k: self._actor(k).call.remote(op, arg) for k, (op, arg) in calls.items()}
        out: dict[int, Any] = {}
        dead: dict[int, str] = {}
        errors: dict[int, BaseException] = {}
        for k, ref in refs.items():  # every answer is awaited, even after a failure
            try:
                out[k] = self._ray.get(ref)
            except self._ray.exceptions.RayActorError as exc:
                dead[k] = f"Ray actor of shard {k} died ({type(exc).__name__})"
            except self._ray.exceptions.RayTaskError as exc:
                errors[k] = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
        if dead:  # a shard that raised is lost with them (it may have beaten part of its batch)
            raise self._lost(dead, out, errors)
        if errors:
            raise next(iter(errors.values()))
        return out

    def open(self, configs: Sequence[PortfolioConfig]) -> None:
        groups: dict[int, list[PortfolioConfig]] = {}
        for c in configs:
            self._configs[c.portfolio] = c
            k = place(c, self.shards)
            self._placement[c.portfolio] = k
            groups.setdefault(k, []).append(c)
        self._fan({k: ("open", v) for k, v in groups.items()})

    def start(self, requests: Sequence[StartRequest]) -> None:
        self._fan_start(requests)

    def restore(self, blobs: Mapping[str, bytes]) -> None:
        self._fan_restore(blobs)

    def beats(self, inputs: Sequence[tuple[str, BeatInput]]) -> list[BeatOutcome]:
        return self._fan_beats(inputs)

    def states(self, names: Sequence[str]) -> dict[str, bytes]:
        return self._fan_states(names)

    def actors(self) -> dict[int, Any]:
        """Shard number -> actor handle (for tests that kill one)."""
        return dict(self._actors)

    def reset(self, names: Sequence[str]) -> None:
        for k in {self._placement[n] for n in names}:
            old = self._actors.pop(k, None)
            if old is not None:
                try:
                    self._ray.kill(old)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            self._actor(k)  # a fresh actor, opened and restored by the runtime's restorer

    def submit_refit(self, job: RefitJob) -> Future[RefitResult]:
        future: Future[RefitResult] = self._refit.remote(job).future()
        return future

    def close(self) -> None:
        for actor in self._actors.values():
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = {}
        if self._owns_ray:
            self._ray.shutdown()


class _ShardActor:
    """The actor body: one :class:`Shard`."""

    def __init__(self) -> None:
        self.shard = Shard()

    def call(self, op: str, arg: Any) -> Any:
        return self.shard.call(op, arg)
