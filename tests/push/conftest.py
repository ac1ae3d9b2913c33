"""Web Push fixtures: a VAPID key on disk, the local push service, and a config with webpush channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from statusd.channels.webpush_keys import generate
from statusd.channels.webpush_store import Subscription, Subscriptions, store_file
from tests.support.fakes.push import Browser, PushService


def push_channels(key: Path, languages: tuple[str, ...] = ("fr", "en"), connections: int = 50,
                  loopback: bool = True) -> str:
    """The channels section: one webpush channel per language, sharing the key."""
    return "\n".join(
        f"  push-{lang}: {{type: webpush, language: {lang}, vapid_key: {{file: {key}}}, "
        f"subject: 'mailto:it@library.example', title: Status, connections: {connections}, "
        f"loopback_endpoints: {str(loopback).lower()}}}"
        for lang in languages)


@pytest.fixture
def vapid(tmp_path: Path) -> tuple[Path, str]:
    """A VAPID private key in a file (0600) and its public key."""
    private, public = generate()
    path = tmp_path / "vapid.pem"
    path.write_text(private, encoding="ascii")
    path.chmod(0o600)
    return path, public


@pytest.fixture
async def push_service(vapid: tuple[Path, str]) -> AsyncIterator[PushService]:
    async with PushService(vapid_public=vapid[1]) as service:
        yield service


def add(state_dir: Path, service: PushService, browsers: list[Browser], site: str = "main",
        kinds: str = "status", language: str = "fr") -> None:
    """Subscribe `browsers` straight into push.sqlite, as the API would."""
    store = Subscriptions(store_file(state_dir))
    try:
        store.subscribe_many((Subscription(service.endpoint(b), b.p256dh, b64(b.auth), site, kinds, language)
                              for b in browsers), "2026-12-02")
    finally:
        store.close()


def b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
