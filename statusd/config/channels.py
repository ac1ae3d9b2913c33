"""The channels section of statusd.yaml: each channel's type, language, scope, options and secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from statusd.config.options import parse_options
from statusd.config.reader import Section
from statusd.config.types import BUDGET_KEYS, ChannelConfig, Site
from statusd.events import EventKind


def parse_channels(
    section: Section,
    languages: tuple[str, ...],
    sites: Mapping[str, Site],
    registry: Mapping[str, type[Any]],
) -> tuple[dict[str, ChannelConfig], dict[str, str]]:
    """Active channels, and the inactive ones with why (a secret not set).

    `registry` maps each channel type to its options dataclass.
    """
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
    registry: Mapping[str, type[Any]],
) -> ChannelConfig | None:
    kind = section.string("type", required=True)
    if kind is None:
        return None
    if kind not in registry:
        section.error("type", f"unknown channel type {kind!r}; known types: {', '.join(sorted(registry))}")
        return None
    options_class = registry[kind]  # the type's frozen options dataclass
    section.allow("type", "language", "sites", "events", "budget", "fallback",
                  *(f.name for f in dataclasses.fields(options_class)))
    language = section.string("language", languages[0]) or languages[0]
    if language not in languages:
        section.error("language", f"{language!r} is not one of the configured languages {list(languages)}")
    options, secrets = parse_options(section, options_class)
    if options is None:
        return None
    return ChannelConfig(
        name=name,
        type=kind,
        language=language,
        sites=_choice_list(section, "sites", tuple(sites)),
        events=_choice_list(section, "events", None),
        options=options,
        secrets=secrets,
        budget=_budget(section.sub("budget")) if section.get("budget") is not None else {},
        fallback=_choice_list(section, "fallback", languages),
    )


def _budget(section: Section) -> dict[str, Any]:
    """budget: {per_day: N, per_window: N, window: 3h, cost: N, reserve: N}, each optional."""
    if not section.is_mapping():
        return {}
    section.allow(*BUDGET_KEYS)
    given = {key: section.get(key) for key in BUDGET_KEYS if section.get(key) is not None}
    budget: dict[str, Any] = {k: section.integer(k, minimum=1) for k in given
                              if k not in ("window", "reserve")}
    if "reserve" in given:
        budget["reserve"] = section.integer("reserve", minimum=0)
    if "window" in given:
        budget["window"] = section.duration("window", 3600.0)
    return budget


def _choice_list(section: Section, key: str, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
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
