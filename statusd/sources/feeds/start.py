"""Start-up of the long-lived feeds: one loop per MQTT, poll and file feed in the config."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from statusd.config.feeds import FeedsConfig, FileFeedConfig, MqttFeedConfig, PollFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.file import FileFeed
from statusd.sources.feeds.mqtt import MqttFeed
from statusd.sources.feeds.poll import PollFeed
from statusd.sources.readings import Reading


def feeds_tasks(config: Config, feeds: FeedsConfig,
                intake: Callable[[list[Reading]], None]) -> list[Coroutine[Any, Any, None]]:
    """The long-lived loops of the MQTT, poll and file feeds (HTTP feeds live in the web server)."""
    tasks: list[Coroutine[Any, Any, None]] = []
    for feed in feeds.feeds.values():
        if isinstance(feed, MqttFeedConfig):
            tasks.append(MqttFeed(feed, config).run(intake))
        elif isinstance(feed, PollFeedConfig):
            tasks.append(PollFeed(feed, config).run(intake))
        elif isinstance(feed, FileFeedConfig):
            tasks.append(FileFeed(feed, config).run(intake))
    return tasks
