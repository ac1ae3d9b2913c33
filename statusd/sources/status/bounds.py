"""status.yaml bounded before it is parsed, and its tree bounded before it is checked.

Whoever can write the status directory can point status.yaml anywhere: at a
FIFO (a reader would wait for ever), at /dev/zero (for ever and out of memory),
at a credential file (its lines would end up in an error). So the file must be
a regular file inside its own directory and under a size limit; its YAML is
parsed here with every error reduced to a line, a column and a short reason,
and the tree is walked once, iteratively, to refuse what no status file holds
(deep nesting, huge numbers, invalid text) before anything builds on it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, MarkedYAMLFutureWarning

from statusd.config import fastyaml
from statusd.config.reader import key_line
from statusd.errors import ConfigError, Problem
from statusd.sources.status.text import bad_char, field

MAX_BYTES = 256 * 1024
# site → services → service → message → language: a status file is never deeper.
MAX_DEPTH = 8
# Counted with repetitions, so YAML aliases ("billion laughs") are bounded too.
MAX_NODES = 20_000
MAX_BITS = 64
_SCALARS = (str, int, float, bool, datetime, date, type(None))


def read_text(path: Path, limit: int = MAX_BYTES) -> str:
    """The whole text of `path`, refused unless it is a regular file beside its name, under `limit` bytes."""
    real = Path(os.path.realpath(path))
    home = Path(os.path.realpath(path.parent))
    if home != real.parent and home not in real.parents:
        _refuse(path, "is a symbolic link out of its directory; point it at a file in "
                f"{home}, or set status_file to the file itself")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        _refuse(path, "file not found")
    except OSError as err:
        _refuse(path, f"cannot be read ({err.strerror or type(err).__name__})")
    try:
        data = _read_regular(path, fd, limit)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        _refuse(path, f"cannot be read as text: it is not UTF-8 (byte {err.start + 1}); save it as UTF-8")


def _read_regular(path: Path, fd: int, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        _refuse(path, f"is {_kind(info.st_mode)}, not a file; status.yaml must be a plain file")
    if info.st_size > limit:
        _refuse(path, f"is {info.st_size:,} bytes; a status file is at most {limit:,}")
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        _refuse(path, f"grew past {limit:,} bytes while being read; a status file is at most {limit:,}")
    return b"".join(chunks)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _refuse(path: Path, text: str) -> NoReturn:
    raise ConfigError([Problem(str(path), None, "", text)])


def parse_yaml(text: str, name: str) -> Any:
    """Round-trip nodes (which know their lines) from YAML text, or ConfigError: see `parse_counted`."""
    return parse_counted(text, name)[0]


def parse_counted(text: str, name: str) -> tuple[Any, int]:
    """Round-trip nodes (which know their lines) from YAML text, or ConfigError with line and column.

    The reason is ruamel's own short wording, clipped: never the snippet of the
    file that ruamel puts in its full message. libyaml's fast path reads what it
    reads exactly as ruamel would (see config/fastyaml.py), ruamel the rest.
    """
    try:
        done, node = fastyaml.loads(text)
    except RecursionError:
        done = False  # nested deeper than Python's stack: ruamel reads it, and the check refuses it
    except UnicodeEncodeError:
        done = False  # a lone surrogate (text from no file) libyaml cannot take: ruamel refuses it
    try:
        if not done:
            node = YAML(typ="rt").load(text)
    except (MarkedYAMLError, MarkedYAMLFutureWarning) as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = clip(err.problem or err.context or "")
        raise ConfigError([Problem(name, line, "", f"invalid YAML: {what}", column)]) from None
    except RecursionError:
        raise ConfigError([Problem(name, None, "", "is nested too deeply to be a status file")]) from None
    except Exception as err:  # ruamel raises a few unmarked errors; their text quotes the file
        raise ConfigError([Problem(name, None, "", f"invalid YAML ({type(err).__name__})")]) from None
    return node, check_tree(node, name)


def check_tree(root: Any, name: str) -> int:
    """Refuse a tree no status file has, each problem with its line: before any check builds on it.

    Returns how many values it holds (the root included).
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, int, int | None, str]] = [(root, 0, 1, "")]
    visited = 0
    while stack and len(problems) < 20:
        node, depth, line, where = stack.pop()
        visited += 1
        if visited > MAX_NODES:
            problems.append(Problem(name, None, "", f"holds over {MAX_NODES:,} values; a status file lists sites"))
            break
        if depth > MAX_DEPTH:
            problems.append(Problem(name, line, where, "is nested too deeply for a status file"))
            continue
        if isinstance(node, Mapping):
            for key, value in node.items():
                key_problem = _scalar(key)
                at = key_line(node, key)
                if key_problem:
                    problems.append(Problem(name, at, where, f"a key {key_problem}"))
                    continue
                stack.append((value, depth + 1, at, f"{where}.{field(key)}" if where else field(key)))
        elif isinstance(node, list):
            stack.extend((item, depth + 1, line, f"{where}[{i}]") for i, item in enumerate(node))
        else:
            scalar_problem = _scalar(node)
            if scalar_problem:
                problems.append(Problem(name, line, where, scalar_problem))
    if problems:
        raise ConfigError(problems)
    return visited


def _scalar(value: Any) -> str | None:
    if isinstance(value, (Mapping, list)):
        return "should be a plain value, not a mapping or a list"
    if not isinstance(value, _SCALARS):
        return f"is a YAML {type(value).__name__}, which a status file never holds"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_BITS:
        return "is a number far too large for a status file"
    if isinstance(value, str):
        return bad_char(value)
    return None


def clip(text: str) -> str:
    """ruamel's reason, which may quote a character or a word: printable, short, never a value."""
    text = text.split(" with value ", 1)[0]  # a duplicate key's message goes on to quote both values
    clean = "".join(c if c.isprintable() else "?" for c in text[:81])
    return clean if len(clean) <= 80 else clean[:80] + "…"


def signature(path: Path) -> tuple[int, int, int] | None:
    """The file's inode, size and last change in ns (None if it is missing): what a change alters.

    The later of its modification and its status change: a file copied in with its old
    times (`cp -p`, a restore) keeps an old mtime, but its ctime says when it came.
    """
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, max(info.st_mtime_ns, info.st_ctime_ns)
