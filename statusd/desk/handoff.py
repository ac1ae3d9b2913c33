"""The daemon's side of `statusd set` handed over the state directory's socket (commands/handoff.py).

The daemon runs the very code of the local command (setting.set_status, through
capture.run, as the desk API does) up to the write, so the output, refusals and exit
codes cannot drift apart; the command writes the change itself, with its own rights,
so the daemon writes nothing for anybody. It answers only a command that shows it
reads the same config and the same status.yaml (their digests): nobody learns of a
file they cannot read. A request for another config, one made from another text of
status.yaml, or a status kept in PostgreSQL rows is answered `here`: the command does
it all itself. At most RUNNING requests are served at once, each answer taken within
ANSWER_OUT or dropped, so peers that ask and never read hold no more than that.

The work runs on a thread of its own (thread.py), not the loop's shared pool, where
lookups of platforms' names may hang.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from statusd.config.load import Config
from statusd.desk import capture
from statusd.desk.api import MAX_MESSAGES, MAX_TEXT  # what the desk API takes, taken here too
from statusd.sources.status import replace
from statusd.sources.status.blocks import Blocks
from statusd.sources.status.nudge import HERE, Listener, digest
from statusd.sources.status.thread import OwnThread
from statusd.sources.status.watch import StatusWatch

__all__ = ["Handoff", "listener"]

log = structlog.get_logger()

RUNNING = 8  # requests at once (made one after the other); more are answered `here`
ANSWER_OUT = 5.0  # seconds for a command to take its answer
LOGGED = 100  # characters of a request's target in the log
MAX_KEPT = 64  # configs kept (a site's each): beyond, the cache starts again
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "config": str, "config_digest": str, "status_digest": str, "target": str, "level": str, "message": list,
    "starts": (str, type(None)), "until": (str, type(None)), "by": str, "at": (int, float)}


def listener(state_dir: Path, status: object, config: Callable[[], Config]) -> Listener | None:
    """The status socket's listener, nudges and handed `set`s, for a daemon that watches status.yaml.

    None for a cluster's wanted rows: a change is told by NOTIFY, and `set` writes the rows itself.
    """
    if not isinstance(status, StatusWatch):
        return None
    return Listener(state_dir, status.written_whole, Handoff(config, state_dir).serve)


class Handoff:
    """Serves `set` requests from `statusd set` on the status socket."""

    def __init__(self, config: Callable[[], Config], state_dir: Path) -> None:
        self._config = config
        self._state_dir = state_dir
        self._running = 0
        self._thread = OwnThread("statusd-handoff")  # one change made at a time, as the file takes them
        # Kept between requests, used on that thread only: the config as `set` read it, for the same
        # text, file and directory (a chmod matters to the config's trust), and status.yaml's blocks.
        self._loaded: dict[tuple[object, ...], Config] = {}
        self._blocks = Blocks()

    async def serve(self, line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the request `line` (`set {json}\\n`, already read) on this connection."""
        config = self._config()
        fields = _request(line)
        if fields is None or self._running >= RUNNING:
            writer.write(HERE)
            return
        self._running += 1  # until the answer is out: a reader who never reads holds a place, not more
        try:
            await self._answer(config, fields, writer)
        finally:
            self._running -= 1

    async def _answer(self, config: Config, fields: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        target = fields["target"][:LOGGED]
        try:
            answer = await self._thread.run(self._make, config, fields)
        except Exception:  # a fault of ours: the command, getting no answer, makes the change itself
            log.exception("status_set_hand_failed", target=target, uid=_uid(writer))
            return
        if answer is None:
            writer.write(HERE)
            return
        log.info("status_set_made", target=target, uid=_uid(writer), exit=answer["exit"])
        writer.write(json.dumps(answer).encode("ascii") + b"\n")
        try:
            await asyncio.wait_for(writer.drain(), ANSWER_OUT)
        except TimeoutError:
            writer.transport.abort()  # the command stopped reading: its descriptor is freed now

    def _make(self, config: Config, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The local command's outcome and change, made and not written; None when it is not ours to make."""
        key = _ours(config, fields)
        if key is None:
            return None
        args = self._args(config, fields)
        args.loaded, args.parse = self._loaded.get(key), self._blocks.parse
        outcome = capture.run(args)
        if args.loaded is not None and key not in self._loaded:
            self._loaded = {key: args.loaded} if len(self._loaded) >= MAX_KEPT else {**self._loaded, key: args.loaded}
        made = getattr(args, "made", None)
        return {"exit": outcome.exit, "stdout": outcome.stdout, "stderr": outcome.stderr,
                "made": None if made is None else {"real": str(made.real), "from": made.made_from,
                                                   "text": made.text, "limit": config.status_max_bytes}}

    def _args(self, config: Config, fields: dict[str, Any]) -> argparse.Namespace:
        from statusd.commands import setting

        return argparse.Namespace(
            command="set", handler=setting.set_status, config=str(config.path), state_dir=str(self._state_dir),
            by=fields["by"], target=fields["target"], level=fields["level"], message=fields["message"],
            starts=fields["starts"], until=fields["until"], at=fields["at"], make_only=True)


def _request(line: bytes) -> dict[str, Any] | None:
    """The request's fields, each of its kind and size; None for anything else."""
    try:
        found = json.loads(line.removeprefix(b"set "))
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or set(found) != set(_FIELDS):
        return None
    if any(not isinstance(found[key], kind) for key, kind in _FIELDS.items()):
        return None
    texts = [found[key] for key in ("config", "config_digest", "status_digest", "target", "level", "by", "starts",
                                    "until") if found[key] is not None]
    messages = found["message"]
    if len(messages) > MAX_MESSAGES or not all(isinstance(m, str) for m in messages):
        return None
    if not found["by"] or any(len(text) > MAX_TEXT for text in texts + messages):
        return None
    at = found["at"]
    if isinstance(at, bool) or not 0 < at < 32503680000:  # a time before the year 3000 (not NaN, nor 10**400)
        return None
    return found


def _ours(config: Config, fields: dict[str, Any]) -> tuple[object, ...] | None:
    """What says the config asked about is this daemon's as the command read it; None if it is not,
    or if the status is kept in a cluster's rows (`set` writes them itself)."""
    if fields["config"] != os.path.realpath(config.path) or config.store.dsn is not None:
        return None
    try:
        text = config.path.read_text(encoding="utf-8")
        # What the config's trust rests on (config/trust.py): the owners and modes of the file and of
        # every directory above it, and who is in which group.
        chain = [os.stat(path) for path in (fields["config"], *Path(fields["config"]).parents)]
        groups = os.stat("/etc/group").st_mtime_ns if os.path.exists("/etc/group") else None
    except (OSError, UnicodeDecodeError):
        return None
    # The command shows it reads the config and the status file: it is told nothing it could not read.
    if digest(text) != fields["config_digest"]:
        return None
    if replace.digest_of(Path(os.path.realpath(config.status_file)), config.status_max_bytes) != \
            fields["status_digest"]:
        return None  # or the file changed meanwhile: the command makes its change itself
    site = fields["target"].strip().strip("/").split("/")[0]
    return (fields["config_digest"], site, groups,
            *((info.st_ino, info.st_dev, info.st_mode, info.st_uid, info.st_gid) for info in chain))


def _uid(writer: asyncio.StreamWriter) -> int | None:
    """The connected process's uid as this daemon sees it (`nobody` across a user namespace), for the log."""
    try:
        creds = writer.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    except (OSError, AttributeError, struct.error):
        return None
