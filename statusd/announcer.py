"""Turns the wanted status into stored deliveries: reconcile, compose, record."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from statusd.channels.base import Channel, refuses_repeats
from statusd.compose.composer import Composer, TemplateProblem
from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, Wanted
from statusd.outbox.contract import Store
from statusd.outbox.facade import AsyncStore
from statusd.outbox.handout import Hand, Reservation, record_then_take
from statusd.outbox.store import Planned
from statusd.outbox.take import Ask
from statusd.rules import Plan, reconcile

log = structlog.get_logger()

# What a recording call gives back: the events with their deliveries, the new ones' ids.
Recorded = tuple[list[tuple[Event, list[Planned]]], list[str]]


class Announcer:
    """One step of the pipeline: what is wanted at `now` → events → deliveries in the store."""

    def __init__(self, config: Config, store: AsyncStore, composer: Composer, channels: Mapping[str, Channel],
                 turn: asyncio.Lock | None = None) -> None:
        self.config = config
        self.store = store
        self.composer = composer
        self.channels = channels
        # One step at a time (a step awaits the store): what one reads as announced, it records.
        self.turn = turn or asyncio.Lock()

    async def step(self, wanted: Wanted, now: datetime, record: bool = True,
                   reservation: Reservation | None = None) -> Plan:
        """Say what changed in status.yaml (and what the clock brought) since it was last said.

        `record=False` (a follower in a cluster): only the plan, for when to look again.
        `reservation`: idle workers whose first deliveries are taken in the recording call.
        """
        async with self.turn:
            if not record:
                return reconcile(wanted, await self.store.announced(), self.config, now)
            # The whole step is one call on the store's thread: reading what was announced was a
            # hop of its own (~0.5 ms) before the first request could leave (issue 15), and the
            # loop only waited meanwhile. The first batch is handed from inside it; the batches
            # after the first queue behind it.
            asks, hand = ([], None) if reservation is None else (reservation.asks, reservation.handing())
            stepping = self.store.run(self._step_here, wanted, now, asks, hand)
            if reservation is not None:
                reservation.take_rest(self.store)
            plan, (updates, new) = await stepping
            self._recorded(updates, new)
        return plan

    async def announce(self, events: Sequence[Event], announced: Mapping[str, Announced] | None = None) -> list[str]:
        """Render and record events not recorded before; the ids of the new ones."""
        async with self.turn:
            updates, new = await self.store.run(self._record_here, events, announced or {}, [])
            self._recorded(updates, new)
            return new

    def _step_here(self, store: Store, wanted: Wanted, now: datetime, asks: Sequence[Ask],
                   hand: Hand | None) -> tuple[Plan, Recorded]:
        """On the store's thread (the step holds `turn`): the plan, then `_record_here`."""
        plan = reconcile(wanted, store.announced(), self.config, now)
        return plan, self._record_here(store, plan.events, plan.announced, asks, hand)

    def _record_here(self, store: Store, events: Sequence[Event], announced: Mapping[str, Announced],
                     asks: Sequence[Ask], hand: Hand | None = None) -> Recorded:
        """On the store's thread: render the events, record them and take the first batch (`asks`).

        With `hand`, an event's deliveries to the first batch's channels are recorded first (the
        event kept as unfinished meanwhile), the batch taken and handed to the loop, and only then
        the other deliveries composed and recorded, while the first requests leave: 128 of them
        took ~5 ms before the first request (issue 15). A crash or a failed write in between
        leaves the event unfinished, and the next step records the rest (`_finish_unfinished`).
        """
        self._finish_unfinished(store)  # first: a newer event must find them recorded, to supersede them
        deadline = self.config.delivery.deadline
        firsts = {ask.channel for ask in asks} if hand is not None else set()
        split: list[tuple[Event, list[str], list[str]]] = []
        for event in events:
            split.append((event, *self._split(event, firsts, after=any(rest for _, _, rest in split))))
        heads = [(event, self.render(event, names)) for event, names, _ in split]
        later = [event.id for event, _, rest in split if rest]
        new, first = record_then_take(store, heads, announced, deadline, asks, later)
        rests = [(event, rest) for event, _, rest in split if rest and event.id in new]
        if hand is not None:
            hand(first, bool(rests))
        more = {event.id: self.render(event, rest) for event, rest in rests}
        if more:
            store.finish(list(more.items()), deadline)
        updates = [(event, planned + more.get(event.id, [])) for event, planned in heads]
        return updates, new

    def _split(self, event: Event, firsts: set[str], after: bool) -> tuple[list[str], list[str]]:
        """The channels carrying `event`: those of the first batch, and the others (to record after).

        `after`: an earlier event of the step is split. Then this one is too, whoever carries it:
        recorded whole, it would come before the earlier one on a channel recorded after (a
        reopening and a planned closure, said in the wrong order where both are due at once).
        """
        names = [name for name in self.channels
                 if self.config.channels[name].carries(event.target.site, event.kind.value)]
        head = [name for name in names if name in firsts]
        if not head and not after:  # none of the first batch carries it: none of its requests is first
            return names, []
        return head, [name for name in names if name not in firsts]

    def _finish_unfinished(self, store: Store) -> None:
        """Record the deliveries that a crash (or a failed write) kept from events recorded unfinished."""
        stored = store.unfinished()
        if not stored:
            return
        rests = [(one.event, self.render(one.event, list(self.channels))) for one in stored]
        added = store.finish([(event.id, planned) for event, planned in rests], self.config.delivery.deadline)
        for event, _ in rests:
            if event.id in added:
                log.info("event_finished", event_id=event.id, kind=event.kind.value, target=str(event.target),
                         deliveries=added[event.id])

    def _recorded(self, updates: Sequence[tuple[Event, Sequence[Planned]]], new: Sequence[str]) -> None:
        for event, planned in updates:
            if event.id in new:
                log.info(
                    "event_recorded", event_id=event.id, kind=event.kind.value, target=str(event.target),
                    to=event.level.value, author=event.author, deliveries=len(planned),
                )

    def render(self, event: Event, names: Sequence[str] | None = None) -> list[Planned]:
        """The messages of `event` for the channels `names` carrying it (None: every channel that does)."""
        return render(self.config, self.composer, self.channels, event, names)


def hold_kind(event: Event) -> str:
    """Which `delivery.hold` applies: emergencies, the schedule, sensors, or staff flips."""
    if event.level is Level.EMERGENCY:
        return "emergency"
    if event.kind.automatic:
        return "sensor"
    if event.reason in ("scheduled", "expired") or event.kind is EventKind.CLOSURE_REMINDER:
        return "schedule"
    return "staff"


def render(config: Config, composer: Composer, channels: Mapping[str, Channel], event: Event,
           names: Sequence[str] | None = None) -> list[Planned]:
    """The message for every channel that carries `event` (an error instead, never half a message).

    `names`: only those of these channels.
    """
    delay = config.delivery.hold.get(hold_kind(event), 0.0)
    planned = []
    for name in channels if names is None else names:
        channel, settings = channels[name], config.channels[name]
        if not settings.carries(event.target.site, event.kind.value):
            continue
        try:
            message = composer.render(event, settings, channel.max_chars, channel.measure,
                                      again=refuses_repeats(channel))
        except TemplateProblem as err:
            log.error("template_failed", channel=name, event_id=event.id, problem=str(err))
            planned.append(Planned(name, None, f"template error: {err}"))
        else:
            planned.append(Planned(name, message, delay=delay))
    return planned
