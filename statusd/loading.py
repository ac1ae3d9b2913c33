"""statusd.yaml read with the channel types' options: the load the daemon and every command call.

`statusd.config` knows no channel: it is handed each type's options here, so the
configuration stage imports nothing from the stages after it, and loading imports
no channel module (no platform client) either.
"""

from __future__ import annotations

from pathlib import Path

from statusd.channels import OPTIONS
from statusd.config import load as config_load
from statusd.config.load import Config


def load(path: Path) -> Config:
    """Load and check `path` against every channel type's options; raise ConfigError listing every problem."""
    return config_load.load(path, OPTIONS)
