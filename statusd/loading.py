"""statusd.yaml read with the real channel registry: the load the daemon and every command call.

`statusd.config` knows no channel: it is handed the registry here, so the
configuration stage imports nothing from the stages after it.
"""

from __future__ import annotations

from pathlib import Path

from statusd.channels import CHANNELS
from statusd.config import load as config_load
from statusd.config.load import Config


def load(path: Path) -> Config:
    """Load and check `path` against every channel type's options; raise ConfigError listing every problem."""
    return config_load.load(path, CHANNELS)
