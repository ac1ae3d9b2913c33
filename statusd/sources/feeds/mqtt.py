"""MQTT feed: subscribe to a broker's topics; each message is a reading or a batch.

The connection is kept up for the daemon's life: a lost broker is retried
with a doubling delay, and a bad message is logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import aiomqtt
import structlog

from statusd.config.feeds import MqttFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.vendors import Receiver
from statusd.sources.readings import Reading

log = structlog.get_logger()


class MqttFeed:
    """One broker connection with its subscriptions."""

    def __init__(self, feed: MqttFeedConfig, config: Config, backoff: float = 1.0, backoff_max: float = 60.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.feed = feed
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.receiver = Receiver(feed.name, feed.decoding, feed.allow, config, clock)

    async def run(self, intake: Callable[[list[Reading]], None]) -> None:
        """Receive until cancelled, reconnecting after every loss."""
        delay = self.backoff
        while True:
            try:
                async with self._client() as client:
                    for topic in self.feed.topics:
                        await client.subscribe(topic, qos=self.feed.qos)
                    log.info("feed_connected", feed=self.feed.name, broker=self._broker)
                    delay = self.backoff
                    async for message in client.messages:
                        self.receiver.receive(_bytes(message.payload), intake, topic=message.topic.value)
            except aiomqtt.MqttError as err:
                log.warning("feed_disconnected", feed=self.feed.name, broker=self._broker, error=str(err),
                            retry_in=round(delay, 2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    @property
    def _broker(self) -> str:
        return f"{self.feed.host}:{self.feed.port}"

    def _client(self) -> aiomqtt.Client:
        password = self.feed.password.read() if self.feed.password else None
        return aiomqtt.Client(
            self.feed.host, self.feed.port, username=self.feed.username, password=password,
            identifier=self.feed.client_id, keepalive=int(self.feed.keepalive), timeout=10,
        )


def _bytes(payload: object) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
