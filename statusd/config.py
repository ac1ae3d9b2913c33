"""statusd.yaml → frozen dataclasses, checked once; every problem reported together."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    from statusd.sensors.rules_config import parse_rules
    from statusd.sources.feeds_config import parse_feeds

    base = path.parent
    languages = _languages(root)
    public_url = _url(root, "public_url", required=True) or "http://127.0.0.1:8080"
    host, port = _listen(root.sub("listen"))
    sites = _sites(root.sub("sites"), languages, public_url)
    channels, inactive = _channels(root.sub("channels"), languages, sites, registry)
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


def _url(section: Section, key: str, required: bool = False) -> str | None:
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


def _names(section: Section, languages: tuple[str, ...], fallback: str) -> Mapping[str, str]:
    """A name per language: either one text for all, or {fr: ..., en: ...}."""
    value = section.node
    if value is None:
        return {lang: fallback for lang in languages}
    if isinstance(value, str):
        return {lang: value for lang in languages}
    if not isinstance(value, Mapping):
        section.problems.add(section.line(), section.path, "should be a text or a mapping of language to text")
        return {lang: fallback for lang in languages}
    names = {}
    for lang, text in value.items():
        if lang not in languages:
            section.error(str(lang), f"unknown language; the configured languages are {list(languages)}")
        elif not isinstance(text, str):
            section.error(str(lang), "should be a text")
        else:
            names[str(lang)] = text
    return {lang: names.get(lang, names.get(languages[0], fallback)) for lang in languages}


def _sites(section: Section, languages: tuple[str, ...], public_url: str) -> dict[str, Site]:
    if section.node is None:
        section.problems.add(None, "sites", "at least one site is required")
        return {}
    if not section.is_mapping():
        return {}
    return {
        site_id: site
        for site_id, sub in section.items()
        if section.identifier(site_id) and (site := _site(site_id, sub, languages, public_url))
    }


def _site(site_id: str, section: Section, languages: tuple[str, ...], public_url: str) -> Site | None:
    if not section.is_mapping():
        return None
    section.allow("name", "timezone", "url", "services", "zones", "queues", "hours")
    timezone = section.string("timezone", "UTC") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        section.error("timezone", f"unknown time zone {timezone!r}; use a name such as Europe/Paris")
        timezone = "UTC"
    services_section = section.sub("services")
    services: dict[str, Mapping[str, str]] = {}
    if services_section.node is not None and services_section.is_mapping():
        for service_id, sub in services_section.items():
            if services_section.identifier(service_id):
                services[service_id] = _names(sub, languages, service_id)
    return Site(
        id=site_id,
        name=_names(section.sub("name"), languages, site_id),
        timezone=timezone,
        url=_url(section, "url") or f"{public_url.rstrip('/')}/#{site_id}",
        services=services,
        zones=_zones(section.sub("zones"), languages),
        queues=_queues(section.sub("queues"), languages),
        hours=_hours(section.sub("hours")),
    )


def _zones(section: Section, languages: tuple[str, ...]) -> dict[str, Zone]:
    zones: dict[str, Zone] = {}
    if section.node is None or not section.is_mapping():
        return zones
    for zone_id, sub in section.items():
        if section.identifier(zone_id) and sub.is_mapping():
            sub.allow("name", "capacity")
            capacity = sub.integer("capacity", minimum=1)
            if capacity is None and sub.get("capacity") is None:
                sub.error("capacity", "is required (the number of seats)")
            zones[zone_id] = Zone(zone_id, _names(sub.sub("name"), languages, zone_id), capacity or 1)
    return zones


def _queues(section: Section, languages: tuple[str, ...]) -> dict[str, Queue]:
    queues: dict[str, Queue] = {}
    if section.node is None or not section.is_mapping():
        return queues
    for queue_id, sub in section.items():
        if section.identifier(queue_id) and (sub.node is None or sub.is_mapping()):
            sub.allow("name")
            queues[queue_id] = Queue(queue_id, _names(sub.sub("name"), languages, queue_id))
    return queues


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


_DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_PERIOD = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)$")


def _hours(section: Section) -> dict[int, tuple[tuple[time, time], ...]]:
    """Opening hours such as {mo-fr: "09:00-20:00", sa: "10:00-13:00, 14:00-18:00", su: closed}."""
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    if section.node is None or not section.is_mapping():
        return hours
    for key, sub in section.items():
        days = _day_range(key)
        periods = _periods(sub.node)
        if days is None:
            section.error(key, "should be a day or a range of days: mo, tu, we, th, fr, sa, su, e.g. mo-fr")
        elif periods is None:
            section.error(key, f'should be "closed" or periods such as "09:00-20:00", got {sub.node!r}')
        else:
            hours.update({day: periods for day in days})
    return hours


def _day_range(key: str) -> list[int] | None:
    first, _, last = key.lower().partition("-")
    if first not in _DAYS or (last and last not in _DAYS):
        return None
    start, end = _DAYS.index(first), _DAYS.index(last or first)
    return list(range(start, end + 1)) if start <= end else None


def _periods(value: Any) -> tuple[tuple[time, time], ...] | None:
    if value == "closed":
        return ()
    if not isinstance(value, str):
        return None
    periods = []
    for part in value.split(","):
        match = _PERIOD.match(part.strip())
        if not match:
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        opens, closes = time(h1 % 24, m1), time(23, 59, 59) if h2 == 24 else time(h2, m2)
        if closes <= opens:
            return None
        periods.append((opens, closes))
    return tuple(periods)


def _channels(
    section: Section,
    languages: tuple[str, ...],
    sites: Mapping[str, Site],
    registry: Mapping[str, Any],
) -> tuple[dict[str, ChannelConfig], dict[str, str]]:
    channels: dict[str, ChannelConfig] = {}
    inactive: dict[str, str] = {}
    if section.node is None:
        section.problems.add(
            None, "channels", "at least one channel is required (type: console prints to the terminal)")
        return channels, inactive
    if not section.is_mapping():
        return channels, inactive
    for name, sub in section.items():
        if not section.identifier(name) or not sub.is_mapping():
            continue
        channel = _channel(name, sub, languages, sites, registry)
        if channel is None:
            continue
        missing = [s.describe() for s in channel.secrets.values() if s.read() is None]
        if missing:
            inactive[name] = f"off until {', '.join(missing)} is set"
        else:
            channels[name] = channel
    return channels, inactive


def _channel(
    name: str,
    section: Section,
    languages: tuple[str, ...],
    sites: Mapping[str, Site],
    registry: Mapping[str, Any],
) -> ChannelConfig | None:
    kind = section.string("type", required=True)
    if kind is None:
        return None
    if kind not in registry:
        section.error("type", f"unknown channel type {kind!r}; known types: {', '.join(sorted(registry))}")
        return None
    cls = registry[kind]()
    options_spec: Mapping[str, str] = cls.options
    section.allow("type", "language", "sites", "events", *options_spec)
    language = section.string("language", languages[0]) or languages[0]
    if language not in languages:
        section.error("language", f"{language!r} is not one of the configured languages {list(languages)}")
    options, secrets = _options(section, options_spec)
    return ChannelConfig(
        name=name,
        type=kind,
        language=language,
        sites=_choice_list(section, "sites", tuple(sites)),
        events=_choice_list(section, "events", None),
        options=options,
        secrets=secrets,
    )


def _choice_list(section: Section, key: str, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
    from statusd.events import EventKind

    value = section.get(key)
    if value is None:
        return None
    allowed = choices if choices is not None else tuple(k.value for k in EventKind)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        section.error(key, f"should be a list, from: {', '.join(allowed)}")
        return None
    for item in value:
        if item not in allowed:
            section.error(key, f"unknown entry {item!r}; expected one of: {', '.join(allowed)}")
    return tuple(value)


def _options(section: Section, spec: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Secret]]:
    """Type-specific options; `spec` maps each key to url|secret|duration|text|int, '!' = required."""
    options: dict[str, Any] = {}
    secrets: dict[str, Secret] = {}
    for key, kind in spec.items():
        required = kind.endswith("!")
        kind = kind.rstrip("!")
        if section.get(key) is None:
            if required:
                section.error(key, "is required")
            continue
        if kind == "url":
            options[key] = _url(section, key)
        elif kind == "secret":
            secret = _secret(section.sub(key))
            if secret:
                secrets[key] = secret
        elif kind == "duration":
            options[key] = section.duration(key, 0.0)
        elif kind == "int":
            options[key] = section.integer(key)
        else:
            options[key] = section.string(key)
    return options, secrets


def _secret(section: Section) -> Secret | None:
    value = section.node
    if isinstance(value, str):
        section.problems.add(
            section.line(), section.path,
            "secrets are never written in statusd.yaml; use {env: VARIABLE}, {credential: NAME} or {file: PATH}",
        )
        return None
    if not isinstance(value, Mapping) or len(value) != 1:
        section.problems.add(
            section.line(), section.path, "should be one of {env: VARIABLE}, {credential: NAME} or {file: PATH}")
        return None
    section.allow("env", "credential", "file")
    source, ref = next(iter(value.items()))
    if source in ("env", "credential", "file") and isinstance(ref, str) and ref:
        return Secret(str(source), ref)
    return None


def check_secret_values(config: Config) -> list[str]:
    """Secrets that are set but still hold a sample value (named by where they come from)."""
    return [
        f"channel {channel.name}: {secret.describe()} holds a sample value; set the real secret"
        for channel in config.channels.values()
        for secret in channel.secrets.values()
        if (secret.read() or "").lower() in _SAMPLE_SECRETS
    ]
