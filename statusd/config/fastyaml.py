"""A fast path for reading the config's YAML: libyaml's C parser, ruamel's values and lines.

ruamel's round-trip loader, in pure Python, takes most of a command's time on a
config with hundreds of sites (0.7 s for 500 here; libyaml parses it in 30 ms).
This reads the parser's events into plain dicts and lists that remember their
lines as ruamel's commented maps do, resolving plain scalars with ruamel's own
YAML 1.2 resolver, so every value, line and message stays the same. Whatever it
does not build exactly as ruamel would (a float, a tag, an anchor, a
| or > block, a duplicate key, a syntax error) makes it give up, and ruamel reads the file.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

try:  # PyYAML built with libyaml; without it ruamel reads every file
    import yaml  # type: ignore[import-untyped]

    CParser = yaml.CBaseLoader  # libyaml's parser, nothing resolved or built: only its events
except (ImportError, AttributeError):  # pragma: no cover - the wheels on PyPI carry libyaml
    CParser = None

_RESOLVER = VersionedResolver(version=(1, 2))
# ruamel's YAML 1.2 table of implicit resolvers (first character → (tag, pattern)), looked up
# directly: its resolve() works out the version again for every scalar, most of a parse's time.
_TABLE: dict[Any, list[tuple[str, Any]]] = _RESOLVER.versioned_resolver
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# A status file's `at:` stamps are timestamps: built by ruamel's own round-trip constructor.
_CONSTRUCTOR = RoundTripConstructor()
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_BOOLS = {"true": True, "false": False}


class LinedMap(dict[Any, Any]):
    """A mapping that knows the line it starts on and the line of each key (0-based, as ruamel)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class LinedList(list[Any]):
    """A sequence that knows the line it starts on and the line of each item (0-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _GiveUp(Exception):
    """The document holds something only ruamel builds exactly."""


_DISPUTED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def loads(text: str) -> tuple[bool, Any]:
    """(True, the document) when this path can read `text` as ruamel would; (False, None) if not."""
    # Where YAML parsers disagree (libyaml takes `a: [0\t0]` and a tab after `a:` that ruamel
    # refuses; NEL, LS and PS break lines for one and not the other; CR, BOM): any of those,
    # or any other control character, and ruamel reads the file, as it reads everything else.
    if CParser is None or disputed(text):
        return False, None
    parser = CParser(text)
    try:
        return True, _document(parser)
    except (_GiveUp, yaml.YAMLError):
        return False, None
    finally:
        parser.dispose()


def disputed(text: str) -> bool:
    """Whether `text` holds what libyaml and ruamel may read differently (a directive, a control character)."""
    return "%YAML" in text or _DISPUTED.search(text) is not None


def _document(parser: Any) -> Any:
    parser.get_event()  # StreamStart
    if isinstance(parser.peek_event(), yaml.StreamEndEvent):
        return None  # an empty file, as ruamel reads it
    parser.get_event()  # DocumentStart
    value = _value(parser)
    parser.get_event()  # DocumentEnd
    if not isinstance(parser.get_event(), yaml.StreamEndEvent):
        raise _GiveUp  # a second document: ruamel's error
    return value


def _value(parser: Any) -> Any:
    event = parser.get_event()
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
        raise _GiveUp
    if isinstance(event, yaml.ScalarEvent):
        return _scalar(event)
    if event.tag is not None:
        raise _GiveUp
    if isinstance(event, yaml.MappingStartEvent):
        return _mapping(parser, event.start_mark.line)
    if isinstance(event, yaml.SequenceStartEvent):
        return _sequence(parser, event.start_mark.line)
    raise _GiveUp


def _scalar(event: Any) -> Any:
    if event.tag is not None:
        raise _GiveUp
    if event.style in ("'", '"'):  # quoted: a string (plain is "" or None)
        return event.value
    if event.style:
        raise _GiveUp  # a | or > block: ruamel's own string types
    tag = _resolve(event.value)
    if tag == _STR:
        return event.value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool" and event.value.lower() in _BOOLS:
        return _BOOLS[event.value.lower()]
    if tag == "tag:yaml.org,2002:int" and _PLAIN_INT.fullmatch(event.value):
        return int(event.value)  # ruamel keeps a 0 as its ScalarInt, which only writing back tells apart
    if tag == _TIMESTAMP:
        return _CONSTRUCTOR.construct_yaml_timestamp(ScalarNode(tag, event.value))
    raise _GiveUp  # floats, octal and hex numbers, merge keys: ruamel's own types


def _resolve(value: str) -> str:
    """The tag ruamel's resolver gives a plain scalar `value` (as VersionedResolver.resolve)."""
    for tag, pattern in [*_TABLE.get(value[0] if value else "", ()), *_TABLE.get(None, ())]:
        if pattern.match(value):
            return str(tag)
    return _STR


def _mapping(parser: Any, line: int) -> LinedMap:
    node = LinedMap(line)
    while not isinstance(event := parser.peek_event(), yaml.MappingEndEvent):
        key_line = event.start_mark.line
        key = _value(parser)
        if isinstance(key, (dict, list)) or key in node:
            raise _GiveUp  # ruamel refuses duplicate keys with its own message
        node[key] = _value(parser)
        node.key_lines[key] = key_line
    parser.get_event()
    return node


def _sequence(parser: Any, line: int) -> LinedList:
    node = LinedList(line)
    while not isinstance(event := parser.peek_event(), yaml.SequenceEndEvent):
        node.item_lines.append(event.start_mark.line)
        node.append(_value(parser))
    parser.get_event()
    return node
