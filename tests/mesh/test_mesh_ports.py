"""`free_ports`: distinct ports, bindable, outside the kernel's ephemeral range."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator, Sequence

import pytest

from swarmvar.errors import InvalidParameter
from swarmvar.mesh import free_ports
from swarmvar.mesh.cluster import _ephemeral_low


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(10000 <= p < _ephemeral_low() for p in ports)
    for p in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", p))


@pytest.fixture
def held() -> Iterator[list[int]]:
    """Twenty ports below the ephemeral range, bound and listening for the test's length."""
    sockets: list[socket.socket] = []
    try:
        for p in free_ports(20):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", p))
            s.listen()
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _draws(monkeypatch: pytest.MonkeyPatch, first: Sequence[int], then: int | None
           ) -> list[int]:
    """``SystemRandom.randrange`` (free_ports' draw) patched to give ``first`` in order, then
    ``then`` every time (``None``: real random draws); returns the list of what it gave."""
    given: list[int] = []
    queue = list(first)
    real = random.SystemRandom.randrange

    def randrange(self: random.SystemRandom, start: int, stop: int) -> int:
        if queue:
            port = queue.pop(0)
        elif then is not None:
            port = then
        else:
            port = real(self, start, stop)
        given.append(port)
        return port

    monkeypatch.setattr(random.SystemRandom, "randrange", randrange)
    return given


def test_a_port_in_use_is_never_returned(monkeypatch: pytest.MonkeyPatch,
                                         held: list[int]) -> None:
    """Every held port is drawn first (and a held port again later): none comes back."""
    given = _draws(monkeypatch, [*held, held[0]], None)
    ports = free_ports(30)
    assert given[:21] == [*held, held[0]]  # the held ports were really tried
    assert len(given) >= 21 + 30
    assert not set(held) & set(ports)
    assert len(set(ports)) == 30
    assert all(10000 <= p < _ephemeral_low() for p in ports)  # drawn: none fell back


@pytest.mark.parametrize("n", [1, 7])
def test_when_every_draw_is_in_use_the_kernel_picks(monkeypatch: pytest.MonkeyPatch,
                                                    held: list[int], n: int) -> None:
    """Every draw hits a held port: the bounded draws (50 per port) all fail and the ports
    are the kernel's (bind to port 0): distinct, none held, in the ephemeral range."""
    given = _draws(monkeypatch, [], held[3])
    ports = free_ports(n)
    assert given == [held[3]] * (50 * n)
    assert len(ports) == n and len(set(ports)) == n
    assert not set(held) & set(ports)
    assert all(p >= _ephemeral_low() for p in ports)  # bind(0) picks from the ephemeral range


@pytest.mark.parametrize("n", [0, -1, 1001])
def test_a_count_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InvalidParameter, match="1..1000 ports"):
        free_ports(n)
