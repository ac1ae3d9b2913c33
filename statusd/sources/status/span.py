"""Where one site's block lies in status.yaml's text, so that `statusd set` rewrites only that block.

ruamel's round trip of a whole file of 500 sites takes most of half a second;
the same round trip of one site's lines takes a millisecond. libyaml's parser
(the fast path of config/fastyaml.py) finds the lines: the site's key at the
start of a line of a block mapping, up to the next site's key. Whatever could
make the block read differently on its own (an anchor or alias anywhere, a
tag, a directive, a document marker, a duplicate site, a flow mapping, the
characters parsers disagree on) gives up, and the whole file goes through ruamel.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from statusd.config import fastyaml
from statusd.config.fastyaml import CParser

__all__ = ["Span", "find"]

if CParser is not None:
    import yaml  # type: ignore[import-untyped]


class Span(NamedTuple):
    """The text before the site's block, the block (its key's line up to the next site's key), and after."""

    before: str
    block: str
    after: str


def find(text: str, site: str) -> Span | None:
    """The block of `site` in `text`, or None when only a round trip of the whole file is safe."""
    if CParser is None or fastyaml.disputed(text):
        return None
    parser = CParser(text)
    try:
        starts = _top_keys(parser)
    except (_GiveUp, yaml.YAMLError, RecursionError):
        return None
    finally:
        parser.dispose()
    if starts is None or site not in starts:
        return None
    line, mapping = starts[site]
    if not mapping:
        return None  # `main: closed` or a flow mapping: the whole file's round trip decides
    offsets = [0, *(m.end() for m in re.finditer("\n", text))]  # line starts: "\n" is the only break left
    later = sorted(n for n, _ in starts.values() if n > line)
    begin, end = offsets[line], offsets[later[0]] if later else len(text)
    return Span(text[:begin], text[begin:end], text[end:])


class _GiveUp(Exception):
    """The document holds something that a block read alone could read differently."""


def _top_keys(parser: Any) -> dict[str, tuple[int, bool]] | None:
    """Each top-level key → (its line, 0-based, and whether its value is a block mapping)."""
    parser.get_event()  # StreamStart
    if isinstance(parser.peek_event(), yaml.StreamEndEvent):
        return None
    start = parser.get_event()
    root = parser.get_event()
    if start.explicit or start.version or start.tags or not isinstance(root, yaml.MappingStartEvent) \
            or root.flow_style or root.anchor or root.tag:
        raise _GiveUp
    keys: dict[str, tuple[int, bool]] = {}
    while not isinstance(parser.peek_event(), yaml.MappingEndEvent):
        key = parser.get_event()
        if not isinstance(key, yaml.ScalarEvent) or key.anchor or key.tag or key.start_mark.column != 0 \
                or key.value in keys or key.style not in (None, "", "'", '"'):
            raise _GiveUp
        value = parser.peek_event()
        mapping = isinstance(value, yaml.MappingStartEvent) and not value.flow_style
        _skip(parser)
        keys[key.value] = (key.start_mark.line, mapping)
    parser.get_event()  # MappingEnd
    parser.get_event()  # DocumentEnd
    if not isinstance(parser.get_event(), yaml.StreamEndEvent):
        raise _GiveUp  # a second document
    return keys


def _skip(parser: Any) -> None:
    """Pass over one value, refusing anchors, aliases and tags anywhere in it."""
    depth = 0
    while True:
        event = parser.get_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) or getattr(event, "tag", None):
            raise _GiveUp
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if depth == 0:
            return
