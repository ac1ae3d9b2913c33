"""The `feeds:` section of statusd.yaml → the frozen values of config.feeds, every problem collected.

    feeds:
      counters: {type: http, token: {env: STATUSD_FEED_COUNTERS_TOKEN}}
      panel:    {type: http, token: {credential: fire-panel}, allow: [status]}
      broker:   {type: mqtt, host: 127.0.0.1, topics: ["library/+/seats"]}
      entrance: {type: poll, url: "http://10.0.0.7/local/tvpc/.api?live-sum.json",
                 format: axis-live-sum, site: main, zone: floor2, auth: digest,
                 username: statusd, password: {env: AXIS_PASSWORD}}
      gates:    {type: file, path: /var/lib/counter/export.csv, format: csv}

No section means no feeds. `allow` defaults to seats, queue and gates: a feed
may only close a site (`status`) when it is allowed to in so many words.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from statusd.config.feeds import (
    DECODINGS,
    DEFAULT_ALLOW,
    DEFAULT_MAX_RATE,
    FEED_TYPES,
    FIELDS,
    FILE_FORMATS,
    KINDS,
    VENDOR_FORMATS,
    Decoding,
    FeedConfig,
    FeedsConfig,
    FileFeedConfig,
    HttpFeedConfig,
    MqttFeedConfig,
    PollFeedConfig,
)
from statusd.config.reader import Section
from statusd.config.reader import parse_secret as _secret
from statusd.config.types import Secret, Site

_COMMON = ("type", "allow", "site", "zone", "queue")
_DECODING_KEYS = ("format", "kind", "map")
_KEYS: Mapping[str, tuple[str, ...]] = {
    "http": (*_COMMON, *_DECODING_KEYS, "token", "max_rate"),
    "mqtt": (*_COMMON, *_DECODING_KEYS, "host", "port", "topics", "username", "password",
             "client_id", "qos", "keepalive"),
    "poll": (*_COMMON, *_DECODING_KEYS, "url", "every", "timeout", "auth", "username", "password",
             "token"),
    "file": (*_COMMON, "format", "path", "every"),
}


def parse_feeds(section: Section, sites: Mapping[str, Site], base: Path | None = None) -> FeedsConfig:
    """Read `feeds:`; problems go to `section.problems`; relative file paths are from `base`."""
    if section.node is None or not section.is_mapping():
        return FeedsConfig()
    feeds: dict[str, FeedConfig] = {}
    for name, sub in section.items():
        if section.identifier(name) and sub.is_mapping():
            feed = _feed(name, sub, sites, base or Path("."))
            if feed is not None:
                feeds[name] = feed
    return FeedsConfig(feeds)


def _feed(name: str, section: Section, sites: Mapping[str, Site], base: Path) -> FeedConfig | None:
    kind = section.string("type", required=True)
    if kind is None:
        return None
    if kind not in FEED_TYPES:
        section.error("type", f"unknown feed type {kind!r}; expected one of {', '.join(FEED_TYPES)}")
        return None
    section.allow(*_KEYS[kind])
    allow = _allow(section)
    if kind == "file":
        return _file(name, section, allow, _place(section, sites), base)
    decoding = _decoding(section, sites)
    if kind == "http":
        return _http(name, section, allow, decoding)
    if kind == "mqtt":
        return _mqtt(name, section, allow, decoding)
    return _poll(name, section, allow, decoding)


def _allow(section: Section) -> frozenset[str]:
    value = section.get("allow")
    if value is None:
        return DEFAULT_ALLOW
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        section.error("allow", f"should be a list from: {', '.join(KINDS)}")
        return DEFAULT_ALLOW
    for item in value:
        if item not in KINDS:
            section.error("allow", f"unknown kind {item!r}; expected some of: {', '.join(KINDS)}")
    return frozenset(v for v in value if v in KINDS)


def _place(section: Section, sites: Mapping[str, Site]) -> Decoding:
    """site/zone/queue, checked against the configured sites."""
    site_id = section.string("site")
    zone, queue = section.string("zone"), section.string("queue")
    site = sites.get(site_id) if site_id else None
    if site_id and site is None:
        section.error("site", f"unknown site {site_id!r}; known: {', '.join(sites)}")
    if (zone or queue) and not site_id:
        section.error("site", "is required with zone or queue")
    if site and zone and zone not in site.zones:
        section.error("zone", f"unknown zone {zone!r} at {site_id}; known: {', '.join(site.zones) or 'none'}")
    if site and queue and queue not in site.queues:
        section.error("queue", f"unknown queue {queue!r} at {site_id}; known: {', '.join(site.queues) or 'none'}")
    if zone and queue:
        section.error("queue", "give either zone or queue, not both")
    return Decoding(site=site_id, zone=zone, queue=queue)


def _decoding(section: Section, sites: Mapping[str, Site]) -> Decoding:
    place = _place(section, sites)
    fmt = section.string("format", "statusd") or "statusd"
    if fmt not in DECODINGS:
        section.error("format", f"unknown format {fmt!r}; expected one of {', '.join(DECODINGS)}")
        return place
    if fmt in VENDOR_FORMATS and not (place.site and place.zone):
        section.error("zone", f"format {fmt} counts people through gates: give the site and zone they lead into")
    for key in ("kind", "map"):
        if fmt != "mapping" and section.get(key) is not None:
            section.error(key, "is only for format: mapping")
    kind, fields = _mapping(section, place) if fmt == "mapping" else (None, {})
    return Decoding(fmt, place.site, place.zone, place.queue, kind, fields)


def _mapping(section: Section, place: Decoding) -> tuple[str | None, dict[str, str]]:
    kind = section.string("kind", required=True)
    if kind is not None and kind not in KINDS:
        section.error("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        kind = None
    if not place.site:
        section.error("site", "is required with format: mapping")
    value = section.get("map")
    if not isinstance(value, Mapping) or not value:
        section.error("map", "is required: reading field → path in the document, e.g. {occupied: data.count}")
        return kind, {}
    fields = {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
    for key in value:
        if kind and key not in FIELDS[kind]:
            section.error("map", f"{key!r} is not a field of a {kind} reading: {', '.join(FIELDS[kind])}")
        if not isinstance(value[key], str):
            section.error("map", f"{key}: should be a path such as data.count, got {value[key]!r}")
    return kind, fields


def _http(name: str, section: Section, allow: frozenset[str], decoding: Decoding) -> HttpFeedConfig | None:
    token = _required_secret(section, "token")
    rate = section.integer("max_rate", DEFAULT_MAX_RATE)
    return HttpFeedConfig(name, allow, decoding, token, DEFAULT_MAX_RATE if rate is None else rate) if token else None


def _mqtt(name: str, section: Section, allow: frozenset[str], decoding: Decoding) -> MqttFeedConfig:
    port = section.integer("port", 1883, minimum=1) or 1883
    if port > 65535:
        section.error("port", f"should be a port number (1-65535), got {port}")
    qos = section.integer("qos", 1) or 0
    if qos > 2:
        section.error("qos", f"should be 0, 1 or 2, got {qos}")
    return MqttFeedConfig(
        name, allow, decoding,
        host=section.string("host", "127.0.0.1") or "127.0.0.1",
        port=port,
        topics=_topics(section),
        username=section.string("username"),
        password=_optional_secret(section, "password"),
        client_id=section.string("client_id"),
        qos=min(qos, 2),
        keepalive=max(section.duration("keepalive", 60.0), 5.0),
    )


def _topics(section: Section) -> tuple[str, ...]:
    value = section.get("topics")
    if value is None:
        section.error("topics", 'is required: a list of topic filters such as ["library/+/seats"]')
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        section.error("topics", 'should be a list of topic filters such as ["library/+/seats"]')
        return ()
    return tuple(value)


def _poll(name: str, section: Section, allow: frozenset[str], decoding: Decoding) -> PollFeedConfig:
    url = section.string("url", required=True) or ""
    if url and not url.startswith(("http://", "https://")):
        section.error("url", f"should be an http:// or https:// URL, got {url!r}")
    auth = section.string("auth", "basic") or "basic"
    if auth not in ("basic", "digest"):
        section.error("auth", f"should be basic or digest (Axis devices usually want digest), got {auth!r}")
    username = section.string("username")
    password = _optional_secret(section, "password")
    if (username is None) != (password is None):
        section.error("password" if username else "username", "username and password go together")
    return PollFeedConfig(
        name, allow, decoding, url=url,
        every=max(section.duration("every", 60.0), 1.0),
        timeout=max(section.duration("timeout", 10.0), 0.1),
        auth=auth, username=username, password=password,
        token=_optional_secret(section, "token"),
    )


def _file(name: str, section: Section, allow: frozenset[str], place: Decoding, base: Path) -> FileFeedConfig:
    fmt = section.string("format", "jsonl") or "jsonl"
    if fmt not in FILE_FORMATS:
        section.error("format", f"should be csv or jsonl, got {fmt!r}")
    path = section.string("path", required=True) or ""
    return FileFeedConfig(name, allow, place, base / path, fmt,
                          every=max(section.duration("every", 2.0), 0.05))


_SECRET_FORMS = "{env: VARIABLE}, {credential: NAME} or {file: PATH}"


def _required_secret(section: Section, key: str) -> Secret | None:
    if section.get(key) is None:
        section.error(key, f"is required: {_SECRET_FORMS}")
        return None
    return _optional_secret(section, key)


def _optional_secret(section: Section, key: str) -> Secret | None:
    return None if section.get(key) is None else _secret(section, key)
