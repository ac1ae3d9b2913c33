"""Replacing a file so that no reader ever sees part of it, and cleaning up after a crash.

One way for every file statusd writes: a temporary file beside the target (so
the rename cannot cross file systems), fsync, rename over the target, fsync of
the directory (so the rename survives a power cut). The temporary file is
removed when anything fails; one left by a killed process is removed by
`remove_leftovers` the next time the writer runs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["leftover_pattern", "remove_leftovers", "write_atomic"]

# As tempfile.mkstemp opens its file (only ours, never through a symlink), without importing
# tempfile, shutil and random for it (issue 15: `statusd set` starts fast).
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NAME_TRIES = 100  # random names: a clash is already unlikely once


def leftover_pattern(path: Path) -> str:
    """The glob that matches the temporary files `write_atomic(path, ...)` makes."""
    return f".{path.name}.*.tmp"


def write_atomic(path: Path, data: bytes, mode: int = 0o644, group: int | None = None) -> None:
    """Replace `path` with `data` in one rename; the temporary file never outlives a failure.

    `group` (a gid) is kept when this process may; otherwise the file keeps ours.
    Raises OSError when the directory or the disk refuses.
    """
    fd, tmp = _temporary(path)
    try:
        try:
            os.fchmod(fd, mode)
            if group is not None:
                _keep_group(fd, group)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside `path`, mode 0600, named as `leftover_pattern` says: its descriptor and name."""
    for _ in range(_NAME_TRIES):
        name = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, _CREATE, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable: the entry is on disk only once the directory is."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(path: Path) -> int:
    """Remove temporary files a killed writer of `path` left behind; return how many.

    Call it only while no writer can be running (under the file's exclusive lock).
    A symlinked `path` is cleaned beside the file it points to, where writes happen.
    """
    path = Path(os.path.realpath(path))
    removed = 0
    for leftover in path.parent.glob(leftover_pattern(path)):
        try:
            leftover.unlink()
        except OSError:
            continue  # not ours to remove (another owner): it stays, harmlessly
        removed += 1
    return removed


def _keep_group(fd: int, gid: int) -> None:
    try:
        os.fchown(fd, -1, gid)
    except OSError:
        pass  # not a member of that group: the file keeps ours, which still works
