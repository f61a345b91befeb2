"""An ASGI app served by uvicorn in a thread of the test's process, on a loopback port the
system picks: the service's stream tests and the fake E2B server (``from _uvicorn_thread
import uvicorn_thread``; tests/ is on the path: tests/conftest.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def uvicorn_thread(app: Any, what: str = "uvicorn", start_s: float = 60,
                   join_s: float = 15, **config: Any) -> Iterator[str]:
    """Serves ``app`` (``config``: more of :class:`uvicorn.Config`'s arguments, e.g.
    ``lifespan="off"``) until the block ends; yields its base URL.

    Raises
    ------
    RuntimeError
        ``what`` did not start within ``start_s`` seconds, or its thread had not ended
        ``join_s`` seconds after it was told to exit (a server left running in the
        process; raised only if the block itself raised nothing).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, **{"log_level": "warning", **config}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    failed = False
    try:
        deadline = time.monotonic() + start_s
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"{what} did not start within {start_s:g} s")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    except BaseException:
        failed = True
        raise
    finally:
        server.should_exit = True
        thread.join(join_s)
        sock.close()
        if thread.is_alive() and not failed:
            raise RuntimeError(f"{what} still running {join_s:g} s after it was told to exit")
