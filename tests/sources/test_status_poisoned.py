"""The real daemon restarted onto a poisoned status.yaml, and fed hostile status files while running."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from statusd.commands import EX_USAGE
from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-poison"
PLANTED = "planted-credential-9f8e7d6c5b4a"


def _surrogate(path: Path) -> None:
    path.write_text('main:\n  level: closed\n  message: "x \\ud800"\n')


def _emoji_escapes(path: Path) -> None:
    path.write_text('main:\n  level: closed\n  message: "\\ud83d\\ude00"\n')


def _hex(path: Path) -> None:
    path.write_text("main:\n  level: 0x" + "f" * 5000 + "\n")


def _hex_key(path: Path) -> None:
    path.write_text("? 0x" + "f" * 5000 + "\n: {level: closed}\n")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _credential_out(path: Path) -> None:
    secret = path.parent / "creds" / "token"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(f"password: {PLANTED}\n")
    path.symlink_to(secret)


def _credential_in(path: Path) -> None:
    path.write_text(f"API_TOKEN={PLANTED}\n")


def _credential_keys(path: Path) -> None:
    path.write_text(f"main:\n  level: {PLANTED}\n  message: {{en: [{PLANTED}]}}\n")


def _big(path: Path) -> None:
    with path.open("wb") as out:
        out.truncate(50 * 1024 * 1024)


def _deep(path: Path) -> None:
    path.write_text("main: " + "[" * 100_000 + "]" * 100_000 + "\n")


def _keys(path: Path) -> None:
    path.write_text("".join(f"k{n}: {n}\n" for n in range(20_000)))


def _aliases(path: Path) -> None:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 30) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 30) + "]" for n in range(1, 6)]
    path.write_text("\n".join(lines) + "\n")


def _escape_codes(path: Path) -> None:
    path.write_text('main:\n  level: closed\n  message: "\\e]0;owned\\a\\e[2J"\n')


def _long(path: Path) -> None:
    path.write_text("main:\n  level: closed\n  message: " + "x" * 100_000 + "\n")


POISONS: dict[str, Callable[[Path], None]] = {
    "surrogate": _surrogate, "emoji as two escapes": _emoji_escapes, "5000-digit hex int": _hex,
    "5000-digit hex key": _hex_key, "FIFO": _fifo, "symlink to /dev/zero": _dev_zero,
    "symlink to a credential": _credential_out, "a credential file": _credential_in,
    "secrets as values": _credential_keys, "50 MB file": _big, "deep nesting": _deep,
    "20,000 keys": _keys, "alias bomb": _aliases, "terminal escapes": _escape_codes, "100 KB message": _long,
}


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


def config_for(write_config: WriteConfig, hook: WebhookReceiver) -> Path:
    channels = f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}}, timeout: 2s}}"
    return write_config(channels, status="main:\n  level: open\n")


def status_json(daemon: Daemon) -> dict[str, Any]:
    return json.loads(urllib.request.urlopen(f"{daemon.url}/status.json", timeout=5).read())  # type: ignore[no-any-return]


def slowest_health(daemon: Daemon, probes: int = 5) -> float:
    slowest = 0.0
    for _ in range(probes):
        began = time.monotonic()
        assert urllib.request.urlopen(f"{daemon.url}/healthz", timeout=5).status == 200
        slowest = max(slowest, time.monotonic() - began)
    return slowest


def replace(path: Path, poison: Callable[[Path], None]) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    poison(path)


class TestRestartOntoPoison:
    """A poisoned status file at start means the store's last good state and a loud error, never a crash."""

    async def test_each_poison(self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver) -> None:
        config = config_for(write_config, hook)
        env = {"HOOK_SECRET": SECRET}
        first = Daemon(config, tmp_path / "state", env=env).start()
        try:
            await asyncio.to_thread(first.cli, "set", "main", "closed", "-m", "en:Closed: a burst pipe.")
            await hook.wait_for(1)
        finally:
            assert first.terminate() == 0
        status = tmp_path / "status.yaml"
        for name, poison in POISONS.items():
            replace(status, poison)
            offset = len(first.logs())
            daemon = await asyncio.to_thread(Daemon(config, tmp_path / "state", env=env).start)
            try:
                assert await asyncio.to_thread(slowest_health, daemon) < 0.1, name
                assert status_json(daemon)["sites"]["main"]["level"] == "closed", name
                await until(partial(_logged, daemon, offset, "status_file_unusable_at_start"), name)
                await asyncio.sleep(0.3)
                assert len(hook.received) == 1, (name, hook.received[1:])
            finally:
                daemon.kill()
            logs = daemon.logs()[offset:]
            assert PLANTED not in logs, name
            assert "\x1b" not in logs and "\\x1b]0" not in logs, name


TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


class TestHostileFilesWhileRunning:
    """Arbitrary status files (any text, any tree) are refused or taken; the daemon answers throughout."""

    async def test_arbitrary_files(self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver) -> None:
        config = config_for(write_config, hook)
        daemon = Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
        status = tmp_path / "status.yaml"
        try:
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "en:Closed: a burst pipe.")
            await hook.wait_for(1)
            await asyncio.to_thread(self._hostile_files, daemon, status)
            assert await asyncio.to_thread(slowest_health, daemon) < 0.1
            assert status_json(daemon)["sites"]["main"]["level"] == "closed"
            assert len(hook.received) == 1, hook.received[1:]
        finally:
            daemon.kill()

    @staticmethod
    @settings(max_examples=12, suppress_health_check=list(HealthCheck))
    @given(tree=TREES, text=st.text(max_size=60))
    def _hostile_files(daemon: Daemon, status: Path, tree: Any, text: str) -> None:
        # Always broken for `main` (so the last good state must stay), hostile everywhere else.
        document = {"main": {"level": tree, "message": text}, "x": tree}
        count = daemon.logs().count("status_file_invalid")
        status.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML; \\u escapes make surrogates
        deadline = time.monotonic() + 5
        while daemon.logs().count("status_file_invalid") == count:
            assert time.monotonic() < deadline, "the daemon did not read the file"
            time.sleep(0.02)
        assert slowest_health(daemon, probes=2) < 0.1
        assert status_json(daemon)["sites"]["main"]["level"] == "closed"


ARGV_TEXT = st.text(max_size=40).filter(lambda t: _encodable(t))


def _encodable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


class TestHostileSetArguments:
    """`statusd set` with arbitrary message text (controls, undecodable bytes): one sentence or a good write."""

    async def test_arbitrary_messages(self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver) -> None:
        config = config_for(write_config, hook)
        daemon = Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
        try:
            await asyncio.to_thread(self._hostile_sets, daemon, tmp_path / "status.yaml")
            assert await asyncio.to_thread(slowest_health, daemon) < 0.1
            assert "Traceback" not in daemon.logs()
        finally:
            daemon.kill()

    @staticmethod
    @settings(max_examples=8, suppress_health_check=list(HealthCheck))
    @given(text=ARGV_TEXT)
    @example(text="-:")  # argparse took it for an option and printed its usage: not one sentence
    def _hostile_sets(daemon: Daemon, status: Path, text: str) -> None:
        before = status.read_text()
        done = daemon.cli("set", "main", "closed", "-m", text, check=False)
        if done.returncode == 0:
            after = status.read_text()
            assert after != before or "level: closed" in before
        else:
            assert done.returncode == EX_USAGE, done.stderr  # the desk's mistake, not a crash
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
            assert status.read_text() == before
        assert slowest_health(daemon, probes=2) < 0.1


def _logged(daemon: Daemon, offset: int, event: str) -> bool:
    return event in daemon.logs()[offset:]
