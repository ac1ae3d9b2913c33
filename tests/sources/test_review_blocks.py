"""Hostile cases for the block-by-block read: each must say what the whole read says."""

from __future__ import annotations

import pytest

from statusd.config.load import Config
from statusd.errors import ConfigError
from statusd.model import Wanted
from statusd.sources.status import file as status_file
from statusd.sources.status.blocks import Blocks

pytestmark = pytest.mark.unit


def outcome(read: object, text: str, config: Config) -> Wanted | list[str]:
    try:
        return read(text, "status.yaml", config)  # type: ignore[operator, no-any-return]
    except ConfigError as err:
        return [str(p) for p in err.problems]


CASES = [
    # A block scalar's last line break belongs to the scalar, not to the cut.
    "main:\n  level: closed\n  message: |\n    Flood\nannexe:\n  level: open\n",
    "main:\n  level: closed\n  message: >\n    Flood\nannexe:\n  level: open\n",
    # Kept trailing blank lines, likewise.
    "main:\n  level: closed\n  message: |+\n    Flood\n\nannexe:\n  level: open\n",
    # A quoted scalar that runs on with a line break.
    'main:\n  level: closed\n  message: "Flood\n\n"\nannexe:\n  level: open\n',
]


@pytest.mark.parametrize("text", CASES)
def test_a_first_read_says_what_the_whole_says(config: Config, text: str) -> None:
    assert outcome(Blocks().parse, text, config) == outcome(status_file.parse, text, config)
