"""Changes of one file, from Linux's inotify on its directory, straight on the event loop.

No thread and no polling step: the kernel's descriptor is read by the loop
when it becomes readable, so an idle daemon is not woken at all. Renames over
the file (how `statusd set` and most editors save), writes in place, creation
and deletion are all reported. Where inotify is missing (not Linux, or the
limit of watches is reached), `watch` returns None and the caller falls back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Callable
from pathlib import Path

__all__ = ["Watch", "watch"]

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - present on Linux only
    except (OSError, AttributeError):
        return None
    return libc


class Watch:
    """An inotify descriptor watching one directory; calls `on_change` when one of `names` in it changes."""

    def __init__(self, fd: int, names: set[str], on_change: Callable[[], None]) -> None:
        self.fd = fd
        self.names = {os.fsencode(name) for name in names}
        self._on_change = on_change

    def readable(self) -> None:
        """The loop's reader callback: drain every pending event, then tell once."""
        touched = False
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                break
            if not data:
                break
            touched = touched or self._names_file(data)
        if touched:
            self._on_change()

    def _names_file(self, data: bytes) -> bool:
        at = 0
        while at + _HEADER.size <= len(data):
            _, mask, _, length = _HEADER.unpack_from(data, at)
            name = data[at + _HEADER.size:at + _HEADER.size + length].rstrip(b"\0")
            at += _HEADER.size + length
            if mask & IN_Q_OVERFLOW or name in self.names:
                return True  # an overflow may have hidden our file's event
        return False

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


def watch(path: Path, on_change: Callable[[], None], also: tuple[str, ...] = ()) -> Watch | None:
    """Start watching `path` (its directory, for renames over it), and the files named `also` beside it,
    on the running loop; None if inotify cannot."""
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None
    if libc.inotify_add_watch(fd, os.fsencode(path.parent), MASK) < 0:
        os.close(fd)
        return None
    found = Watch(fd, {path.name, *also}, on_change)
    asyncio.get_running_loop().add_reader(fd, found.readable)
    return found
