"""status.yaml read again after a change, checking only the sites whose lines changed.

A desk flip rewrites one site's block of a file that may list hundreds, and the daemon
reads the file again at once: parsing and checking all of it would make its reaction grow
with the number of sites. The file is a mapping of site to status, and each site's entry
is checked on its own (file.py), so a file cut at its top-level keys can be checked block
by block, the unchanged blocks' results kept from the last read.

The cut is a line scan that vouches only for the plain shape people and `statusd set`
write: top-level `key:` lines, everything else indented, blank or a comment. Anything
else (directives, documents, anchors, tags, flow across lines, a duplicate key, any
problem at all) is read whole by file.parse, which reports every problem with its line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from statusd.config.load import Config
from statusd.errors import ConfigError
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status import bounds
from statusd.sources.status import file as status_file

__all__ = ["Blocks", "cut"]

# A plain top-level key, as site ids are written (config/types.py allows no other).
TOP = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_-]*):(?=[ ]|$)")
# Node properties and aliases (`&a`, `*a`, `!tag`) tie one block to another: read whole.
PROPERTY = re.compile(r"(?:^|[\s:\[{,?-])[&*!][^\s]")
# Line breaks YAML or str.splitlines know besides \n, and the byte-order mark: read whole.
ODD = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029\ufeff]")


def cut(text: str) -> list[tuple[str, str]] | None:
    """The top-level (key, block text) pairs of `text`, or None when the scan cannot vouch for them."""
    if ODD.search(text) or PROPERTY.search(text):
        return None
    found: list[tuple[str, str]] = []
    key: str | None = None
    lines: list[str] = []
    # Each line keeps its line break: a block scalar's last break (`|`, `>`) is its value's.
    for line in text.splitlines(keepends=True):
        if line[0] in " #\n":
            if key is None and line.strip() and not line.lstrip().startswith("#"):
                return None  # an indented value before any key
            lines.append(line)
            continue
        top = TOP.match(line)
        if top is None:
            return None  # `---`, `%YAML`, `- `, `? `, a flow at column 0, a quoted key...
        if key is not None:
            found.append((key, "".join(lines)))
            lines = []
        key = top.group(1)
        lines.append(line)  # the first block keeps the comments above it: every character is read
    if key is not None:
        found.append((key, "".join(lines)))
    keys = [k for k, _ in found]
    return found if found and len(set(keys)) == len(keys) else None


# More blocks changed than this (a first read, a file replaced wholesale): one whole read
# is cheaper than as many small ones, and it fills the memory for the next read.
FEW = 8
# A block longer than any site's entry people write: most likely a problem, which only the
# whole read can report, so it is read whole at once rather than once more after its own read.
BIG = 16_384

Known = dict[str, tuple[dict[Target, StatusEntry], int]]  # block text → (its entries, its values)


class Blocks:
    """status_file.parse, remembering each block's entries until the next read."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._known: Known = {}

    def parse(self, text: str, name: str, config: Config) -> Wanted:
        """What `text` asks for, exactly as status_file.parse says (ConfigError likewise)."""
        if config is not self._config:
            self._config, self._known = config, {}
        pieces = cut(text)
        self._known, known = {}, self._known  # kept again only when this read succeeds
        if pieces is None:
            return status_file.parse(text, name, config)
        changed = [block for _, block in pieces if block not in known]
        if len(changed) > FEW or any(len(block) > BIG for block in changed):
            return self._whole(text, name, config, pieces)
        found: Known = {}
        wanted: dict[Target, StatusEntry] = {}
        values = 1  # the whole file's mapping; each block's own is the same one
        for key, block in pieces:
            entry = known.get(block) or self._one(key, block, name, config)
            if entry is None:
                return status_file.parse(text, name, config)  # every problem, with its line
            found[block] = entry
            wanted.update(entry[0])
            values += entry[1] - 1
        if values > bounds.MAX_NODES:
            return status_file.parse(text, name, config)  # which refuses it, as a whole
        self._known = found
        return wanted

    def _whole(self, text: str, name: str, config: Config, pieces: list[tuple[str, str]]) -> Wanted:
        """One whole read, its result remembered block by block when its keys are the cut's."""
        node = status_file.load(text, name)
        wanted = status_file.check(node, name, config)
        if isinstance(node, Mapping) and list(node) == [key for key, _ in pieces]:
            self._known = {block: ({t: e for t, e in wanted.items() if t.site == key}, 1 + _values(node[key]))
                           for key, block in pieces}
        return wanted

    @staticmethod
    def _one(key: str, block: str, name: str, config: Config) -> tuple[dict[Target, StatusEntry], int] | None:
        """One block's entries and values, or None for any problem (the whole file then says which)."""
        try:
            node, values = bounds.parse_counted(block, name)
            if not isinstance(node, Mapping) or list(node) != [key]:
                return None
            return dict(status_file.check(node, name, config)), values
        except ConfigError:
            return None


def _values(node: object) -> int:
    """How many values `node` holds, itself included, as bounds.check_tree counts them."""
    count, stack = 0, [node]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count
