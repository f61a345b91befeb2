"""``swarmvar ledger ...``: inspect, verify, prove and move the tamper-evident ledger.

Every command reads ``<home>/ledger.sqlite`` (``--home``, default
``./.swarmvar``; a ``postgresql://`` URL names a PostgreSQL ledger) and never
creates or repairs one, except ``import``. Output is JSON (one object per
line) so that it can be piped; ``verify`` prints one line and exits 1 naming
the first bad entry, or saying that the ledger is damaged or empty. Bad input
is a message and exit code 2, never a traceback; so is a damaged ledger
(SQLite's ``quick_check``) given to ``head`` or ``export``, which refuse to
sign or copy it, and a ledger that cannot be read or written now
(``LedgerUnavailable``: a lock, no file descriptor left; ``LedgerUnwritable``:
its disk full, read-only or an I/O error, named and never taken for damage, so
``verify`` meeting it exits 2, not 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ..errors import LedgerCorrupted, SwarmVarError
from ..ledger import (
    DEFAULT_HOME,
    ConsistencyProof,
    InclusionProof,
    Ledger,
    SignedHead,
    export_jsonl,
    import_jsonl,
)
from . import PlainGroup
from ._common import usage_error

app = typer.Typer(
    name="ledger",
    help="Verify, inspect, prove and export the tamper-evident ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and one-line errors, as the root app
    cls=PlainGroup,  # each subcommand listed by its whole first sentence
)

Home = Annotated[
    str,
    typer.Option("--home", help="Data home holding ledger.sqlite, or a postgresql:// URL."),
]


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def _echo_checked(proof: InclusionProof | ConsistencyProof) -> None:
    """Print a proof after checking it against the roots it carries (InvalidProof if not)."""
    proof.verify()
    _echo(proof.to_dict())


@contextmanager
def _ledger(home: str) -> Iterator[Ledger]:
    """Open an existing ledger; turn swarmvar errors into a message and exit code 2."""
    try:
        with Ledger(home, create=False) as ledger:
            yield ledger
    except (SwarmVarError, IndexError) as exc:
        raise usage_error(str(exc)) from None
    except OSError as exc:
        raise usage_error(f"cannot read the ledger at {home}: {exc.strerror or exc}") from None


@app.command()
def verify(
    home: Home = str(DEFAULT_HOME),
    against: Annotated[
        Path | None,
        typer.Option(help="A signed head (JSON from `ledger head`) that the ledger must extend."),
    ] = None,
) -> None:
    """Recompute every hash, link and Merkle node; exit 1 naming the first bad entry."""
    try:  # a file that opens as no ledger at all is a failed verification (exit 1)
        Ledger(home, create=False).close()
    except LedgerCorrupted as exc:
        typer.echo(f"damaged: {exc}")
        raise typer.Exit(1) from None
    except (SwarmVarError, OSError):
        pass  # _ledger below reports it (exit 2)
    with _ledger(home) as ledger:
        result = ledger.verify_chain()
        if result.ok and against is not None:
            try:
                head = SignedHead.from_dict(json.loads(against.read_text(encoding="utf-8")))
            except (OSError, ValueError, RecursionError) as exc:
                raise usage_error(f"cannot read signed head {against}: {exc}") from None
            result = ledger.check_head(head)
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)
    if against is None:  # the chain alone cannot tell its last entries were cut off
        typer.echo("entries removed from the end are seen only against a signed head taken "
                   "earlier: `swarmvar ledger head > head.json`, later `swarmvar ledger "
                   "verify --against head.json`")


#: A negative whole number as a command-line word: ``show -1``'s index, not an option.
_NEGATIVE = re.compile(r"-\d+")


class _NegativeIndexCommand(TyperCommand):
    """A command whose arguments may be negative (``show -1``: from the end).

    Click reads ``-1`` as an unknown option. Here, when a word is a negative number (and
    not an option's value, ``--size -1``), the arguments go after a ``--`` in their order,
    so ``-1`` is an argument while a mistyped option (``--hme``) is still said as one.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" not in args and any(_NEGATIVE.fullmatch(a) for a in args):
            takes_value = {name for p in self.params if p.param_type_name == "option"
                           and not getattr(p, "is_flag", False)
                           and not getattr(p, "count", False) for name in p.opts}
            options: list[str] = []
            arguments: list[str] = []
            value_next = False
            for word in args:
                if value_next:
                    options.append(word)
                    value_next = False
                elif word.startswith("-") and not _NEGATIVE.fullmatch(word):
                    options.append(word)
                    value_next = word in takes_value
                else:
                    arguments.append(word)
            args = [*options, "--", *arguments]
        return super().parse_args(ctx, args)


@app.command(cls=_NegativeIndexCommand)
def show(
    index: Annotated[
        int | None,
        typer.Argument(help="Entry index (negative: from the end); omit for the manifest."),
    ] = None,
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Print one entry, or the manifest (size, root, head hash, algorithm, created)."""
    with _ledger(home) as ledger:
        _echo(ledger.get_manifest().to_dict() if index is None else ledger.entry(index).to_dict())


@app.command()
def tail(
    count: Annotated[
        int | None, typer.Argument(min=1, show_default=False,
                                   help="How many of the last entries (as -n N).")
    ] = None,
    n: Annotated[
        int, typer.Option("-n", "--lines", min=1, help="How many of the last entries.")
    ] = 10,
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Print the last N entries, one JSON object per line (`tail 3` or `tail -n 3`)."""
    if count is not None:
        if n != 10 and n != count:
            raise usage_error(f"give the count once: `tail {count}` or `tail -n {n}`, not both")
        n = count
    with _ledger(home) as ledger:
        for entry in ledger.entries(max(0, ledger.size - n)):
            _echo(entry.to_dict())


@app.command(cls=_NegativeIndexCommand)
def prove(
    index: Annotated[int, typer.Argument(help="Entry index.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: the whole ledger).")] = None,
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Print an RFC 6962 inclusion proof for entry INDEX (checked before printing)."""
    with _ledger(home) as ledger:
        _echo_checked(ledger.inclusion_proof(index, size))


@app.command(cls=_NegativeIndexCommand)
def consistency(
    size1: Annotated[int, typer.Argument(help="Earlier tree size.")],
    size2: Annotated[int, typer.Argument(help="Later tree size.")],
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Print an RFC 6962 consistency proof from SIZE1 to SIZE2 (checked before printing)."""
    with _ledger(home) as ledger:
        _echo_checked(ledger.consistency_proof(size1, size2))


@app.command()
def head(home: Home = str(DEFAULT_HOME)) -> None:
    """Print a signed tree head (size, root, time; Ed25519) to keep for later audits.

    A ledger SQLite finds damaged (``PRAGMA quick_check``) is refused (exit 2):
    a signature over it would vouch for a broken record.
    """
    with _ledger(home) as ledger:  # signed_head refuses a damaged file itself
        _echo(ledger.signed_head().to_dict())


@app.command("export")
def export_(
    path: Annotated[Path, typer.Argument(help="JSON Lines file to write.")],
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Write the ledger to a JSON Lines file (header line, then one entry per line).

    A ledger SQLite finds damaged is refused (exit 2) and nothing is written.
    """
    with _ledger(home) as ledger:
        count = export_jsonl(ledger, path)  # SwarmVarError -> exit 2 in _ledger
    typer.echo(f"exported {count} entries to {path}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="JSON Lines export to load.")],
    home: Home = str(DEFAULT_HOME),
) -> None:
    """Verify an export and load it into a new, empty ledger under --home."""
    try:
        with import_jsonl(path, home) as ledger:
            size = ledger.size
    except (SwarmVarError, OSError, ValueError) as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"imported {size} entries into {home}")
