"""Typed channel options: each channel's frozen `Options` dataclass, filled from its type hints.

Mastodon's, for one, declares `instance: Url`, `token: Secret`, `visibility:
Literal["public", "unlisted", "private", "direct"] = "public"` and `timeout:
Duration | None = None` (statusd/channels/mastodon.py).

A field without a default is required. Its hint says how the value is read and
checked (`Url`, `Secret`, `Duration`, `HostPort`, `CaFile`, `PathSegment`,
`Literal[...]`, `int`, `bool`, `str`), so every option is checked once, at
load, each problem named by file, line and field.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar

from statusd.config.reader import Section, kind_of, parse_secret, parse_url
from statusd.config.types import Secret


class Url(str):
    """An http:// or https:// URL that is not a documentation sample."""


class Duration(float):
    """Seconds, written 90, 30s, 5m, 1h or 1d."""


class HostPort(str):
    """HOST:PORT, like curl's --connect-to (e.g. 127.0.0.1:8443)."""


class CaFile(str):
    """A path to a readable PEM bundle of certificate authorities."""


class PathSegment(str):
    """An id safe to put in a URL path: letters, digits, '_', '.' and '-'."""


OptionsT = TypeVar("OptionsT")
_BAD = object()
_SEGMENT = re.compile(r"[0-9A-Za-z_.-]{1,100}")


def parse_options(section: Section, cls: type[OptionsT]) -> tuple[OptionsT | None, dict[str, Secret]]:
    """`cls` filled from `section` (None if any option is wrong), and its secrets by field."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    secrets: dict[str, Secret] = {}
    good = True
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if section.get(field.name) is None:
            if required:
                section.error(field.name, "is required")
                good = False
            continue
        value = _read(section, field.name, _unwrap(hints[field.name]))
        if value is _BAD:
            good = False
            continue
        values[field.name] = value
        if isinstance(value, Secret):
            secrets[field.name] = value
    return (cls(**values) if good else None), secrets


def _unwrap(hint: Any) -> Any:
    """`X | None` → X: an optional field is simply one that may be left out."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return hint


def _read(section: Section, key: str, hint: Any) -> Any:
    if typing.get_origin(hint) is Literal:
        return _choice(section, key, typing.get_args(hint))
    reader = _READERS.get(hint)
    if reader is None:
        raise TypeError(f"an option of type {hint!r} has no reader; add one to statusd.config.options")
    return reader(section, key)


def _choice(section: Section, key: str, choices: tuple[Any, ...]) -> Any:
    value = section.get(key)
    if value not in choices:
        section.error(key, f"should be one of {', '.join(map(str, choices))}, got {kind_of(value)}")
        return _BAD
    return value


def _url(section: Section, key: str) -> Any:
    value = parse_url(section, key)
    return _BAD if value is None else Url(value)


def _duration(section: Section, key: str) -> Any:
    before = len(section.problems.found)
    seconds = section.duration(key, 0.0)
    return _BAD if len(section.problems.found) > before else Duration(seconds)


def _host_port(section: Section, key: str) -> Any:
    value = _text(section, key)
    if value is _BAD:
        return _BAD
    host, _, port = value.strip().rpartition(":")
    if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        section.error(key, f"should be HOST:PORT such as 127.0.0.1:8443, got {value!r}")
        return _BAD
    return HostPort(value.strip())


def _ca_file(section: Section, key: str) -> Any:
    value = _text(section, key)
    if value is _BAD:
        return _BAD
    import ssl  # only a config naming a CA bundle needs it (ssl takes a while to import)

    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError) as err:
        # The reason only (no file content): "No such file", "no certificate or crl found".
        section.error(key, f"{value!r} cannot be read as a PEM CA bundle ({err.strerror or err})")
        return _BAD
    return CaFile(value)


def _segment(section: Section, key: str) -> Any:
    value = section.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a page id written without quotes is a YAML number
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value) or value in (".", ".."):
        section.error(key, f"should be an id of letters, digits, '_', '.' or '-', got {kind_of(value)}")
        return _BAD
    return PathSegment(value)


def _text(section: Section, key: str) -> Any:
    value = section.string(key)
    return _BAD if value is None else value


def _whole(section: Section, key: str) -> Any:
    value = section.integer(key)
    return _BAD if value is None else value


def _flag(section: Section, key: str) -> Any:
    value = section.get(key)
    if not isinstance(value, bool):
        section.error(key, f"should be true or false, got {kind_of(value)}")
        return _BAD
    return value


def _secret(section: Section, key: str) -> Any:
    value = parse_secret(section, key)
    return _BAD if value is None else value


_READERS: dict[Any, Any] = {
    Url: _url,
    Duration: _duration,
    HostPort: _host_port,
    CaFile: _ca_file,
    PathSegment: _segment,
    Secret: _secret,
    str: _text,
    int: _whole,
    bool: _flag,
}
