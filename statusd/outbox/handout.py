"""Handing idle workers their deliveries after an event: a few store calls for all of them.

When an event is recorded every idle channel has a post to send. Each worker
taking its own would cost a hop to the store's thread and a transaction per
channel; instead the idle workers are reserved (they make no store call of
their own meanwhile) and their deliveries taken a batch per call (`take_many`,
one transaction each). The first batch is small and can be taken in the very
call that records the event (`record_then_take`), the others asked for at the
same moment (the store's one thread takes them in order, after the record), so
the first request leaves one hop after the step, and the rest follow while the
loop sends. When the event goes to more channels than the first batch, only the
first batch's deliveries are in that record: the batch is handed to the loop
from the store's thread (`Reservation.handing`), and the others are composed and
recorded while their requests leave (announcer.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

from statusd import collector
from statusd.events import Event
from statusd.model import Announced
from statusd.outbox.contract import Store
from statusd.outbox.facade import AsyncStore
from statusd.outbox.records import Planned
from statusd.outbox.take import Ask, Taken, take_many
from statusd.outbox.worker import Worker

__all__ = ["FIRST_BATCH", "HAND_BATCH", "HAND_WAIT", "Hand", "Reservation", "hand_out", "record_then_take"]

# A small first batch, so the first request leaves at once, then doubling up to the largest.
FIRST_BATCH = 4
HAND_BATCH = 32
# How long the store's thread waits, once it has handed the first batch, for their requests to be
# written before it composes the rest: holding the GIL meanwhile, it would keep the loop from them
# for up to the interpreter's switch interval (5 ms). Bounded: a busy loop does not hold up the record.
HAND_WAIT = 0.005

# Called on the store's thread with the first batch: handed to the loop; `wait`: until their requests are out.
Hand = Callable[[list[Taken] | None, bool], None]


class Reservation:
    """Idle workers reserved for one hand-out, in batches; `first` is the first batch's, once taken."""

    def __init__(self, idle: list[Worker]) -> None:
        loop = asyncio.get_running_loop()
        for worker in idle:
            worker.handed = loop.create_future()  # reserved: it makes no store call of its own meanwhile
        self.workers = idle
        self.batches = list(_batches(idle))
        self.first: list[Taken] | None = None
        # The calls taking the batches after the first, when they were asked for with the record.
        self.calls: list[asyncio.Future[list[Taken]]] | None = None
        self._later: list[tuple[Worker, Taken]] = []  # the first batch's, after its first request
        self._held = collector.Hold()  # no collection in the middle of it (collector.py)

    @property
    def asks(self) -> list[Ask]:
        """What taking the first batch needs."""
        return [worker.ask for worker in self.batches[0]]

    def take_rest(self, store: AsyncStore) -> None:
        """Ask for the batches after the first now: the store's thread takes them right after the record."""
        self.calls = _take(store, self.batches[1:])

    def handing(self) -> Hand:
        """For the store's thread: give the first batch on the loop (and perhaps wait until it is sent)."""
        loop = asyncio.get_running_loop()

        def hand(taken: list[Taken] | None, wait: bool) -> None:
            out = threading.Event()
            try:
                loop.call_soon_threadsafe(self._hand_first, loop, taken, out)
            except RuntimeError:  # the loop is closed (a stop): nobody is there to send them
                return
            if wait:
                out.wait(HAND_WAIT)

        return hand

    def _hand_first(self, loop: asyncio.AbstractEventLoop, taken: list[Taken] | None, out: threading.Event) -> None:
        """The first worker's now, the rest of its batch a turn of the loop later, then `out`.

        On Python 3.11 aiohttp writes a request's bytes in a task of its own, a turn after the
        worker made it: given together, the first request waited for all four to be made (~2 ms).
        """
        self.first = taken
        if taken is None:
            loop.call_soon(out.set)
            return
        first, *others = self.batches[0]
        _give([first], taken[:1])
        self._later = list(zip(others, taken[1:], strict=True))
        loop.call_soon(self._give_later, loop, out)

    def _give_later(self, loop: asyncio.AbstractEventLoop | None = None, out: threading.Event | None = None) -> None:
        """The first batch's others (at once when called by `hand_out`); `out` once their requests are written."""
        later, self._later = self._later, []
        if later:
            _give([worker for worker, _ in later], [one for _, one in later])
        if loop is not None and out is not None:
            loop.call_soon(loop.call_soon, out.set)  # after their workers' turn, and their writes' turn

    def release(self) -> None:
        """Nothing handed after all (the step failed): each worker looks itself when it next wakes."""
        self._give_later()  # but those taken, and marked `sending`, are sent as taken
        for worker in self.workers:
            if worker.handed is not None and not worker.handed.done():
                worker.handed.set_result(None)
            worker.handed = None
        self._held.release()

    def end(self) -> None:
        """The hand-out is over: the first batch's others given, every worker not handed one looks
        itself (a shutdown's cancel), and the collector runs again."""
        self._give_later()  # taken and marked `sending`: never left to look themselves, uncertain
        _give(self.workers, [None] * len(self.workers))
        self._held.release()


def record_then_take(store: Store, updates: Sequence[tuple[Event, Iterable[Planned]]],
                     announced: Mapping[str, Announced], deadline: float,
                     asks: Sequence[Ask], unfinished: Collection[str] = ()) -> tuple[list[str], list[Taken] | None]:
    """Record (one transaction), then take the first batch (another), in one call on the store's thread.

    Nothing to record (no event, nothing announced) makes no transaction, no `asks` no take (None).
    The record's failure is the caller's; the take's only means the hand-out takes them again.
    `unfinished`: events given with only some of their deliveries (`Store.record`).
    """
    new = store.record(updates, announced, deadline, unfinished=unfinished) if updates or announced else []
    if not asks:
        return new, None
    try:
        return new, take_many(store, asks)
    except Exception:  # store trouble or a row it cannot read: taken again (and said) by the hand-out
        return new, None


async def hand_out(store: AsyncStore, reservation: Reservation) -> None:
    """Take the reserved workers' deliveries a batch per store call and hand each its own.

    Every batch still to take is asked for at once: the store's thread takes one after the
    other without waiting for the loop, while the loop sends the requests of those taken.
    """
    if reservation.calls is None:
        rest, calls = reservation.batches, _take(store, reservation.batches)
    else:  # the first batch was given by the recording call (or, if it failed, looks itself below)
        rest, calls = reservation.batches[1:], reservation.calls
    try:
        for batch, call in zip(rest, calls, strict=True):
            try:
                taken: list[Taken] = await call
            except Exception:  # store trouble or a row it cannot read: each worker looks itself, and says so
                taken = [None] * len(batch)
            _give(batch, taken)
    finally:  # cancelled (shutdown): the workers not handed theirs look themselves
        for call in calls:
            call.cancel()  # a done one's error is retrieved, so never logged as unretrieved
            call.add_done_callback(lambda done: done.cancelled() or done.exception())
        reservation.end()


def _take(store: AsyncStore, batches: list[list[Worker]]) -> list[asyncio.Future[list[Taken]]]:
    return [asyncio.ensure_future(store.run(take_many, [w.ask for w in batch])) for batch in batches]


def _batches(idle: list[Worker]) -> Iterator[list[Worker]]:
    size, start = FIRST_BATCH, 0
    while start < len(idle):
        yield idle[start:start + size]
        start, size = start + size, min(size * 2, HAND_BATCH)


def _give(workers: list[Worker], taken: list[Taken]) -> None:
    for worker, one in zip(workers, taken, strict=True):
        if worker.handed is not None and not worker.handed.done():
            worker.handed.set_result(one)
        worker.poke()
