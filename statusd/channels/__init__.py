"""Channels: one module per service, listed explicitly in CHANNELS."""

from __future__ import annotations

from typing import Any

from statusd.channels.base import (
    Channel,
    ChannelError,
    Message,
    PermanentError,
    Sent,
    TransientError,
)
from statusd.channels.console import Console
from statusd.channels.webhook import Webhook

CHANNELS: dict[str, Any] = {
    Console.kind: Console,
    Webhook.kind: Webhook,
}

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelError",
    "Message",
    "PermanentError",
    "Sent",
    "TransientError",
]
