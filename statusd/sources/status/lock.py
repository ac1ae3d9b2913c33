"""The status file's lock: one writer at a time, and readers that see the file and the store together.

A lock file beside status.yaml (`.status.yaml.lock`) is flocked: exclusive by
`statusd set`, `undo` and the daemon's writer, shared by the daemon's reader.
Nobody waits for it without a bound: a `statusd set` that is stopped (Ctrl-Z,
SIGSTOP) while holding it must never freeze the daemon, nor hang a colleague.
The lock is only ever tried without blocking, again and again until a deadline.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from statusd.errors import UserError

if TYPE_CHECKING:
    import asyncio

# A command waits this long for a colleague's command to finish.
COMMAND_WAIT = 10.0
POLL = 0.02
FIRST_POLL = 0.001


class LockBusy(UserError):
    """Somebody else holds the status file's lock for longer than we may wait."""


def lock_path(path: Path) -> Path:
    """The lock file of a status file (beside the real file, not beside a symlink)."""
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}.lock")


def _open(path: Path) -> int:
    try:
        # Read-only is enough for flock, and works when a colleague created the lock file.
        return os.open(lock_path(path), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise UserError(f"cannot lock {path} ({err.strerror or err}); nothing was changed") from err


def _try(fd: int, exclusive: bool) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _busy(path: Path, waited: float) -> LockBusy:
    return LockBusy(
        f"{path} is locked by another `statusd set`, `undo` or the daemon for over {waited:g} s "
        "(one stopped with Ctrl-Z?); nothing was changed, try again"
    )


@contextmanager
def locked(path: Path, exclusive: bool = True, timeout: float = COMMAND_WAIT) -> Iterator[None]:
    """Hold the lock (blocking this thread at most `timeout` seconds); raise LockBusy after that."""
    fd = _open(path)
    try:
        deadline = time.monotonic() + timeout
        while not _try(fd, exclusive):
            if time.monotonic() >= deadline:
                raise _busy(path, timeout)
            time.sleep(POLL)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@asynccontextmanager
async def held(path: Path, exclusive: bool = False, wait: float = 2.0,
               freed: asyncio.Event | None = None) -> AsyncIterator[bool]:
    """Hold the lock for the event loop, never blocking it; yield False when it stayed busy.

    `freed`, once set (a writer saying it wrote, after letting go), cuts the pause short;
    it is cleared here while waiting.

    The caller decides what to do without it (the daemon's reader reads
    anyway: the file is only ever replaced whole). A lock file that cannot be
    made (a read-only directory) counts as busy: the daemon must not stop for it.
    """
    try:
        fd = _open(path)
    except UserError:
        yield False
        return
    import asyncio  # here: `statusd set` imports this module, and need not pay for asyncio

    from statusd.tasks import wait_event
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        got, pause = _try(fd, exclusive), FIRST_POLL
        while not got and loop.time() < deadline:
            # Briefly at first: a `statusd set` holds the lock for a few milliseconds.
            if freed is None:
                await asyncio.sleep(pause)
            else:
                freed.clear()
                await wait_event(freed, pause)
            got, pause = _try(fd, exclusive), min(pause * 2, POLL)
        yield got
    finally:
        os.close(fd)
