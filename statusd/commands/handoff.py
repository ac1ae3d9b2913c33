"""`statusd set` beside a running daemon: the daemon makes and checks the change, the command writes it.

Most of a local `set` is Python importing what the change needs (the YAML readers, the
config's checks, the status file's editor) before a few milliseconds of work; the daemon
has all of it loaded (issue 15: the command under 120 ms). So the command sends its
arguments over the state directory's socket (nudge.py's `status.sock`), and the daemon
runs the very code of the local command up to the write (desk/handoff.py): it answers
what that code printed, its exit code and, for a change, the new text of status.yaml
with the digest of the text it was made from:

    command: set {json}\\n      daemon: {"exit": …, "stdout": …, "stderr": …, "made": {…} or null}\\n
                                (or: here\\n — the command does it all itself)

The command then writes that text itself, under the file's lock and with its own rights
(replace.py), if the file still holds the text it was made from; else it makes the
change itself, as it always did. So the daemon writes nothing for anybody, and asking it
lets nobody change what they could not have changed alone. The command believes only a
socket served by root, by itself or by the state directory's owner (the daemon's user),
writes only its own config's status file (found from the config's lines, as the daemon
would: anything the lines cannot vouch for and it does it all itself), and shows the
daemon the digests of the config and of status.yaml as it reads them, so that it is told
nothing it could not read itself.
"""

from __future__ import annotations

import _socket
import os
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

from statusd.sources.status.nudge import HERE, MAX_REQUEST, connect, digest

__all__ = ["Outcome", "ask", "state_dir_of"]

ANSWER_WAIT = 2.0  # the daemon makes a change in ms: one slower is busy or stopped, and the command does it
MAX_ANSWER = 16 * 1024 * 1024  # the new text of a status file of up to status_max_bytes, escaped
MAX_STATUS = 4 * 1024 * 1024  # a status file read for its digest: the daemon's own bound is far below
# `key: plain-value` at column 0, with a comment or not: anything fancier, and the config is read.
_PLAIN = r"^{key}[ \t]*:[ \t]*([^\s#'\"{{\[&*!|>%@`][^\s#]*)[ \t]*(?:#.*)?$"
_ANY = r"^[\"']?{key}"


class Outcome(NamedTuple):
    """What the command printed, and its exit code."""

    exit: int
    stdout: str
    stderr: str


def state_dir_of(flag: str | None, config: Path, text: str) -> Path | None:
    """The state directory as paths.state_dir finds it, from the config's lines; None when unsure.

    A wrong guess costs nothing: the daemon there answers `here` unless it reads this same config.
    """
    chosen = flag or os.environ.get("STATUSD_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if chosen:
        return Path(chosen.split(":")[0])
    found = _plain(text, "state_dir")
    return None if found is None else config.parent / found if found else Path("state")


def status_file_of(config: Path, text: str) -> Path | None:
    """The status file as the config names it (load.py: `status_file`, else status.yaml beside it); None when unsure."""
    found = _plain(text, "status_file")
    return None if found is None else config.parent / (found or "status.yaml")


def _plain(text: str, key: str) -> str | None:
    """The plain value of top-level `key` in the config's lines, "" when it has none; None when unsure."""
    found = re.findall(_PLAIN.format(key=key), text, re.MULTILINE)
    if len(found) != len(re.findall(_ANY.format(key=key), text, re.MULTILINE)) or len(found) > 1:
        return None  # quoted, a flow or block value, twice: the config's own reader decides
    return found[0] if found else ""


def ask(state_flag: str | None, config: Path, fields: dict[str, Any]) -> Outcome | None:
    """`set` with `fields` made by the daemon and written here; None: the command must do it all itself.

    Raises UserError, as the local command does, when the daemon's change cannot be written.
    """
    try:
        with open(config, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return None  # the command's own reading of it says what is wrong
    state, status = state_dir_of(state_flag, config, text), status_file_of(config, text)
    if state is None or status is None:
        return None
    from statusd.sources.status import nudge, replace

    # Both digests show the daemon what this person can read: it says nothing of any other file.
    real = os.path.realpath(status)
    now = replace.digest_of(Path(real), MAX_STATUS)
    if now is None:
        return None  # unreadable, or not a plain file: the command's own reading of it says so
    answer = _answer(state, {"config": os.path.realpath(config), "config_digest": digest(text),
                             "status_digest": now, **fields})
    outcome = None if answer is None else _outcome(answer)
    if outcome is None:
        return None
    found, made = outcome
    if made is not None:
        if os.path.realpath(made["real"]) != real:
            return None  # only this config's status file is ever written from an answer
        if not replace.replace_made(Path(real), made["from"], made["text"], made["limit"]):
            return None  # the file changed since it was read: the command makes the change again itself
        nudge.tell(state, digest(made["text"]))
    return found


def _answer(state: Path, request: dict[str, Any]) -> bytes | None:
    """The daemon's answer line, or None (no daemon, not one to believe, `here`, or no answer in time)."""
    sock = connect(state, ANSWER_WAIT)
    if sock is None:
        return None
    try:
        if not _believed(sock, state):
            return None
        import json  # only once a daemon listens: without one, `set` never needs it

        line = b"set " + json.dumps(request).encode("ascii") + b"\n"
        if len(line) > MAX_REQUEST:  # the command's own checks refuse such arguments, locally
            return None
        sock.sendall(line)
        answer = _line(sock, MAX_ANSWER)
    except OSError:  # TimeoutError included
        return None
    finally:
        sock.close()
    return None if answer == HERE or not answer.endswith(b"\n") else answer


def _believed(sock: _socket.socket, state: Path) -> bool:
    """Whether the socket is served by root, by this user, or by the state directory's owner."""
    try:
        creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred: pid, uid, gid
        owner = os.stat(state).st_uid
    except (OSError, AttributeError):
        return False
    uid = int.from_bytes(creds[4:8], sys.byteorder)
    return uid in (0, os.getuid(), owner)


def _line(sock: _socket.socket, limit: int) -> bytes:
    """Bytes up to and with the first newline (fewer if the daemon closes or the limit is reached);
    TimeoutError once ANSWER_WAIT has passed in all, however the bytes trickle in."""
    import time

    chunks, size = [], 0
    deadline = time.monotonic() + ANSWER_WAIT
    while size < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)


def _outcome(answer: bytes) -> tuple[Outcome, dict[str, Any] | None] | None:
    import json

    try:
        found = json.loads(answer)
        outcome = Outcome(found["exit"], found["stdout"], found["stderr"])
        made = found["made"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not (isinstance(outcome.exit, int) and isinstance(outcome.stdout, str) and isinstance(outcome.stderr, str)):
        return None
    if made is not None and not (isinstance(made, dict) and isinstance(made.get("real"), str)
                                 and isinstance(made.get("from"), str) and isinstance(made.get("text"), str)
                                 and isinstance(made.get("limit"), int)):
        return None
    return outcome, made
