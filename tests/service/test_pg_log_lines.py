"""Every swarmvar logger's lines are JSON lines, whichever way the service's logging was
set up: ``swarmvar serve``'s configuration for uvicorn (``_log_config``) or
``configure_logging`` (the app made by ``create_app`` inside another server) - the
PostgreSQL stores' ``swarmvar.ledger`` and ``swarmvar.evolution`` (the URLs their errors'
messages leave out) as well as ``swarmvar.service``. Each case runs in a process of its
own: configuring logging in the test process would change the other tests' capture."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LOG = """
import logging, logging.config, sys
from swarmvar.service.middleware import configure_logging
if sys.argv[1] == "serve":
    from swarmvar.cli.serve import _log_config
    logging.config.dictConfig(_log_config("warning"))
    configure_logging()  # what each uvicorn worker's app_from_env does next: level kept
else:
    configure_logging()
for name in ("swarmvar.ledger", "swarmvar.evolution", "swarmvar.service", "swarmvar.swarm"):
    logging.getLogger(name).info("quiet %s", name)
    logging.getLogger(name).warning("said %s", name)
if sys.argv[1] == "serve":
    logging.getLogger("uvicorn.error").warning("uvicorn says")
"""


@pytest.mark.parametrize("how", ["serve", "configure_logging"])
def test_each_swarmvar_logger_writes_json_lines(how: str) -> None:
    done = subprocess.run([sys.executable, "-c", LOG, how], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()
             if line.startswith("{") or pytest.fail(f"not a JSON line: {line!r}")]
    said = {(x["logger"], x["msg"]) for x in lines}
    for name in ("swarmvar.ledger", "swarmvar.evolution", "swarmvar.service", "swarmvar.swarm"):
        assert (name, f"said {name}") in said, lines
        # serve's --log-level warning holds; configure_logging alone: info
        assert ((name, f"quiet {name}") in said) is (how == "configure_logging"), lines
    assert (("uvicorn.error", "uvicorn says") in said) is (how == "serve"), lines
    assert all(x["level"] in ("info", "warning") for x in lines), lines


def test_create_app_leaves_the_processs_logging_as_the_embedder_set_it(tmp_path) -> None:
    """``create_app`` configures no logging (the embedder calls ``configure_logging``, as
    ``app_from_env`` does, docs/operations.md's Logs): the ``swarmvar`` logger's handlers,
    level and propagation are as they were before it."""
    import logging

    from swarmvar.service.app import create_app
    from swarmvar.service.config import ServiceConfig

    log = logging.getLogger("swarmvar")
    before = (list(log.handlers), log.level, log.propagate)
    create_app(ServiceConfig(home=tmp_path / "home"))
    assert (list(log.handlers), log.level, log.propagate) == before
