"""`statusd undo` and `statusd retract UPDATE`: take an update back everywhere.

Unsent posts are cancelled, sent ones deleted on every platform, and the
status the update replaced is put back in status.yaml and in what the store
says was announced, together under the status file's lock, so the daemon
sees both at once and announces nothing new.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from statusd import paths
from statusd.commands.setting import current_user
from statusd.commands.shared import common, load_config
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.events import STAFF_KINDS, EventKind
from statusd.model import Announced, StatusEntry
from statusd.sources.status import nudge
from statusd.sources.status import wanted as wanted_status
from statusd.sources.status.wanted import WantedStatus

if TYPE_CHECKING:  # imported where used: every command's parser is built from this module
    from statusd.outbox.store import Store, StoredEvent


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    undo_cmd = sub.add_parser("undo", help="take back the last update: delete its posts, restore the status")
    common(undo_cmd)
    undo_cmd.set_defaults(handler=undo)
    retract_cmd = sub.add_parser("retract", help="take back one update (its id from `statusd history`)")
    common(retract_cmd)
    retract_cmd.add_argument("update", help="the update's id, or the start of it")
    retract_cmd.set_defaults(handler=retract)


def undo(args: argparse.Namespace) -> int:
    return _take_back(args, None)


def retract(args: argparse.Namespace) -> int:
    return _take_back(args, args.update)


def _take_back(args: argparse.Namespace, update: str | None) -> int:
    config = load_config(args)
    state = paths.state_dir(args.state_dir, config)
    if not config.store.postgresql and not paths.store_path(state).exists():
        raise UserError("nothing has been announced yet, so there is nothing to take back")
    from statusd.outbox.opening import open_store

    store = open_store(config, state)
    status = wanted_status.for_config(config)  # status.yaml, or a cluster's rows
    written = None
    try:
        with status.locked():
            _refuse_unannounced(config, store, status)
            stored = _find(store, update)
            text, written = _retract(config, store, status, stored, getattr(args, "by", None) or current_user())
            print(text)
    finally:
        store.close()
    if written is not None:  # the lock is released: the daemon may read the file now
        nudge.tell(state, written)
    return 0


def _refuse_unannounced(config: Config, store: Store, status: WantedStatus) -> None:
    """Taking back "the last update" must not skip a change the daemon has not announced yet."""
    from statusd.rules import reconcile

    try:
        wanted = status.read()
    except ConfigError as err:
        raise UserError(f"{err.problems[0]}; fix {status.describe()} first (see `statusd check`)") from err
    pending = reconcile(wanted, store.announced(), config, datetime.now(UTC)).events
    if any(e.kind is EventKind.STATUS_CHANGED for e in pending):
        targets = ", ".join(sorted({str(e.target) for e in pending}))
        raise UserError(
            f"{status.describe()} has a change for {targets} that has not been announced yet (is the daemon "
            "running?); wait a moment, or change it back with `statusd set`"
        )


def _find(store: Store, update: str | None) -> StoredEvent:
    if update is None:
        stored = store.latest_event([k.value for k in STAFF_KINDS])
        if stored is None:
            raise UserError("there is no update to take back")
        return stored
    stored = store.event(update)
    if stored is None:
        raise UserError(f"no single update starts with {update!r}; `statusd history` lists their ids")
    if stored.retracted_at is not None:
        raise UserError(f"update {stored.event.id} was already taken back by {stored.retracted_by}")
    return stored


def _retract(config: Config, store: Store, status: WantedStatus, stored: StoredEvent,
             user: str) -> tuple[str, str | None]:
    """What was done, in a sentence, and the digest of the status file when it was written (nudge.py)."""
    event = stored.event
    current = store.announced().get(str(event.target))
    in_force = current is not None and current.event_id == event.id
    planned = event.kind is not EventKind.STATUS_CHANGED
    # The status to put back: what was said before this update (for a planned
    # closure, what is said now, since it had not yet taken effect).
    back_to = current if planned else stored.previous
    restores = in_force or planned
    written = None
    if restores:
        entry = _entry(store, back_to, user)
        written = status.set(event.target, entry, lock=False)
    cancelled, deletions = store.retract(event.id, user, stored.previous, restore_target=in_force)
    text = (f"Took back {event.target} → {event.level.value} ({event.kind.value}) [{event.id}]: "
            f"{cancelled} unsent post(s) cancelled, {deletions} post(s) being deleted.")
    if restores:
        return text + f" {event.target} is back to {entry.level.value}.", written
    return text + f" A newer update for {event.target} is in force and stays.", written


def _entry(store: Store, said: Announced | None, user: str) -> StatusEntry:
    now = datetime.now(UTC)
    if said is None or said.event_id is None:
        return StatusEntry(by=user, at=now)
    earlier = store.event(said.event_id)
    if earlier is None:
        return StatusEntry(by=user, at=now)
    e = earlier.event
    return StatusEntry(level=e.level, message=e.message, starts=e.starts, until=e.until, by=user, at=now)
