"""Compare what the store says was delivered with what every platform actually holds."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from statusd.events import EventKind
from statusd.model import Wanted
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import FAILED, POST, SENT, SKIPPED, WAITING, Delivery
from tests.faults.fleet import Fleet, Post

__all__ = ["Audit", "Outbox", "Recorded", "audit", "out_of_order", "read_outbox", "unannounced"]
# Said: posted, or not posted because the channel already showed exactly this.
SAID = (SENT, SKIPPED)

STATUS_CHANGED = EventKind.STATUS_CHANGED.value


@dataclass(frozen=True)
class Recorded:
    """One event as the store holds it, with its post deliveries."""

    id: str
    kind: str
    target: str
    level: str
    message: dict[str, str]
    posts: list[Delivery]


@dataclass(frozen=True)
class Outbox:
    """Every recorded event, newest first, read from the store."""

    events: list[Recorded]

    def deliveries(self) -> list[Delivery]:
        return [d for event in self.events for d in event.posts]

    def waiting(self) -> list[Delivery]:
        return [d for d in self.deliveries() if d.state in WAITING]


def read_outbox(state_dir: Path) -> Outbox:
    """The store as `statusd show` reads it: read-only, while the daemon may be writing."""
    store = SqliteStore(state_dir / "statusd.db", readonly=True)
    try:
        rows = store.recent(100_000)
    finally:
        store.close()
    return Outbox([Recorded(e.id, e.kind.value, str(e.target), e.level.value, dict(e.message),
                             [d for d in ds if d.action == POST]) for e, _, ds in rows])


@dataclass
class Audit:
    """Per channel and in total: what had to arrive, what did, and what went wrong."""

    expected: int = 0     # deliveries the store calls sent: each must be on its platform once
    arrived: int = 0      # of those, found on the platform under their remote id
    duplicated: int = 0   # posts beyond one per update, or posts of no recorded update
    unrecorded: int = 0   # updates on a platform whose delivery the store has not as sent
    failed: list[str] = field(default_factory=list)   # "channel event: reason"
    stuck: list[str] = field(default_factory=list)    # still pending or sending
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.arrived + len(self.stuck)


def audit(outbox: Outbox, fleet: Fleet, channels: Iterable[str] | None = None) -> Audit:
    """Check every channel of `fleet` (or those named) against the store's deliveries."""
    result = Audit()
    by_channel: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in outbox.deliveries():
        by_channel[delivery.channel].append(delivery)
    for channel in fleet.channel_names if channels is None else channels:
        _channel(channel, by_channel.get(channel, []), fleet, result)
    return result


def _channel(channel: str, deliveries: list[Delivery], fleet: Fleet, result: Audit) -> None:
    posts = fleet.posts(channel)
    keys = {p.key for p in posts}
    sent = [d for d in deliveries if d.state == SENT]
    result.expected += len(sent)
    claimed = Counter(fleet.key(channel, d.remote_id or "") for d in sent)
    for delivery in sent:
        if fleet.key(channel, delivery.remote_id or "") in keys:
            result.arrived += 1
        else:
            result.problems.append(f"{channel}: delivery {delivery.id} (event {delivery.event_id}) is"
                                   f" recorded as sent as {delivery.remote_id!r}, which {channel} does not hold")
    for key, count in claimed.items():
        if count > 1:
            result.problems.append(f"{channel}: {count} deliveries claim the one post {key!r}")
    for delivery in deliveries:
        if delivery.state in WAITING:
            result.stuck.append(f"{channel} {delivery.event_id}: {delivery.state},"
                                f" {delivery.attempts} attempt(s), last error {delivery.last_error!r}")
        elif delivery.state == FAILED:
            result.failed.append(f"{channel} {delivery.event_id}: {delivery.last_error}")
    _posts(channel, posts, deliveries, fleet, result)


def _posts(channel: str, posts: list[Post], deliveries: list[Delivery], fleet: Fleet, result: Audit) -> None:
    """Posts grouped by the update they carry: as many as its sent deliveries (repeated texts
    make one identity of several updates), each of an update the store knows."""
    of_update: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        of_update[fleet.identity(channel, d.event_id, d.message.text if d.message else "")].append(d)
    grouped: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        grouped[post.identity].append(post)
    for identity, group in grouped.items():
        count = len(group)
        updates = of_update.get(identity, [])
        if not updates:
            result.duplicated += count
            result.problems.append(f"{channel}: {count} post(s) of {identity!r}, an update the store never recorded")
            continue
        sent = [d for d in updates if d.state == SENT]
        unsent = [d for d in updates if d.state not in SAID]
        extra = count - len(sent)
        if extra <= 0:
            continue
        explained = min(extra, len(unsent))  # a post whose delivery the store does not call sent
        for delivery in unsent[:explained]:
            result.unrecorded += 1
            result.problems.append(f"{channel}: update {identity!r} (event {delivery.event_id}) is on"
                                   f" {channel} but its delivery is {delivery.state}"
                                   f" ({delivery.last_error or 'no error'})")
        if extra > explained:
            result.duplicated += extra - explained
            how = "; ".join(f"{p.key} {p.detail}".strip() for p in group)
            states = ", ".join(f"{d.event_id} {d.state} ({d.attempts} attempt(s), {d.remote_id})" for d in updates)
            result.problems.append(f"{channel}: update {identity!r} posted {count} times ({how});"
                                   f" its deliveries: {states}")


def out_of_order(outbox: Outbox, fleet: Fleet, channels: Iterable[str]) -> list[str]:
    """Targets whose last status post on a channel is not the latest status said there."""
    problems = []
    for channel in channels:
        by_key = {fleet.key(channel, d.remote_id or ""): d for d in outbox.deliveries()
                  if d.channel == channel and d.state == SENT and d.message is not None
                  and d.message.kind == STATUS_CHANGED}
        last_post: dict[str, Delivery] = {}
        for post in fleet.posts(channel):  # oldest first
            delivery = by_key.get(post.key)
            if delivery is not None and delivery.message is not None:
                last_post[delivery.message.target] = delivery
        latest: dict[str, Delivery] = {}
        for event in outbox.events:  # newest first
            said = [d for d in event.posts if d.channel == channel and d.state in SAID]
            if event.kind == STATUS_CHANGED and said and event.target not in latest:
                latest[event.target] = said[0]
        for target, delivery in latest.items():
            shown = last_post.get(target)
            want = delivery.message.text if delivery.message else ""
            if shown is None or shown.message is None or shown.message.text != want:
                problems.append(f"{channel}: {target} shows {shown.message.text if shown and shown.message else None!r}"
                                f" last, the latest status said there is {want!r}")
    return problems


def unannounced(outbox: Outbox, wanted: Wanted, channels: Iterable[str]) -> list[str]:
    """Targets whose latest event is not what status.yaml says, or not sent on every channel."""
    latest: dict[str, Recorded] = {}
    for event in outbox.events:  # newest first
        if event.kind == STATUS_CHANGED and event.target not in latest:
            latest[event.target] = event
    problems = []
    for target, entry in wanted.items():
        found = latest.get(str(target))
        if found is None:
            problems.append(f"{target}: {entry.level.value} was never recorded")
            continue
        if (found.level, found.message) != (entry.level.value, dict(entry.message)):
            problems.append(f"{target}: the last recorded update is {found.level} {found.message},"
                            f" status.yaml says {entry.level.value} {dict(entry.message)}")
        states = {d.channel: d.state for d in found.posts}
        for channel in channels:
            if states.get(channel) not in SAID:
                problems.append(f"{target}: event {found.id} is {states.get(channel, 'missing')} on {channel}")
    return problems
