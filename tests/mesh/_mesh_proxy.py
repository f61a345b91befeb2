"""A fault-injecting TCP proxy on loopback, for where network namespaces cannot be made.

One listening port per directed link ``(src, dst)``; ``src`` is told (by
``--peer``) to reach ``dst`` through it, and the proxy forwards bytes to
``dst``'s real port. A blocked link drops its connections and refuses new
ones (ZeroMQ keeps reconnecting, as across a real partition). One thread,
one selector, bounded by ``close``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Mapping


class LoopbackProxy:
    """Forward ``link -> (listen port, target port)``; :meth:`block` / :meth:`unblock` links."""

    def __init__(self, links: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        self.blocked: set[tuple[str, str]] = set()
        self._sel = selectors.DefaultSelector()
        self._pipes: dict[tuple[str, str], list[tuple[socket.socket, socket.socket]]] = {}
        self._stop = False
        for link, (listen, target) in links.items():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", listen))
            s.listen(16)
            s.setblocking(False)
            self._sel.register(s, selectors.EVENT_READ, ("listen", link, target))
        self._thread = threading.Thread(target=self._loop, name="mesh-proxy", daemon=True)
        self._thread.start()

    def block(self, src: str, dst: str) -> None:
        self.blocked.add((src, dst))

    def unblock_all(self) -> None:
        self.blocked.clear()

    def _drop(self, link: tuple[str, str]) -> None:
        for a, b in self._pipes.pop(link, []):
            for s in (a, b):
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(s)
                s.close()

    def _loop(self) -> None:
        while not self._stop:
            for link in list(self._pipes):
                if link in self.blocked:
                    self._drop(link)
            for key, _ in self._sel.select(0.05):
                kind, link, other = key.data
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if kind == "listen":
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        continue
                    if link in self.blocked:
                        conn.close()
                        continue
                    try:
                        up = socket.create_connection(("127.0.0.1", other), timeout=1.0)
                    except OSError:
                        conn.close()
                        continue
                    conn.settimeout(1.0)
                    self._sel.register(conn, selectors.EVENT_READ, ("pipe", link, up))
                    self._sel.register(up, selectors.EVENT_READ, ("pipe", link, conn))
                    self._pipes.setdefault(link, []).append((conn, up))
                    continue
                try:
                    data = sock.recv(65536)
                    if data and link not in self.blocked:
                        other.sendall(data)
                        continue
                except OSError:
                    pass
                self._drop(link)  # closed or blocked: the whole link goes down

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        for link in list(self._pipes):
            self._drop(link)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()
