"""The command tells the daemon at once (a socket in the state directory); the file is watched by inotify."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd import files, loading, tasks
from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target, Wanted
from statusd.sources.status import inotify, nudge, watch
from statusd.sources.status.edit import set_entry
from statusd.sources.status.watch import StatusWatch
from tests.conftest import WriteConfig
from tests.support.waiting import until

pytestmark = pytest.mark.unit

CLOSED = StatusEntry(Level.CLOSED, {"fr": "Fermé"}, by="bob", at=datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


class TestDigest:
    """The digest is the SHA-256 of the UTF-8 text, whichever implementation computes it."""

    def test_as_hashlib_gives_it(self) -> None:
        for text in ("", "main: {level: open}\n", "main:\n  message: Fermé — 閉館\n"):
            assert nudge.digest(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


class TestSocket:
    """A nudge names a digest; the socket is as reachable as the state directory, and nothing else is heard."""

    async def test_heard(self, tmp_path: Path) -> None:
        heard: list[str] = []
        listener = nudge.Listener(tmp_path, heard.append)
        assert await listener.start()
        try:
            said = await asyncio.to_thread(nudge.tell, tmp_path, nudge.digest("main: {level: open}\n"))
            await until(lambda: bool(heard), "the nudge heard")
            assert said and heard == [nudge.digest("main: {level: open}\n")]
        finally:
            await listener.stop()
        assert not (tmp_path / nudge.NAME).exists()

    async def test_mode_follows_the_state_directory(self, tmp_path: Path) -> None:
        state = tmp_path / "state"
        state.mkdir(mode=0o750)
        os.chmod(state, 0o750)  # noqa: S103 - the state directory of a daemon whose group runs commands
        listener = nudge.Listener(state, lambda digest: None)
        assert await listener.start()
        try:
            assert stat.S_IMODE(os.stat(state / nudge.NAME).st_mode) == 0o660  # group may enter: group may tell
        finally:
            await listener.stop()

    @pytest.mark.parametrize("line", [b"whole 1234\n", b"closed main\n", b"whole " + b"G" * 64 + b"\n", b"x" * 500])
    async def test_anything_else_is_ignored(self, tmp_path: Path, line: bytes) -> None:
        heard: list[str] = []
        listener = nudge.Listener(tmp_path, heard.append)
        assert await listener.start()
        try:
            reader, writer = await asyncio.open_unix_connection(os.fspath(tmp_path / nudge.NAME))
            writer.write(line)
            await writer.drain()
            assert await reader.read() == b""  # the daemon hangs up, having heard nothing it acts on
            writer.close()
        finally:
            await listener.stop()
        assert heard == []

    async def test_a_stale_socket_is_replaced(self, tmp_path: Path) -> None:
        first = nudge.Listener(tmp_path, lambda digest: None)
        assert await first.start()
        first._server.close()  # type: ignore[union-attr]  # a killed daemon leaves its socket file
        first._server = None
        heard: list[str] = []
        second = nudge.Listener(tmp_path, heard.append)
        assert await second.start()
        try:
            await asyncio.to_thread(nudge.tell, tmp_path, "a" * 64)
            await until(lambda: bool(heard), "the new daemon hearing")
        finally:
            await second.stop()

    def test_no_daemon_is_no_error(self, tmp_path: Path) -> None:
        assert nudge.tell(tmp_path, "a" * 64) is False


class TestInotify:
    """The file's own changes are reported, however it is saved; other files in its directory are not."""

    @pytest.mark.parametrize("save", ["rename", "in place", "delete"])
    async def test_reported(self, tmp_path: Path, save: str) -> None:
        path = tmp_path / "status.yaml"
        path.write_text("main: {level: open}\n")
        seen = asyncio.Event()
        found = inotify.watch(path, seen.set)
        assert found is not None
        try:
            (tmp_path / "other.yaml").write_text("x: 1\n")
            (tmp_path / ".status.yaml.lock").touch()
            await asyncio.sleep(0.05)
            assert not seen.is_set()
            if save == "rename":
                (tmp_path / "new").write_text("main: {level: closed}\n")
                os.replace(tmp_path / "new", path)
            elif save == "in place":
                with path.open("a") as out:
                    out.write("# edited\n")
            else:
                path.unlink()
            await asyncio.wait_for(seen.wait(), 5)
        finally:
            found.close()

    async def test_files_beside_it_when_asked(self, tmp_path: Path) -> None:
        """The store's watch: a commit of another program writes the write-ahead log beside the database."""
        seen = asyncio.Event()
        found = inotify.watch(tmp_path / "statusd.db", seen.set, also=("statusd.db-wal",))
        assert found is not None
        try:
            (tmp_path / "statusd.db-shm").write_bytes(b"x")
            await asyncio.sleep(0.05)
            assert not seen.is_set()
            (tmp_path / "statusd.db-wal").write_bytes(b"commit")
            await asyncio.wait_for(seen.wait(), 5)
        finally:
            found.close()


def _watch(config: Config, steps: list[Wanted | None]) -> StatusWatch:
    def step(wanted: Wanted | None) -> float:
        steps.append(wanted)
        return 300.0

    return StatusWatch(config, step, dict)


class TestKnownWhole:
    """A text a writer said it wrote whole is read at once; any other text still waits to settle."""

    async def test_no_settling_for_a_known_text(self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        config = loading.load(write_config())
        status = _watch(config, [])
        await status.load()
        monkeypatch.setattr(watch, "SETTLE", 3600.0)  # a hand edit would wait an hour
        written = await asyncio.to_thread(set_entry, config.status_file, config, Target("main"), CLOSED)
        status.written_whole(written)
        await asyncio.wait_for(status.reconcile(), 10)
        assert status.wanted is not None and status.wanted[Target("main")].level is Level.CLOSED

    async def test_a_nudge_cuts_the_wait_short(self, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        config = loading.load(write_config())
        status = _watch(config, [])
        await status.load()
        monkeypatch.setattr(watch, "SETTLE", 3600.0)
        config.status_file.write_text("main:\n  level: limited\n")  # a hand edit: waits to settle
        reading = asyncio.ensure_future(status.reconcile())
        await asyncio.sleep(0.2)
        assert not reading.done()
        whole = "main:\n  level: closed\n  message: Fermé\n"  # replaced whole, as a writer holding no lock
        files.write_atomic(config.status_file, whole.encode())
        status.written_whole(nudge.digest(whole))
        await asyncio.wait_for(reading, 10)
        assert status.wanted is not None and status.wanted[Target("main")].level is Level.CLOSED

    async def test_an_unknown_digest_settles_as_before(self, write_config: WriteConfig,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        config = loading.load(write_config())
        monkeypatch.setattr(watch, "SETTLE", 0.2)
        status = _watch(config, [])
        await status.load()
        config.status_file.write_text("main:\n  level: limited\n")
        status.written_whole("0" * 64)  # someone else's text
        await asyncio.wait_for(status.reconcile(), 10)
        assert status.wanted is not None and status.wanted[Target("main")].level is Level.LIMITED


class TestPushes:
    """A pushed change is in force and announced first; status.yaml is written after, in a thread."""

    async def test_announced_then_written_off_the_loop(self, write_config: WriteConfig,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        config = loading.load(write_config())
        steps: list[Wanted | None] = []
        status = _watch(config, steps)
        await status.load()
        writers: list[tuple[threading.Thread, int]] = []

        def recording(*args: object, **kwargs: object) -> str:
            writers.append((threading.current_thread(), len(steps)))
            return set_entry(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(watch, "set_entry", recording)
        tasks = [asyncio.ensure_future(t) for t in status.tasks()]
        try:
            status.submit(Target("main"), CLOSED)
            assert steps and steps[-1] is not None and steps[-1][Target("main")].level is Level.CLOSED
            assert "closed" not in config.status_file.read_text()  # announced before it is written
            await until(lambda: "closed" in config.status_file.read_text(), "the push in status.yaml")
            (thread, steps_before), = writers
            assert thread is not threading.main_thread() and steps_before >= 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)



class TestWaitEvent:
    """The watches' wait keeps a cancellation that arrives as the event is set: the daemon still stops."""

    async def test_cancelled_as_set(self) -> None:
        event = asyncio.Event()
        waiting = asyncio.ensure_future(tasks.wait_event(event, 60))
        await asyncio.sleep(0)
        event.set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    async def test_set_and_timeout(self) -> None:
        event = asyncio.Event()
        assert await tasks.wait_event(event, 0.01) is False
        event.set()
        assert await tasks.wait_event(event, 60) is True


def _level(status: StatusWatch) -> Level | None:
    entry = (status.wanted or {}).get(Target("main"))
    return entry.level if entry else None


class TestOneReadAFlip:
    """The file watch sees a `set`'s rename before its nudge comes: the nudge for the text
    already in force starts no second read, and every other change is still read."""

    async def _running(self, config: Config, steps: list[Wanted | None]
                       ) -> tuple[StatusWatch, list[str], list[asyncio.Task[None]]]:
        status = _watch(config, steps)
        await status.load()
        reads: list[str] = []
        read_whole = status._read_whole

        def counted(accepted: str | None) -> tuple[str, Wanted, str]:
            found = read_whole(accepted)
            reads.append(found[0])
            return found

        status._read_whole = counted  # type: ignore[method-assign]
        loops = [asyncio.create_task(t) for t in status.tasks()]
        await asyncio.sleep(0.2)  # the file watch is set up
        return status, reads, loops

    @staticmethod
    async def _stop(loops: list[asyncio.Task[None]]) -> None:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def test_a_late_nudge_for_the_text_read_reads_nothing(self, write_config: WriteConfig) -> None:
        config = loading.load(write_config())
        steps: list[Wanted | None] = []
        status, reads, loops = await self._running(config, steps)
        try:
            written = await asyncio.to_thread(set_entry, config.status_file, config, Target("main"), CLOSED)
            await until(lambda: _level(status) is Level.CLOSED, "the watch to read the flip")
            await asyncio.sleep(0.3)  # the rename's own events are all handled
            before = (len(reads), len(steps))
            status.written_whole(written)
            await asyncio.sleep(0.5)
            assert (len(reads), len(steps)) == before, "a nudge for the text in force reads nothing again"
            # A hand edit after it is read as ever, nudge or none.
            config.status_file.write_text("main:\n  level: limited\n")
            await until(lambda: _level(status) is Level.LIMITED, "the hand edit to be read", timeout=10.0)
        finally:
            await self._stop(loops)

    async def test_a_nudge_for_another_text_is_read(self, write_config: WriteConfig) -> None:
        config = loading.load(write_config())
        steps: list[Wanted | None] = []
        status, reads, loops = await self._running(config, steps)
        try:
            held = len(reads)
            status.written_whole("0" * 64)  # not the text in force: the file is read
            await until(lambda: len(reads) > held, "the file to be read again")
        finally:
            await self._stop(loops)
