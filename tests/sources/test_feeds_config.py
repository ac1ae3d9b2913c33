"""The `feeds:` section: good defaults, and every mistake reported with its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusd.config import reader
from statusd.config.feed_section import parse_feeds
from statusd.config.feeds import (
    DEFAULT_ALLOW,
    FeedsConfig,
    FileFeedConfig,
    HttpFeedConfig,
    MqttFeedConfig,
    PollFeedConfig,
)
from statusd.config.load import Config
from statusd.config.reader import Problems, Section
from statusd.config.types import Secret
from statusd.sources.feeds.start import describe, feeds_tasks
from tests.conftest import dedent

pytestmark = pytest.mark.unit


def parse(text: str, config: Config) -> tuple[FeedsConfig, list[str]]:
    root = reader.loads(dedent(text), "statusd.yaml")
    problems = Problems("statusd.yaml")
    feeds = parse_feeds(Section(root.get("feeds") if root else None, "feeds", problems), config.sites,
                        Path("/etc/statusd"))
    return feeds, [str(p) for p in problems.found]


class TestGoodSections:
    """Each feed type with its defaults and options becomes its frozen config."""

    def test_no_section_means_no_feeds(self, config: Config) -> None:
        assert parse("sites: {}\n", config) == (FeedsConfig(), [])

    def test_every_type(self, config: Config) -> None:
        feeds, problems = parse("""
            feeds:
              counters: {type: http, token: {env: STATUSD_FEED_COUNTERS_TOKEN}}
              panel: {type: http, token: {credential: fire-panel}, allow: [status]}
              broker:
                type: mqtt
                topics: ["library/+/seats"]
                username: statusd
                password: {env: MQTT_PASSWORD}
              vendor: {type: poll, url: "http://10.0.0.7/local/tvpc/.api?live-sum.json", every: 30s,
                       format: axis-live-sum, site: main, zone: floor2, auth: digest,
                       username: statusd, password: {file: /etc/statusd/axis}}
              gates: {type: file, path: export.csv, format: csv, site: main, zone: floor2}
        """, config)
        assert problems == []
        http, panel, mqtt, poll, file = feeds.feeds.values()
        assert http == HttpFeedConfig("counters", DEFAULT_ALLOW, http.decoding,
                                      Secret("env", "STATUSD_FEED_COUNTERS_TOKEN"))
        assert panel.allow == frozenset({"status"})
        assert isinstance(mqtt, MqttFeedConfig) and (mqtt.host, mqtt.port, mqtt.qos) == ("127.0.0.1", 1883, 1)
        assert isinstance(poll, PollFeedConfig) and (poll.every, poll.auth) == (30.0, "digest")
        assert poll.decoding.format == "axis-live-sum" and poll.decoding.zone == "floor2"
        assert isinstance(file, FileFeedConfig) and file.path == Path("/etc/statusd/export.csv")

    def test_mapping(self, config: Config) -> None:
        feeds, problems = parse("""
            feeds:
              api: {type: poll, url: "http://counter.local/now", format: mapping, kind: seats,
                    site: main, zone: floor2, map: {occupied: data.count, at: data.time}}
        """, config)
        assert problems == []
        decoding = feeds.feeds["api"].decoding
        assert (decoding.kind, dict(decoding.fields)) == ("seats", {"occupied": "data.count", "at": "data.time"})

    def test_describe_names_no_secret(self, config: Config) -> None:
        feeds, _ = parse("""
            feeds:
              counters: {type: http, token: {env: SECRET_TOKEN_VAR}}
              broker: {type: mqtt, topics: [a/b], password: {env: MQTT_PASSWORD}}
        """, config)
        text = str(describe(feeds))
        assert "SECRET_TOKEN_VAR" not in text and "MQTT_PASSWORD" not in text
        assert describe(feeds)["broker"]["from"] == "mqtt://127.0.0.1:1883 a/b"

    def test_tasks_for_long_lived_feeds_only(self, config: Config) -> None:
        feeds, _ = parse("""
            feeds:
              counters: {type: http, token: {env: T}}
              broker: {type: mqtt, topics: [a/b]}
              gates: {type: file, path: export.jsonl}
        """, config)
        tasks = feeds_tasks(config, feeds, lambda readings: None)
        assert [t.cr_code.co_qualname for t in tasks] == ["MqttFeed.run", "FileFeed.run"]  # type: ignore[attr-defined]
        for task in tasks:
            task.close()


BAD = [
    ("x: {type: http}", "feeds.x.token: is required"),
    ("x: {type: http, token: abc}", "secrets are never written"),
    ("x: {type: smoke-signal}", "unknown feed type"),
    ("x: {type: http, token: {env: T}, alow: [status]}", "feeds.x.alow: unknown key"),
    ("x: {type: http, token: {env: T}, allow: [seats, closures]}", "unknown kind 'closures'"),
    ("x: {type: http, token: {env: T}, allow: status}", "feeds.x.allow: should be a list"),
    ("x: {type: mqtt}", "feeds.x.topics: is required"),
    ("x: {type: mqtt, topics: [a], port: 99999}", "feeds.x.port: should be a port"),
    ("x: {type: mqtt, topics: [a], qos: 3}", "feeds.x.qos: should be 0, 1 or 2"),
    ("x: {type: poll}", "feeds.x.url: is required"),
    ("x: {type: poll, url: ftp://x}", "should be an http:// or https:// URL"),
    ("x: {type: poll, url: 'http://x', every: often}", "feeds.x.every: should be a duration"),
    ("x: {type: poll, url: 'http://x', format: axis-live-sum}", "feeds.x.zone: format axis-live-sum"),
    ("x: {type: poll, url: 'http://x', format: csv}", "unknown format 'csv'"),
    ("x: {type: poll, url: 'http://x', site: main, zone: attic, format: axis-live-sum}", "unknown zone 'attic'"),
    ("x: {type: poll, url: 'http://x', site: nowhere}", "unknown site 'nowhere'"),
    ("x: {type: poll, url: 'http://x', zone: floor2}", "feeds.x.site: is required with zone"),
    ("x: {type: poll, url: 'http://x', site: main, queue: side}", "unknown queue 'side'"),
    ("x: {type: poll, url: 'http://x', auth: oauth}", "should be basic or digest"),
    ("x: {type: poll, url: 'http://x', username: u}", "username and password go together"),
    ("x: {type: poll, url: 'http://x', kind: seats}", "is only for format: mapping"),
    ("x: {type: poll, url: 'http://x', format: mapping, site: main, zone: floor2, kind: seats}",
     "feeds.x.map: is required"),
    (("x: {type: poll, url: 'http://x', format: mapping, site: main, zone: floor2, kind: seats, "
      "map: {seats: data.n}}"), "'seats' is not a field of a seats reading"),
    ("x: {type: file}", "feeds.x.path: is required"),
    ("x: {type: file, path: a.xml, format: xml}", "should be csv or jsonl"),
    ("Counters: {type: http, token: {env: T}}", "should be lower-case"),
    ("x: [http]", "feeds.x: should be a mapping"),
]


class TestBadSections:
    """A mistake is reported with the file, the line and the field."""

    @pytest.mark.parametrize(("entry", "expected"), BAD)
    def test_reported(self, config: Config, entry: str, expected: str) -> None:
        _, problems = parse(f"feeds:\n  {entry}\n", config)
        assert any(expected in p for p in problems), problems
        assert all(p.startswith("statusd.yaml:2:") for p in problems), problems

    def test_all_reported_together(self, config: Config) -> None:
        _, problems = parse("""
            feeds:
              a: {type: http}
              b: {type: mqtt}
        """, config)
        assert len(problems) == 2
