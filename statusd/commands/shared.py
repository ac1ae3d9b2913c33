"""What every subcommand shares: the options it accepts after its name, and loading the config."""

from __future__ import annotations

import argparse

from statusd import loading, paths
from statusd.config.load import Config


def load_config(args: argparse.Namespace) -> Config:
    """statusd.yaml as --config, $STATUSD_CONFIG or ./statusd.yaml names it, checked."""
    return loading.load(paths.config_path(args.config))


def common(command: argparse.ArgumentParser) -> None:
    """Options every command accepts after its name too."""
    command.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    command.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
