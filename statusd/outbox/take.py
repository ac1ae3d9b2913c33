"""A worker's next delivery, checked and marked as being sent in one call on the store's thread.

Before a post leaves, the worker must know where it goes in its thread, that no
newer status made it stale, that it was not taken back, that no earlier post of
its target is still in doubt, that the channel does not already show it, and
the delivery must be durably marked `sending`. Each of those was once a call of
its own (a hop to the store's thread and back, eight per post): `take` makes
them one, and `take_many` one for a batch of idle channels after an event is
recorded, in one transaction (outbox/handout.py: the first batch in the very
call that records), so the first request leaves with the record's answer and
the last a moment after the first. Anything out of the ordinary (a
post in doubt, a stale or held one, a deletion, a budget that counts) is handed
back unmarked for the worker's own path, which says what it does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from statusd.channels.base import Reply
from statusd.outbox.budget import Budget
from statusd.outbox.contract import Store
from statusd.outbox.records import POST, SENDING, Delivery
from statusd.outbox.threads import Wait, reply_for

__all__ = ["Ask", "Ready", "Taken", "take", "take_many"]


@dataclass(frozen=True)
class Ready:
    """Checked and marked `sending` (durably, before this returns): send it now, in reply to `reply`."""

    delivery: Delivery  # as read, before the mark (the worker counts the attempt)
    reply: Reply | None


@dataclass(frozen=True)
class Ask:
    """What `take` needs of one channel's worker."""

    channel: str
    budget: Budget | None
    not_before: float  # a rate-limit pause the worker keeps


# Nothing waiting; a delivery to wait for or to handle the worker's own way; or one ready to send.
Taken = Delivery | Ready | None


def take(store: Store, ask: Ask, now: float | None = None, incidents: dict[str, list[str]] | None = None,
         due: dict[str, Delivery] | None = None) -> Taken:
    """The channel's next delivery; `Ready` when it is an ordinary post due now and cleared to go.

    Within one transaction (`take_many`): `incidents` keeps each event's thread (threads.py),
    `due` holds every channel's next delivery, read in one statement.
    """
    delivery = store.next_due(ask.channel) if due is None else due.get(ask.channel)
    now = time.time() if now is None else now
    if delivery is None or max(delivery.next_attempt, ask.not_before) > now or not _plain(delivery, ask):
        return delivery
    reply = reply_for(store, delivery, incidents)
    if isinstance(reply, Wait) or _held(store, delivery):
        return delivery
    store.mark_sending(delivery.id)
    return Ready(delivery, reply)


def take_many(store: Store, asks: Sequence[Ask]) -> list[Taken]:
    """`take` for each channel, in one transaction: one commit for all the marks of an event."""
    now = time.time()
    incidents: dict[str, list[str]] = {}  # the same for every channel of an event: read once
    with store.together():
        due = store.next_due_many([ask.channel for ask in asks])
        return [take(store, ask, now, incidents, due) for ask in asks]


def _plain(delivery: Delivery, ask: Ask) -> bool:
    """A first, certain attempt at a post, on a channel whose budget does not count."""
    uncertain = delivery.uncertain or delivery.state == SENDING
    counted = ask.budget is not None and ask.budget.limited
    return delivery.action == POST and delivery.message is not None and not uncertain and not counted


def _held(store: Store, delivery: Delivery) -> bool:
    """Stale, taken back, behind an earlier post in doubt, or a repeat: the worker's path decides."""
    if store.superseded_by(delivery) is not None or store.is_retracted(delivery.event_id):
        return True
    if store.unresolved_before(delivery) is not None:
        return True
    assert delivery.message is not None
    last = store.last_carried(delivery.channel, delivery.message.target)
    if last is None or last.message is None or last.event_id == delivery.event_id:
        return False
    return (last.message.text, last.message.level) == (delivery.message.text, delivery.message.level)
