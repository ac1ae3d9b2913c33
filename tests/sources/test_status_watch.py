"""The real daemon next to a held or stopped status-file lock, and hand edits written in pieces."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-watch"
PANEL = "panel-token-watch-31"
BOUND = 0.1  # the bound: the daemon answers within 100 ms whatever holds the lock
# Long, and with a tab: libyaml's fast path leaves such a file to ruamel, so a `statusd set`
# holds the lock long enough for a hand edit to land meanwhile.
PADDING = "".join(f"# note {n}:\t{'x' * 60}\n" for n in range(1500))


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


def start(write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, status: str) -> Daemon:
    channels = f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}}, timeout: 2s}}"
    path = write_config(channels, status=status)
    path.write_text(path.read_text() + "feeds:\n  panel: {type: http, token: {env: PANEL_TOKEN}, allow: [status]}\n")
    return Daemon(path, tmp_path / "state", env={"HOOK_SECRET": SECRET, "PANEL_TOKEN": PANEL}).start()


LOCKER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def lock_held_elsewhere(status: Path) -> Iterator[None]:
    """Another process holds the status file's exclusive lock, as a colleague's command would."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(status.with_name(f".{status.name}.lock"))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.kill()
        proc.wait(5)


def lock_is_held(status: Path) -> bool:
    fd = os.open(status.with_name(f".{status.name}.lock"), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def stopped_set(daemon: Daemon, status: Path, *args: str) -> subprocess.Popen[bytes]:
    """A real `statusd set`, stopped with SIGSTOP while it holds the lock."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "statusd", "--config", str(daemon.config), "--state-dir", str(daemon.state_dir),
         "set", *args], env=daemon.env, cwd=daemon.config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not lock_is_held(status):
        assert proc.poll() is None and time.monotonic() < deadline, "statusd set never took the lock"
        time.sleep(0.0005)
    proc.send_signal(signal.SIGSTOP)
    assert lock_is_held(status)  # stopped holding it
    return proc


async def timed(coro: Any) -> tuple[float, Any]:
    began = time.monotonic()
    result = await coro
    return time.monotonic() - began, result


async def probe(session: aiohttp.ClientSession, daemon: Daemon, hook: WebhookReceiver) -> dict[str, float]:
    """The slowest /healthz of ten, the SSE stream's first event, and a fire-panel push reaching the hook."""
    health = []
    for _ in range(10):
        took, status = await timed(_get(session, f"{daemon.url}/healthz"))
        assert status == 200
        health.append(took)
        await asyncio.sleep(0.02)
    began = time.monotonic()
    async with session.get(f"{daemon.url}/events") as stream:
        async with asyncio.timeout(10):  # bounded: a stream that ends or stalls fails the test
            while not (line := await stream.content.readline()).startswith(b"data: "):
                assert line, "the event stream ended before its first event"
        sse = time.monotonic() - began
    before = len(hook.received)
    alarm = {"kind": "status", "site": "annexe", "level": "emergency", "reason": "Fire alarm: evacuate."}
    began = time.monotonic()
    async with session.post(f"{daemon.url}/api/v1/readings", json=alarm,
                            headers={"Authorization": f"Bearer {PANEL}"}) as answer:
        assert answer.status == 202
    await hook.wait_for(before + 1, timeout=5)
    delivery = time.monotonic() - began
    assert hook.received[before]["level"] == "emergency"
    return {"healthz": max(health), "sse": sse, "delivery": delivery}


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as answer:
        await answer.read()
        return answer.status


class TestHeldLock:
    """Whoever holds the status file's lock, and however long, the daemon keeps answering at once."""

    async def test_lock_held_by_another_process(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver
    ) -> None:
        daemon = start(write_config, tmp_path, hook, "main:\n  level: open\n")
        status = tmp_path / "status.yaml"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                with lock_held_elsewhere(status):
                    times = await probe(session, daemon, hook)
                    assert "by: feed:panel" not in status.read_text()  # announced first, written after
                assert max(times.values()) < BOUND, times
                # Once the lock is free the one writer puts the push into the file.
                await until(lambda: "by: feed:panel" in status.read_text(), "the push written", timeout=10)
        finally:
            daemon.kill()

    async def test_statusd_set_stopped_while_holding_it(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver
    ) -> None:
        daemon = start(write_config, tmp_path, hook, PADDING + "main:\n  level: open\n")
        status = tmp_path / "status.yaml"
        try:
            args = ("main", "closed", "-m", "en:Closed: a burst pipe.")
            proc = await asyncio.to_thread(stopped_set, daemon, status, *args)
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                    times = await probe(session, daemon, hook)
                assert max(times.values()) < BOUND, times
            finally:
                proc.send_signal(signal.SIGCONT)
            assert await asyncio.to_thread(proc.wait, 30) == 0
            # The command finishes and the daemon announces its change too.
            await until(lambda: any(m["level"] == "closed" for m in hook.received), "the set announced", timeout=10)
            # And the panel's push, which waited for the lock, is written beside it.
            await until(lambda: "by: feed:panel" in status.read_text(), "the push written", timeout=10)
            assert "en: 'Closed: a burst pipe.'" in status.read_text()
        finally:
            daemon.kill()


def write_in_two_pieces(path: Path, text: str, pause: float) -> None:
    """As an editor that truncates the file and saves it in two writes."""
    middle = text.index("annexe:")
    with path.open("w", encoding="utf-8") as out:
        out.write(text[:middle])
        out.flush()
        time.sleep(pause)
        out.write(text[middle:])


class TestHandEdits:
    """A hand edit counts once it is whole; `statusd set` never writes over one it did not read."""

    async def test_an_edit_written_in_two_pieces_is_announced_whole(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver
    ) -> None:
        closed = "main:\n  level: open\nannexe:\n  level: closed\n  message: {en: Closed for works.}\n"
        daemon = start(write_config, tmp_path, hook, closed)
        status = tmp_path / "status.yaml"
        try:
            await hook.wait_for(1)
            for number in range(3):
                edited = (f"main:\n  level: limited\n  message: {{en: 'Lift out of order ({number}).'}}\n"
                          "annexe:\n  level: closed\n  message: {en: Closed for works.}\n")
                await asyncio.to_thread(write_in_two_pieces, status, edited, 0.07)
                await hook.wait_for(2 + number, timeout=5)
            await asyncio.sleep(1.0)  # anything more would come now
            annexe = [m for m in hook.received if m["site"] == "annexe"]
            assert [m["level"] for m in annexe] == ["closed"], hook.received
            assert [m["level"] for m in hook.received if m["site"] == "main"] == ["limited"] * 3
        finally:
            daemon.kill()

    @pytest.mark.parametrize("save", ["rename", "in place, in two pieces"])
    def test_an_edit_made_while_set_holds_the_lock_survives(
        self, write_config: WriteConfig, tmp_path: Path, save: str
    ) -> None:
        config = write_config(status=PADDING + "main:\n  level: open\n")
        status = tmp_path / "status.yaml"
        base = [sys.executable, "-m", "statusd", "--config", str(config), "--state-dir", str(tmp_path / "state")]
        proc = subprocess.Popen([*base, "set", "main/wifi", "limited", "-m", "en:Slow today."],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        deadline = time.monotonic() + 20
        while not lock_is_held(status):
            assert proc.poll() is None and time.monotonic() < deadline, "statusd set never took the lock"
            time.sleep(0.0005)
        time.sleep(0.01)
        edited = status.read_text() + "annexe:\n  level: closed\n  message: {en: Closed by hand.}\n"
        if save == "rename":
            temp = tmp_path / "edit.tmp"
            temp.write_text(edited)
            os.replace(temp, status)  # as most editors save
        else:
            write_in_two_pieces(status, edited, 0.05)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        final = status.read_text()
        assert "Closed by hand." in final and "Slow today." in final
        check = subprocess.run([*base, "show"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert check.returncode == 0, check.stderr


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".status.yaml.*.tmp"))


class TestLeftovers:
    """Temporary files of killed writers do not pile up."""

    async def test_removed_when_the_daemon_starts_and_by_set(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver
    ) -> None:
        for name in (".status.yaml.abc123.tmp", ".status.yaml.zz.tmp"):
            (tmp_path / name).write_text("main:\n  level: clos")
        daemon = start(write_config, tmp_path, hook, "main:\n  level: open\n")
        try:
            assert leftovers(tmp_path) == []
            (tmp_path / ".status.yaml.k1.tmp").write_text("half")
            await asyncio.to_thread(daemon.cli, "set", "main/wifi", "limited", "-m", "en:Slow.")
            assert leftovers(tmp_path) == []
        finally:
            daemon.kill()


class TestPushedText:
    """A building system's reason that is not valid text never reaches status.yaml; the status still counts."""

    async def test_a_surrogate_in_a_fire_panel_reason(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver
    ) -> None:
        daemon = start(write_config, tmp_path, hook, "main:\n  level: open\n")
        status = tmp_path / "status.yaml"
        body = b'{"kind": "status", "site": "main", "level": "emergency", "reason": "Fire \\ud800 alarm\\u001b[2J"}'
        try:
            async with aiohttp.ClientSession() as session, session.post(
                f"{daemon.url}/api/v1/readings", data=body,
                headers={"Authorization": f"Bearer {PANEL}", "Content-Type": "application/json"},
            ) as answer:
                assert answer.status < 500
                accepted = answer.status == 202
            if accepted:
                await hook.wait_for(1)
                assert hook.received[0]["level"] == "emergency"
                await until(lambda: "by: feed:panel" in status.read_text(), "the push written")
            text = status.read_text()
            assert "\\ud800" not in text and "\\e" not in text and "\x1b" not in text
            # The file is still one the daemon reads: a restart comes up on it.
            daemon.kill()
            daemon = Daemon(daemon.config, daemon.state_dir, env=daemon.env).start()
            assert "status_file_unusable_at_start" not in daemon.logs()
        finally:
            daemon.kill()
