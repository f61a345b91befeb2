"""Command line face of swarmvar (layer 4): parses text, calls the engines, prints.

Each command lives in its own module here; this module mounts them. No
statistics live in the CLI.

The app is built on first use (``swarmvar.cli.app``), and the ``swarmvar``
entry point mounts only the command group it is asked for, so that
``swarmvar ledger verify`` does not pay for importing the models and their
numerical stack.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

#: command -> (module, attribute, is a group)
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "var": (".var", "var", False),
    "backtest": (".backtest", "backtest_command", False),
    "ledger": (".ledger", "app", True),
    "variants": (".variants", "app", True),
    "serve": (".serve", "serve", False),
    "keys": (".keys", "app", True),
}

_app: typer.Typer | None = None


def build_app(only: str | None = None) -> typer.Typer:
    """The ``swarmvar`` Typer app with every command, or only the command ``only``."""
    app = typer.Typer(
        name="swarmvar",
        help="Bayesian Value-at-Risk from a swarm of model agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name, (module, attr, group) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(module, __name__), attr)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)

    @app.callback()
    def _root() -> None:
        """Bayesian Value-at-Risk from a swarm of model agents."""

    return app


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``swarmvar`` command."""
    first = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    build_app(first if first in _COMMANDS else None)()
