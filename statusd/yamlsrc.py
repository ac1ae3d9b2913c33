"""Read YAML with the line of every key, so errors can point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from statusd.errors import ConfigError, Problem


def load(path: Path) -> Any:
    """Parse `path` into ruamel's commented maps (which remember lines).

    Raises ConfigError with the line and column of a syntax error, or when the
    file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(str(path), None, "", "is a directory, not a file")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([Problem(str(path), None, "", f"cannot be read ({err})")]) from err
    return loads(text, str(path))


def loads(text: str, name: str) -> Any:
    """Parse YAML text; `name` is used in error messages."""
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
    if isinstance(node, CommentedMap):
        try:
            return int(node.lc.key(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            pass
    return node_line(node)


def node_line(node: Any) -> int | None:
    """1-based line where a mapping or sequence node starts, if known."""
    if isinstance(node, (CommentedMap, CommentedSeq)):
        try:
            return int(node.lc.line) + 1
        except (TypeError, AttributeError):
            return None
    return None


def item_line(node: Any, index: int) -> int | None:
    """1-based line of item `index` of a sequence node, if known."""
    if isinstance(node, CommentedSeq):
        try:
            return int(node.lc.item(index)[0]) + 1
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return node_line(node)
