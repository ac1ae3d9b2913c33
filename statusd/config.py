"""statusd.yaml → frozen dataclasses, checked once; every problem reported together."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from statusd import yamlsrc
from statusd.validate import Problems, Section

if TYPE_CHECKING:
    from statusd.sensors.rules_config import RulesConfig
    from statusd.sources.feeds_config import FeedsConfig

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# Values copied from documentation that must never reach production.
_SAMPLE_HOSTS = ("example.com", "example.org", "example.net")
_SAMPLE_SECRETS = {"changeme", "change-me", "secret", "xxx", "token", "password"}


@dataclass(frozen=True)
class Secret:
    """Where a secret lives: an environment variable, a systemd credential or a file."""

    source: str
    ref: str

    def read(self) -> str | None:
        """The secret's value, or None when it is not set."""
        if self.source == "env":
            # A pasted secret often ends in a line break, which no header may carry.
            value = (os.environ.get(self.ref) or "").strip()
        else:
            path = Path(self.ref)
            if self.source == "credential":
                path = Path(os.environ.get("CREDENTIALS_DIRECTORY", "/run/credentials")) / self.ref
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError:
                value = None
        return value or None

    def describe(self) -> str:
        """Where it is read from, never what it is."""
        return {"env": "environment variable", "credential": "credential"}.get(
            self.source, "file"
        ) + f" {self.ref}"


@dataclass(frozen=True)
class Zone:
    """A floor or reading room with a seat capacity."""

    id: str
    name: Mapping[str, str]
    capacity: int


@dataclass(frozen=True)
class Queue:
    """An entrance where patrons queue."""

    id: str
    name: Mapping[str, str]


@dataclass(frozen=True)
class Site:
    """A place patrons go to."""

    id: str
    name: Mapping[str, str]
    timezone: str
    url: str
    services: Mapping[str, Mapping[str, str]]
    zones: Mapping[str, Zone]
    queues: Mapping[str, Queue]
    # Regular opening hours: weekday (0 = Monday) → (opens, closes) periods, local time.
    hours: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel: its type, language, scope and type-specific options."""

    name: str
    type: str
    language: str
    sites: tuple[str, ...] | None
    events: tuple[str, ...] | None
    options: Mapping[str, Any]
    secrets: Mapping[str, Secret]

    def carries(self, site: str, kind: str) -> bool:
        """Whether this channel speaks for `site` and carries events of `kind`.

        Without an `events` list a channel carries every kind for patrons;
        sensor_lost/restored are notices for operators, carried only where listed.
        """
        if self.sites is not None and site not in self.sites:
            return False
        if self.events is None:
            return kind not in OPERATOR_KINDS
        return kind in self.events


HOLD_KINDS = ("staff", "emergency", "schedule", "sensor")
OPERATOR_KINDS = ("sensor_lost", "sensor_restored")


@dataclass(frozen=True)
class DeliveryConfig:
    """How hard the outbox tries, and when planned closures are reminded.

    `hold` delays sending by kind of update (staff, emergency, schedule,
    sensor) so that `statusd undo` can cancel a mistake before it is posted.
    """

    deadline: float = 6 * 3600.0
    backoff: float = 2.0
    backoff_max: float = 300.0
    timeout: float = 10.0
    reminder: float = 86400.0
    grace: float = 10.0
    hold: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WebConfig:
    """The public website side: banner behaviour and where documents are exported."""

    banner_when_open: bool = False
    export_dir: Path | None = None


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
    from statusd.sources.feeds_config import parse_feeds

    return parse_feeds(Section(None, "feeds", Problems("")), {})


def _default_rules() -> RulesConfig:
    from statusd.sensors.rules_config import parse_rules

    return parse_rules(Section(None, "rules", Problems("")), {})


def load(path: Path) -> Config:
    """Load and check `path`; raise ConfigError listing every problem."""
    from statusd.channels import CHANNELS, channel_class

    root = Section(yamlsrc.load(path), "", Problems(str(path)))
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
    from statusd.config_channels import parse_channels
    from statusd.config_sites import parse_sites
    from statusd.sensors.rules_config import parse_rules
    from statusd.sources.feeds_config import parse_feeds

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


def parse_url(section: Section, key: str, required: bool = False) -> str | None:
    """An http(s) URL that is not a documentation sample."""
    value = section.string(key, required=required)
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/]+", value):
        section.error(key, f"should be an http:// or https:// URL, got {value!r}")
        return None
    if any(host in value for host in _SAMPLE_HOSTS):
        section.error(key, f"{value!r} is the sample value; put your own address here")
    return value


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
    section.allow("deadline", "backoff", "backoff_max", "timeout", "reminder", "grace", "hold")
    default = DeliveryConfig()
    return DeliveryConfig(
        deadline=section.duration("deadline", default.deadline),
        backoff=section.duration("backoff", default.backoff),
        backoff_max=section.duration("backoff_max", default.backoff_max),
        timeout=section.duration("timeout", default.timeout),
        reminder=section.duration("reminder", default.reminder),
        grace=section.duration("grace", default.grace),
        hold=_hold(section.sub("hold")),
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
        if (secret.read() or "").lower() in _SAMPLE_SECRETS
    ]
