"""Free TCP ports on loopback (or another local address) for the servers a test starts."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports. Asked one at a time, the system may hand out the same port twice
    (each socket is closed before the next is bound), and a server given two equal ports refuses
    to start: all `n` stay bound until every one is picked."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports
