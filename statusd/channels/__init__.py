"""Channels: one module per service, listed explicitly in CHANNELS.

Each entry names its module rather than importing it: a client library
(tweepy, Mastodon.py) is imported only where a channel of its type is
configured, which keeps `statusd set` quick to start.
"""

from __future__ import annotations

import importlib
from typing import Any

from statusd.channels.base import (
    Channel,
    ChannelError,
    Message,
    PermanentError,
    Reply,
    Sent,
    TransientError,
)

CHANNELS: dict[str, str] = {
    "console": "statusd.channels.console:Console",
    "webhook": "statusd.channels.webhook:Webhook",
    "mastodon": "statusd.channels.mastodon:Mastodon",
    "x": "statusd.channels.x:X",
    "facebook": "statusd.channels.facebook:FacebookPage",
    "bluesky": "statusd.channels.bluesky:Bluesky",
    "telegram": "statusd.channels.telegram:Telegram",
    "matrix": "statusd.channels.matrix:Matrix",
    "apprise": "statusd.channels.apprise:AppriseChannel",
}


def channel_class(kind: str) -> Any:
    """The class implementing channel type `kind` (a key of CHANNELS)."""
    module, _, name = CHANNELS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelError",
    "Message",
    "PermanentError",
    "Reply",
    "Sent",
    "TransientError",
    "channel_class",
]
