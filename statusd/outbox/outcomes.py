"""How a worker records the end of an attempt (failed, retried, superseded), and deletions.

Split from worker.py, which sends: these are the outcomes it writes back.
"""

from __future__ import annotations

import time
from dataclasses import replace

import structlog

from statusd import metrics
from statusd.channels.base import Channel, PermanentError, TransientError
from statusd.config.types import DeliveryConfig
from statusd.outbox.facade import AsyncStore
from statusd.outbox.gate import Gate, guarded
from statusd.outbox.retry import backoff
from statusd.outbox.store import DELETE, SENT, WAITING, Delivery

Log = structlog.typing.FilteringBoundLogger


class Outcomes:
    """The worker's records of an attempt's end; `Worker` (worker.py) adds the sending."""

    store: AsyncStore
    channel: Channel
    policy: DeliveryConfig
    gate: Gate | None
    paused_until: float

    async def _supersede(self, delivery: Delivery, newer: str, log_: Log) -> None:
        await self.store.mark_superseded(delivery.id, newer)
        metrics.DELIVERIES.labels(self.channel.name, "superseded").inc()
        log_.info("delivery_superseded", by=newer)

    async def _delete(self, delivery: Delivery, log_: Log) -> None:
        post = await self.store.post_for(delivery.event_id, delivery.channel)
        if post is not None and post.state in WAITING:
            await self.store.postpone(delivery.id, time.time() + 1.0, "waiting for the post to finish")
            return
        if post is None or post.state != SENT or not post.remote_id:
            await self.store.mark_sent(delivery.id, "", None)  # nothing was posted: nothing to delete
            return
        await self.store.mark_sending(delivery.id)
        deleting = replace(delivery, attempts=delivery.attempts + 1)
        try:
            note = await guarded(self.gate, self.channel.delete(post.remote_id))
        except TransientError as err:
            await self._retry(deleting, err, log_, uncertain=False)  # deleting twice does no harm
        except PermanentError as err:
            await self._fail(deleting, str(err), log_)
        except Exception as err:  # a bug in a channel must not stop the worker
            log_.exception("channel_crashed", error=repr(err))
            await self._retry(deleting, TransientError(f"internal error: {err!r}"), log_, uncertain=False)
        else:
            # A deletion has no URL: its remote_url holds how the post was withdrawn, if not deleted.
            await self.store.mark_sent(delivery.id, post.remote_id, note or None)
            log_.info("post_deleted", remote_id=post.remote_id, **({"note": note} if note else {}))

    async def _fail(self, delivery: Delivery, reason: str, log_: Log) -> None:
        await self.store.mark_failed(delivery.id, reason)
        metrics.DELIVERIES.labels(self.channel.name, "failed").inc()
        log_.error("delivery_failed", reason=reason, attempts=delivery.attempts, action=delivery.action)

    async def _retry(self, delivery: Delivery, err: TransientError, log_: Log, *, uncertain: bool) -> None:
        """Try again later; `delivery.attempts` already counts the attempt that failed.

        A failure that surely posted nothing leaves a stale post superseded at once.
        """
        attempts = delivery.attempts
        stale = delivery.action != DELETE and not uncertain
        if stale and (newer := await self.store.superseded_by(delivery)) is not None:
            await self._supersede(delivery, newer, log_)
            return
        wait = backoff(attempts, self.policy, err.retry_after)
        if err.retry_after:
            # A rate limit holds for the whole account, not just this post.
            self.paused_until = time.time() + err.retry_after
            await self.store.pause(self.channel.name, self.paused_until, str(err))
            metrics.PAUSES.labels(self.channel.name).inc()
            log_.warning("channel_paused", until=round(self.paused_until), reason=str(err))
        if time.time() + wait > delivery.deadline:
            await self._fail(delivery, f"gave up after {attempts} attempts: {err}", log_)
            return
        await self.store.mark_retry(delivery.id, time.time() + wait, str(err), uncertain=uncertain)
        metrics.DELIVERIES.labels(self.channel.name, "retry").inc()
        log_.warning("delivery_retry", reason=str(err), attempts=attempts, wait=round(wait, 2), uncertain=uncertain)
