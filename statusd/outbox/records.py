"""What the store holds, as values: deliveries, events as recorded, what was announced."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from statusd.compose.message import Message
from statusd.errors import StoreError as StoreError
from statusd.events import Event
from statusd.model import Announced

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
SUPERSEDED, CANCELLED = "superseded", "cancelled"
# Not posted because the channel already shows the same text and level for the target.
SKIPPED = "skipped"
# Not posted because the channel's posting budget is spent (outbox/budget.py).
DROPPED = "dropped"
WAITING = (PENDING, SENDING)
POST, DELETE = "post", "delete"


# What a store call may raise when the store, not the caller, is at fault.
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StoreError)


class Row(Protocol):
    """A row as both stores read it back: by column name or position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


@dataclass(frozen=True)
class Planned:
    """One delivery to record: a channel and its rendered message, or why it could not be."""

    channel: str
    message: Message | None
    error: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """One message to one channel, and how far it got."""

    id: int
    event_id: str
    channel: str
    action: str
    state: str
    message: Message | None
    idempotency_key: str
    attempts: int
    next_attempt: float
    deadline: float
    remote_id: str | None
    remote_url: str | None
    last_error: str | None
    created_at: float
    updated_at: float
    sent_at: float | None
    # The last attempt may have posted without our knowing (a timeout, a crash mid-send):
    # the worker proves the post there or absent before anything else.
    uncertain: bool = False


def idempotency_key(event_id: str, channel: str) -> str:
    """Stable for one (event, channel): the same on every retry and after a restart."""
    return "statusd-" + hashlib.sha256(f"{event_id}|{channel}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StoredEvent:
    """An event as recorded: its order, what had been said before it, whether it was taken back."""

    seq: int
    event: Event
    created_at: float
    previous: Announced | None
    retracted_at: float | None
    retracted_by: str | None


def stored_from_row(row: Row) -> StoredEvent:
    previous = Announced(**json.loads(row["previous"])) if row["previous"] else None
    return StoredEvent(row["seq"], Event.from_json(row["body"]), row["created_at"], previous,
                       row["retracted_at"], row["retracted_by"])


def message_json(message: Message | None) -> str | None:
    if message is None:
        return None
    return json.dumps(message.__dict__, ensure_ascii=False)


def delivery_from_row(row: Row) -> Delivery:
    message = Message(**json.loads(row["message"])) if row["message"] else None
    return Delivery(
        id=row["id"], event_id=row["event_id"], channel=row["channel"], action=row["action"],
        state=row["state"],
        message=message, idempotency_key=row["idempotency_key"], attempts=row["attempts"],
        next_attempt=row["next_attempt"], deadline=row["deadline"], remote_id=row["remote_id"],
        remote_url=row["remote_url"], last_error=row["last_error"], created_at=row["created_at"],
        updated_at=row["updated_at"], sent_at=row["sent_at"],
        # A store made before the column existed, read without migrating (read-only).
        uncertain=bool(row["uncertain"]) if "uncertain" in row.keys() else False,
    )
