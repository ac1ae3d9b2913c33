"""Where a daemon or a command finds its files: flags, then environment, then defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: paths are read before the config is
    from statusd.config.load import Config


def config_path(flag: str | None) -> Path:
    """--config, else $STATUSD_CONFIG, else ./statusd.yaml."""
    return Path(flag or os.environ.get("STATUSD_CONFIG") or "statusd.yaml")


def state_dir(flag: str | None, config: Config) -> Path:
    """--state-dir, else $STATUSD_STATE_DIR, else systemd's $STATE_DIRECTORY, else the config's, else ./state."""
    chosen = flag or os.environ.get("STATUSD_STATE_DIR") or os.environ.get("STATE_DIRECTORY")
    if chosen:
        return Path(chosen.split(":")[0])
    return config.state_dir or Path("state")


def port(flag: int | None, config: Config) -> int:
    """--port, else $STATUSD_PORT, else the config's listen.port."""
    if flag is not None:
        return flag
    env = os.environ.get("STATUSD_PORT")
    return int(env) if env and env.isdigit() else config.port


def ops_port(flag: int | None, config: Config) -> int:
    """--ops-port, else $STATUSD_OPS_PORT, else the config's ops.listen port (default 9108)."""
    if flag is not None:
        return flag
    env = os.environ.get("STATUSD_OPS_PORT")
    return int(env) if env and env.isdigit() else config.ops_port


def store_path(state: Path) -> Path:
    return state / "statusd.db"
