"""Fake platforms that answer over real HTTP on 127.0.0.1, for tests and benchmarks.

Also plain sockets for the two ways a connection fails: refused, and accepted but silent.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

# Bound, never listening: connecting is refused, and holding the sockets for the life of
# the process keeps any other test from taking the port meanwhile.
_HELD: list[socket.socket] = []


def refusing_port() -> int:
    """A port on 127.0.0.1 where a connection is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    port: int = sock.getsockname()[1]
    return port


@contextmanager
def blackhole() -> Iterator[int]:
    """A port where TCP connections complete (in the kernel's backlog) but nothing answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def url_for(port: int, path: str = "/hook") -> str:
    return f"http://127.0.0.1:{port}{path}"
