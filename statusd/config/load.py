"""statusd.yaml → frozen dataclasses, checked once; every problem reported together."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statusd.config import reader
from statusd.config.cluster import ClusterConfig, parse_cluster
from statusd.config.desk_section import DeskConfig, SsoConfig, parse_desk
from statusd.config.reader import Problems, Section, parse_url
from statusd.config.sites import parse_sites
from statusd.config.store_section import KEYS as STORE_KEYS
from statusd.config.store_section import StoreConfig, parse_store
from statusd.config.trust import untrusted
from statusd.config.types import (
    HOLD_KINDS,
    ChannelConfig,
    DeliveryConfig,
    Site,
    WebConfig,
)
from statusd.config.web_section import parse_web
from statusd.errors import ConfigError
from statusd.safetext import problem

if TYPE_CHECKING:  # their modules are imported by the whole load only: `statusd set` reads neither section
    from statusd.config.feeds import FeedsConfig
    from statusd.config.rules import RulesConfig

__all__ = ["Config", "DeskConfig", "Scope", "SsoConfig", "basics", "check_text", "load", "settings",
           "top_level", "trusted"]

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class Scope:
    """What a partly read config holds: one site's block checked, every site's and channel's name."""

    site: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """The whole configuration of one daemon."""

    path: Path
    public_url: str
    host: str
    port: int
    languages: tuple[str, ...]
    sites: Mapping[str, Site]
    channels: Mapping[str, ChannelConfig]  # the active ones; empty when `scope` says they were not read
    delivery: DeliveryConfig
    status_file: Path
    alerts_dir: Path
    state_dir: Path | None = None
    inactive: Mapping[str, str] = field(default_factory=dict)
    web: WebConfig = field(default_factory=WebConfig)
    # The feeds and rules sections as read (`feeds`, `rules`); None when they were not (a scoped config).
    parsed_feeds: FeedsConfig | None = None
    parsed_rules: RulesConfig | None = None
    # status.yaml is refused above this size (bytes): it is read whole, and anyone in the desk group writes it.
    status_max_bytes: int = 256 * 1024
    # The operator's listener (/readyz, /metrics): loopback unless the config says otherwise.
    ops_host: str = "127.0.0.1"
    ops_port: int = 9108
    desk: DeskConfig = field(default_factory=lambda: DeskConfig())
    # Languages every update must have text in (levels in require_except are exempt).
    require: tuple[str, ...] = ()
    require_except: tuple[str, ...] = ()
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    # Where the outbox's state lives: the SQLite file in the state directory, or PostgreSQL.
    store: StoreConfig = field(default_factory=StoreConfig)
    # Set when only part of the file was read (`statusd set`, config/scoped.py): which, and what was not.
    scope: Scope | None = None

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def feeds(self) -> FeedsConfig:
        """The sensor feeds; none when the section was not read."""
        if self.parsed_feeds is not None:
            return self.parsed_feeds
        from statusd.config.feeds import FeedsConfig

        return FeedsConfig()

    @property
    def rules(self) -> RulesConfig:
        """The sensor rules; the defaults when the section was not read."""
        if self.parsed_rules is not None:
            return self.parsed_rules
        from statusd.config.rules import default_rules

        return default_rules({})


def load(path: Path, channels: Mapping[str, type[Any]]) -> Config:
    """Load and check `path`; raise ConfigError listing every problem.

    `channels` gives each channel type's options dataclass (statusd.channels.OPTIONS),
    which says what its section may hold.
    """
    root = top_level(reader.load(path), path)
    config = _build(root, path, channels)
    root.problems.check()
    return trusted(config)


def top_level(node: Any, path: Path) -> Section:
    """The file's root, its keys and texts checked (problems collected, not raised)."""
    root = Section(node, "", Problems(str(path)))
    if root.node is None:
        root.problems.add(1, "", "the file is empty; see the shipped statusd.yaml for an example")
    elif root.is_mapping():
        root.allow("public_url", "listen", "languages", "sites", "channels", "delivery",
                   "status_file", "status_max_bytes", "alerts", "state_dir", "web", "feeds", "rules", "ops",
                   "desk", "require", "require_except", "cluster", "sensors", *STORE_KEYS)
    check_text(root.node, "", None, root.problems)
    return root


def trusted(config: Config) -> Config:
    """`config`, unless someone else than root or the daemon's user could have written it (ConfigError)."""
    # After the file is read: a config that someone else could have written is never used.
    problems = untrusted(config.path, config.alerts_dir)
    if problems:
        raise ConfigError(problems)
    return config


def check_text(node: Any, where: str, line: int | None, problems: Problems, depth: int = 0) -> None:
    """Every key and text of the file: no control character (but newline and tab), no lone surrogate."""
    if depth > 64:
        problems.add(line, where, "is nested too deeply")
        return
    if isinstance(node, str):
        why = problem(node)
        if why is not None:
            problems.add(line, where, why)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            at, name = reader.key_line(node, key), f"{where}.{key}" if where else str(key)
            why = problem(key) if isinstance(key, str) else None
            if why is not None:
                problems.add(at, where or "(top level)", f"a key {why}")
                continue
            check_text(value, name, at, problems, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            check_text(value, f"{where}[{index}]", reader.item_line(node, index) or line, problems, depth + 1)


def _build(root: Section, path: Path, registry: Mapping[str, type[Any]]) -> Config:
    # Here, not at the top: `statusd set` reads neither channels nor feeds (config/scoped.py).
    from statusd.config.channels import parse_channels
    from statusd.config.feed_section import parse_feeds
    from statusd.config.rules import parse_rules

    languages, public_url = basics(root)
    sites = parse_sites(root.sub("sites"), languages, public_url)
    channels, inactive = parse_channels(root.sub("channels"), languages, sites, registry)
    return settings(root, path, (languages, public_url), sites, channels=channels, inactive=inactive,
                    parsed_feeds=parse_feeds(root.sub("feeds"), sites, base=path.parent),
                    parsed_rules=parse_rules(root.sub("rules"), sites))


def basics(root: Section) -> tuple[tuple[str, ...], str]:
    """The languages and the public URL, which the sites' section needs."""
    return _languages(root), parse_url(root, "public_url", required=True) or "http://127.0.0.1:8080"


def settings(root: Section, path: Path, basic: tuple[tuple[str, ...], str], sites: Mapping[str, Site],
             **parts: Any) -> Config:
    """The Config of `root`, with its `basics`, `sites` and the `parts` given (channels, feeds, rules…)."""
    base = path.parent
    languages, public_url = basic
    host, port = _listen(root.sub("listen"))
    state_dir = root.string("state_dir")
    ops_host, ops_port = _ops(root.sub("ops"))
    return Config(
        path=path,
        public_url=public_url.rstrip("/"),
        host=host,
        port=port,
        languages=languages,
        sites=sites,
        delivery=_delivery(root.sub("delivery")),
        status_file=base / (root.string("status_file") or "status.yaml"),
        alerts_dir=base / (root.string("alerts") or "alerts"),
        state_dir=base / state_dir if state_dir else None,
        web=parse_web(root.sub("web"), base),
        ops_host=ops_host,
        ops_port=ops_port,
        status_max_bytes=root.integer("status_max_bytes", 256 * 1024, minimum=1024) or 256 * 1024,
        desk=parse_desk(root.sub("desk")),
        require=_words(root, "require", languages, "languages"),
        require_except=_words(root, "require_except", ("open", "limited", "closed", "emergency"), "levels"),
        cluster=parse_cluster(root.sub("cluster"), root.sub("sensors")),
        store=parse_store(root),
        **parts,
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


_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>[0-9]{1,5})$")


def _ops(section: Section) -> tuple[str, int]:
    """`ops: {listen: "127.0.0.1:9108"}`: where /readyz and /metrics are served."""
    if section.node is None or not section.is_mapping():
        return "127.0.0.1", 9108
    section.allow("listen")
    listen = section.string("listen", "127.0.0.1:9108") or "127.0.0.1:9108"
    found = _HOST_PORT.match(listen)
    if found is None or int(found["port"]) > 65535:
        section.error("listen", f"should be HOST:PORT such as 127.0.0.1:9108 or [::1]:9108, got {listen!r}")
        return "127.0.0.1", 9108
    return found["v6"] or found["host"], int(found["port"])


def _delivery(section: Section) -> DeliveryConfig:
    if section.node is None or not section.is_mapping():
        return DeliveryConfig()
    section.allow("deadline", "backoff", "backoff_max", "timeout", "reminder", "grace", "hold", "recheck", "history")
    default = DeliveryConfig()
    return DeliveryConfig(
        deadline=section.duration("deadline", default.deadline),
        backoff=section.duration("backoff", default.backoff),
        backoff_max=section.duration("backoff_max", default.backoff_max),
        timeout=section.duration("timeout", default.timeout),
        reminder=section.duration("reminder", default.reminder),
        grace=section.duration("grace", default.grace),
        hold=_hold(section.sub("hold")),
        recheck=section.duration("recheck", default.recheck),
        history=section.duration("history", default.history),
    )


def _hold(section: Section) -> dict[str, float]:
    if section.node is None or not section.is_mapping():
        return {}
    section.allow(*HOLD_KINDS)
    return {kind: section.duration(kind, 0.0) for kind in HOLD_KINDS if section.get(kind) is not None}


def _words(root: Section, key: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    value = root.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
        root.error(key, f"should be a list of {what} from: {', '.join(allowed)}")
        return ()
    return tuple(value)
