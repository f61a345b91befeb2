"""Command line face of swarmvar (layer 4): parses text, calls the engines, prints.

Each command lives in its own module here; this module mounts them. No
statistics live in the CLI.

Commands load lazily: ``swarmvar --help`` lists every command from the
modules' source (their docstrings, read with :mod:`ast`) without importing
them, and running a command imports only its own module, so that
``swarmvar ledger verify`` does not pay for the models and their numerical
stack and ``swarmvar --help`` answers in a fraction of a second.
"""

from __future__ import annotations

import ast
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

#: command -> (module, attribute, is a group)
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "var": (".var", "var", False),
    "backtest": (".backtest", "backtest_command", False),
    "ledger": (".ledger", "app", True),
    "variants": (".variants", "app", True),
    "run": (".run", "run", False),
    "serve": (".serve", "serve", False),
    "keys": (".keys", "app", True),
    "config": (".config", "app", True),
    "arbiter": (".arbiter", "app", True),
    "mesh": (".mesh", "app", True),
}

_app: typer.Typer | None = None


def _short_help(name: str) -> str:
    """A command's one-line help from its module's source, without importing it."""
    module, attr, group = _COMMANDS[name]
    path = Path(__file__).parent / (module.lstrip(".").replace(".", "/") + ".py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ""
    text: str | None = None
    for node in ast.walk(tree):
        if not group and isinstance(node, ast.FunctionDef) and node.name == attr:
            text = ast.get_docstring(node)
        elif group and isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == attr for t in node.targets):
            call = node.value
            if isinstance(call, ast.Call):
                for kw in call.keywords:
                    if kw.arg == "help" and isinstance(kw.value, ast.Constant):
                        text = str(kw.value.value)
        if text:
            break
    if not text:
        text = ast.get_docstring(tree) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def _load(name: str) -> Any:
    """The click command of ``name``, importing its module."""
    module, attr, group = _COMMANDS[name]
    target = getattr(importlib.import_module(module, __name__), attr)
    command: Any
    if group:
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                             rich_markup_mode=None)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class PlainGroup(TyperGroup):
    """A command group whose help lists each subcommand by its whole first sentence,
    wrapped, where click cuts it at ~45 characters mid-sentence ("... compare..."). Every
    group of the CLI uses it, with ``rich_markup_mode=None`` (plain help, no boxes)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class _Listed(typer.core.TyperCommand):
    """A command shown in the root's help by its one-line text (nothing imported)."""


class _LazyGroup(PlainGroup):
    """The root group: commands from :data:`_COMMANDS`, imported only when run."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in _COMMANDS:
            return command
        if self._listing:  # the root's help: one line each, from the source
            text = _short_help(cmd_name)
            return _Listed(name=cmd_name, help=text, short_help=text, callback=None)
        command = _load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def build_app(only: str | None = None) -> typer.Typer:
    """The ``swarmvar`` Typer app; every command loads when first run (``only`` is kept
    for callers that mounted one command: it changes nothing now)."""
    app = typer.Typer(
        name="swarmvar",
        cls=_LazyGroup,
        rich_markup_mode=None,  # plain help: no rich/markdown imports, messages never wrapped
        help="Bayesian Value-at-Risk from a swarm of model agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """Bayesian Value-at-Risk from a swarm of model agents."""
        _quiet_logs()

    return app


def _quiet_logs() -> None:
    """Give the ``swarmvar`` logger a do-nothing handler (once), so that a command whose
    logging nobody configured does not print its log lines through Python's last-resort
    handler (a PostgreSQL store's URL and psycopg's words above the command's own error
    line, twice for ``ledger verify``): the error line says what is wrong. Lines still
    reach handlers the caller configured (the root's, ``swarmvar serve``'s JSON lines)."""
    log = logging.getLogger("swarmvar")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``swarmvar`` command: a usage error or a result, never a traceback."""
    try:
        build_app()()
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True, fg=typer.colors.RED)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        typer.secho(f"error: {type(exc).__name__}: {exc} (this is a bug in swarmvar; "
                    "please report it with the command line)", err=True, fg=typer.colors.RED)
        sys.exit(1)
