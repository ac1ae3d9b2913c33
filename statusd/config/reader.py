"""The line-aware YAML reader: files → nodes that know their lines, and checked sections of them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from statusd.config import fastyaml
from statusd.config.fastyaml import LinedList, LinedMap
from statusd.config.types import SAMPLE_SECRETS, Secret
from statusd.errors import ConfigError, Problem


def load(path: Path) -> Any:
    """Parse `path` into maps and lists that remember their lines (fastyaml's, or ruamel's).

    Raises ConfigError with the line and column of a syntax error, or when the
    file cannot be read.
    """
    return loads(read_text(path), str(path))


def read_text(path: Path) -> str:
    """The config file's text; ConfigError (one sentence naming the file) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(str(path), None, "", "is a directory, not a file")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([Problem(str(path), None, "", f"cannot be read ({err})")]) from err


def loads(text: str, name: str) -> Any:
    """Parse YAML text; `name` is used in error messages."""
    done, document = fastyaml.loads(text)
    if done:
        return document
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = err.problem or err.context or "invalid YAML"
        raise ConfigError([Problem(name, line, "", f"invalid YAML: {what}", column)]) from err
    except Exception as err:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        raise ConfigError([Problem(name, None, "", f"invalid YAML: {err}")]) from err


def key_line(node: Any, key: Any) -> int | None:
    """1-based line of `key` inside a mapping node, if known."""
    if isinstance(node, LinedMap) and key in node.key_lines:
        return node.key_lines[key] + 1
    if isinstance(node, CommentedMap):
        try:
            return int(node.lc.key(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            pass
    return node_line(node)


def node_line(node: Any) -> int | None:
    """1-based line where a mapping or sequence node starts, if known."""
    if isinstance(node, (LinedMap, LinedList)):
        return node.line + 1
    if isinstance(node, (CommentedMap, CommentedSeq)):
        try:
            return int(node.lc.line) + 1
        except (TypeError, AttributeError):
            return None
    return None


def item_line(node: Any, index: int) -> int | None:
    """1-based line of item `index` of a sequence node, if known."""
    if isinstance(node, LinedList) and 0 <= index < len(node.item_lines):
        return node.item_lines[index] + 1
    if isinstance(node, CommentedSeq):
        try:
            return int(node.lc.item(index)[0]) + 1
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return node_line(node)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def parse_duration(value: Any) -> float | None:
    """Seconds from 90, "90s", "5m", "1h" or "1d"; None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


@dataclass
class Problems:
    """Collects problems for one file; raise them all at once with `check()`."""

    file: str
    found: list[Problem] = field(default_factory=list)

    def add(self, line: int | None, path: str, text: str) -> None:
        self.found.append(Problem(self.file, line, path, text))

    def check(self) -> None:
        if self.found:
            raise ConfigError(self.found)


@dataclass
class Section:
    """A mapping in a YAML file, with its dotted path for messages."""

    node: Any
    path: str
    problems: Problems

    def line(self, key: str | None = None) -> int | None:
        return key_line(self.node, key) if key is not None else node_line(self.node)

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, text: str) -> None:
        self.problems.add(self.line(key), self.where(key) if key else self.path, text)

    def is_mapping(self) -> bool:
        if isinstance(self.node, Mapping):
            return True
        self.problems.add(node_line(self.node), self.path, f"should be a mapping, got {kind_of(self.node)}")
        return False

    def allow(self, *keys: str) -> None:
        """Report every key that is not one of `keys` (typos must not pass silently)."""
        if not isinstance(self.node, Mapping):
            return
        for key in self.node:
            if key not in keys:
                hint = ", ".join(keys)
                self.error(str(key), f"unknown key; expected one of: {hint}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.node.get(key, default) if isinstance(self.node, Mapping) else default

    def sub(self, key: str) -> Section:
        return Section(self.get(key), self.where(key), self.problems)

    def items(self) -> Iterator[tuple[str, Section]]:
        if not isinstance(self.node, Mapping):
            return
        for key in self.node:
            yield str(key), self.sub(key)

    def string(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(key)
        if value is None:
            if required:
                self.error(key, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(key, f"should be a non-empty text, got {kind_of(value)}")
            return default
        return value

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int | None:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(key, f"should be a whole number of at least {minimum}, got {value!r}")
            return default
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            self.error(key, f'should be a duration such as 30s, 5m, 1h or 1d, got {value!r}')
            return default
        return seconds

    def identifier(self, key: str) -> bool:
        if _ID.match(key):
            return True
        self.error(key, "should be lower-case letters, digits, '-' or '_' (it is used in commands and URLs)")
        return False


def kind_of(value: Any) -> str:
    """What a YAML value is, in words for an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (yes/no)"
    return repr(value)


_SAMPLE_HOSTS = ("example.com", "example.org", "example.net")


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


def parse_secret(parent: Section, key: str) -> Secret | None:
    """`parent[key]` as {env: NAME}, {credential: NAME} or {file: PATH}; a plain text is refused.

    The one reader of secrets, for channels and feeds alike. A secret that is set
    but still holds a documentation sample ("changeme") is a problem at load, so
    the daemon refuses it exactly as `statusd check` does.
    """
    value = parent.get(key)
    if isinstance(value, str):
        parent.error(
            key, "secrets are never written in statusd.yaml; use {env: VARIABLE}, {credential: NAME} or {file: PATH}")
        return None
    if not isinstance(value, Mapping) or len(value) != 1:
        parent.error(key, "should be one of {env: VARIABLE}, {credential: NAME} or {file: PATH}")
        return None
    section = parent.sub(key)
    section.allow("env", "credential", "file")
    source, ref = next(iter(value.items()))
    if not (source in ("env", "credential", "file") and isinstance(ref, str) and ref):
        return None
    secret = Secret(str(source), ref)
    if (secret.read() or "").lower() in SAMPLE_SECRETS:
        parent.error(key, f"{secret.describe()} holds a sample value; set the real secret")
    return secret
