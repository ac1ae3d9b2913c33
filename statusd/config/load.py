"""statusd.yaml → frozen dataclasses, checked once; every problem reported together."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statusd.config import reader
from statusd.config.reader import Problems, Section, parse_url
from statusd.config.types import (
    HOLD_KINDS,
    SAMPLE_SECRETS,
    ChannelConfig,
    DeliveryConfig,
    Site,
    WebConfig,
)

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")

if TYPE_CHECKING:
    from statusd.sensors.rules_config import RulesConfig
    from statusd.sources.feeds.config import FeedsConfig

@dataclass(frozen=True)
class Config:
    """The whole configuration of one daemon."""

    path: Path
    public_url: str
    host: str
    port: int
    languages: tuple[str, ...]
    sites: Mapping[str, Site]
    channels: Mapping[str, ChannelConfig]
    delivery: DeliveryConfig
    status_file: Path
    alerts_dir: Path
    state_dir: Path | None = None
    inactive: Mapping[str, str] = field(default_factory=dict)
    web: WebConfig = field(default_factory=WebConfig)
    feeds: FeedsConfig = field(default_factory=lambda: _empty_feeds())
    rules: RulesConfig = field(default_factory=lambda: _default_rules())

    @property
    def default_language(self) -> str:
        return self.languages[0]


def _empty_feeds() -> FeedsConfig:
    from statusd.sources.feeds.config import parse_feeds

    return parse_feeds(Section(None, "feeds", Problems("")), {})


def _default_rules() -> RulesConfig:
    from statusd.sensors.rules_config import parse_rules

    return parse_rules(Section(None, "rules", Problems("")), {})


def load(path: Path) -> Config:
    """Load and check `path`; raise ConfigError listing every problem."""
    from statusd.channels import CHANNELS, channel_class

    root = Section(reader.load(path), "", Problems(str(path)))
    if root.node is None:
        root.problems.add(1, "", "the file is empty; see the shipped statusd.yaml for an example")
    elif root.is_mapping():
        root.allow("public_url", "listen", "languages", "sites", "channels", "delivery",
                   "status_file", "alerts", "state_dir", "web", "feeds", "rules")
    config = _build(root, path, {kind: (lambda k=kind: channel_class(k)) for kind in CHANNELS})
    root.problems.check()
    assert config is not None
    return config


def _build(root: Section, path: Path, registry: Mapping[str, Any]) -> Config | None:
    # Imported here: these modules build the dataclasses defined above.
    from statusd.config.channels import parse_channels
    from statusd.config.sites import parse_sites
    from statusd.sensors.rules_config import parse_rules
    from statusd.sources.feeds.config import parse_feeds

    base = path.parent
    languages = _languages(root)
    public_url = parse_url(root, "public_url", required=True) or "http://127.0.0.1:8080"
    host, port = _listen(root.sub("listen"))
    sites = parse_sites(root.sub("sites"), languages, public_url)
    channels, inactive = parse_channels(root.sub("channels"), languages, sites, registry)
    state_dir = root.string("state_dir")
    return Config(
        path=path,
        public_url=public_url.rstrip("/"),
        host=host,
        port=port,
        languages=languages,
        sites=sites,
        channels=channels,
        delivery=_delivery(root.sub("delivery")),
        status_file=base / (root.string("status_file") or "status.yaml"),
        alerts_dir=base / (root.string("alerts") or "alerts"),
        state_dir=base / state_dir if state_dir else None,
        inactive=inactive,
        web=_web(root.sub("web"), base),
        feeds=parse_feeds(root.sub("feeds"), sites, base=base),
        rules=parse_rules(root.sub("rules"), sites),
    )


def _languages(root: Section) -> tuple[str, ...]:
    value = root.get("languages")
    if value is None:
        return ("en",)
    if not isinstance(value, list) or not value:
        root.error("languages", "should be a list of language codes such as [fr, en, sv]")
        return ("en",)
    good = tuple(str(v) for v in value if isinstance(v, str) and _LANG.match(v))
    if len(good) != len(value):
        root.error("languages", f"every entry should be a language code such as fr or en, got {list(value)}")
    return good or ("en",)


def _listen(section: Section) -> tuple[str, int]:
    if section.node is None:
        return "127.0.0.1", 8080
    if not section.is_mapping():
        return "127.0.0.1", 8080
    section.allow("host", "port")
    host = section.string("host", "127.0.0.1") or "127.0.0.1"
    port = section.integer("port", 8080) or 0
    if port > 65535:
        section.error("port", f"should be a port number (1-65535), got {port}")
    return host, port


def _delivery(section: Section) -> DeliveryConfig:
    if section.node is None or not section.is_mapping():
        return DeliveryConfig()
    section.allow("deadline", "backoff", "backoff_max", "timeout", "reminder", "grace", "hold", "history")
    default = DeliveryConfig()
    return DeliveryConfig(
        deadline=section.duration("deadline", default.deadline),
        backoff=section.duration("backoff", default.backoff),
        backoff_max=section.duration("backoff_max", default.backoff_max),
        timeout=section.duration("timeout", default.timeout),
        reminder=section.duration("reminder", default.reminder),
        grace=section.duration("grace", default.grace),
        hold=_hold(section.sub("hold")),
        history=section.duration("history", default.history),
    )


def _hold(section: Section) -> dict[str, float]:
    if section.node is None or not section.is_mapping():
        return {}
    section.allow(*HOLD_KINDS)
    return {kind: section.duration(kind, 0.0) for kind in HOLD_KINDS if section.get(kind) is not None}


def _web(section: Section, base: Path) -> WebConfig:
    if section.node is None or not section.is_mapping():
        return WebConfig()
    section.allow("banner_when_open", "export_dir")
    when_open = section.get("banner_when_open", False)
    if not isinstance(when_open, bool):
        section.error("banner_when_open", f"should be true or false, got {when_open!r}")
        when_open = False
    export = section.string("export_dir")
    return WebConfig(banner_when_open=when_open, export_dir=base / export if export else None)


def check_secret_values(config: Config) -> list[str]:
    """Secrets that are set but still hold a sample value (named by where they come from)."""
    return [
        f"channel {channel.name}: {secret.describe()} holds a sample value; set the real secret"
        for channel in config.channels.values()
        for secret in channel.secrets.values()
        if (secret.read() or "").lower() in SAMPLE_SECRETS
    ]
