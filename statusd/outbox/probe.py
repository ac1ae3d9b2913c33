"""The store's probe: one small committed write, as recording an event makes; nothing is kept.

The daemon probes its store for /readyz (upkeep.py); `statusd set` probes the
SQLite file before it writes status.yaml, so that a full disk is said at the
desk, not found later. The command's probe opens the file as the store does
(sqlite_file.py) without importing the store: 9 ms of every flip (issue 15).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from statusd.outbox.dialect import Dialect

__all__ = ["sqlite_trouble", "write"]

# As large as a recorded event with its deliveries may be: a disk with less room cannot record one.
PAD = bytes(16384)


def write(execute: Callable[..., Any], transaction: Callable[[], AbstractContextManager[None]],
          dialect: Dialect, path: Path | None = None) -> None:
    """Write the probe row and delete it, each in its own committed transaction; raises if either fails
    (or, for the SQLite file at `path`, when its file system has no room for one event)."""
    if path is not None and (full := room(path)) is not None:
        import sqlite3

        raise sqlite3.OperationalError(full)
    with transaction():
        execute(dialect.upsert("probe", "id", ("id", "at", "pad")), (1, time.time(), PAD))
    with transaction():
        execute("DELETE FROM probe")


def sqlite_trouble(path: Path) -> str | None:
    """Why the SQLite store at `path` cannot record now (a full disk), or None.

    None too when the daemon has not made the file yet, when it is older than
    this statusd (the daemon upgrades it at its start, then records), and when
    the desk may only read it (it is the daemon's to write).
    """
    if not path.exists():
        return None  # the daemon has not run yet: it records at its start
    import sqlite3

    from statusd.outbox import sqlite_file
    from statusd.outbox.dialect import SQLITE
    from statusd.outbox.schema import VERSION

    try:
        db = sqlite_file.connect(path)
    except PermissionError:
        return None
    except sqlite3.Error as err:
        return None if _not_ours(err) else f"the store {path} cannot record: {err}"
    try:
        if sqlite_file.schema_version(db) < VERSION:
            return None
        write(db.execute, lambda: sqlite_file.immediate(db), SQLITE, path)
    except sqlite3.Error as err:
        return None if _not_ours(err) else f"the store {path} cannot record: {err}"
    finally:
        db.close()
    return None


def _not_ours(err: sqlite3.Error) -> bool:
    return "readonly" in str(err) or "unable to open" in str(err)


def room(path: Path) -> str | None:
    """Why the file system holding `path` has no room for one event (PAD), or None.

    SQLite writes its log's file again from the start once a checkpoint copied all of it: a
    probe then fits in room the file already has and passes on a full disk, while the next
    record that needs one page more fails. Checkpoints run soon after every change
    (checkpoints.py), so the log is almost always ready to be written again.
    """
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return None  # nothing to tell: the write itself says what is wrong
    return None if stat.f_bavail * stat.f_frsize >= len(PAD) else "database or disk is full"
