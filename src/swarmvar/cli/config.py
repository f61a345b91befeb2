"""``swarmvar config show``: the effective settings and where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from . import PlainGroup
from ._common import default_agents, usage_errors, write_json

app = typer.Typer(
    name="config",
    help="Show the settings in effect (swarmvar.toml, or tool.swarmvar in pyproject.toml; "
    "flags win) and the commands that read each.",
    add_completion=False,
    rich_markup_mode=None,  # plain help and one-line errors, as the root app
    cls=PlainGroup,  # each subcommand listed by its whole first sentence
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")
                       ] = False,
) -> None:
    """Print every setting, its value, its source (default, or the config file) and the
    commands that read it (var, backtest, run, serve; with a book, var --book and backtest
    --book read only some)."""
    from rich.markup import escape
    from rich.table import Table

    from ..config import APPLIES, BOOK_APPLIES, BOOK_ASIDE, DEFAULTS, load_config
    from ._common import make_console

    with usage_errors():
        config = load_config()
    settings = config.effective({})
    swarm = list(default_agents())  # what no agents setting means (models.DEFAULT_AGENTS)
    if as_json:
        write_json({"file": None if config.path is None else str(config.path),
                    "settings": {k: {"value": swarm if k == "agents" and s.value is None
                                     else s.value, "source": s.source,
                                     "commands": list(APPLIES[k])}
                                 for k, s in settings.items()},
                    # the book paths read only these keys; why each other key is left aside
                    "book": {path: list(keys) for path, keys in BOOK_APPLIES.items()},
                    "book_aside": {path: dict(why) for path, why in BOOK_ASIDE.items()}})
        return
    console = make_console()
    found = str(config.path) if config.path is not None else (
        "none (swarmvar.toml or [tool.swarmvar] in pyproject.toml, in this directory)")
    table = Table(title=escape(f"settings in effect; config file: {found}"),
                  title_justify="left")
    for column in ("setting", "value", "source", "commands", "what"):
        table.add_column(column)
    for key, s in settings.items():
        shown = ", ".join(swarm) if s.value is None and key == "agents" else (
            "command default" if s.value is None else str(s.value))
        what = DEFAULTS[key][1]
        if key == "agents":
            what = what.replace("the default swarm", f"the default swarm, {len(swarm)} agents")
        table.add_row(key, escape(shown), escape(s.source), ", ".join(_paths(key)), what)
    console.print(table)
    console.print("flags on the command line override these values; a command leaves "
                  "aside the keys it does not read (the commands column)")
    console.print("with a book (--book/--positions), var and backtest read only the keys "
                  "listed with --book; they leave aside:", markup=False)
    for path, aside in BOOK_ASIDE.items():
        console.print(f"  {path}:", markup=False)
        for key, why in aside.items():
            console.print(f"    {key}: {why}", markup=False)


def _paths(key: str) -> list[str]:
    """The command paths that read ``key``: each command of ``APPLIES``, followed by its
    book path (``var --book``) when that reads the key too (``BOOK_APPLIES``)."""
    from ..config import APPLIES, BOOK_APPLIES

    out: list[str] = []
    for command in APPLIES[key]:
        out.append(command)
        book = f"{command} --book"
        if key in BOOK_APPLIES.get(book, ()):
            out.append(book)
    return out
