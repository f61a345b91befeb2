"""``swarmvar serve``: the HTTP API, live dashboard and ``/metrics`` under uvicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    agent_catalog,
    agents_listing,
    check_home,
    check_ledger,
    check_processes,
    check_seed,
    check_whole,
    from_setting,
    home_words,
    parse_alphas,
    resolve_agents,
    str_list,
    usage_error,
    usage_errors,
)

if TYPE_CHECKING:
    from ..config import Setting
    from ..service.config import ServiceConfig

#: Each new portfolio's agents when neither ``--agents`` nor the config file names them.
SERVE_AGENTS = ("NormalInverseGamma", "BayesianBootstrap")
#: The config file's keys serve reads (flag > file > default); the rest are its flags only.
_FILE_KEYS = ("home", "agents", "alphas", "window", "refit_every")
#: The levels ``--log-level`` takes (uvicorn's and the app's JSON-lines loggers).
LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's own loggers as JSON lines too (its access log is off: the app logs
    requests), on the handler of every swarmvar logger
    (:func:`swarmvar.service.middleware.log_config`: ``swarmvar.ledger`` logs a PostgreSQL
    ledger's URL, without its password, which its errors' messages, and so the answers'
    bodies, leave out)."""
    from ..service.middleware import log_config

    return log_config(level, {
        "uvicorn": {"handlers": ["json"], "level": level.upper(), "propagate": False},
        "uvicorn.error": {"level": level.upper()}})


def _check_tls(certfile: Path, keyfile: Path) -> None:
    """Load the certificate and key as uvicorn will, so that a bad pair is a usage error
    before the server starts, not an SSL traceback after."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(certfile), str(keyfile))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise typer.BadParameter(
            f"{certfile} and {keyfile} are not a PEM certificate and its private key "
            f"({exc}); give the pair your TLS files hold", param_hint="--certfile") from None


#: Bounds of ``--max-batch`` (10,000 returns: about 40 s of beats) and ``--max-streams``.
MAX_BATCH = 10_000
MAX_STREAMS = 10_000


def _check_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (``SO_REUSEADDR``) and let go: an address that is
    not this machine's, a name that does not resolve or a port in use is a usage error
    before the server starts (uvicorn would log it and exit, after the workers' imports)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise typer.BadParameter(f"{host!r} is not an address or a name that resolves ({exc}); "
                                 "give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0",
                                 param_hint="--host") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if all(info[0] != family for info in infos):
        family = infos[0][0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise usage_error(f"--port {port}: the address {host}:{port} is already in use "
                              "(another server listens there); stop it or choose another "
                              "--port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise usage_error(f"--host {host}: not an address of this machine ({exc.strerror}); "
                              "give one of its addresses, or 0.0.0.0 for all") from None
        if exc.errno == errno.EACCES:
            raise usage_error(f"--port {port}: permission denied (ports below 1024 need "
                              "privileges); choose a port of 1024 or above") from None
        raise usage_error(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _check_db(db: str, home: Path, words: str) -> None:
    """Connect to ``--db`` once (5 s at most, or the URL's ``connect_timeout``), then open
    the ledger and the evolution stores there as a worker does at its start (creating
    their tables if missing): a database that refuses the connect (psycopg's first line:
    this is the operator's own terminal), a user who may not create the tables (SQLSTATE
    42501, "grant the user CREATE"), a database out of reach, failing, full or read-only
    once connected (the store's error and its advice), or a ledger or variant
    store there that is not usable (damaged: its error named, "repair or restore it") is a
    usage error naming it, before the workers start (each would fail in its start-up).
    ``words`` names the home (:func:`home_words`), whose ``ledger.key`` signs the heads.

    Raises
    ------
    typer.Exit
        Exit 2 with the message, as :func:`usage_error` does.
    """
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of --db
        raise usage_error("--db needs the psycopg package (pip install 'psycopg[binary]')"
                          ) from None
    from ..errors import InvalidParameter
    from ..ledger.postgres import connect_seconds, url_params

    try:  # a malformed URL said in fixed words: psycopg's quote it, a password's fragment too
        seconds = connect_seconds(url_params(db), 5)  # a connect_timeout the stores refuse
    except InvalidParameter as exc:
        raise usage_error(f"--db: {exc}") from None
    try:  # the URL's connect_timeout (or PGCONNECT_TIMEOUT) kept, as the stores keep it
        psycopg.connect(db, connect_timeout=seconds).close()
    except (psycopg.Error, ValueError) as exc:
        raise usage_error(f"--db: cannot connect to the database ({_first_line(exc)}); "
                          "check the URL, that the server runs and accepts this user") from None
    from ..errors import LedgerFailed, LedgerUnreachable, LedgerUnwritable, SwarmVarError
    from ..evolution import open_home
    from ..evolution.errors import (
        VariantStoreFailed,
        VariantStoreUnreachable,
        VariantStoreUnwritable,
    )
    from ..ledger import Ledger
    from ..ledger.head import load_or_create_key

    try:
        key = load_or_create_key(home / "ledger.key")
    except SwarmVarError as exc:
        raise usage_error(f"{words}: {exc}") from None
    for store, what in (("ledger", "the ledger database"),
                        ("evolution", "the variant (evolution) store")):
        try:
            if store == "ledger":
                Ledger(db, signing_key=key).close()
            else:
                open_home(db, state_root=home / "states").close()
        except (psycopg.Error, SwarmVarError) as exc:
            if _permission_denied(exc):
                raise usage_error(
                    f"--db: the database accepts this user, but swarmvar cannot set up its "
                    f"ledger and evolution tables there ({_refused(exc)}); grant the user "
                    "CREATE on the schema (or create the tables once as a user who may) and "
                    "start again") from None
            if isinstance(exc, (LedgerUnreachable, LedgerFailed, LedgerUnwritable,
                                VariantStoreUnreachable, VariantStoreFailed,
                                VariantStoreUnwritable)):  # lost since the connection
                # above, a lock timeout, a disk full or read-only database, in either
                # store: its own advice (free space, make it writable, retry), not repair
                raise usage_error(f"--db: {exc}") from None
            raise usage_error(
                f"--db: {what} there is not usable ({_first_line(exc)}); repair or restore "
                "it, or give another database") from None


#: PostgreSQL's SQLSTATE of a privilege refused (insufficient_privilege).
_INSUFFICIENT_PRIVILEGE = "42501"


def _permission_denied(exc: BaseException) -> bool:
    """True if ``exc``, or an error it wraps (``__cause__``, kept by the PostgreSQL stores'
    wrappers), is PostgreSQL's refusal of a privilege (SQLSTATE 42501)."""
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:  # bounded: each error once
        seen.add(id(at))
        if getattr(at, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
            return True
        at = at.__cause__ or at.__context__
    return False


def _refused(exc: BaseException) -> str:
    """What the CREATE advice quotes of a refused privilege ``exc``: the stores' category,
    class and SQLSTATE (``permission denied, InsufficientPrivilege, SQLSTATE 42501``), not
    their whole message and its retry advice; psycopg's own error's first line."""
    detail = getattr(exc, "detail", None)
    return detail if isinstance(detail, str) and detail else _first_line(exc)


def _from_file(settings: Mapping[str, Setting]) -> str | None:
    """One line naming the config file and the keys serve took from it (``settings:
    swarmvar.toml gives home = "/srv/risk", window = 500``), or None when it took none:
    :func:`~swarmvar.cli._common.from_file_line` over the keys serve reads."""
    from ._common import from_file_line

    return from_file_line({key: settings[key] for key in _FILE_KEYS})


def _first_line(exc: BaseException) -> str:
    """An error's first line (a database's messages run over several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_folders(home: Path, db: str | None, workers: int, words: str) -> None:
    """What the service writes under ``home`` as it starts or creates a portfolio: the
    agents' key folder, the metrics folder of several workers (emptied at each start), and
    with ``--db`` the ledger's signing key. A file in the way is a usage error here, naming
    the home as ``words`` (:func:`home_words`: the flag, or the config file's key)."""
    from ..errors import SwarmVarError

    needed = [home / "keys" / "agents"]
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        needed.append(home / "prometheus")
    for folder in needed:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise usage_error(f"{words}: cannot create the folder {folder} "
                              f"({exc.strerror or exc}); move what is in the way") from None
    if db is not None and (home / "ledger.key").exists():
        from ..ledger.head import load_or_create_key

        try:  # the ledger's heads are signed with it: a damaged one is said here
            load_or_create_key(home / "ledger.key")
        except SwarmVarError as exc:
            raise usage_error(f"{words}: {exc}") from None


def _check_resume(cfg: ServiceConfig, words: str) -> None:
    """Serve the home under the arbiter that decided its beats, as ``swarmvar run`` resumes
    it (:func:`swarmvar.service.app.check_resume`: its checkpoints' options, each differing
    one named "saved X, now Y"; ``--no-arbiter`` over a home whose checkpoints hold the
    arbiter's state), read from the home before anything is written or listened on.
    ``words`` names the home (:func:`home_words`).

    Raises
    ------
    typer.Exit
        Code 2 with the refusal, naming the home.
    """
    from ..errors import ResumeMismatch
    from ..service.app import check_resume

    try:
        check_resume(cfg)
    except ResumeMismatch as exc:
        raise usage_error(f"{words}: {exc}") from None


def serve(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 in a container)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (the API, dashboard and /metrics)")] = 8000,
    home: Annotated[Path | None, typer.Option(help="data directory", show_default=".swarmvar")
                    ] = None,
    db: Annotated[str | None, typer.Option(
        help="postgresql://... URL of a ledger and evolution database shared by replicas "
             "(default: SQLite files under --home)", envvar="SWARMVAR_DB")] = None,
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="API key file (default <home>/api-keys.json)",
        envvar="SWARMVAR_KEYS")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    agents: Annotated[str | None, typer.Option(
        help="each new portfolio's agents, comma-separated; " + agents_listing(),
        show_default=",".join(SERVE_AGENTS))] = None,
    alpha: Annotated[str | None, typer.Option(help="confidence levels, comma-separated",
                                              show_default="0.99,0.975")] = None,
    max_body: Annotated[int, typer.Option(help="largest request body, bytes (else 413)")]
    = 1 << 20,
    max_batch: Annotated[int, typer.Option(
        help="most returns one ingest request may carry (else 413; each is one beat)")]
    = 1000,
    max_streams: Annotated[int, typer.Option(
        help="most event streams open at once per process (else 503, Retry-After)")] = 64,
    seed: Annotated[int, typer.Option(help="base random seed of the beats")] = 0,
    window: Annotated[int | None, typer.Option(
        help="agents' fit window, returns (capped at a portfolio's history)",
        show_default="1000")] = None,
    refit_every: Annotated[int | None, typer.Option(help="beats between refits",
                                                    show_default="20")] = None,
    arbiter: Annotated[bool, typer.Option(help="run the arbiter on every beat")] = True,
    k_flows: Annotated[float, typer.Option("--k-flows", help="arbiter pulse: k (kP > 1)")] = 4.0,
    p_nodes: Annotated[float, typer.Option("--p-nodes", help="arbiter pulse: P (kP > 1)")] = 5.0,
    t_threshold: Annotated[float, typer.Option("--t-threshold", help="arbiter: the PID's "
                                               "threshold time T_threshold (s)")] = 0.02,
    t1: Annotated[float, typer.Option("--t1", help="arbiter pulse: base time T1 (s)")] = 0.001,
    checkpoint_every: Annotated[int, typer.Option(
        help="beats of a portfolio between checkpoints of the arbiter's state under --home "
             "(a restart replays the beats after the last one)")] = 250,
    log_level: Annotated[str, typer.Option(help=", ".join(LOG_LEVELS[:-1]) + " or "
                                           + LOG_LEVELS[-1])] = "info",
    spread: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve the HTTP API (/v1, OpenAPI at /docs), the live dashboard and Prometheus /metrics."""
    from ..config import load_config
    from ..service.desk_book import MIN_HISTORY

    # the config file (swarmvar.toml) first: flag > file > this command's default, a file's
    # value checked against its flag's bounds and named as the file's key
    with usage_errors():
        settings = load_config().effective({
            "home": None if home is None else str(home), "agents": agents, "alphas": alpha,
            "window": window, "refit_every": refit_every})
    home = from_setting(settings["home"], lambda v: check_home(Path(str(v))))
    # names and levels first: a typo is a usage error here, not a traceback in the lifespan
    names = tuple(from_setting(settings["agents"],
                               lambda v: resolve_agents(str_list(v) or list(SERVE_AGENTS))))
    levels = from_setting(settings["alphas"], lambda v: parse_alphas(str_list(v), (0.99, 0.975)))
    window = from_setting(settings["window"],  # never shorter than the least history
                          lambda v: check_whole(v, "--window", MIN_HISTORY))
    refit_every = from_setting(settings["refit_every"],
                               lambda v: check_whole(v, "--refit-every", 1))
    level = log_level.strip().lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not a log level; use one of "
                                 f"{', '.join(LOG_LEVELS)}", param_hint="--log-level")
    import uvicorn

    from ..service.config import CONFIG_ENV, ServiceConfig
    from ..service.keys import KeyFile

    if spread is not None:  # `swarmvar run --spread K` users: say where spread runs
        raise typer.BadParameter(
            f"{spread!r}: swarmvar serve runs each portfolio whole in one process "
            "(its workers and replicas replay each other's beats from the ledger), so it has "
            "no --spread; spread a portfolio's agents over hosts with "
            "`swarmvar run --spread K --workers K`", param_hint="'--spread'")
    if (certfile is None) != (keyfile is None):
        raise typer.BadParameter("TLS needs both --certfile and --keyfile")
    for p in (certfile, keyfile):
        if p is not None and not p.is_file():
            raise typer.BadParameter(f"no such file: {p}")
    check_processes(workers)  # a typo such as 99999 would start that many servers
    check_whole(max_batch, "--max-batch", 1, MAX_BATCH)
    check_whole(max_streams, "--max-streams", 1, MAX_STREAMS)
    check_seed(seed)
    if not 0 < port < 65536 or max_body < 1:
        raise typer.BadParameter("0 < --port < 65536 and --max-body >= 1")
    if certfile is not None and keyfile is not None:
        _check_tls(certfile, keyfile)
    if checkpoint_every < 1:
        raise typer.BadParameter(f"{checkpoint_every}: a whole number of beats >= 1",
                                 param_hint="'--checkpoint-every'")
    if db is not None and not db.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter(f"--db {db!r}: a postgresql:// URL")
    if arbiter:  # the arbiter's own checks of its options (kP > 1, ...), before any work
        from ..arbiter import Arbiter

        with usage_errors():
            Arbiter.from_options(k_flows=k_flows, p_nodes=p_nodes, t1=t1,
                                 t_threshold=t_threshold, record_decisions=False)
    cfg = ServiceConfig(home=home, db=db, keys=keys, agents=names,
                        alphas=levels, seed=seed, window=window, refit_every=refit_every,
                        arbiter=arbiter, checkpoint_every=checkpoint_every,
                        max_body=max_body, max_batch=max_batch, max_streams=max_streams,
                        k_flows=k_flows, p_nodes=p_nodes, t1=t1, t_threshold=t_threshold)
    if db is None:  # the service opens <home>/ledger.sqlite at start: a damaged one, here
        check_ledger(home, home_words(settings["home"]))
    _check_resume(cfg, home_words(settings["home"]))  # before anything is written
    home.mkdir(parents=True, exist_ok=True)
    from ..errors import SwarmVarError

    try:
        listed = KeyFile(cfg.key_file).list()
    except SwarmVarError as exc:  # a damaged key file: say so before serving anything
        raise usage_error(f"--keys: {exc}") from None
    from ..swarm.consensus import check_agent_keys

    try:  # the service reads them while it starts: a damaged one is said here, in one line
        check_agent_keys(home, agent_catalog()[0])
    except SwarmVarError as exc:
        raise usage_error(str(exc)) from None
    _check_folders(home, db, workers, home_words(settings["home"]))
    if db is not None:  # the workers open it while they start: unreachable is said here
        _check_db(db, home, home_words(settings["home"]))
    _check_listen(host, port)  # a bad --host or a taken port: one line, not a traceback
    taken = _from_file(settings)
    if taken:  # serve read no config file before: say which file, and what it set
        typer.echo(taken, err=True)
    if not listed:
        typer.echo(f"warning: no API keys in {cfg.key_file}; create one with "
                   "`swarmvar keys create --role admin`", err=True)
    os.environ[CONFIG_ENV] = cfg.to_env()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mp = home / "prometheus"
        shutil.rmtree(mp, ignore_errors=True)
        mp.mkdir(parents=True)  # checked by _check_folders
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
    uvicorn.run("swarmvar.service.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, ssl_certfile=None if certfile is None else str(certfile),
                ssl_keyfile=None if keyfile is None else str(keyfile), access_log=False,
                log_config=_log_config(level), timeout_graceful_shutdown=5,
                timeout_keep_alive=30,  # below common load balancers' idle timeouts (60 s)
                timeout_worker_healthcheck=120)  # a worker replays the ledger at start
