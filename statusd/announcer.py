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
from statusd.outbox.handout import Reservation, record_then_take
from statusd.outbox.store import Planned
from statusd.outbox.take import Ask, Taken
from statusd.rules import Plan, reconcile

log = structlog.get_logger()

# What a recording call gives back: the events with their deliveries, the new ones' ids, the first batch taken.
Recorded = tuple[list[tuple[Event, list[Planned]]], list[str], list[Taken] | None]


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
            # loop only waited meanwhile. The batches after the first queue behind it.
            stepping = self.store.run(self._step_here, wanted, now, [] if reservation is None else reservation.asks)
            if reservation is not None:
                reservation.take_rest(self.store)
            plan, (updates, new, first) = await stepping
            if reservation is not None:
                reservation.give_first(first)
                await asyncio.sleep(0)  # their workers' requests go out before the logging and the rest of the step
            self._recorded(updates, new)
        return plan

    async def announce(self, events: Sequence[Event], announced: Mapping[str, Announced] | None = None) -> list[str]:
        """Render and record events not recorded before; the ids of the new ones."""
        async with self.turn:
            updates, new, _ = await self.store.run(self._record_here, events, announced or {}, [])
            self._recorded(updates, new)
            return new

    def _step_here(self, store: Store, wanted: Wanted, now: datetime, asks: Sequence[Ask]) -> tuple[Plan, Recorded]:
        """On the store's thread (the step holds `turn`): the plan, then `_record_here`."""
        plan = reconcile(wanted, store.announced(), self.config, now)
        return plan, self._record_here(store, plan.events, plan.announced, asks)

    def _record_here(self, store: Store, events: Sequence[Event], announced: Mapping[str, Announced],
                     asks: Sequence[Ask]) -> Recorded:
        """On the store's thread: render the events, record them and take the first batch (`asks`)."""
        # An event recorded before is rendered for nothing and then ignored by the record (its id is
        # its key): asking the store first cost a look-up before every first request.
        updates = [(event, self.render(event)) for event in events]
        new, first = record_then_take(store, updates, announced, self.config.delivery.deadline, asks)
        return updates, new, first

    def _recorded(self, updates: Sequence[tuple[Event, Sequence[Planned]]], new: Sequence[str]) -> None:
        for event, planned in updates:
            if event.id in new:
                log.info(
                    "event_recorded", event_id=event.id, kind=event.kind.value, target=str(event.target),
                    to=event.level.value, author=event.author, deliveries=len(planned),
                )

    def render(self, event: Event) -> list[Planned]:
        return render(self.config, self.composer, self.channels, event)


def hold_kind(event: Event) -> str:
    """Which `delivery.hold` applies: emergencies, the schedule, sensors, or staff flips."""
    if event.level is Level.EMERGENCY:
        return "emergency"
    if event.kind.automatic:
        return "sensor"
    if event.reason in ("scheduled", "expired") or event.kind is EventKind.CLOSURE_REMINDER:
        return "schedule"
    return "staff"


def render(config: Config, composer: Composer, channels: Mapping[str, Channel], event: Event) -> list[Planned]:
    """The message for every channel that carries `event` (an error instead, never half a message)."""
    delay = config.delivery.hold.get(hold_kind(event), 0.0)
    planned = []
    for name, channel in channels.items():
        settings = config.channels[name]
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
