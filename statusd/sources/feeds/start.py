"""Start-up of the long-lived feeds: one loop per MQTT, poll and file feed in the config."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import structlog

from statusd.config.feeds import FeedConfig, FeedsConfig, FileFeedConfig, HttpFeedConfig, MqttFeedConfig, PollFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.file import FileFeed
from statusd.sources.feeds.poll import PollFeed
from statusd.sources.readings import Reading

log = structlog.get_logger()


def feeds_tasks(config: Config, feeds: FeedsConfig,
                intake: Callable[[list[Reading]], None]) -> list[Coroutine[Any, Any, None]]:
    """The long-lived loops of the MQTT, poll and file feeds (HTTP feeds live in the web server)."""
    tasks: list[Coroutine[Any, Any, None]] = []
    for feed in feeds.feeds.values():
        if isinstance(feed, MqttFeedConfig):
            from statusd.sources.feeds.mqtt import MqttFeed  # aiomqtt and paho: only with an MQTT feed

            tasks.append(MqttFeed(feed, config).run(intake))
        elif isinstance(feed, PollFeedConfig):
            tasks.append(PollFeed(feed, config).run(intake))
        elif isinstance(feed, FileFeedConfig):
            tasks.append(FileFeed(feed, config).run(intake))
    if feeds.feeds:
        log.info("feeds_configured", feeds=describe(feeds))
    return tasks


def describe(feeds: FeedsConfig) -> dict[str, dict[str, Any]]:
    """A summary for `statusd show` and logs: where each feed reads from, never a secret."""
    return {name: {"type": _TYPES[type(feed)], "from": _where(feed), "allow": sorted(feed.allow)}
            for name, feed in feeds.feeds.items()}


_TYPES: Mapping[type, str] = {HttpFeedConfig: "http", MqttFeedConfig: "mqtt", PollFeedConfig: "poll",
                              FileFeedConfig: "file"}


def _where(feed: FeedConfig) -> str:
    if isinstance(feed, HttpFeedConfig):
        return "POST /api/v1/readings"
    if isinstance(feed, MqttFeedConfig):
        return f"mqtt://{feed.host}:{feed.port} " + " ".join(feed.topics)
    if isinstance(feed, PollFeedConfig):
        return feed.url.split("?")[0]
    return str(feed.path)
