"""Agents whose code runs only inside a sandbox: plug-ins and variants under isolation.

Where it sits: the runtime holds a :class:`SandboxedAgent` where it would
hold an agent. Every fit, update and forecast is a task in a
:mod:`swarmvar.sandbox` (the agent itself lives in the sandbox's warm
worker); what comes back is checked data, never a pickled object. A plug-in
agent class named by ``"module:Class"`` is imported only inside the
sandbox, never in this process.

The proxy keeps the agent's last state (taken after each fit and every
``checkpoint_every`` updates) and the returns absorbed since, so that when
the sandbox recycles its worker (after a violation, a crash or its task
quota) the next call restores the agent and replays those returns: the
numbers are those of an agent that was never interrupted.

A recycled worker imports a plug-in's module again, from its files as they are
then (the plug-in folders are bound live into the sandbox). So before a task
runs in a worker it has not checked (the first, every recycled one), the proxy
hashes the plug-in's files again (:func:`.sandboxing.plugin_digest`): files that
no longer hash to the digest the swarm started with (the one its checkpoints
record) are a :class:`~swarmvar.errors.SandboxViolation` (:data:`PLUGIN_CHANGED`)
and the task is not run; the runtime holds the agent out and opens its breaker,
as for any violation, until the files are the start's again.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter, NotFitted, SandboxViolation, TaskFailed, Violation
from ..sandbox import Sandbox, Task
from ..types import Forecast, RiskMeasure

ENTRY = "swarmvar.swarm.sandboxed:seeded_live_agent"

Seed = int | np.random.Generator | None

#: The violation of a plug-in whose files changed since the swarm started.
PLUGIN_CHANGED: Violation = Violation.PLUGIN_CHANGED


def seed_words(seed: Seed) -> tuple[int, list[int] | None]:
    """A task's seed from an agent call's seed: an int as it is; a Generator made by
    ``default_rng(words)`` (the runtime's seeds) travels as its words, so the agent
    inside draws the very same numbers as one outside."""
    if seed is None:
        return 0, None
    if isinstance(seed, np.random.Generator):
        seq = seed.bit_generator.seed_seq
        entropy = getattr(seq, "entropy", None)
        if getattr(seq, "spawn_key", ()) != () or entropy is None:
            raise InvalidParameter("only Generators made by default_rng(int or ints) cross "
                                   "the sandbox (their words are sent, not the object)")
        words = [int(entropy)] if isinstance(entropy, (int, np.integer)) else [
            int(w) for w in entropy]
        return 0, words
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed), None
    raise InvalidParameter(f"seed must be a non-negative int or a Generator, not {seed!r}")


def seeded_live_agent(params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], seed: int,
                      session: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`swarmvar.models.task.live_agent` with the caller's Generator rebuilt from
    ``params['seed_words']`` (runs inside the sandbox's worker)."""
    from ..models.task import live_agent

    words = params.get("seed_words")
    rng: Any = seed if words is None else np.random.default_rng([int(w) for w in words])
    if params.get("book") is True and params.get("op") in ("fit", "restore"):
        return _book_agent(params, arrays, rng, session)
    if params.get("op") == "refit":  # the agent's own refit (a warm start, where it has one)
        handle = str(params.get("handle"))
        agent = session.get("agents", {}).get(handle)
        if agent is None:
            raise KeyError(f"no live agent {handle!r} in this worker")
        agent.refit(np.asarray(arrays["returns"], dtype=float), seed=rng)
        return {"name": agent.name}, {}
    return live_agent(params, arrays, rng, session)


def _book_agent(params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], rng: Any,
                session: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``fit`` or ``restore`` of a book's agent, widened for a book's computed returns
    (:meth:`~swarmvar.models.Agent.take_book_returns`) before it takes any (runs inside the
    sandbox's worker; :func:`~swarmvar.models.task.live_agent` does the rest)."""
    from ..models.task import _live_class

    cls = _live_class(params)
    if params.get("op") == "fit":
        agent = cls(**dict(params.get("options", {}))).take_book_returns()
        agent.fit(np.asarray(arrays["returns"], dtype=float), seed=rng)
    else:  # a state from before the widening carries no flag: widened all the same
        agent = cls.from_state(arrays["state"].tobytes()).take_book_returns()
    session.setdefault("agents", {})[str(params.get("handle"))] = agent
    return {"name": agent.name}, {}


def forecast_from_dict(data: Mapping[str, Any]) -> Forecast:
    """A :class:`Forecast` from its plain form, every number checked (it came from a sandbox)."""
    def bad(why: str) -> SandboxViolation:
        return SandboxViolation(Violation.MALFORMED_RESULT, f"a forecast {why}")

    try:
        levels = []
        for level in data["levels"]:
            numbers = [float(level["alpha"]), float(level["var"]), float(level["es"]),
                       *map(float, level["var_interval"]), *map(float, level["es_interval"])]
            if len(numbers) != 7 or not all(math.isfinite(x) for x in numbers):
                raise bad("with a missing or non-finite number")
            alpha, var, es, vlo, vhi, elo, ehi = numbers
            if not 0.5 <= alpha < 1 or vlo > vhi or elo > ehi:
                raise bad(f"with an impossible level or interval at alpha={alpha:g}")
            levels.append(RiskMeasure(alpha, var, es, (vlo, vhi), (elo, ehi)))
        horizon = int(data["horizon"])
        mass = float(data.get("interval_mass", 0.9))
        model = str(data["model"])
    except SandboxViolation:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"that does not parse ({exc})") from None
    if not levels or horizon < 1 or not 0 < mass < 1:
        raise bad("with no levels, a bad horizon or a bad interval mass")
    return Forecast(model=model, horizon=horizon, levels=tuple(levels), interval_mass=mass)


class SandboxedAgent:
    """The runtime's handle on an agent that lives in ``box``.

    Parameters
    ----------
    box : Sandbox
        Where the agent runs (``swarmvar.sandbox.create("bwrap", "realtime")``).
    agent : str, optional
        A registered agent name (``"nig"``, ``"garch_t"``, ...), or
    plugin : str, optional
        a plug-in class ``"package.module:Class"`` (a subclass of
        :class:`~swarmvar.models.Agent`) on the sandbox's plug-in paths.
    options : mapping
        Constructor arguments.
    checkpoint_every : int
        Updates between the state snapshots kept for recovery.
    plugin_paths : sequence of str, optional
        Where the plug-in's files are found, hashed before its first task in each new
        worker; None (the default): the sandbox's own plug-in folders
        (``WorkerSandbox.plugin_paths``), then ``sys.path``.
    source : str, optional
        The plug-in's source digest as the swarm started
        (:func:`.sandboxing.plugin_digest`); None: the digest taken before the proxy's
        first task. A worker started later runs the plug-in only while its files hash to
        it; files that cannot be found or read hash to no digest, which differs from a
        digest taken.

    Raises
    ------
    InvalidParameter
        Neither or both of ``agent`` and ``plugin``; ``checkpoint_every`` below 1.

    The methods that run tasks raise :class:`~swarmvar.errors.SandboxViolation`
    (:data:`PLUGIN_CHANGED`) when a plug-in's files changed since the start and a new
    worker would run them (or ran them: a worker that died after the check).
    """

    def __init__(self, box: Sandbox, *, agent: str | None = None, plugin: str | None = None,
                 options: Mapping[str, Any] | None = None, checkpoint_every: int = 50,
                 plugin_paths: Sequence[str] | None = None, source: str | None = None) -> None:
        if (agent is None) == (plugin is None):
            raise InvalidParameter("give exactly one of agent (a name) or plugin ('module:Class')")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise InvalidParameter(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
        self._box = box
        self._which: dict[str, Any] = {"agent": agent} if agent is not None else {"plugin": plugin}
        self._options = dict(options or {})
        self._every = checkpoint_every
        self._handle = uuid.uuid4().hex
        self._state: bytes | None = None
        self._since: list[float] = []
        self.name = agent or str(plugin).rpartition(":")[2]
        if plugin_paths is None:  # the folders the sandbox's workers import from
            plugin_paths = getattr(box, "plugin_paths", ())
        self._plugin_paths = tuple(str(p) for p in plugin_paths or ())
        self._source = source
        self._checked: int | None = None  # the sandbox's workers started when last checked

    def _run(self, task: Task) -> Any:
        """``task`` in the sandbox, a plug-in's files checked first in a new worker.

        A worker that died between the check and the task is replaced by the sandbox
        unchecked: when the workers started moved meanwhile, the files are checked
        again before the result is taken (their change discards it).

        Raises
        ------
        SandboxViolation
            The plug-in's files changed since the swarm started (:meth:`_check_code`),
            or the task broke the sandbox's profile.
        """
        self._check_code()
        checked = self._checked
        result = self._box.run(task)
        if checked is not None and self._workers_started() != checked:
            self._check_code(start=False)  # the worker the task ran in, not checked
        return result

    def _workers_started(self) -> int | None:
        """The sandbox's warm workers started so far; None for a backend without them."""
        from ..sandbox.base import WorkerSandbox

        return self._box.workers_started if isinstance(self._box, WorkerSandbox) else None

    def _check_code(self, *, start: bool = True) -> None:
        """Before a plug-in's task in a worker not checked yet (the first; a recycled one,
        which imports the plug-in from its files now): its files must hash to the digest
        the swarm started with.

        Raises
        ------
        SandboxViolation
            The files hash otherwise, or cannot be found or read: the task is not run.
        """
        from ..sandbox.base import WorkerSandbox

        plugin = self._which.get("plugin")
        if plugin is None or not isinstance(self._box, WorkerSandbox):
            return  # a built-in agent, or a backend without warm workers (no plug-ins)
        if start:
            self._box.start()  # the worker the task will run in (it imports nothing yet)
        started = self._box.workers_started
        if started == self._checked:
            return
        from .sandboxing import plugin_digest

        now = plugin_digest(str(plugin), self._plugin_paths)
        if self._source is None:
            self._source = now  # (no start digest given: the first worker's code)
        if now != self._source:
            was = ("cannot be found or read" if now is None
                   else f"hash to {now[:12]}")
            then = ("could not be found" if self._source is None
                    else f"to {self._source[:12]}")
            raise SandboxViolation(PLUGIN_CHANGED, (
                f"plug-in {plugin}: its files changed since the swarm started (they {was}, "
                f"the code its checkpoints record {then}); a new worker would import the "
                "changed code: not run. Put the files back as they were, or start afresh in "
                "another home with the new code"))
        self._checked = started

    def _task(self, op: str, arrays: Mapping[str, np.ndarray] | None = None, seed: Seed = 0,
              **params: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        number, words = seed_words(seed)
        if words is not None:
            params["seed_words"] = words
        task = Task(ENTRY, {"op": op, "handle": self._handle, "options": self._options,
                            **self._which, **params}, dict(arrays or {}), seed=number)
        try:
            result = self._run(task)
        except TaskFailed as exc:
            if exc.error_type != "KeyError" or self._state is None:
                raise
            self._recover()
            result = self._run(task)
        return dict(result.values), dict(result.arrays)

    def _recover(self) -> None:
        """The worker was recycled: restore the last state and replay the returns since."""
        assert self._state is not None
        self._run(Task(ENTRY, {"op": "restore", "handle": self._handle, **self._which},
                       {"state": np.frombuffer(self._state, np.uint8)}))
        if self._since:
            self._run(Task(ENTRY, {"op": "update", "handle": self._handle},
                               {"returns": np.asarray(self._since, dtype=float)}))

    def _checkpoint(self) -> None:
        self._keep(self._task("state")[1])

    def _keep(self, arrays: Mapping[str, np.ndarray]) -> None:
        state = arrays.get("state")
        if state is None or state.dtype != np.uint8:
            raise SandboxViolation(Violation.MALFORMED_RESULT, "a state that is not bytes")
        self._state, self._since = state.tobytes(), []

    # --- the agent's interface ------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = 0) -> SandboxedAgent:
        """Fit inside the sandbox on ``returns`` (oldest first)."""
        x = np.asarray(returns, dtype=float)
        values = self._fitted("fit", x, seed)
        self.name = str(values.get("name", self.name))
        return self

    def _fitted(self, op: str, x: np.ndarray, seed: Seed) -> dict[str, Any]:
        """``fit`` or ``refit`` in the sandbox, then its state kept. A worker recycled right
        after the fit (its task quota) has lost the fitted agent: the state is not taken
        from a restore of the one before (that would drop the fit unseen), the fit is done
        again (the same numbers: the same seed), once."""
        for again in (False, True):
            values, _ = self._task(op, {"returns": x}, seed=seed)
            try:
                state = self._run(Task(ENTRY, {"op": "state", "handle": self._handle,
                                               **self._which}, {}))
            except TaskFailed as exc:
                if exc.error_type != "KeyError" or again:
                    raise
                continue
            self._keep(state.arrays)
            break
        return values

    def refit(self, returns: ArrayLike, *, seed: Seed = 0) -> SandboxedAgent:
        """The agent's own ``refit`` on a new window, inside the sandbox (a warm start
        where the agent has one, as in process)."""
        if self._state is None:
            raise NotFitted(f"{self.name}: fit before refit")
        x = np.asarray(returns, dtype=float)
        self._fitted("refit", x, seed)
        return self

    def restore(self, state: bytes) -> SandboxedAgent:
        """Put the agent of ``state`` (its ``state()`` bytes) in the sandbox."""
        self._run(Task(ENTRY, {"op": "restore", "handle": self._handle, **self._which},
                       {"state": np.frombuffer(bytes(state), np.uint8)}))
        self._state, self._since = bytes(state), []
        return self

    def take_book_returns(self) -> SandboxedAgent:
        """Let the agent take a book's computed returns (``|r| <=`` ``MAX_BOOK_RETURN``), as
        :meth:`~swarmvar.models.Agent.take_book_returns` does in process: every fit and
        restore in the sandbox from now on makes it widened (a recycled worker's too)."""
        if self._which.get("book"):  # widened already (a rebase of a widened proxy)
            return self
        self._which["book"] = True
        if self._state is not None:  # the live agent in the worker: restored widened
            self._recover()
        return self

    @property
    def diagnostics(self) -> Any:
        """Not carried across the sandbox (the guards skip agents without diagnostics)."""
        raise NotFitted(f"{self.name}: diagnostics stay inside the sandbox")

    def update(self, r: float) -> float:
        """Absorb one return inside the sandbox; its log predictive density."""
        if self._state is None:
            raise NotFitted(f"{self.name}: fit before update")
        _, arrays = self._task("update", {"returns": np.array([float(r)])})
        density = arrays.get("log_densities")
        if density is None or density.shape != (1,):
            raise SandboxViolation(Violation.MALFORMED_RESULT, "an update without its density")
        self._since.append(float(r))
        if len(self._since) >= self._every:
            self._checkpoint()
        return float(density[0])

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = 0) -> Forecast:
        """VaR/ES with credible intervals, computed inside the sandbox and checked here."""
        if self._state is None:
            raise NotFitted(f"{self.name}: fit before forecast")
        values, _ = self._task("forecast", seed=seed, alphas=[float(a) for a in alphas],
                               horizon=int(horizon))
        return forecast_from_dict(values.get("forecast", {}))

    def state(self) -> bytes:
        """The agent's current state (as the agent's own ``state()`` gives it)."""
        self._checkpoint()
        assert self._state is not None
        return self._state
