"""Channels: one module per service, listed explicitly in CHANNELS."""

from __future__ import annotations

from statusd.channels.apprise import AppriseChannel
from statusd.channels.base import (
    Channel,
    ChannelError,
    PermanentError,
    Reply,
    Sent,
    TransientError,
)
from statusd.channels.bluesky import Bluesky
from statusd.channels.console import Console
from statusd.channels.facebook import FacebookPage
from statusd.channels.mastodon import Mastodon
from statusd.channels.matrix import Matrix
from statusd.channels.telegram import Telegram
from statusd.channels.webhook import Webhook
from statusd.channels.x import X
from statusd.config.types import ChannelConfig, DeliveryConfig

CHANNELS: dict[str, type[Channel]] = {
    "console": Console,
    "webhook": Webhook,
    "mastodon": Mastodon,
    "x": X,
    "facebook": FacebookPage,
    "bluesky": Bluesky,
    "telegram": Telegram,
    "matrix": Matrix,
    "apprise": AppriseChannel,
}


def build_channel(config: ChannelConfig, delivery: DeliveryConfig) -> Channel:
    """The client for one configured channel: the one place a channel is made."""
    return CHANNELS[config.type](config, delivery)


__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelError",
    "PermanentError",
    "Reply",
    "Sent",
    "TransientError",
    "build_channel",
]
