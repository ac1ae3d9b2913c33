"""Faults of the daemon's files: a full disk under the state directory, the SQLite file locked by
another process, status.yaml replaced by a directory or truncated mid-write.

Each gives a clear error (a log event naming the problem, no traceback for anyone), no crash
loop (the daemon keeps running, or exits once with a clear message), and recovery once the
fault clears: a later flip is announced, and so is any flip made during the fault.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from statusd import loading
from tests.faults.driver import TRACEBACK, Desk, excerpt, log_events
from tests.faults.fleet import ENV, HOOK_SECRET, tag_of
from tests.faults.summary import Ledger, Row
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver

pytestmark = pytest.mark.faults

FAULT_WINDOW = 8.0  # SQLite waits 5 s for a lock before it gives up
RECOVERY = 10.0
LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(HOOK_SECRET) as receiver:
        yield receiver


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted as the state directory (we run as root), unmounted at teardown."""
    mount = tmp_path / "state"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)],
                   check=True, capture_output=True, timeout=10)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True, timeout=10)


class Scene:
    """One daemon with one webhook, a desk to flip with, and what the fault made of them."""

    def __init__(self, daemon: Daemon, hook: WebhookReceiver, desk: Desk) -> None:
        self.daemon, self.hook, self.desk = daemon, hook, desk
        self.findings: list[str] = []
        self.mark = 0

    @classmethod
    async def start(cls, write: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path,
                    state: Path | None = None) -> Scene:
        channel = (f"  hook: {{type: webhook, language: en, url: '{hook.url}',"
                   " secret: {env: HOOK_SECRET}, timeout: 1s}")
        path = write(channel)
        config = loading.load(path)
        daemon = Daemon(path, state or tmp_path / "state", env=ENV)
        await asyncio.to_thread(daemon.start)
        return cls(daemon, hook, Desk(config, random.Random(0)))

    def tags(self) -> Counter[str]:
        return Counter(tag_of(str(body.get("text"))) or "" for body in self.hook.received)

    async def flip(self, target: str, level: str) -> str:
        return await asyncio.to_thread(self.desk.flip, target, level)

    async def announced(self, *tags: str, within: float = RECOVERY) -> bool:
        return await eventually(lambda: all(self.tags()[t] for t in tags), within)

    def begin_fault(self) -> None:
        self.mark = len(self.daemon.logs())

    def exited(self) -> bool:
        return self.daemon.proc is not None and self.daemon.proc.poll() is not None

    async def wait_for_error(self, words: tuple[str, ...], within: float = FAULT_WINDOW) -> None:
        """Until the daemon logs an error naming the fault, or exits; either way, move on."""
        await eventually(lambda: self.exited() or bool(self.errors(words)), within)

    def errors(self, words: tuple[str, ...]) -> list[dict[str, object]]:
        """Error or warning events since the fault began that mention one of `words`."""
        events = log_events(self.daemon.logs()[self.mark:])
        return [e for e in events if e.get("level") in ("error", "warning", "critical")
                and any(w in json.dumps(e, ensure_ascii=False).lower() for w in words)]

    def judge(self, fault: str, words: tuple[str, ...]) -> None:
        """A clear error and no traceback: alive, or exited (nonzero) with that clear message."""
        log = self.daemon.logs()[self.mark:]
        if TRACEBACK in log:
            self.findings.append(f"{fault}: a traceback in the daemon's log:\n{excerpt(log, TRACEBACK)}")
        if not self.errors(words):
            self.findings.append(f"{fault}: no error or warning event mentioning"
                                 f" {' or '.join(map(repr, words))}; the log since the fault:\n{log[-2500:]}")
        if self.exited():
            code = self.daemon.proc.returncode  # type: ignore[union-attr]
            # Exiting once with a clear message is allowed; exiting 0 hides the fault.
            print(f"{fault}: the daemon exited with status {code}")
            if code == 0:
                self.findings.append(f"{fault}: the daemon exited 0, as if all were well")

    async def recover(self, fault: str, *tags: str) -> str:
        """Once the fault is cleared: (re)start if needed, flip once more, expect every tag."""
        if self.exited():
            try:
                await asyncio.to_thread(self.daemon.start)
            except RuntimeError as err:
                self.findings.append(f"{fault}: the daemon does not start again after the fault: {err}")
                return ""
        later = await self.flip("annexe", "limited")
        if not await self.announced(*tags, later):
            missing = [t for t in (*tags, later) if not self.tags()[t]]
            self.findings.append(f"{fault}: after the fault cleared, {missing} were not announced"
                                 f" (received {dict(self.tags())}); log tail:\n{self.daemon.logs()[-2500:]}")
        return later

    def record(self, ledger: Ledger, name: str, expected: list[str]) -> None:
        tags = self.tags()
        arrived = sum(1 for t in expected if tags[t])
        duplicated = sum(n - 1 for n in tags.values() if n > 1)
        ledger.add(Row(name, 1, 1, len(expected), arrived, duplicated, len(expected) - arrived))
        if duplicated:
            self.findings.append(f"{name}: announced more than once: {dict(tags)}")


async def eventually(check: Callable[[], bool], within: float) -> bool:
    """Whether `check()` came true within `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def fill(directory: Path) -> Path:
    """Write zeros into `directory` until its file system is full."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return filler


@contextmanager
def pinned_log(database: Path) -> Iterator[None]:
    """A reader's snapshot held open on the SQLite file: while it lasts, no commit reuses its log.

    Once a checkpoint has copied the whole write-ahead log, SQLite writes it again from its
    start, into room the file already has: a full disk then fails the first record but not
    the retry 2 s later, and whether the fault lasts until the test looks at it is a race
    with the checkpoint thread (it failed so in CI). A reader keeps the log from restarting,
    so every commit needs new room: the store cannot record for as long as the disk is full.
    """
    reader = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        yield
    finally:
        reader.close()


class TestDiskFull:
    """A full disk under the state directory is reported, survived, and recovered from."""

    async def test_full_disk_then_space_again(
        self, fault_config: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path,
        small_disk: Path, ledger: Ledger,
    ) -> None:
        scene = await Scene.start(fault_config, hook, tmp_path, state=small_disk)
        try:
            first = await scene.flip("main", "closed")
            assert await scene.announced(first), "the first flip was not announced before the fault"
            scene.begin_fault()
            with pinned_log(small_disk / "statusd.db"):
                filler = fill(small_disk)
                during = await scene.flip("main/wifi", "limited")
                await scene.wait_for_error(("disk", "full", "space"))
                scene.judge("disk full", ("disk", "full", "space"))
                await _trouble_is_visible(scene)
            filler.unlink()
            later = await scene.recover("disk full", during)
            scene.record(ledger, "store: disk full", [first, during, later])
        finally:
            await asyncio.to_thread(scene.daemon.kill)
        assert scene.findings == [], "\n\n".join(scene.findings)

    async def test_a_full_disk_with_room_in_the_log_still_announces(
        self, fault_config: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path,
        small_disk: Path,
    ) -> None:
        """The disk full but the log copied: SQLite writes the log again in room it has, and a flip
        is announced at once; the daemon does not refuse what its store can record."""
        scene = await Scene.start(fault_config, hook, tmp_path, state=small_disk)
        try:
            first = await scene.flip("main", "closed")
            assert await scene.announced(first), "the first flip was not announced before the fault"
            assert await eventually(partial(_log_copied, small_disk / "statusd.db"), RECOVERY), \
                "the log was never copied whole into the database"
            filler = fill(small_disk)
            during = await scene.flip("main/wifi", "limited")
            assert await scene.announced(during), \
                f"a flip on a full disk with room in the log was not announced: {scene.daemon.logs()[-2500:]}"
            assert os.statvfs(small_disk).f_bavail == 0, "the disk was not full all along"
            filler.unlink()
        finally:
            await asyncio.to_thread(scene.daemon.kill)
        assert scene.tags()[first] == 1 and scene.tags()[during] == 1, dict(scene.tags())


def _log_copied(database: Path) -> bool:
    """Whether every frame of the write-ahead log is in the database (the next commit restarts it)."""
    db = sqlite3.connect(database, isolation_level=None, timeout=1)
    try:
        busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return bool(busy == 0 and frames == copied)
    finally:
        db.close()


async def _trouble_is_visible(scene: Scene) -> None:
    """Where people look: `statusd set` refuses to claim, /readyz is not ready, `show` marks it."""
    refused = await asyncio.to_thread(scene.daemon.cli, "set", "annexe", "closed", "-m", "en:Full.", check=False)
    _command("statusd set on a full disk", refused, 74, "full", scene.findings)
    if "announces it" in refused.stdout:
        scene.findings.append(f"statusd set on a full disk claims the change is announced: {refused.stdout}")
    ready = await asyncio.to_thread(_get, f"{scene.daemon.ops_url}/readyz")
    if ready[0] != 503 or "full" not in str(ready[1].get("store")):
        scene.findings.append(f"/readyz on a full disk answered {ready}")
    shown = await asyncio.to_thread(scene.daemon.cli, "show", check=False)
    _command("statusd show on a full disk", shown, 0, "not yet announced", scene.findings)
    if not any("annexe" in line and "not yet announced" in line for line in shown.stdout.splitlines()):
        scene.findings.append(f"statusd show does not mark annexe as not yet announced:\n{shown.stdout}")


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


class TestStoreLocked:
    """The store locked by another process is reported, survived, and recovered from."""

    async def test_exclusive_lock_then_released(
        self, fault_config: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path, ledger: Ledger,
    ) -> None:
        scene = await Scene.start(fault_config, hook, tmp_path)
        locker: asyncio.subprocess.Process | None = None
        try:
            first = await scene.flip("main", "closed")
            assert await scene.announced(first), "the first flip was not announced before the fault"
            scene.begin_fault()
            locker = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LOCKER, str(tmp_path / "state" / "statusd.db"),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert locker.stdout is not None
            assert (await locker.stdout.readline()).strip() == b"locked"
            during = await scene.flip("main/wifi", "limited")
            await scene.wait_for_error(("lock",))
            scene.judge("store locked", ("lock",))
            await _release(locker)
            later = await scene.recover("store locked", during)
            scene.record(ledger, "store: locked by another process", [first, during, later])
        finally:
            if locker is not None:
                await _release(locker)
            await asyncio.to_thread(scene.daemon.kill)
        assert scene.findings == [], "\n\n".join(scene.findings)


async def _release(locker: asyncio.subprocess.Process) -> None:
    """End the other process's transaction (it rolls back and exits)."""
    if locker.returncode is None:
        assert locker.stdin is not None
        locker.stdin.close()
        await asyncio.wait_for(locker.wait(), 10)


class TestStatusFileIsADirectory:
    """status.yaml replaced by a directory: the daemon keeps the last good status, the desk's
    commands refuse with one sentence, and a flip after the repair is announced."""

    async def test_directory_then_repaired(
        self, fault_config: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path, ledger: Ledger,
    ) -> None:
        scene = await Scene.start(fault_config, hook, tmp_path)
        status = tmp_path / "status.yaml"
        try:
            first = await scene.flip("main", "closed")
            assert await scene.announced(first), "the first flip was not announced before the fault"
            scene.begin_fault()
            status.unlink()
            status.mkdir()
            await scene.wait_for_error(("directory",))
            scene.judge("status file is a directory", ("directory",))
            refused = await asyncio.to_thread(scene.daemon.cli, "set", "main", "open", check=False)
            shown = await asyncio.to_thread(scene.daemon.cli, "show", check=False)
            _command("statusd set", refused, 2, "directory", scene.findings)
            _command("statusd show", shown, 0, "directory", scene.findings)
            status.rmdir()
            later = await scene.recover("status file is a directory")
            scene.record(ledger, "status file: a directory", [first, later])
        finally:
            await asyncio.to_thread(scene.daemon.kill)
        assert scene.findings == [], "\n\n".join(scene.findings)


def _command(name: str, result: subprocess.CompletedProcess[str], code: int, word: str,
             findings: list[str]) -> None:
    """A desk command under the fault: the expected exit status, and a sentence, not a traceback."""
    output = result.stdout + result.stderr
    if TRACEBACK in output:
        findings.append(f"{name}: a traceback for the user:\n{excerpt(output, TRACEBACK)}")
    elif result.returncode != code or word not in output:
        findings.append(f"{name}: exited {result.returncode} (expected {code}) without saying"
                        f" {word!r}:\n{output[-1500:]}")


FULL = ("main:\n  level: closed\n  message:\n    fr: Fermé {tag}.\n    en: Closed {tag}.\n"
        "annexe:\n  level: limited\n  message: Annexe {tag}.\n")
# Where the write stopped; each prefix is a file the daemon must refuse, not half-announce.
CUTS: dict[str, Callable[[str], int]] = {
    "before the first byte": lambda text: 0,
    "inside a level": lambda text: text.index("closed") + 3,
    "inside a key": lambda text: text.index("  message") + 6,
    "inside the second site": lambda text: text.index("annexe") + 3,
}


class TestStatusFileTruncated:
    """A status.yaml cut short mid-write is refused with its line, keeps the last good status,
    and the completed write is announced once."""

    async def test_each_truncation_is_refused_and_the_whole_file_announced(
        self, fault_config: Callable[..., Path], hook: WebhookReceiver, tmp_path: Path, ledger: Ledger,
    ) -> None:
        scene = await Scene.start(fault_config, hook, tmp_path)
        status = tmp_path / "status.yaml"
        expected: list[str] = []
        try:
            first = await scene.flip("main", "limited")
            assert await scene.announced(first), "the first flip was not announced before the fault"
            expected.append(first)
            for number, (where, cut) in enumerate(CUTS.items()):
                tag = f"u{9000 + number}"
                text = FULL.format(tag=tag)
                before = len(hook.received)
                scene.begin_fault()
                status.write_text(text[:cut(text)], encoding="utf-8")  # a plain write, cut short
                await scene.wait_for_error(("status.yaml",))
                scene.judge(f"truncated {where}", ("status.yaml",))
                await asyncio.sleep(0.3)
                if len(hook.received) != before:
                    scene.findings.append(f"truncated {where}: something was announced from the cut"
                                          f" file: {hook.received[before:]}")
                if where == "inside the second site":  # not YAML any more: refuse, never guess
                    refused = await asyncio.to_thread(scene.daemon.cli, "set", "main", "open", check=False)
                    _command("statusd set on a truncated file", refused, 2, "status.yaml", scene.findings)
                status.write_text(text, encoding="utf-8")
                if not await eventually(partial(_twice, scene, tag), RECOVERY):
                    scene.findings.append(f"truncated {where}: the completed file was not announced"
                                          f" ({dict(scene.tags())})")
                expected.append(tag)
            await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(scene.daemon.kill)
        tags = scene.tags()
        # Each completed file says two things (main and annexe); the first flip one.
        arrived = sum(1 for t in expected if tags[t])
        duplicated = sum(n - (1 if t == first else 2) for t, n in tags.items() if n > (1 if t == first else 2))
        ledger.add(Row("status file: truncated mid-write", len(CUTS), len(CUTS), len(expected), arrived,
                       duplicated, len(expected) - arrived))
        if duplicated:
            scene.findings.append(f"truncated: announced more than once: {dict(tags)}")
        assert scene.findings == [], "\n\n".join(scene.findings)


def _twice(scene: Scene, tag: str) -> bool:
    """Both updates of a completed file (main and annexe) arrived."""
    return scene.tags()[tag] >= 2
