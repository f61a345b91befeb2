"""Which agents of a portfolio swarm live in sandboxes, and the sandboxes they live in.

``swarmvar run --sandbox bwrap|e2b`` puts every agent of every portfolio in
a sandbox of the ``realtime`` profile: the agent lives in the sandbox's warm
worker and the beat talks to it through :class:`~.sandboxed.SandboxedAgent`
(fit, update, forecast, state). Plug-in agents (``--plugin
package.module:Class``) always live in a sandbox: with ``--sandbox none``
(asked for explicitly) in an unwalled worker process, with a warning in the
ledger. Without ``--sandbox`` the built-in agents run in the beat's process,
as before.

One sandbox per (portfolio, agent): a violation recycles only the guilty
agent's worker, and one agent's code never shares a process with another's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from ..models import Agent, agent_class

#: The profile agents live in during beats (CPU seconds and wall time per task bounded).
PROFILE = "realtime"
#: Backends of ``--sandbox``; ``none`` is no walls (plug-ins only, with a warning).
BACKENDS = ("none", "bwrap", "e2b")


@dataclass(frozen=True)
class SandboxSetup:
    """Sandboxing of one swarm (picklable: it travels to worker processes and actors).

    Parameters
    ----------
    backend : str or None
        ``bwrap`` or ``e2b``: every agent in a sandbox; ``none``: plug-ins in
        an unwalled worker, built-ins in process; None: no sandbox at all
        (then no plug-ins).
    plugins : tuple of str
        Plug-in classes ``"package.module:Class"``; the agent's id is ``Class``.
    plugin_paths : tuple of str
        Folders holding the plug-ins' modules (read-only inside the sandbox).
    digests : mapping
        Plug-in class -> its source digest (:func:`plugin_digest`) as the swarm started
        (``Swarm.start`` puts it in the setup its hosts get; not compared, not in
        :meth:`to_dict`): a sandbox worker started later (a recycled one) runs a plug-in
        only while its files still hash to it (:class:`.sandboxed.SandboxedAgent`).
    """

    backend: str | None = None
    plugins: tuple[str, ...] = ()
    plugin_paths: tuple[str, ...] = ()
    digests: Mapping[str, str | None] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise InvalidParameter(f"unknown sandbox backend {self.backend!r}; choose one of "
                                   f"{', '.join(BACKENDS)}")
        if self.plugins and self.backend is None:
            raise InvalidParameter("plug-in agents run only in a sandbox: choose a backend "
                                   "(bwrap, e2b, or none explicitly)")
        if self.plugins and self.backend == "e2b":
            raise InvalidParameter("plug-ins are not shipped to E2B yet: use --sandbox bwrap")
        names = [p.partition(":")[2] for p in self.plugins]
        for spec, name in zip(self.plugins, names, strict=True):
            module = spec.partition(":")[0]  # each dotted part a name, as import reads it
            if not name.isidentifier() or not all(part.isidentifier()
                                                  for part in module.split(".")):
                raise InvalidParameter(f"plug-in {spec!r} is not package.module:Class")
        if len(set(names)) != len(names):
            raise InvalidParameter(f"two plug-ins with one class name: {list(self.plugins)}")

    @classmethod
    def from_options(cls, backend: str | None, plugins: Sequence[str] = (),
                     plugin_paths: Sequence[str] = ()) -> SandboxSetup | None:
        """The setup of the command-line options (None when nothing is sandboxed)."""
        if backend is None and not plugins:
            return None
        return cls(backend, tuple(plugins), tuple(plugin_paths))

    @property
    def plugin_agents(self) -> dict[str, str]:
        """Agent id (the class name) -> ``"package.module:Class"``."""
        return {p.partition(":")[2]: p for p in self.plugins}

    @property
    def walled(self) -> bool:
        return self.backend in ("bwrap", "e2b")

    def probe(self, home: str) -> None:
        """Make (and kill) one sandbox now, so that a missing bubblewrap, an E2B without
        its key or a data home the sandbox could see is a clear error before any agent
        is fitted (a failure inside the beat would only take the agent out)."""
        if self.backend is None or (not self.walled and not self.plugins):
            return
        host = AgentHost(self, {}, home)
        try:
            host._box("probe")
        finally:
            host.close()

    def warning(self) -> str | None:
        """What the ledger must say about this setup (plug-ins without walls), or None."""
        if self.plugins and self.backend == "none":
            return (f"plug-in agents {sorted(self.plugin_agents)} run WITHOUT a sandbox "
                    "(--sandbox none): their code can read the data home and reach the network")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "profile": PROFILE, "plugins": list(self.plugins),
                "plugin_paths": list(self.plugin_paths)}


class AgentHost:
    """Makes one portfolio's agents: in process, or as proxies of agents in sandboxes.

    ``book``: the portfolio is a book over assets, whose computed return may pass
    ``|r| <= 1`` with leverage; every agent made, restored or rebased here is widened
    for it (:meth:`~swarmvar.models.Agent.take_book_returns`), a state from before the
    widening (an older checkpoint's) too.
    """

    def __init__(self, setup: SandboxSetup | None,
                 params: Mapping[str, Mapping[str, Any]], home: str | None = None,
                 *, book: bool = False) -> None:
        self.setup = setup
        self.params = params
        #: the data home (keys, ledger, states): bubblewrap refuses to start if a bind
        #: would show it inside
        self.home = home
        self.book = book
        self._boxes: dict[str, Any] = {}

    def sandboxed(self, name: str) -> bool:
        s = self.setup
        return s is not None and (s.walled or name in s.plugin_agents)

    def _box(self, name: str) -> Any:
        box = self._boxes.get(name)
        if box is None:
            from .. import sandbox

            assert self.setup is not None and self.setup.backend is not None
            options: dict[str, Any] = {}
            if self.setup.plugin_paths and self.setup.backend != "e2b":
                options["plugin_paths"] = self.setup.plugin_paths
            if self.setup.backend == "bwrap" and self.home is not None:
                options["hidden"] = (self.home,)
            box = sandbox.create(self.setup.backend, PROFILE, **options)
            self._boxes[name] = box
        return box

    def _widened(self, agent: Any) -> Any:
        """``agent`` widened for a book's returns when this host's portfolio is a book."""
        return agent.take_book_returns() if self.book else agent

    def new(self, name: str) -> Any:
        """A fresh (unfitted) agent ``name`` (widened for a book)."""
        options = dict(self.params.get(name, {}))
        if not self.sandboxed(name):
            return self._widened(agent_class(name)(**options))
        from .sandboxed import SandboxedAgent

        assert self.setup is not None
        plugin = self.setup.plugin_agents.get(name)
        if plugin is not None:
            return self._widened(SandboxedAgent(
                self._box(name), plugin=plugin, options=options,
                plugin_paths=self.setup.plugin_paths, source=self.setup.digests.get(name)))
        return self._widened(SandboxedAgent(self._box(name), agent=name, options=options))

    def restored(self, name: str, state: bytes) -> Agent | Any:
        """Agent ``name`` from its ``state()`` bytes (in its sandbox when it lives in one)."""
        if not self.sandboxed(name):
            return self._widened(agent_class(name).from_state(state))
        agent = self.new(name)
        agent.restore(state)
        return agent

    def rebased(self, name: str, agent: Any, state: bytes) -> Any:
        """``agent`` replaced by its own restored copy (a checkpoint's rebase); a sandboxed
        agent is restored in place, under the same handle (its worker keeps one copy)."""
        if not self.sandboxed(name):
            return self._widened(agent_class(name).from_state(state))
        return self._widened(agent.restore(state))

    def close(self) -> None:
        """Kill every sandbox (their workers and everything they started)."""
        boxes, self._boxes = self._boxes, {}
        for box in boxes.values():
            box.kill()


#: Files of a plug-in's folder read for its source digest, at most.
PLUGIN_FILES = 2_000


def plugin_files(module: str, paths: Sequence[str]) -> tuple[Path, list[Path]] | None:
    """Where a plug-in's module is found without importing it (its sandbox's search path,
    ``plugin_paths``, first, then this process's): the folder it is found under and its
    files. For a module in a package (or a package's ``__init__``), every ``.py`` file of
    the folder holding it, not of its subfolders nor of the packages above: the helpers
    beside it, which it likely imports (an edit elsewhere in a large repository does not
    refuse a resume; a changed helper in another folder is not seen). For a top-level
    module, its own file only: the folder it lies in is a search-path root (a
    ``--plugin-path``, the working folder, ``site-packages``), not the plug-in's own, and
    hashing it would read every unrelated module there (up to :data:`PLUGIN_FILES`).
    None when it is not found as source files."""
    import os
    import sys

    parts = module.split(".")
    for root in [*paths, *sys.path]:
        base = Path(root or os.getcwd())
        own = base.joinpath(*parts[:-1], f"{parts[-1]}.py")
        if len(parts) == 1 and own.is_file():
            return base, [own]
        init = base.joinpath(*parts, "__init__.py")
        folder = own.parent if own.is_file() else init.parent if init.is_file() else None
        if folder is None:
            continue
        try:
            files = sorted(f for f in folder.iterdir() if f.suffix == ".py" and f.is_file())
        except OSError:
            return None
        return base, files[:PLUGIN_FILES]
    return None


def hash_files(base: Path, files: Sequence[Path]) -> str | None:
    """The sha256 of ``files`` (each one's path under ``base``, then its bytes); None when
    one cannot be read."""
    import hashlib

    h = hashlib.sha256()
    try:
        for f in files:
            h.update(f.relative_to(base).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    except OSError:
        return None
    return h.hexdigest()


def plugin_digest(spec: str, paths: Sequence[str]) -> str | None:
    """The source digest of plug-in ``"package.module:Class"`` found on ``paths`` (then
    ``sys.path``): :func:`hash_files` of :func:`plugin_files`; None when its files are
    not found or cannot be read."""
    found = plugin_files(spec.partition(":")[0], tuple(paths))
    return None if found is None else hash_files(*found)
