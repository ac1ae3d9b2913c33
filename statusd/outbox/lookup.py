"""Looking a post up on its platform: whether an attempt whose outcome is unknown made it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import structlog

from statusd.channels.base import Channel, PermanentError, Reply, Sent, TransientError
from statusd.outbox.facade import AsyncStore
from statusd.outbox.gate import Gate, guarded
from statusd.outbox.outcome import Presence
from statusd.outbox.store import Delivery

# A post claimed by another delivery up to this long before this one was recorded is not this one.
CLAIM_MARGIN = 3600.0


async def look_up(store: AsyncStore, channel: Channel, delivery: Delivery, reply: Reply | None,
                  log_: structlog.typing.FilteringBoundLogger, gate: Gate | None = None) -> Presence:
    """Find a post whose outcome is unknown (or refused as a duplicate) rather than make it twice.

    FOUND is recorded as sent here. A post that other deliveries already claim
    is never this one's. The message's variant for a platform that refuses
    repeats (Message.again) is looked for too: it may be what went out.
    UNKNOWN (the look-up failed): the caller tries again later rather than risk
    a second post. On a cluster node the look-up runs within the lease (`gate`):
    LeaseLost passes through, and nothing is recorded.
    """
    assert delivery.message is not None
    exclude = await store.claimed(delivery, since=delivery.created_at - CLAIM_MARGIN)
    texts = [delivery.message, *([replace(delivery.message, text=delivery.message.again)]
                                 if delivery.message.again else [])]
    found: Sent | None = None
    try:
        for message in texts:
            found = await guarded(gate, channel.find(
                message, idempotency_key=delivery.idempotency_key,
                since=datetime.fromtimestamp(delivery.created_at, UTC), reply_to=reply, exclude=exclude,
            ))
            if found is not None:
                break
    except (TransientError, PermanentError) as err:
        log_.warning("delivery_lookup_failed", reason=str(err))
        return Presence.UNKNOWN
    except Exception as err:  # a channel bug: as unknown as a failed lookup
        log_.exception("delivery_lookup_crashed", error=repr(err))
        return Presence.UNKNOWN
    if found is None:
        return Presence.ABSENT
    if found.remote_id in exclude:
        log_.warning("delivery_lookup_claimed", remote_id=found.remote_id)
        return Presence.ABSENT
    await store.mark_sent(delivery.id, found.remote_id, found.url)
    log_.info("delivery_recovered", remote_id=found.remote_id)
    return Presence.FOUND
