"""The real daemon process, real webhook receivers, and the desk's commands."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver, refusing_port
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-7f3a"


def hook_channels(hooks: dict[str, tuple[str, str]], timeout: str = "1s") -> str:
    """Channel config for webhooks: name → (language, url)."""
    lines = []
    for name, (language, url) in hooks.items():
        lines.append(
            f"  {name}: {{type: webhook, language: {language}, url: '{url}',"
            f" secret: {{env: HOOK_SECRET}}, timeout: {timeout}}}"
        )
    return "\n".join(lines)


@pytest.fixture
async def receivers() -> AsyncIterator[dict[str, WebhookReceiver]]:
    hooks = {name: WebhookReceiver(SECRET) for name in ("hook-fr", "hook-en", "hook-sv")}
    for hook in hooks.values():
        await hook.start()
    yield hooks
    for hook in hooks.values():
        await hook.stop()


def start(write_config: WriteConfig, tmp_path: Path, hooks: dict[str, WebhookReceiver], status: str | None = None) -> Daemon:
    languages = {"hook-fr": "fr", "hook-en": "en", "hook-sv": "sv"}
    channels = hook_channels({n: (languages.get(n, "en"), h.url) for n, h in hooks.items()})
    config = write_config(channels, status=status or "main:\n  level: open\n")
    return Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()


async def cli(daemon: Daemon, *args: str) -> str:
    result = await asyncio.to_thread(daemon.cli, *args)
    return result.stdout


def status_json(daemon: Daemon) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_read(f"{daemon.url}/status.json"))
    return found


CLOSE = ("set", "main", "closed", "-m", "fr:Fermeture exceptionnelle : incendie.",
         "-m", "en:Closed today after a fire.", "--until", "2031-11-26 10:00")


class TestFlip:
    """One `statusd set` reaches every receiver once, signed, in the receiver's language."""

    async def test_each_receiver_gets_its_language_once(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        try:
            await cli(daemon, *CLOSE)
            for hook in receivers.values():
                await hook.wait_for(1, timeout=5)
            await asyncio.sleep(0.5)
            texts = {name: [m["text"] for m in hook.received] for name, hook in receivers.items()}
            assert len(texts["hook-fr"]) == len(texts["hook-en"]) == len(texts["hook-sv"]) == 1
            assert "incendie" in texts["hook-fr"][0]
            assert "after a fire" in texts["hook-en"][0]
            # No Swedish message was given: the default language stands in.
            assert "incendie" in texts["hook-sv"][0]
            assert all(not hook.rejected for hook in receivers.values())
            site = status_json(daemon)["sites"]["main"]
            assert site["level"] == "closed"
            assert site["message"]["en"] == "Closed today after a fire."
        finally:
            daemon.kill()

    async def test_a_service_flip_and_a_reopening(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        try:
            await cli(daemon, "set", "main/wifi", "limited", "-m", "fr:Wi-Fi en panne au 2e étage")
            await receivers["hook-fr"].wait_for(1)
            assert receivers["hook-fr"].received[0]["service"] == "wifi"
            await cli(daemon, "set", "main/wifi", "open")
            await receivers["hook-fr"].wait_for(2)
            assert receivers["hook-fr"].received[1]["level"] == "open"
            history = await cli(daemon, "history")
            assert "main/wifi → limited" in history and "main/wifi → open" in history
        finally:
            daemon.kill()

    async def test_shutdown_on_sigterm_is_clean(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        assert daemon.terminate() == 0
        assert "daemon_stopped" in daemon.logs()


class TestWhileStopped:
    """A change made while the daemon is stopped is announced at start, once."""

    async def test_change_while_stopped_is_announced_once(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        daemon.terminate()
        await cli(daemon, *CLOSE)
        daemon.start()
        for hook in receivers.values():
            await hook.wait_for(1)
        daemon.terminate()
        daemon.start()
        await asyncio.sleep(1.0)
        daemon.kill()
        assert [len(h.received) for h in receivers.values()] == [1, 1, 1]


class TestCrash:
    """SIGKILL at any point loses no delivery and duplicates none."""

    async def test_killed_right_after_the_flip(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        await cli(daemon, *CLOSE)
        daemon.kill()
        daemon.start()
        try:
            for hook in receivers.values():
                await hook.wait_for(1)
            await asyncio.sleep(0.5)
            assert [len(h.received) for h in receivers.values()] == [1, 1, 1]
        finally:
            daemon.kill()

    @pytest.mark.parametrize(
        ("mode", "reached"),
        [
            # Recorded, request sent and received, no answer: the store does not know.
            ("accept_then_drop", "received"),
            # Recorded, request sent, not yet received.
            ("hang", "attempted"),
        ],
    )
    async def test_killed_mid_send(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver],
        mode: str, reached: str,
    ) -> None:
        hook = receivers["hook-en"]
        hook.mode = mode
        daemon = start(write_config, tmp_path, receivers)
        await cli(daemon, *CLOSE)
        await (hook.wait_for(1) if reached == "received" else hook.wait_attempts(1))
        daemon.kill()
        hook.mode = "ok"
        daemon.start()
        try:
            await hook.wait_for(1)
            await hook.wait_attempts(2)
            await asyncio.sleep(0.5)
            assert [len(h.received) for h in receivers.values()] == [1, 1, 1]
            if reached == "received":
                assert hook.repeats >= 1  # sent again with the same key, and recognised
        finally:
            daemon.kill()


class TestFailingReceivers:
    """A failing receiver never delays the others, and gets its message once it recovers."""

    async def test_failures_do_not_delay_the_healthy_receiver(self, write_config: WriteConfig, tmp_path: Path) -> None:
        modes = {"healthy": "ok", "broken": "error500", "limited": "ratelimit", "slow": "hang", "revoked": "unauthorized"}
        hooks = {name: WebhookReceiver(SECRET, mode=mode, retry_after=1) for name, mode in modes.items()}
        for hook in hooks.values():
            await hook.start()
        refused = refusing_port()
        channels = hook_channels({n: ("en", h.url) for n, h in hooks.items()} | {"gone": ("en", f"http://127.0.0.1:{refused}/hook")})
        daemon = Daemon(write_config(channels), tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
        try:
            await cli(daemon, *CLOSE)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await hooks["healthy"].wait_for(1, timeout=3)
            assert loop.time() - started < 1.5
            await hooks["slow"].wait_attempts(1)
            for name in ("broken", "limited", "slow"):
                hooks[name].mode = "ok"
            for name in ("broken", "limited", "slow", "healthy"):
                await hooks[name].wait_for(1, timeout=8)
            await asyncio.sleep(0.5)
            assert [len(hooks[n].received) for n in ("broken", "limited", "slow", "healthy")] == [1, 1, 1, 1]
            limited = hooks["limited"].attempts
            assert limited[1].monotonic - limited[0].monotonic >= 0.9  # waited out Retry-After
            show = await cli(daemon, "show")
            assert "revoked" in show and "failed" in show and "HTTP 401" in show
            assert "gone" in show and "pending" in show and "cannot reach" in show
        finally:
            daemon.kill()
            for hook in hooks.values():
                await hook.stop()


BROKEN = {
    "bad YAML": ("main:\n  level: [closed\n", "status.yaml:3:1: invalid YAML"),
    "unknown site": ("mian:\n  level: closed\n  message: x\n", "unknown site"),
    "unknown level": ("main:\n  level: clossed\n", "clossed"),
    "wrong type": ("main:\n  level: closed\n  message: 42\n", "message"),
    "empty file": ("", "empty"),
}


class TestBrokenStatusFile:
    """A broken status.yaml keeps the last good status, says where the error is, posts nothing."""

    async def test_each_broken_edit_is_refused_and_the_fix_is_announced(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers, status="main:\n  level: closed\n  message: Fermé.\n")
        status = tmp_path / "status.yaml"
        hook = receivers["hook-fr"]
        try:
            await hook.wait_for(1)
            for name, (text, expected) in BROKEN.items():
                before = len(_invalid_lines(daemon))
                status.write_text(text, encoding="utf-8")
                await _wait_log(daemon, expected, name, before)
                assert status_json(daemon)["sites"]["main"]["level"] == "closed", name
            before = len(_invalid_lines(daemon))
            status.unlink()
            await _wait_log(daemon, "not found", "deleted", before)
            status.write_text("main:\n  level: open\n", encoding="utf-8")
            await hook.wait_for(2)
            await asyncio.sleep(0.5)
            assert [m["level"] for m in hook.received] == ["closed", "open"]
            check = daemon.cli("check", check=False)
            assert check.returncode == 0, check.stdout
        finally:
            daemon.kill()


def _invalid_lines(daemon: Daemon) -> list[str]:
    return [line for line in daemon.logs().splitlines() if "status_file_invalid" in line]


async def _wait_log(daemon: Daemon, text: str, case: str, before: int) -> None:
    """Wait for a new status_file_invalid log line that mentions `text`."""
    await until(lambda: any(text in line for line in _invalid_lines(daemon)[before:]),
                f"{case}: a new status_file_invalid log mentioning {text!r}")


class TestThreadsAndUndo:
    """A crisis is one thread; `statusd undo` deletes what was posted and puts the status back."""

    async def test_a_crisis_is_a_thread_until_the_site_reopens(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        hook = receivers["hook-en"]
        try:
            steps = [
                ("set", "main", "closed", "-m", "en:Fire on the ground floor."),
                ("set", "main", "emergency", "-m", "en:Evacuation in progress."),
                ("set", "main/wifi", "limited", "-m", "en:Wi-Fi down."),
                ("set", "main", "open"),
                ("set", "main", "closed", "-m", "en:Closed again: inspection."),
            ]
            for count, step in enumerate(steps, start=1):
                await cli(daemon, *step)
                await hook.wait_for(count)
            replies = [m["reply_to"] for m in hook.received]
            first = hook.arrivals[0].remote_id
            assert replies[0] is None
            assert replies[1] == first
            assert replies[2] == hook.arrivals[1].remote_id
            assert replies[3] == hook.arrivals[2].remote_id
            assert replies[4] is None  # it reopened: a new incident is a new thread
        finally:
            daemon.kill()

    async def test_undo_deletes_the_posts_and_restores_the_status(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        daemon = start(write_config, tmp_path, receivers)
        try:
            await cli(daemon, *CLOSE)
            for hook in receivers.values():
                await hook.wait_for(1)
            out = await cli(daemon, "undo")
            assert "main is back to open" in out
            for hook in receivers.values():
                def deleted(h: WebhookReceiver = hook) -> bool:
                    return len(h.deleted) == 1

                await until(deleted, "deletion")
            assert receivers["hook-en"].deleted[0]["retract"] == receivers["hook-en"].arrivals[0].remote_id
            await asyncio.sleep(0.5)
            assert status_json(daemon)["sites"]["main"]["level"] == "open"
            assert [len(h.received) for h in receivers.values()] == [1, 1, 1]  # nothing new said
            history = await cli(daemon, "history")
            assert "taken back by" in history
            again = daemon.cli("undo", check=False)
            assert again.returncode == 2 and "no update to take back" in again.stderr
        finally:
            daemon.kill()

    async def test_undo_within_the_hold_posts_nothing(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        hook = receivers["hook-fr"]
        channels = hook_channels({"hook-fr": ("fr", hook.url)})
        config = write_config(channels)
        text = config.read_text().replace("  grace: 3s\n", "  grace: 3s\n  hold: {staff: 3s}\n")
        config.write_text(text)
        daemon = Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
        try:
            await cli(daemon, *CLOSE)
            await until(lambda: "event_recorded" in daemon.logs(), "recorded update")
            out = await cli(daemon, "undo")
            assert "1 unsent post(s) cancelled" in out
            await asyncio.sleep(4)
            assert hook.attempts == []
            assert status_json(daemon)["sites"]["main"]["level"] == "open"
        finally:
            daemon.kill()


async def _next_status(stream: aiohttp.ClientResponse, timeout: float = 5.0) -> str:
    """The data line of the next `status` event on an SSE stream."""
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                return line[6:]


class TestReload:
    """SIGHUP re-reads the config: a new channel starts, the others keep their deliveries."""

    async def test_reload_adds_a_channel_without_a_restart(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        fr, en = receivers["hook-fr"], receivers["hook-en"]
        config = write_config(hook_channels({"hook-fr": ("fr", fr.url)}))
        daemon = Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
        try:
            pid = daemon.proc.pid  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as session, session.get(f"{daemon.url}/events") as stream:
                first = await _next_status(stream)  # the snapshot on connect
                config.write_text(config.read_text().replace(
                    "channels:\n", "channels:\n" + hook_channels({"hook-en": ("en", en.url)}) + "\n"))
                daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
                await until(lambda: "config_reloaded" in daemon.logs(), "reload")
                await cli(daemon, *CLOSE)
                await fr.wait_for(1)
                await en.wait_for(1)
                # The live-banner reader connected before the reload hears of the closure.
                assert '"closed"' in await _next_status(stream) and '"closed"' not in first
            assert daemon.proc.pid == pid and daemon.proc.poll() is None  # type: ignore[union-attr]
            config.write_text("sites: {}\n")
            daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            await until(lambda: "config_reload_failed" in daemon.logs(), "refused reload")
            assert status_json(daemon)["sites"]["main"]["level"] == "closed"
        finally:
            daemon.kill()


class TestOperatorEndpoints:
    """/healthz, /readyz with each channel's state, and /metrics for Prometheus."""

    async def test_ready_and_metrics(
        self, write_config: WriteConfig, tmp_path: Path, receivers: dict[str, WebhookReceiver]
    ) -> None:
        receivers["hook-sv"].mode = "error500"
        daemon = start(write_config, tmp_path, receivers)
        try:
            await cli(daemon, *CLOSE)
            await receivers["hook-fr"].wait_for(1)
            await receivers["hook-sv"].wait_attempts(1)
            # The 500 is recorded a moment after the receiver answers it; a retry in flight still counts.
            await until(lambda: _ready(daemon)["channels"]["hook-sv"]["state"] == "retrying",
                        "hook-sv retrying at /readyz", blocking=True)
            ready = await asyncio.to_thread(_ready, daemon)
            assert ready["ready"] is True
            assert ready["channels"]["hook-fr"] == {"state": "ok", "pending": 0}
            assert ready["channels"]["hook-sv"]["state"] == "retrying"
            text = (await asyncio.to_thread(_read, f"{daemon.ops_url}/metrics")).decode()
            assert 'statusd_deliveries_total{channel="hook-fr",outcome="sent"} 1.0' in text
            assert 'statusd_deliveries_total{channel="hook-sv",outcome="retry"}' in text
            assert 'statusd_retry_queue{channel="hook-sv"} 1.0' in text
            assert "statusd_delivery_latency_seconds_bucket" in text
        finally:
            daemon.kill()


def _ready(daemon: Daemon) -> Any:
    """/readyz's answer (in the calling thread: call it through a thread from the test's loop)."""
    return json.loads(_read(f"{daemon.ops_url}/readyz"))


def _read(url: str) -> bytes:
    """GET `url`, in a thread: the webhook receivers answer on the test's own loop."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bytes(answer.read())
