"""``swarmvar mesh``: run a mesh node, make its keys, ask a node for its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import PlainGroup

app = typer.Typer(help="Mesh nodes over signed ZeroMQ: node, keygen, status.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # plain help and one-line errors, as the root app
                  cls=PlainGroup)  # each subcommand listed by its whole first sentence


def _peers(values: list[str] | None) -> dict[str, str]:
    out = {}
    for text in values or []:
        name, sep, address = text.partition("=")
        if not sep or not name or not address.startswith("tcp://"):
            raise typer.BadParameter(f"{text!r}: use ID=tcp://HOST:PORT", param_hint="--peer")
        out[name] = address
    return out


@app.command()
def node(
    node_id: Annotated[str, typer.Option("--id", help="this node's id in the cluster file")],
    cluster: Annotated[Path, typer.Option("--cluster", help="cluster file (JSON: nodes' "
                                          "addresses and public keys, admins' keys)")],
    key: Annotated[Path, typer.Option("--key", help="this node's Ed25519 key file")],
    home: Annotated[Path | None, typer.Option("--home", help="folder of the node's ledger "
                                              "(default: in memory)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="bind tcp://*:PORT instead of the "
                                             "cluster file's address")] = None,
    peer: Annotated[list[str] | None, typer.Option("--peer", help="ID=tcp://HOST:PORT: a "
                                                   "peer's address (overrides the file)")] = None,
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 0.1,
    suspect_after: Annotated[float, typer.Option("--suspect-after", help="seconds without a "
                                                 "heartbeat before a peer is suspected")] = 0.6,
    dead_after: Annotated[float, typer.Option("--dead-after", help="seconds without a "
                                              "heartbeat before a peer is declared dead")] = 2.0,
    policy: Annotated[str, typer.Option(help="backpressure or adaptive_delay")
                      ] = "backpressure",
    faults: Annotated[str | None, typer.Option(help="send-side faults for tests, JSON: "
                                               "{loss, duplicate, reorder, delay, seed}")] = None,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="stop after this long")
                           ] = 86_400.0,
) -> None:
    """Run one mesh node until it is told to leave (or SIGTERM)."""
    from ..errors import SwarmVarError
    from ..mesh.launch import node_config, serve_node
    from ..mesh.membership import Timeouts
    from ..mesh.transport import FaultPlan, SendPolicy

    if port is not None and not 1 <= port <= 65535:
        raise typer.BadParameter("a TCP port is 1..65535", param_hint="--port")
    try:
        send_policy = SendPolicy(policy)
    except ValueError:
        raise typer.BadParameter("use backpressure or adaptive_delay",
                                 param_hint="--policy") from None
    try:
        plan = FaultPlan(**json.loads(faults)) if faults else FaultPlan()
    except (ValueError, TypeError, SwarmVarError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from None
    try:
        config = node_config(
            cluster, node_id, home=home, bind=None if port is None else f"tcp://*:{port}",
            peers=_peers(peer), timeouts=Timeouts(heartbeat, suspect_after, dead_after),
            faults=plan, policy=send_policy)
        serve_node(config, key, max_seconds=max_seconds)
    except SwarmVarError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def keygen(
    out: Annotated[Path, typer.Argument(help="key file to write (mode 0600)")],
) -> None:
    """Make an Ed25519 key file; print its public key (for the cluster file)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..mesh.cluster import write_key
    from ..mesh.wire import public_key_hex

    if out.exists():
        raise typer.BadParameter(f"{out} exists; refusing to overwrite a key", param_hint="OUT")
    key = Ed25519PrivateKey.generate()
    write_key(out, key)
    typer.echo(public_key_hex(key))


@app.command()
def status(
    target: Annotated[str, typer.Argument(help="node id")],
    cluster: Annotated[Path, typer.Option("--cluster", help="cluster file (JSON: nodes' "
                                          "addresses and public keys, admins' keys)")],
    admin: Annotated[str, typer.Option("--admin", help="admin id in the cluster file")],
    key: Annotated[Path, typer.Option("--key", help="the admin's key file")],
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 5.0,
) -> None:
    """Ask a node for its status (membership, counters, agreement, statistics, forks) as JSON.

    Exits 1 when the node answers ``"ok": false`` (its error is also written to stderr).
    """
    from ..errors import SwarmVarError
    from ..mesh.admin import AdminClient
    from ..mesh.cluster import load_cluster, read_key

    try:
        spec = load_cluster(cluster)
        if target not in spec.addresses:
            raise typer.BadParameter(f"no node {target!r} in {cluster}", param_hint="TARGET")
        client = AdminClient(admin, read_key(key), spec.ring, spec.addresses)
        try:
            answer = client.request(target, "status", timeout=timeout)
        finally:
            client.close()
    except SwarmVarError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(json.dumps(answer, indent=1, sort_keys=True))
    if answer.get("ok") is not True:
        typer.echo(f"{target} refused the status request: "
                   f"{answer.get('error', 'no error given')}", err=True)
        raise typer.Exit(1)
