"""Crisis threads: each update about a site in trouble answers the previous one.

An incident starts with a site-level status that is not open, after the site
was open; every later status update about the site or its services, up to and
including the reopening, is a reply on platforms that have threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from statusd.channels.base import Reply
from statusd.events import EventKind
from statusd.model import Level
from statusd.outbox.store import SENT, WAITING, Delivery, Store


@dataclass(frozen=True)
class Wait:
    """The thread's earlier post is not out yet: try again at `until`."""

    until: float


def reply_for(store: Store, delivery: Delivery, incidents: dict[str, list[str]] | None = None) -> Reply | Wait | None:
    """Where this delivery goes in its site's thread, or None for a new post.

    `incidents` keeps each event's incident for the calls of one transaction: it is the
    same for every channel, and a hand-out after an event asks once per channel.
    """
    if incidents is not None and delivery.event_id in incidents:
        members = incidents[delivery.event_id]
    else:
        members = incident_of(store, delivery.event_id)
        if incidents is not None:
            incidents[delivery.event_id] = members
    if not members:
        return None
    parent: str | None = None
    root: str | None = None
    for event_id in members:  # newest first; the root is last
        post = store.post_for(event_id, delivery.channel)
        if post is None:
            continue
        if post.state in WAITING:
            return Wait(max(post.next_attempt, post.updated_at) + 0.5)
        if post.state == SENT and post.remote_id:
            parent = parent or post.remote_id
            root = post.remote_id
    return Reply(parent=parent, root=root) if parent and root else None


def incident_of(store: Store, event_id: str) -> list[str]:
    """The earlier events of the incident the event belongs to, newest first (empty: a new post)."""
    stored = store.stored_event(event_id)
    if stored is None or stored.event.kind is not EventKind.STATUS_CHANGED:
        return []
    return _incident(store, stored.event.target.site, stored.seq)


def _incident(store: Store, site: str, before_seq: int) -> list[str]:
    """Ids of the earlier events of the incident in progress, newest first (empty if none)."""
    members: list[str] = []
    for _, event, retracted in store.site_events(site, before_seq):
        if retracted:
            continue
        site_level = event.target.service is None
        if site_level and event.level is Level.OPEN:
            return []  # the site was open again: no incident runs into this event
        members.append(event.id)
        if site_level and event.previous is Level.OPEN:
            return members
    return []
