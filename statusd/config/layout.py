"""Where each top-level section, and each site of `sites:`, lies in statusd.yaml's text, found without parsing it.

`statusd set` needs one site, the languages and the status file's place; on a
config of 500 sites and 128 channels, parsing the whole file is most of its
time (libyaml alone takes 20 ms to hand over its 20,000 events). The layout is
found from the lines themselves: a top-level key starts a line at column 0 and
a site's key starts a line at the sites' own indentation, because YAML ends
a plain or block scalar, and a block mapping, at a line indented that little.
Only a quoted scalar or a flow collection can run over such a line, so every
line that holds a quote or a bracket must close what it opens (`_closes`);
anything else the lines cannot vouch for (a tab, a directive, `---`, a
complex key, a duplicate key, a flow-style `sites:`) gives up, and the whole
file is parsed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from statusd.config import fastyaml

__all__ = ["Layout", "Span", "find", "keep"]

# A quoted scalar closed on its line; a quote, bracket or `#` alone; any run of other characters.
_TOKENS = re.compile(r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*')|["'\[\]{}#]|[^"'\[\]{}#]+""")
_OPENER = re.compile(r"""["'\[{]""")
_TOP = re.compile(r"\n([^ #\n].*)")  # lines at column 0 but comments and blank ones (after a break: fast)
_TOP_KEY = re.compile(r"([a-z_]+) *:(?: +(.*))?")
_MAX_LINE = 1000  # longer lines are not worth the regex's time: the whole file is parsed


# Named tuples, not dataclasses: a thousand of them for a large file, made as fast as tuples, and
# their classes without the dataclass machinery's code generation at every command's start.
class Span(NamedTuple):
    """Where a section or a site's block lies: its first line (0-based), and its text's offsets."""

    line: int
    begin: int
    end: int


class Layout(NamedTuple):
    """Each top-level section and each site's block, and the channels' names."""

    sections: dict[str, Span]
    sites: dict[str, Span]
    channels: tuple[str, ...]


def find(text: str) -> Layout | None:
    """The layout of `text`, or None when only parsing the whole file is safe."""
    if fastyaml.disputed(text) or not _closed(text):
        return None
    sections = _keys(text, _TOP, _TOP_KEY, 0, len(text), 0)
    if sections is None:
        return None
    for name in ("sites", "channels"):
        if name in sections and sections[name][1]:
            return None  # `sites: {…}` or a scalar: the parse decides
    spans = _spans({k: v[0] for k, v in sections.items()}, len(text), text)
    sites = _children(text, spans.get("sites"), blocks_only=True)
    channels = _children(text, spans.get("channels"), blocks_only=False)
    if sites is None or channels is None:
        return None
    return Layout(spans, sites, tuple(channels))


def keep(text: str, spans: list[Span]) -> str:
    """`text` with everything outside `spans` blanked to its line breaks, so that lines keep their numbers."""
    out, at = [], 0
    for span in sorted(spans, key=lambda s: s.begin):
        out.append("\n" * text.count("\n", at, span.begin))
        out.append(text[span.begin:span.end])
        at = span.end
    out.append("\n" * text.count("\n", at))
    return "".join(out)


def _keys(text: str, lines: re.Pattern[str], key: re.Pattern[str], begin: int, end: int,
          first_line: int) -> dict[str, tuple[Span, bool]] | None:
    """Each key line `lines` finds between `begin` and `end` → (its span's start, whether a value follows it)."""
    found: dict[str, tuple[Span, bool]] = {}
    line, at = first_line, begin
    # The patterns start at a line break (a fast search): the text's first line is looked at alone.
    first = lines.match("\n" + text[:_end_of_line(text, 0)]) if begin == 0 else None
    for match in ([first] if first else []) + list(lines.finditer(text, begin, end)):
        parsed = key.fullmatch(match.group(1))
        if parsed is None or parsed.group(1) in found:
            return None  # `---`, `? key`, a quoted or duplicate key, a continuation line, a shallower line
        start = 0 if match is first else match.start(1)
        line += text.count("\n", at, start)
        at = start
        value = bool(parsed.group(2)) and not parsed.group(2).startswith("#")
        found[parsed.group(1)] = (Span(line, at, -1), value)
    return found


def _spans(starts: dict[str, Span], end: int, text: str) -> dict[str, Span]:
    """Each key's span runs to the next key's line (comments above a key go with the one before)."""
    ordered = list(starts.items())
    stops = [span.begin for _, span in ordered[1:]] + [end]
    return {name: Span(span.line, span.begin, stop) for (name, span), stop in zip(ordered, stops, strict=True)}


def _closed(text: str) -> bool:
    """Whether every quote and bracket closes on its line, or on the lines below it indented deeper.

    Those deeper lines are read as one (their breaks as spaces): they cannot hold a
    key of the mappings split here, which sit no deeper than the line that opened.
    """
    at = 0
    for opener in _OPENER.finditer(text):
        if opener.start() < at:
            continue  # on a line already read
        begin = text.rfind("\n", 0, opener.start()) + 1
        end = _end_of_line(text, opener.start())
        at = end
        if end - begin > _MAX_LINE:
            return False  # not worth the regex's time
        if _closes(text[begin:end]):
            continue
        line = text[begin:end]
        indent = len(line) - len(line.lstrip(" "))
        deeper = re.compile(rf"(?:\n {{{indent + 1},}}[^ \n][^\n]*)*").match(text, end)
        assert deeper is not None  # it matches the empty string at least
        if not deeper.group() or not _closes(re.sub(r"\n +", " ", line + deeper.group())):
            return False
        at = deeper.end()
    return True


def _closes(line: str) -> bool:
    """Whether `line` closes every quoted scalar and flow collection it opens (False when unsure).

    A quote or a bracket opens something only where a value starts: at the line's
    start, after `- `, `? ` or `: `, or inside a flow collection after `[`, `{` or `,`;
    elsewhere it is a plain scalar's character (`d'art`). A quoted scalar met
    where no value starts is not told apart from plain text here: unsure.
    """
    depth, previous, spaced, quoted = 0, "", True, False
    for token in _TOKENS.finditer(line):
        text = token.group()
        if quoted and text.lstrip(" ")[:1] not in ("", ":", ",", "]", "}", "#"):
            return False  # more after a quoted scalar (`'L'annexe`): not what it seems
        starts = previous == "" or (previous in "[{," and depth > 0) or (previous in "-?:" and spaced)
        quoted = text[0] in "\"'" and len(text) > 1
        if text[0] in "\"'":
            if len(text) == 1:
                if starts:
                    return False  # opened, not closed on this line
            elif not starts:
                return False  # a quoted scalar, or plain text with two quotes: unsure
        elif text == "#":
            if spaced:
                break  # a comment
        elif text in "[{":
            depth += depth > 0 or starts
        elif text in "]}":
            if depth > 0:
                depth -= 1
        last = text.rstrip(" ")
        if last:
            previous, spaced = last[-1], last != text
        else:
            spaced = True
    return depth == 0


def _end_of_line(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def _children(text: str, section: Span | None, blocks_only: bool) -> dict[str, Span] | None:
    """The keys of a top-level block mapping and their spans; None when the lines cannot tell."""
    if section is None:
        return {}
    begin = _end_of_line(text, section.begin)  # the section's key line's break
    first = re.compile(r"\n( +)[^ #\n]").search(text, begin, section.end)
    if first is None:
        return {}
    indent = len(first.group(1))
    # Every line indented no deeper than the children's own, but comments and blank ones.
    shallow = re.compile(rf"\n( {{0,{indent}}}(?=[^ #\n]).*)")
    key = re.compile(rf" {{{indent}}}([a-z0-9][a-z0-9_-]*) *:(?: +(.*))?")
    found = _keys(text, shallow, key, begin, section.end, section.line)
    if found is None or (blocks_only and any(value for _, value in found.values())):
        return None  # `main: {…}` or `main: closed`: the parse decides
    return _spans({k: v[0] for k, v in found.items()}, section.end, text)
