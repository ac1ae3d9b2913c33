"""Change one entry of status.yaml: locked, comments kept, checked, written atomically.

The daemon may read the file at any instant and a colleague may run `statusd set`
at the same time, so: one writer at a time (flock on a lock file beside it), the
result is checked exactly as the daemon will read it, and it replaces the old
file in one rename, so a reader sees the old or the new file, never half of one.
A hand edit does not take the lock: the file is read again just before it is
replaced, and when it changed meanwhile the change is made again on top of it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.timestamp import TimeStamp

from statusd import files
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.logs import LazyLogger
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status import bounds, nudge, span, tails
from statusd.sources.status import file as status_file
from statusd.sources.status.lock import COMMAND_WAIT, locked
from statusd.sources.status.replace import ABSENT, write_keeping_mode

__all__ = ["HEADER", "Made", "document", "locked", "make_entry", "set_entry"]

# Lazily: `statusd set` imports this module and must not pay for structlog (issue 15).
log = LazyLogger()

HEADER = "Live status of each site and service. Flip it with `statusd set`, or edit it by hand."
_FIX = "fix it or run `statusd check`; nothing was changed"
Parse = Callable[[str, str, Config], Wanted]  # status_file.parse's shape
_INDENT = re.compile(r"^( +)[^ #\n]", re.MULTILINE)
# How often a change is made again on top of a hand edit that landed meanwhile.
TRIES = 5
SETTLE = 0.1


def set_entry(path: Path, config: Config, target: Target, entry: StatusEntry, lock: bool = True,
              wait: float = COMMAND_WAIT) -> str:
    """Write `entry` for `target` into the status file, keeping everything else as it is; the text's digest.

    Raises UserError (and changes nothing) when the file is broken, when the result
    would not be accepted by the daemon, or when the file cannot be written;
    LockBusy when another writer holds the lock for over `wait` seconds.
    `lock=False` when the caller already holds `locked(path)`.
    """
    real = Path(os.path.realpath(path))  # write through a symlink, never over it
    fields = _fields_for(config, target, entry)
    with locked(real, timeout=wait) if lock else nullcontext():
        files.remove_leftovers(real)  # from a killed writer: under the lock nobody is writing
        for _ in range(TRIES):
            text, new_text = _made(path, real, config, target, entry, fields)
            # A hand edit takes no lock: replace only what was read, else start again from the edit.
            if _read(path, config.status_max_bytes) == text:
                write_keeping_mode(real, new_text)
                break
            log.info("status_file_changed_meanwhile", file=str(real), target=str(target))
            time.sleep(SETTLE)  # an editor may still be writing: let it finish before reading again
        else:
            raise UserError(f"{real} kept changing while {target} was being set (an editor saving "
                            "again and again?); nothing was changed, try again")
    log.info("status_entry_written", target=str(target), to=entry.level.value, file=str(real))
    return nudge.digest(new_text)


class Made(NamedTuple):
    """A change made and checked but not written: the file, the digest of the text it was made from, the text."""

    real: Path
    made_from: str  # replace.ABSENT for a file that did not exist
    text: str


def make_entry(path: Path, config: Config, target: Target, entry: StatusEntry, parse: Parse | None = None) -> Made:
    """The status file's text with `entry` for `target`, checked as set_entry checks it, and not written.

    For a `statusd set` that writes it itself (replace.replace_made), with its own rights.
    `parse`: status_file.parse or one that says the same (blocks.Blocks.parse, for the daemon).
    """
    real = Path(os.path.realpath(path))
    text, new_text = _made(path, real, config, target, entry, _fields_for(config, target, entry),
                           parse or status_file.parse)
    return Made(real, ABSENT if text is None else nudge.digest(text), new_text)


def _fields_for(config: Config, target: Target, entry: StatusEntry) -> dict[str, Any]:
    site = config.sites.get(target.site)
    if site is None or (target.service is not None and target.service not in site.services):
        raise UserError(f"unknown target {str(target)!r} in {config.path}; nothing was changed")
    return _fields(entry, config, site.tz)


def _made(path: Path, real: Path, config: Config, target: Target, entry: StatusEntry,
          fields: dict[str, Any], parse: Parse = status_file.parse) -> tuple[str | None, str]:
    """The file's text now, and the text with the change; refused (UserError) if it would not be accepted."""
    text = _read(path, config.status_max_bytes)
    new_text = _change(real, text, target, fields)
    _verify(real, new_text, config, target, entry, parse)
    if len(new_text.encode("utf-8")) > config.status_max_bytes:
        raise UserError(f"{real} would grow past {config.status_max_bytes:,} bytes (status_max_bytes), "
                        "which the daemon refuses; remove old entries or comments; nothing was changed")
    return text, new_text


def document(config: Config, entries: Mapping[Target, StatusEntry]) -> str:
    """These entries alone in a status document, as this module writes them (for the wanted rows)."""
    doc = CommentedMap()
    for target, entry in entries.items():
        _apply(doc, target, _fields(entry, config, config.sites[target.site].tz))
    return _dump(doc, None)


def _change(path: Path, text: str | None, target: Target, fields: dict[str, Any]) -> str:
    """The new text: only the site's own block round-trips through ruamel when that is safe (span.py)."""
    found = span.find(text, target.site) if text else None
    doc = _load(path, found.block if found else text)
    _apply(doc, target, fields)
    if found is None:
        return _dump(doc, text)
    return found.before + _dump(doc, text, start=False) + found.after


def _read(path: Path, limit: int) -> str | None:
    """The file's text as the daemon would read it (bounded, a plain file); None if there is none."""
    if not os.path.lexists(path):
        return None
    try:
        return bounds.read_text(path, limit)
    except ConfigError as err:
        raise UserError(f"{err.problems[0]}; nothing was changed") from None


def _yaml(text: str | None) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap anybody's long lines
    match = _INDENT.search(text or "")
    indent = len(match.group(1)) if match else 2
    yaml.indent(mapping=indent, sequence=indent + 2, offset=indent)
    yaml.explicit_start = bool(text and text.lstrip().startswith("---"))
    return yaml


def _load(path: Path, text: str | None) -> CommentedMap:
    if text is None:
        doc = CommentedMap()
        doc.yaml_set_start_comment(HEADER)
        return doc
    try:
        doc = _yaml(text).load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}{where} is broken ({bounds.clip(err.problem or err.context or '')}); "
                        f"{_FIX}") from err
    except Exception as err:  # ruamel raises a few unmarked errors; their text quotes the file
        raise UserError(f"{path} is broken ({type(err).__name__}); {_FIX}") from err
    if doc is None:
        raise UserError(
            f"{path} holds no status (a truncated write?); restore it, or delete it to start afresh"
        )
    if not isinstance(doc, CommentedMap):
        raise UserError(f"{path} should be a mapping of site to status; {_FIX}")
    return doc


def _fields(entry: StatusEntry, config: Config, tz: ZoneInfo) -> dict[str, Any]:
    """The keys to write, in the order people read them; empty ones are left out."""
    fields: dict[str, Any] = {"level": entry.level.value}
    if entry.message:
        fields["message"] = _message(entry.message, config)
    if entry.starts is not None:
        fields["from"] = status_file.show(entry.starts.astimezone(tz))
    if entry.until is not None:
        fields["until"] = status_file.show(entry.until.astimezone(tz))
    if entry.by:
        fields["by"] = entry.by
    if entry.at is not None:
        fields["at"] = _timestamp(entry.at.astimezone(tz))
    return fields


def _message(message: Mapping[str, str], config: Config) -> Any:
    if list(message) == [config.default_language]:
        return message[config.default_language]  # a plain text is the default language
    texts = CommentedMap()
    order = [lang for lang in config.languages if lang in message]
    for lang in order + [lang for lang in message if lang not in order]:
        texts[lang] = message[lang]
    return texts


def _timestamp(moment: datetime) -> TimeStamp:
    """ISO 8601 with its offset, written unquoted as YAML reads it back."""
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    name = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    # Microseconds kept: two updates within one second must keep their own authors (rules._author).
    stamp = TimeStamp(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                      moment.second, moment.microsecond, tzinfo=timezone(offset, name))
    stamp._yaml["t"] = True  # "T" between date and time, as in the ISO form
    return stamp


def _apply(doc: CommentedMap, target: Target, fields: dict[str, Any]) -> None:
    # Comments after an entry are stored on its last key; they belong to what follows.
    scoped = isinstance(doc.get(target.site), CommentedMap)
    tail = tails.detach_tail(doc[target.site] if scoped else doc)
    node = _mapping_at(doc, target.site)
    if target.service is not None:
        node = _mapping_at(_mapping_at(node, "services"), target.service)
    _update(node, fields)
    tails.attach_tail(doc[target.site] if scoped else doc, tail)


def _mapping_at(parent: CommentedMap, key: str) -> CommentedMap:
    node = parent.get(key)
    if not isinstance(node, CommentedMap):
        node = CommentedMap()
        parent[key] = node
    return node


def _update(node: CommentedMap, fields: dict[str, Any]) -> None:
    """Replace the entry keys of `node` in place, so other keys keep their place and comments."""
    for key in status_file.ENTRY_KEYS:
        if key in node and key not in fields:
            del node[key]
            node.ca.items.pop(key, None)
    position = 0
    for key, value in fields.items():
        if key in node:
            node[key] = value
            position = max(position, list(node).index(key) + 1)
        else:
            node.insert(position, key, value)
            position += 1


def _dump(doc: CommentedMap, original: str | None, start: bool = True) -> str:
    """`doc` written in the style (indentation, `---`) of `original`; `start=False`: never a `---`."""
    out = StringIO()
    yaml = _yaml(original)
    yaml.explicit_start = yaml.explicit_start and start
    yaml.dump(doc, out)
    return out.getvalue()


def _verify(path: Path, text: str, config: Config, target: Target, entry: StatusEntry, parse: Parse) -> None:
    """Refuse to write what the daemon would reject or read differently."""
    try:
        wanted = parse(text, str(path), config)
    except ConfigError as err:
        first = err.problems[0]
        if first.file == str(config.path):
            raise  # statusd.yaml's (a site's block read only now, config/scoped.py): a config error
        where = f"line {first.line}, " if first.line else ""
        field = f"{first.field}: " if first.field else ""
        reason = f"{where}{field}{first.text}"
        raise UserError(f"{path} would not be accepted ({reason}); {_FIX}") from err
    expected = replace(
        entry,
        starts=entry.starts and entry.starts.replace(microsecond=0),
        until=entry.until and entry.until.replace(microsecond=0),
        by=entry.by or None,
    )
    if wanted.get(target) != expected:
        raise UserError(
            f"the entry for {target} would read back differently from what was asked; "
            "nothing was changed"
        )
