"""`free_ports`: distinct ports, bindable, outside the kernel's ephemeral range."""

from __future__ import annotations

import socket

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


def test_a_port_in_use_is_never_returned() -> None:
    held = []
    try:
        for p in free_ports(20):  # hold twenty, then ask for more: none of the held come back
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", p))
            s.listen()
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert not taken & set(free_ports(200))
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("n", [0, -1, 1001])
def test_a_count_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InvalidParameter, match="1..1000 ports"):
        free_ports(n)
