"""Command line entry point: `statusd run|set|preview|show|history|check`."""

from __future__ import annotations

import os
import sys

from statusd.commands import main as _main
from statusd.commands import shared


def main() -> None:
    try:
        code = _main(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:
        # `statusd history | head`: the reader has gone, which is no error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    if shared.done_with_everything:
        # Nothing is left to close or flush (the command said so): the interpreter's own
        # teardown of every imported module is 10 ms of a desk flip's time (issue 15).
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
