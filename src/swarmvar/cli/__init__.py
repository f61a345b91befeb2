"""Command line face of swarmvar (layer 4): parses text, calls the engines, prints.

Each command group lives in its own module here and exposes a ``typer.Typer``
called ``app``; this module mounts them. No statistics live in the CLI.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="swarmvar",
    help="Bayesian Value-at-Risk from a swarm of model agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point of the ``swarmvar`` command."""
    app()
