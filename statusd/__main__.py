"""Command line entry point: `statusd run|set|preview|show|history|check`."""

from __future__ import annotations

import sys

from statusd.commands import main as _main


def main() -> None:
    sys.exit(_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
