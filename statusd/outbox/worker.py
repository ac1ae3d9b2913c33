"""One worker per channel: sends its deliveries in order, retries, never blocks the others."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime

import structlog

from statusd import metrics
from statusd.channels.base import Channel, DuplicateError, PermanentError, Reply, Sent, TransientError
from statusd.config.types import DeliveryConfig
from statusd.outbox.budget import Budget
from statusd.outbox.retry import backoff
from statusd.outbox.store import DELETE, SENDING, SENT, WAITING, Delivery, Store
from statusd.outbox.threads import Wait, reply_for

log = structlog.get_logger()

# Mastodon remembers an Idempotency-Key for about an hour; after that, look first.
IDEMPOTENCY_WINDOW = 3000.0
STORE_RETRY = 2.0


class Worker:
    """Delivers one channel's messages from the store, one at a time, oldest due first."""

    def __init__(self, store: Store, channel: Channel, policy: DeliveryConfig,
                 budget: Budget | None = None) -> None:
        self.store = store
        self.channel = channel
        self.policy = policy
        self.budget = budget
        self.wakeup = asyncio.Event()
        self.busy = False
        self.paused_until = 0.0
        self._stopping = False

    def poke(self) -> None:
        """New deliveries may be due: look again now."""
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the send in flight, then return from `run`."""
        self._stopping = True
        self.wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._next()
            except sqlite3.Error as err:
                # Disk full or locked: nothing can be recorded, so nothing is sent; try again soon.
                log.error("store_unavailable", channel=self.channel.name, reason=str(err))
                await self._sleep(STORE_RETRY)

    async def _next(self) -> None:
        delivery = self.store.next_due(self.channel.name)
        wait = self._wait_for(delivery)
        if wait is not None:
            await self._sleep(wait)
            return
        assert delivery is not None
        self.busy = True
        try:
            await self.attempt(delivery)
        except sqlite3.Error:
            raise
        except Exception as err:  # a bug in a channel must never stop its worker, nor the daemon
            log.exception("worker_error", channel=self.channel.name, delivery=delivery.id, error=repr(err))
            self.store.mark_retry(delivery.id, time.time() + self.policy.backoff_max, f"internal error: {err!r}")
        finally:
            self.busy = False

    def _wait_for(self, delivery: Delivery | None) -> float | None:
        if delivery is None:
            return 3600.0  # nothing waiting: sleep until poked
        due = max(delivery.next_attempt, self.paused_until) - time.time()
        return due if due > 0 else None

    async def _sleep(self, seconds: float) -> None:
        self.wakeup.clear()
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def attempt(self, delivery: Delivery) -> None:
        """Carry out one delivery (a post or the deletion of one) and record the outcome."""
        log_ = log.bind(channel=self.channel.name, event_id=delivery.event_id, delivery=delivery.id)
        if delivery.action == DELETE:
            await self._delete(delivery, log_)
        elif delivery.message is None:
            self.store.mark_failed(delivery.id, delivery.last_error or "no message")
        else:
            await self._post(delivery, log_)

    async def _post(self, delivery: Delivery, log_: structlog.typing.FilteringBoundLogger) -> None:
        assert delivery.message is not None
        reply = reply_for(self.store, delivery)
        if isinstance(reply, Wait):
            self.store.postpone(delivery.id, reply.until, "waiting for the thread's earlier post")
            return
        if self.budget is not None and not self.budget.admit(self.store, delivery):
            return  # dropped (automatic) or postponed (staff) by the posting budget
        if self._outcome_unknown(delivery):
            found = await self._look_up(delivery, reply, log_)
            if found is None:
                self._retry(delivery, TransientError("cannot tell yet whether the last attempt was posted"), log_)
            if found is not False:
                return
        self.store.mark_sending(delivery.id)
        started = time.monotonic()
        try:
            sent = await self.channel.send(
                delivery.message, idempotency_key=delivery.idempotency_key, reply_to=reply,
                created=datetime.fromtimestamp(delivery.created_at, UTC),
            )
        except TransientError as err:
            self._retry(delivery, err, log_)
        except DuplicateError as err:
            if (found := await self._look_up(delivery, reply, log_)) is None:
                self._retry(delivery, TransientError(f"{err}; the post could not be looked up yet"), log_)
            elif not found:
                self._fail(delivery, str(err), log_)
        except PermanentError as err:
            self._fail(delivery, str(err), log_)
        except Exception as err:  # a bug in a channel must not stop the worker
            log_.exception("channel_crashed", error=repr(err))
            self._retry(delivery, TransientError(f"internal error: {err!r}"), log_)
        else:
            self.store.mark_sent(delivery.id, sent.remote_id, sent.url)
            metrics.DELIVERIES.labels(self.channel.name, "sent").inc()
            metrics.LATENCY.labels(self.channel.name).observe(max(0.0, time.time() - delivery.created_at))
            log_.info(
                "delivery_sent", remote_id=sent.remote_id, attempts=delivery.attempts + 1,
                reply_to=reply.parent if reply else None, seconds=round(time.monotonic() - started, 3),
            )

    async def _delete(self, delivery: Delivery, log_: structlog.typing.FilteringBoundLogger) -> None:
        post = self.store.post_for(delivery.event_id, delivery.channel)
        if post is not None and post.state in WAITING:
            self.store.postpone(delivery.id, time.time() + 1.0, "waiting for the post to finish")
            return
        if post is None or post.state != SENT or not post.remote_id:
            self.store.mark_sent(delivery.id, "", None)  # nothing was posted: nothing to delete
            return
        self.store.mark_sending(delivery.id)
        try:
            await self.channel.delete(post.remote_id)
        except TransientError as err:
            self._retry(delivery, err, log_)
        except PermanentError as err:
            self._fail(delivery, str(err), log_)
        except Exception as err:  # a bug in a channel must not stop the worker
            log_.exception("channel_crashed", error=repr(err))
            self._retry(delivery, TransientError(f"internal error: {err!r}"), log_)
        else:
            self.store.mark_sent(delivery.id, post.remote_id, None)
            log_.info("post_deleted", remote_id=post.remote_id)

    def _outcome_unknown(self, delivery: Delivery) -> bool:
        """Whether an earlier attempt may have posted without our knowing.

        A crash mid-send leaves the delivery `sending`; a timeout or a dropped
        connection may have reached the platform too. Repeating the same
        idempotency key is safe where the platform still remembers it;
        elsewhere the post is looked up first.
        """
        if delivery.state != SENDING and delivery.attempts == 0:
            return False
        recent = time.time() - delivery.updated_at < IDEMPOTENCY_WINDOW
        return not (self.channel.honours_idempotency and recent)

    async def _look_up(
        self, delivery: Delivery, reply: Reply | None, log_: structlog.typing.FilteringBoundLogger
    ) -> bool | None:
        """Find a post whose outcome is unknown (or refused as a duplicate) rather than make it twice.

        True: found, and recorded as sent. False: not there. None: the lookup
        failed, so nobody knows; the caller tries again later rather than risk
        a second post.
        """
        assert delivery.message is not None
        try:
            found: Sent | None = await self.channel.find(
                delivery.message, idempotency_key=delivery.idempotency_key,
                since=datetime.fromtimestamp(delivery.created_at, UTC), reply_to=reply,
            )
        except (TransientError, PermanentError) as err:
            log_.warning("delivery_lookup_failed", reason=str(err))
            return None
        except Exception as err:  # a channel bug: as unknown as a failed lookup
            log_.exception("delivery_lookup_crashed", error=repr(err))
            return None
        if found is not None:
            self.store.mark_sent(delivery.id, found.remote_id, found.url)
            log_.info("delivery_recovered", remote_id=found.remote_id)
        return found is not None

    def _fail(self, delivery: Delivery, reason: str, log_: structlog.typing.FilteringBoundLogger) -> None:
        self.store.mark_failed(delivery.id, reason)
        metrics.DELIVERIES.labels(self.channel.name, "failed").inc()
        log_.error("delivery_failed", reason=reason, attempts=delivery.attempts + 1, action=delivery.action)

    def _retry(self, delivery: Delivery, err: TransientError, log_: structlog.typing.FilteringBoundLogger) -> None:
        attempts = delivery.attempts + 1
        wait = backoff(attempts, self.policy, err.retry_after)
        if err.retry_after:
            # A rate limit holds for the whole account, not just this post.
            self.paused_until = time.time() + err.retry_after
            self.store.pause(self.channel.name, self.paused_until, str(err))
            metrics.PAUSES.labels(self.channel.name).inc()
            log_.warning("channel_paused", until=round(self.paused_until), reason=str(err))
        if time.time() + wait > delivery.deadline:
            self._fail(delivery, f"gave up after {attempts} attempts: {err}", log_)
            return
        self.store.mark_retry(delivery.id, time.time() + wait, str(err))
        metrics.DELIVERIES.labels(self.channel.name, "retry").inc()
        log_.warning("delivery_retry", reason=str(err), attempts=attempts, wait=round(wait, 2))
