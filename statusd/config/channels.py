"""The channels section of statusd.yaml: each channel's type, language, scope, options and secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statusd.config.reader import Section, parse_url
from statusd.config.types import ChannelConfig, Secret, Site


def parse_channels(
    section: Section,
    languages: tuple[str, ...],
    sites: Mapping[str, Site],
    registry: Mapping[str, Any],
) -> tuple[dict[str, ChannelConfig], dict[str, str]]:
    """Active channels, and the inactive ones with why (a secret not set)."""
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
    section.allow("type", "language", "sites", "events", "fallback", *options_spec)
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
        fallback=_choice_list(section, "fallback", languages),
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
            options[key] = parse_url(section, key)
        elif kind == "secret":
            secret = parse_secret(section.sub(key))
            if secret:
                secrets[key] = secret
        elif kind == "duration":
            options[key] = section.duration(key, 0.0)
        elif kind == "int":
            options[key] = section.integer(key)
        else:
            options[key] = section.string(key)
    return options, secrets


def parse_secret(section: Section) -> Secret | None:
    """{env: NAME}, {credential: NAME} or {file: PATH}; a plain text is refused."""
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
