"""Whether a config file could have been written by someone other than root (like sshd's StrictModes).

statusd.yaml says where every secret is sent: a member of the statusd group
(desk staff) who could change it could send the Mastodon token to a server
of their choosing on the next reload. So the daemon refuses a config, or an
alerts directory, that a user other than root or the daemon's own user
could have written: the file, and each directory above it, must be owned by
one of them and not writable by group or others. Allowed anyway: a root-owned
sticky directory (/tmp), where nobody can replace another's entry, and group
write for a personal group that holds only the owner (the Debian default for
a checkout under a user's home).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path

from statusd.errors import Problem

__all__ = ["untrusted"]

# Bounded: an alerts directory holds a few dozen templates.
MAX_FILES = 2000


def untrusted(config: Path, alerts: Path | None = None) -> list[Problem]:
    """A problem for each file or directory that someone else could have changed."""
    problems: list[Problem] = []
    seen: set[Path] = set()
    for path in _chain(config, alerts):
        if path in seen:
            continue
        seen.add(path)
        try:
            info = path.stat()
        except OSError:
            continue  # a missing file is reported where it is read
        why = _why(info, path.is_dir())
        if why:
            problems.append(Problem(str(path), None, "", f"{why}; only root may be able to change the "
                                    "configuration, or a member of its group could redirect secrets "
                                    f"(fix: chown root {path} && chmod go-w {path})"))
    return problems


def _chain(config: Path, alerts: Path | None) -> Iterable[Path]:
    real = config.resolve()
    yield real
    yield from real.parents
    if alerts is not None and alerts.exists():
        top = alerts.resolve()
        yield top
        yield from top.parents
        for count, path in enumerate(top.rglob("*")):
            if count >= MAX_FILES:
                break
            yield path.resolve()


def _why(info: os.stat_result, directory: bool) -> str | None:
    owner_ok = info.st_uid in (0, os.geteuid())
    if not owner_ok:
        return f"belongs to {_user(info.st_uid)}"
    mode = info.st_mode
    if directory and mode & stat.S_ISVTX and info.st_uid == 0:
        return None  # sticky and root's: nobody can rename or remove what is not theirs
    if mode & stat.S_IWOTH:
        return f"is writable by everyone (mode {stat.S_IMODE(mode):04o})"
    if mode & stat.S_IWGRP and not _personal_group(info.st_gid, info.st_uid):
        return f"is writable by group {_group(info.st_gid)} (mode {stat.S_IMODE(mode):04o})"
    return None


def _personal_group(gid: int, uid: int) -> bool:
    """The owner's own group, with no other member (a user private group, or root's)."""
    try:
        group, user = grp.getgrgid(gid), pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_gid == gid and set(group.gr_mem) <= {user.pw_name} and not _others_in(gid, uid)


def _others_in(gid: int, uid: int) -> bool:
    """Whether another account has `gid` as its primary group."""
    return any(entry.pw_gid == gid and entry.pw_uid != uid for entry in pwd.getpwall())


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"user {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
