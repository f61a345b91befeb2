"""Command line face of swarmvar (layer 4): parses text, calls the engines, prints.

Each command lives in its own module here; this module mounts them. No
statistics live in the CLI.
"""

from __future__ import annotations

import typer

from .backtest import backtest_command
from .ledger import app as ledger_app
from .var import var
from .variants import app as variants_app

app = typer.Typer(
    name="swarmvar",
    help="Bayesian Value-at-Risk from a swarm of model agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("var")(var)
app.command("backtest")(backtest_command)
app.add_typer(ledger_app, name="ledger")
app.add_typer(variants_app, name="variants")


@app.callback()
def _root() -> None:
    """Bayesian Value-at-Risk from a swarm of model agents."""


def main() -> None:
    """Entry point of the ``swarmvar`` command."""
    app()
