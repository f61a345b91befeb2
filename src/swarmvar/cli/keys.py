"""``swarmvar keys create|list|revoke``: the service's API keys (stored hashed, scrypt)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import PlainGroup

app = typer.Typer(help="API keys of `swarmvar serve`: create, list, revoke.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # plain help and one-line errors, as the root app
                  cls=PlainGroup)  # each subcommand listed by its whole first sentence

Home = Annotated[Path, typer.Option(help="data directory (the key file is "
                                         "<home>/api-keys.json unless --keys is given)")]
KeysPath = Annotated[Path | None, typer.Option("--keys", help="API key file",
                                               show_default="HOME/api-keys.json")]


def _unreadable(exc: Exception, keys: Path | None) -> typer.Exit:
    """A damaged key file (``KeyFileUnreadable``, its message naming the file) as one line
    naming the flag that chose it: ``--keys``, else ``--home`` (its api-keys.json); exit 2."""
    from ._common import usage_error

    return usage_error(f"{'--keys' if keys is not None else '--home'}: {exc}")


def _file(home: Path, keys: Path | None) -> object:
    from ..service.keys import KeyFile

    return KeyFile(keys if keys is not None else home / "api-keys.json")


@app.command()
def create(
    role: Annotated[str, typer.Option(help="reader, writer or admin")] = "reader",
    name: Annotated[str, typer.Option(help="a label, e.g. who holds the key")] = "",
    rate: Annotated[float, typer.Option(help="requests per second (0: unlimited)")] = 50.0,
    burst: Annotated[int, typer.Option(help="requests allowed at once above the rate")] = 100,
    home: Home = Path(".swarmvar"),
    keys: KeysPath = None,
) -> None:
    """Create a key and print it once (only its scrypt hash is stored)."""
    from ..errors import KeyFileUnreadable, SwarmVarError
    from ..service.keys import KeyFile, parse_role

    try:
        the_role = parse_role(role)
    except SwarmVarError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc
    kf = _file(home, keys)
    assert isinstance(kf, KeyFile)
    try:  # KeyFile.create refuses NaN, inf, a negative rate and a burst below 1
        key, secret = kf.create(the_role, rate=rate, burst=burst, name=name)
    except KeyFileUnreadable as exc:  # a damaged key file is said as such, not as a bad --rate
        raise _unreadable(exc, keys) from None
    except SwarmVarError as exc:
        raise typer.BadParameter(str(exc), param_hint=["--rate", "--burst"]) from exc
    typer.echo(secret)
    typer.echo(f"created key {key.id} ({key.role.value}); store it now: it is not shown again",
               err=True)


@app.command("list")
def list_keys(home: Home = Path(".swarmvar"), keys: KeysPath = None) -> None:
    """List keys: id, role, rate, created, revoked, name (never secrets)."""
    from ..errors import KeyFileUnreadable
    from ..service.keys import KeyFile

    kf = _file(home, keys)
    assert isinstance(kf, KeyFile)
    try:  # a damaged key file: one line naming the flag and the file, exit 2
        rows = kf.list()
    except KeyFileUnreadable as exc:
        raise _unreadable(exc, keys) from None
    if not rows:
        typer.echo("no keys")
    for k in rows:
        state = f"revoked {k.revoked}" if k.revoked else "active"
        typer.echo(f"{k.id}  {k.role.value:<6}  {k.rate:g}/s burst {k.burst}  created "
                   f"{k.created}  {state}  {k.name}")


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (see `keys list`)")],
           home: Home = Path(".swarmvar"), keys: KeysPath = None) -> None:
    """Revoke a key: a running server refuses it from its next request."""
    from ..errors import KeyFileUnreadable, SwarmVarError
    from ..service.keys import KeyFile

    kf = _file(home, keys)
    assert isinstance(kf, KeyFile)
    try:
        k = kf.revoke(key_id)
    except KeyFileUnreadable as exc:
        raise _unreadable(exc, keys) from None
    except SwarmVarError as exc:  # no such key
        raise typer.BadParameter(str(exc), param_hint="KEY_ID") from exc
    typer.echo(f"revoked {k.id} at {k.revoked}")
