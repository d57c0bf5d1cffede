"""Free TCP ports on loopback (or another local address) for the servers a test starts."""

from __future__ import annotations

import os
import random
import socket
from contextlib import ExitStack

# scripts/test.sh runs the suite as two pytest processes at once and gives each its own range
# (below the kernel's ephemeral range, where outgoing connections take their source ports): a
# port one process picked and has not bound yet is never handed to the other. Unset: any free
# port the kernel picks.
_RANGE = os.environ.get("ASTRA_TEST_PORTS", "")


def _bind_free(s: socket.socket, host: str) -> None:
    if _RANGE:
        low, high = (int(part) for part in _RANGE.split("-"))
        for _ in range(200):
            try:
                s.bind((host, random.randint(low, high)))
                return
            except OSError:
                continue
    s.bind((host, 0))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        _bind_free(s, host)
        return s.getsockname()[1]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports. Asked one at a time, the system may hand out the same port twice
    (each socket is closed before the next is bound), and a server given two equal ports refuses
    to start: all `n` stay bound until every one is picked."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            _bind_free(s, host)
            ports.append(s.getsockname()[1])
        return ports
