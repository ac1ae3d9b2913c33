"""Channels: one module per service, listed explicitly in CHANNELS.

CHANNELS names each type's class by module and imports that module only when
the class is asked for, so the platform clients (aiohttp, Mastodon.py, tweepy,
Apprise) load with the channels the daemon builds and never for a command that
only reads the config: checking a channel's section needs only its options,
declared apart in options.py (OPTIONS).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, cast

from statusd.channels.options import OPTIONS

if TYPE_CHECKING:
    from statusd.channels.base import Channel
    from statusd.config.types import ChannelConfig, DeliveryConfig


class Registry(Mapping[str, "type[Channel]"]):
    """Channel type → its class, each written as "module:Class" and imported on first use."""

    def __init__(self, classes: Mapping[str, str]) -> None:
        self._classes = dict(classes)

    def __getitem__(self, kind: str) -> type[Channel]:
        module, _, name = self._classes[kind].partition(":")
        return cast("type[Channel]", getattr(importlib.import_module(module), name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


CHANNELS: Mapping[str, type[Channel]] = Registry({
    "console": "statusd.channels.console:Console",
    "webhook": "statusd.channels.webhook:Webhook",
    "mastodon": "statusd.channels.mastodon:Mastodon",
    "x": "statusd.channels.x:X",
    "facebook": "statusd.channels.facebook:FacebookPage",
    "bluesky": "statusd.channels.bluesky:Bluesky",
    "telegram": "statusd.channels.telegram:Telegram",
    "matrix": "statusd.channels.matrix:Matrix",
    "apprise": "statusd.channels.apprise:AppriseChannel",
    "google_business": "statusd.channels.google_business:GoogleBusiness",
    "webpush": "statusd.channels.webpush:WebPush",
})


def build_channel(config: ChannelConfig, delivery: DeliveryConfig) -> Channel:
    """The client for one configured channel: the one place a channel is made."""
    return CHANNELS[config.type](config, delivery)


__all__ = ["CHANNELS", "OPTIONS", "Registry", "build_channel"]
