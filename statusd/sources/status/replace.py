"""Replace status.yaml's text with one already made and checked, if the file still holds the text it was made from.

The status file's editor (edit.py) makes and checks the new text, and so does the
daemon for a `statusd set` beside it (commands/handoff.py): the command then writes
that text itself, under the file's lock and with its own rights, so that asking the
daemon lets nobody change what they could not have changed alone. No YAML here: the
command must not pay for a reader to write bytes it was handed (issue 15).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from statusd import files
from statusd.errors import UserError
from statusd.sources.status import nudge
from statusd.sources.status.lock import COMMAND_WAIT, locked

__all__ = ["ABSENT", "digest_of", "replace_made", "write_keeping_mode"]

ABSENT = "-"  # the digest said for a status file that does not exist yet


def replace_made(real: Path, made_from: str, text: str, limit: int, wait: float = COMMAND_WAIT) -> bool:
    """Write `text` to `real` if it still holds the text whose digest is `made_from`; False if it does not.

    Raises UserError when the file cannot be written (the caller's rights, a full disk), and
    LockBusy when another writer holds the lock for over `wait` seconds.
    """
    with locked(real, timeout=wait):
        files.remove_leftovers(real)  # from a killed writer: under the lock nobody is writing
        if digest_of(real, limit) != made_from:
            return False  # changed since (a colleague, a hand edit): made again from the new text
        write_keeping_mode(real, text)
    return True


def digest_of(real: Path, limit: int) -> str | None:
    """The digest of the file's text (ABSENT if there is none); None if it cannot be read as the daemon reads it."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ABSENT
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = b""
        while len(data) <= limit and (chunk := os.read(fd, 1 << 16)):
            data += chunk
    finally:
        os.close(fd)
    try:
        return nudge.digest(data.decode("utf-8")) if len(data) <= limit else None
    except UnicodeDecodeError:
        return None


def write_keeping_mode(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, keeping its mode and group (a new file: 0644)."""
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    mode = before.st_mode & 0o7777 if before else 0o644
    try:
        files.write_atomic(path, text.encode("utf-8"), mode, before.st_gid if before else None)
    except OSError as err:
        reason = err.strerror or err
        raise UserError(f"cannot write {path} ({reason}); nothing was changed") from err
