"""The command line's parser: argparse, with a mistake told in one sentence, as every refusal is."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

EX_USAGE = 2


def columns() -> int:
    """The terminal's width as shutil.get_terminal_size gives it ($COLUMNS, else the terminal's, else 80)."""
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        width = 0
    if width > 0:
        return width
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class Formatter(argparse.HelpFormatter):
    """argparse's own help layout. argparse makes one of these for every option it adds (to check its
    metavar), and its own asks shutil for the width each time: shutil, bz2 and lzma for every command."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the command and the fix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = ""
        if "expected one argument" in message:
            # `-m "-20 % seats"`: argparse takes a text that begins with '-' for an option.
            hint = "; a text that begins with '-' is written with '=', e.g. -m=\"-20 % seats\""
        sys.stderr.write(f"{self.prog}: {message}{hint} (see `{self.prog} --help`)\n")
        sys.exit(EX_USAGE)
