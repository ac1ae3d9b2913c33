"""When a request leaves: the kernel's timestamp of each HTTP POST that crosses the loopback device.

Issue 15 asks for ingest push → first request *leaving* under 10 ms. The receivers'
own clock says when their process read the request, which adds their scheduling on
a 2-core machine where the daemon is still sending the other 127; the moment the
daemon's `send` put the bytes on `lo` is the kernel's, seen here with a packet socket
(AF_PACKET, root only) and SO_TIMESTAMPNS, as bench/sse.py reads its swarm's kernel
time. A classic BPF filter keeps only TCP segments whose payload starts "POST", so
the capture costs the machine nothing per other packet.

    with Wire() as wire:
        ...               # requests are sent
        wire.first(ports, after=began)
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from types import TracebackType
from typing import Self

from common import REPO  # noqa: F401  (puts the repository on the path for tests.support)

from tests.support.swarm import SO_TIMESTAMPNS, kernel_time

__all__ = ["Wire"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # the sender's copy: a packet on `lo` is seen leaving, then arriving
SO_ATTACH_FILTER = 26
ETHERNET = 14  # `lo` frames carry an Ethernet header of zeros

# ldh [12]; jeq IPv4; ldb [23]; jeq TCP; ldxb 4*([14]&0xf); ldb [x+26] (TCP data offset);
# and 0xf0; rsh 2; add x; tax; ld [x+14] (the payload's first word); jeq "POST"; accept / drop.
_FILTER = [
    (0x28, 0, 0, 12), (0x15, 0, 11, 0x0800), (0x30, 0, 0, 23), (0x15, 0, 9, 6),
    (0xB1, 0, 0, ETHERNET), (0x50, 0, 0, ETHERNET + 12), (0x54, 0, 0, 0xF0), (0x74, 0, 0, 2),
    (0x0C, 0, 0, 0), (0x07, 0, 0, 0), (0x40, 0, 0, ETHERNET), (0x15, 0, 1, 0x504F5354),
    (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0),
]


class Wire:
    """A thread recording (kernel time, destination port) of every POST sent over `lo`."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int]] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        code = b"".join(struct.pack("HBBI", *op) for op in _FILTER)
        program = ctypes.create_string_buffer(code)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                        struct.pack("HL", len(_FILTER), ctypes.addressof(program)))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("lo", 0))
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="wire", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()

    def first(self, ports: set[int], after: float) -> float | None:
        """The kernel time of the first POST to one of `ports` sent after `after`, or None."""
        times = [at for at, port in self.sent if port in ports and at >= after]
        return min(times) if times else None

    def _read(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                frame, ancillary, _, address = self._sock.recvmsg(2048, 256)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_OUTGOING:
                continue
            at = kernel_time(ancillary)
            ip = frame[ETHERNET:]
            tcp = ip[(ip[0] & 0x0F) * 4:]
            if at is not None and tcp[(tcp[12] >> 4) * 4:].startswith(b"POST "):
                self.sent.append((at, struct.unpack("!H", tcp[2:4])[0]))

