"""One worker per channel: sends its deliveries in order, retries, never blocks the others."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from statusd import metrics
from statusd.channels.base import Channel, DuplicateError, PermanentError, Reply, TransientError
from statusd.config.types import DeliveryConfig
from statusd.outbox.budget import Budget
from statusd.outbox.facade import AsyncStore
from statusd.outbox.gate import Gate, LeaseLost, guarded
from statusd.outbox.lookup import look_up
from statusd.outbox.outcome import Presence, may_have_posted
from statusd.outbox.outcomes import Outcomes
from statusd.outbox.records import STORE_ERRORS
from statusd.outbox.store import DELETE, SENDING, Delivery
from statusd.outbox.take import Ask, Ready, Taken, take
from statusd.outbox.threads import Wait, reply_for

log = structlog.get_logger()
Log = structlog.typing.FilteringBoundLogger

# Mastodon remembers an Idempotency-Key for about an hour; after that, look first.
IDEMPOTENCY_WINDOW = 3000.0
STORE_RETRY = 2.0


class Worker(Outcomes):
    """Delivers one channel's messages from the store, one at a time, oldest due first."""

    def __init__(self, store: AsyncStore, channel: Channel, policy: DeliveryConfig,
                 budget: Budget | None = None, gate: Gate | None = None) -> None:
        self.store, self.gate = store, gate  # in a cluster the gate is the lease: nothing is sent without it
        self.channel = channel
        self.policy = policy
        self.budget = budget
        self.wakeup = asyncio.Event()
        self.busy = False
        self.paused_until = 0.0
        self._stopping = False
        # Senders hands an idle worker its next delivery, taken with the others' in one store call.
        self.handed: asyncio.Future[Taken] | None = None
        self.parked = False  # waiting for a poke, no store call in flight: it may be handed one

    @property
    def ask(self) -> Ask:
        """What taking this channel's next delivery needs."""
        return Ask(self.channel.name, self.budget, self.paused_until)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def poke(self) -> None:
        """New deliveries may be due: look again now."""
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the send in flight, then return from `run`."""
        self._stopping = True
        self.wakeup.set()

    async def run(self) -> None:
        while not self._stopping or self.handed is not None:  # a delivery handed is sent, even when stopping
            try:
                await self._next()
            except STORE_ERRORS as err:
                # Disk full or locked: nothing can be recorded, so nothing is sent; try again soon.
                log.error("store_unavailable", channel=self.channel.name, reason=str(err))
                await self._sleep(STORE_RETRY)
            except Exception as err:  # a row the store cannot read (garbled): this channel waits, the daemon stays
                why = f"the store {self.store.label} holds a delivery of {self.channel.name} that cannot be read"
                self.store.sync.troubles[f"read:{self.channel.name}"] = why
                log.error("store_unreadable", channel=self.channel.name, reason=why, error=type(err).__name__)
                await self._sleep(STORE_RETRY)

    async def _next(self) -> None:
        # Cleared before the store is read: a poke (or stop) while it answers is not lost.
        self.wakeup.clear()
        taken = await self._take()
        self.store.sync.troubles.pop(f"read:{self.channel.name}", None)  # read again: no garbled row in the way
        delivery = taken.delivery if isinstance(taken, Ready) else taken
        if not isinstance(taken, Ready) and (wait := self._wait_for(delivery)) is not None:
            await self._sleep(wait)
            return
        assert delivery is not None
        self.busy = True
        try:
            if isinstance(taken, Ready):  # checked and marked sending in the store call: send at once
                await self._send(delivery, taken.reply, log.bind(channel=self.channel.name, event_id=delivery.event_id,
                                                                 delivery=delivery.id), marked=True)
            else:
                await self.attempt(delivery)
        except LeaseLost:
            log.warning("send_stopped_lease_lost", channel=self.channel.name, delivery=delivery.id)
        except STORE_ERRORS:
            raise
        except Exception as err:  # a bug in a channel must never stop its worker, nor the daemon
            log.exception("worker_error", channel=self.channel.name, delivery=delivery.id, error=repr(err))
            await self.store.mark_retry(delivery.id, time.time() + self.policy.backoff_max,
                                        f"internal error: {err!r}")
        finally:
            self.busy = False

    async def _take(self) -> Taken:
        """The delivery handed by Senders (None: look yourself), else one call of our own."""
        if self.handed is not None:
            try:
                taken = await self.handed
            finally:
                self.handed = None
            if taken is not None:
                return taken
        return await self.store.run(take, self.ask) if self.gate is None or self.gate.held() else None

    def _wait_for(self, delivery: Delivery | None) -> float | None:
        if delivery is None:
            return 3600.0  # nothing waiting (or a follower's: the leader sends): sleep until poked
        due = max(delivery.next_attempt, self.paused_until) - time.time()
        return due if due > 0 else None

    async def _sleep(self, seconds: float) -> None:
        self.parked = True
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=seconds)
        except TimeoutError:
            pass
        finally:
            self.parked = False

    async def attempt(self, delivery: Delivery) -> None:
        """Carry out one delivery (a post or the deletion of one) and record the outcome."""
        log_ = log.bind(channel=self.channel.name, event_id=delivery.event_id, delivery=delivery.id)
        if delivery.action == DELETE:
            await self._delete(delivery, log_)
        elif delivery.message is None:
            await self.store.mark_failed(delivery.id, delivery.last_error or "no message")
        else:
            await self._post(delivery, log_)

    async def _post(self, delivery: Delivery, log_: Log) -> None:
        """Resolve an uncertain earlier attempt, keep the order per target, then send.

        A post whose earlier attempt may have gone out is sent again with its key
        where the platform honours it, else looked up first; a stale one is
        superseded rather than sent after the newer status; a newer one waits
        while an earlier post of its target is unresolved.
        """
        reply = await self.store.run(reply_for, delivery)
        if isinstance(reply, Wait):
            await self.store.postpone(delivery.id, reply.until, "waiting for the thread's earlier post")
            return
        newer = await self.store.superseded_by(delivery)
        retracted = await self.store.is_retracted(delivery.event_id)
        if delivery.uncertain or delivery.state == SENDING:
            if self._key_is_enough(delivery):
                # The same key again: the platform answers with the post it already has, or
                # makes it now; stale or not, that is the only way to know (a webhook cannot
                # be looked up), and it still lands before any newer post.
                await self._send(delivery, reply, log_)
                return
            if not await self._resolve(delivery, reply, log_):
                return
            delivery = replace(delivery, uncertain=False, attempts=delivery.attempts + 1)
        if retracted:
            await self.store.mark_cancelled(delivery.id, "its update was taken back")
            return
        if newer is not None:
            await self._supersede(delivery, newer, log_)
            return
        if (earlier := await self.store.unresolved_before(delivery)) is not None:
            until = max(earlier.next_attempt, time.time()) + 0.5
            why = f"waiting until delivery {earlier.id} of the same target is proved sent or not"
            await self.store.postpone(delivery.id, until, why)
            return
        if await self._repeats(delivery, log_):
            return
        if self.budget is not None and not await self.store.run(self.budget.admit, delivery):
            return  # dropped (automatic) or postponed (staff) by the posting budget
        await self._send(delivery, reply, log_)

    async def _resolve(self, delivery: Delivery, reply: Reply | None, log_: Log) -> bool:
        """Look an uncertain attempt up: recorded as sent if found; True if proved absent."""
        await self.store.mark_looking(delivery.id)
        presence = await look_up(self.store, self.channel, delivery, reply, log_, self.gate)
        if presence is Presence.ABSENT:
            await self.store.mark_absent(delivery.id)
            return True
        if presence is Presence.UNKNOWN:
            looked = replace(delivery, attempts=delivery.attempts + 1)
            await self._retry(looked, TransientError("cannot tell yet whether the last attempt was posted"), log_,
                        uncertain=True)
        return False

    def _key_is_enough(self, delivery: Delivery) -> bool:
        # Counted from when the delivery was made, not from its last retry: Mastodon forgets a
        # key about an hour after the first request, however often it was repeated since.
        recent = time.time() - delivery.created_at < IDEMPOTENCY_WINDOW
        return bool(self.channel.honours_idempotency) and recent

    async def _repeats(self, delivery: Delivery, log_: Log) -> bool:
        """Nothing said for nothing: the channel already shows this text and level for the target."""
        assert delivery.message is not None
        last = await self.store.last_carried(self.channel.name, delivery.message.target)
        if last is None or last.message is None or last.event_id == delivery.event_id:
            return False
        if (last.message.text, last.message.level) != (delivery.message.text, delivery.message.level):
            return False
        await self.store.mark_skipped(delivery.id, f"the channel already shows this (update {last.event_id})")
        log_.info("delivery_skipped", same_as=last.event_id, remote_id=last.remote_id)
        return True

    async def _send(self, delivery: Delivery, reply: Reply | None, log_: Log, *, again: bool = False,
                    marked: bool = False) -> None:
        """Post; `again`: its variant with the time of the change, the plain text being refused;
        `marked`: already recorded as sending (take.py)."""
        assert delivery.message is not None
        if not marked:
            await self.store.mark_sending(delivery.id)
        sending = replace(delivery, attempts=delivery.attempts + 1)
        started = time.monotonic()
        message = replace(delivery.message, text=delivery.message.again or "") if again else delivery.message
        try:
            sent = await guarded(self.gate, self.channel.send(
                message, idempotency_key=delivery.idempotency_key, reply_to=reply,
                created=datetime.fromtimestamp(delivery.created_at, UTC),
            ))
        except TransientError as err:
            # A definite "not sent" now does not undo an earlier attempt's doubt.
            await self._retry(sending, err, log_, uncertain=delivery.uncertain or may_have_posted(err))
        except DuplicateError as err:
            presence = await look_up(self.store, self.channel, sending, reply, log_, self.gate)
            if presence is Presence.UNKNOWN:
                await self._retry(sending, TransientError(f"{err}; the post could not be looked up yet"), log_,
                            uncertain=True)
            elif presence is Presence.ABSENT and not again and await self._needs_again(delivery):
                await self._send(sending, reply, log_, again=True)
            elif presence is Presence.ABSENT:
                await self._fail(sending, str(err), log_)
        except PermanentError as err:
            await self._fail(sending, str(err), log_)
        except Exception as err:  # a bug in a channel must not stop the worker
            log_.exception("channel_crashed", error=repr(err))
            await self._retry(sending, TransientError(f"internal error: {err!r}"), log_, uncertain=True)
        else:
            await self.store.mark_sent(delivery.id, sent.remote_id, sent.url)
            metrics.DELIVERIES.labels(self.channel.name, "sent").inc()
            metrics.LATENCY.labels(self.channel.name).observe(max(0.0, time.time() - delivery.created_at))
            log_.info(
                "delivery_sent", remote_id=sent.remote_id, attempts=sending.attempts, again=again,
                reply_to=reply.parent if reply else None, seconds=round(time.monotonic() - started, 3),
            )

    async def _needs_again(self, delivery: Delivery) -> bool:
        """Whether a refused repeat must go out as its variant: the channel's last post about the
        target says something else, so without it the channel would not show the latest status."""
        message = delivery.message
        if message is None or not message.again or message.again == message.text:
            return False
        last = await self.store.last_carried(self.channel.name, message.target)
        return last is None or last.message is None or last.message.text != message.text
