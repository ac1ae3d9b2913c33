"""The command line's parser: argparse, with a mistake told in one sentence, as every refusal is."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EX_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the command and the fix."""

    def error(self, message: str) -> NoReturn:
        hint = ""
        if "expected one argument" in message:
            # `-m "-20 % seats"`: argparse takes a text that begins with '-' for an option.
            hint = "; a text that begins with '-' is written with '=', e.g. -m=\"-20 % seats\""
        sys.stderr.write(f"{self.prog}: {message}{hint} (see `{self.prog} --help`)\n")
        sys.exit(EX_USAGE)
