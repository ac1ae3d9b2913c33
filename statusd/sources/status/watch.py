"""The wanted status for the daemon: status.yaml watched and read whole, off the event loop,
and building-system changes put in force at once and written to the file after.

Nothing here blocks the loop: the lock is only tried without blocking (and
read without it after a bound, since the file is only ever replaced whole),
reading, parsing and writing run in threads. A hand edit counts only once the
file is stable: two reads `SETTLE` apart agree (or the text is the one already
in force), so an editor writing in pieces is never announced half-way; a text a
writer said it wrote whole (nudge.py) is read at once. inotify sees changes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import structlog
from watchfiles import awatch

from statusd import files, metrics, tasks
from statusd.config.load import Config
from statusd.errors import ConfigError, Problem, UserError
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status import bounds, inotify, nudge, times, unwritten
from statusd.sources.status.blocks import Blocks
from statusd.sources.status.edit import set_entry
from statusd.sources.status.lock import LockBusy, held
from statusd.sources.status.thread import OwnThread

__all__ = ["StatusWatch"]

log = structlog.get_logger()

# The stat safety net for a change no watch saw (a network file system): seldom with inotify.
STAT_EVERY = 5.0
STAT_EVERY_INOTIFY = 60.0
KNOWN_WHOLE = 16  # digests of texts written whole, for the few writes in flight
SETTLE = 0.1
SETTLE_TRIES = 30
# The reader waits this long for a colleague's command, then reads without the lock.
READ_WAIT = 2.0
# The writer's thread waits at most this long for the lock, then tries again later.
WRITE_WAIT = 1.0
WRITE_RETRY = 5.0
LOGGED_PROBLEMS = 10
# A pushed change is written at the latest this long after it arrived (sooner once announced).
FLUSH_AFTER = 1.0

Step = Callable[[Wanted | None], float]


class Unsettled(Exception):
    """The file kept changing: an editor is still writing it."""


class StatusWatch:
    """Keeps `wanted` equal to status.yaml (plus pushes not yet written) and calls `step` on each change.

    `step(wanted)` reconciles and returns the seconds until the next planned change;
    `fallback()` is the store's last good state, used when the file is unusable at start;
    `pushed()` the pushed statuses it holds (unwritten.py).
    """

    def __init__(self, config: Config, step: Step, fallback: Callable[[], Wanted],
                 pushed: Callable[[], Mapping[Target, tuple[StatusEntry, float]]] = dict) -> None:
        self.config, self._step, self._fallback, self._pushed = config, step, fallback, pushed
        self._from_file: Wanted | None = None
        self._accepted: str | None = None  # the text in force
        self._accepted_digest: str | None = None  # its nudge.digest, to know a nudge for it
        self._seen: tuple[int, int, int] | None = None
        # target → (entry, written, what the file said when it arrived)
        self._pending: dict[Target, tuple[StatusEntry, bool, StatusEntry | None]] = {}
        self._changed, self._to_write = asyncio.Event(), asyncio.Event()
        self._causes = nudge.Causes()  # why `_changed` was set since the last reconcile
        self._thread = OwnThread("statusd-status")  # not the loop's pool, where DNS lookups may hang
        self._whole: deque[str] = deque(maxlen=KNOWN_WHOLE)
        self._nudged = threading.Event()  # wakes a reader waiting for the file to settle
        self._blocks = Blocks()  # a site's block is checked again only when its lines change
        self._stat_every, self.next_wake = STAT_EVERY, 300.0

    @property
    def path(self) -> Path:
        return self.config.status_file

    @property
    def read_ok(self) -> bool:
        """Whether the file itself has been read and accepted at least once."""
        return self._accepted is not None

    @property
    def wanted(self) -> Wanted | None:
        """The status in force: the file (or the last good state), with pushes not yet in it."""
        if self._from_file is None:
            return None
        merged = dict(self._from_file)
        merged.update({target: entry for target, (entry, _, _) in self._pending.items()})
        return merged

    def changed(self) -> None:
        """Reconcile soon (after a reload, say, or a change the file watch saw)."""
        self._causes.other = True
        self._changed.set()

    def written_whole(self, digest: str) -> None:
        """A writer says status.yaml now holds, complete, the text of `digest`: read it at once."""
        self._whole.append(digest)
        self._nudged.set()
        self._causes.digests.add(digest)
        self._changed.set()

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        """The long-lived loops: the watcher, the reconciler and the writer."""
        return [self._watch(), self._loop(), self._write()]

    async def load(self) -> None:
        """Read the file once, saying nothing yet; a poisoned file means the store's last good state, loudly."""
        await self._remove_leftovers()
        await self._read()
        if unwritten.adopt(self._pending, self._pushed(), self._from_file, self._seen, self.config):
            self._to_write.set()  # a building system's status announced before a stop
        if self._from_file is None:
            self._from_file = self._fallback()
            metrics.STATUS_FILE_ERRORS.inc()
            log.error("status_file_unusable_at_start", file=str(self.path), targets=len(self._from_file),
                      kept="last good status from the store", fix="correct status.yaml; it is read again on change")

    def submit(self, target: Target, entry: StatusEntry) -> None:
        """A building system's change: in force and announced now, written to status.yaml after."""
        base = (self._from_file or {}).get(target)
        self._pending[target] = (entry, False, base)
        # No re-read of the file now: the step's loop keeps the planned times, and reading
        # and writing status.yaml (a thread each) would slow the posts going out.
        self.next_wake = self._step(self.wanted)
        asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)  # if nobody says the posts are out

    def flush(self) -> None:
        """The pushed changes are announced (their posts are leaving): write them to status.yaml now."""
        if any(not done for _, done, _ in self._pending.values()):
            self._to_write.set()

    async def reconcile(self) -> None:
        """Read the file whole and reconcile, under the shared lock when it can be had."""
        # A nudge or change while the lock is awaited: try now (the read below sees it: no second read).
        async with held(self.path, exclusive=False, wait=READ_WAIT, freed=self._changed) as got:
            if not got:
                log.warning("status_lock_busy", file=str(self.path), waited=READ_WAIT,
                            note="read without the lock; a stopped `statusd set` or `undo`, or no lock file?")
            written = {t: e for t, (e, done, _) in self._pending.items() if done}
            await self._read()
            self._settle_pending(written)
            self.next_wake = self._step(self.wanted)
        if any(not done for _, done, _ in self._pending.values()):
            self._to_write.set()  # the file changed (a colleague's command finished?): try the write again now

    # -- reading -----------------------------------------------------------

    async def _read(self) -> None:
        try:
            text, wanted, digest = await self._thread.run(self._read_whole, self._accepted)
        except Unsettled:
            log.info("status_file_unsettled", file=str(self.path), note="still being written; read again on change")
            return
        except ConfigError as err:
            self._invalid(err.problems)
            return
        except Exception as err:  # whatever the file holds, the daemon stays up
            self._invalid([Problem(str(self.path), None, "", f"cannot be read ({type(err).__name__})")])
            return
        if text != self._accepted:
            times.say_ambiguous(wanted)
        self._from_file, self._accepted, self._accepted_digest = wanted, text, digest

    def _read_whole(self, accepted: str | None) -> tuple[str, Wanted, str]:
        """In a thread: the text once two reads `SETTLE` apart agree (or it is known whole), what it
        asks for, and its digest."""
        self._seen = bounds.signature(self.path)
        text = self._read_text()
        for _ in range(SETTLE_TRIES):
            if text == accepted or nudge.digest(text) in self._whole:
                break  # the text in force, or one written whole: nothing half-written can look like it
            if self._settle():
                text = self._read_text()  # a writer said it wrote: perhaps this very text
                continue
            again = self._read_text()
            if again == text:
                break
            text = again
        else:
            raise Unsettled
        return text, self._blocks.parse(text, str(self.path), self.config), nudge.digest(text)

    def _read_text(self) -> str:
        return bounds.read_text(self.path, self.config.status_max_bytes)

    def _settle(self) -> bool:
        """Wait `SETTLE` for the file to stay as it is; True when a writer's nudge cut the wait short."""
        nudged = self._nudged.wait(SETTLE)
        self._nudged.clear()
        return nudged

    def _invalid(self, problems: list[Problem]) -> None:
        metrics.STATUS_FILE_ERRORS.inc()
        shown = [str(p) for p in problems[:LOGGED_PROBLEMS]]
        if len(problems) > LOGGED_PROBLEMS:
            shown.append(f"… and {len(problems) - LOGGED_PROBLEMS} more")
        log.error("status_file_invalid", file=str(self.path), problems=shown, kept="last good status")

    def _settle_pending(self, written: dict[Target, StatusEntry]) -> None:
        """Forget pushes the file now holds, and those a person changed the file over."""
        now = self._from_file or {}
        for target, (entry, done, base) in list(self._pending.items()):
            if target in written and written[target] is entry:
                del self._pending[target]  # read after our write: the file has it
            elif not done and now.get(target) != base and self._accepted is not None:
                del self._pending[target]
                log.warning("status_push_superseded", target=str(target), note="status.yaml was changed for it")

    # -- loops -------------------------------------------------------------

    async def _watch(self) -> None:
        """React to every change of status.yaml, including replace-by-rename and delete."""
        path = self.path.resolve()
        found = inotify.watch(path, self.changed)
        if found is not None:
            self._stat_every = STAT_EVERY_INOTIFY
            try:
                await asyncio.Event().wait()  # events arrive through the loop's reader until cancelled
            finally:
                found.close()
        # No inotify: watchfiles, which polls. A low debounce: the default 1.6 s would make a flip feel slow.
        async for changes in awatch(path.parent, debounce=100, step=50, recursive=False):
            if any(Path(p).name == path.name for _, p in changes):
                self.changed()

    async def _loop(self) -> None:
        """Reconcile on every change, and when a planned time comes.

        The file watcher reports changes at once; a look at the file's stat
        every few seconds is the safety net for a change it could not see
        (one made while it was starting, or on a network file system).
        """
        loop = asyncio.get_running_loop()
        due = loop.time() + self.next_wake
        while True:
            wait = min(max(due - loop.time(), 0.0), self._stat_every)
            if not await tasks.wait_event(self._changed, wait):
                if loop.time() < due and await self._thread.run(bounds.signature, self.path) == self._seen:
                    continue
                self._causes.other = True  # a planned time, or a change only the file's stat showed
            self._changed.clear()
            if self._causes.take() == {self._accepted_digest}:
                continue  # nudges alone, for the text already in force: nothing to read again
            await self.reconcile()
            due = loop.time() + self.next_wake

    async def _write(self) -> None:
        """The one writer of pushed changes: each written to the file in a thread, retried until it is."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._to_write.wait()
                self._to_write.clear()
                if not await self._write_pending():
                    loop.call_later(WRITE_RETRY, self._to_write.set)
        except asyncio.CancelledError:
            await self._write_pending()  # at shutdown: bounded by WRITE_WAIT per entry
            raise

    async def _write_pending(self) -> bool:
        """Write every unwritten push; False when one must be tried again later."""
        ok = True
        for target, (entry, done, base) in list(self._pending.items()):
            if done:
                continue
            try:
                written = await self._thread.run(set_entry, self.path, self.config, target, entry, wait=WRITE_WAIT)
            except LockBusy:
                log.warning("status_push_waiting", target=str(target), reason="status.yaml is locked")
                return False
            except UserError as err:
                log.error("status_push_not_written", target=str(target), reason=str(err),
                          kept="in force until status.yaml is changed for it")
                ok = False
                continue
            self.written_whole(written)
            if self._pending.get(target, (None,))[0] is entry:
                self._pending[target] = (entry, True, base)
        return ok

    async def _remove_leftovers(self) -> None:
        """Temporary files of killed writers: removed under the exclusive lock, when nobody writes."""
        async with held(self.path, exclusive=True, wait=0.5) as got:
            if got:
                if removed := await self._thread.run(files.remove_leftovers, self.path):
                    log.info("status_leftovers_removed", file=str(self.path), count=removed)

