"""Command line face of swarmvar (layer 4): parses text, calls the engines, prints.

Each command lives in its own module here; this module mounts them. No
statistics live in the CLI.
"""

from __future__ import annotations

import typer

from .var import var

app = typer.Typer(
    name="swarmvar",
    help="Bayesian Value-at-Risk from a swarm of model agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("var")(var)


@app.callback()
def _root() -> None:
    """Bayesian Value-at-Risk from a swarm of model agents."""


def main() -> None:
    """Entry point of the ``swarmvar`` command."""
    app()
