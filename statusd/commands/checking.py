"""`statusd check`: the config, status.yaml and every template, all problems at once."""

from __future__ import annotations

import argparse

from statusd import config as config_module
from statusd import paths
from statusd.commands import common
from statusd.errors import ConfigError, Problem


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("check", help="validate the config, status.yaml and templates")
    common(command)
    command.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    problems = find_problems(args.config)
    if not problems:
        print("statusd check: config, status file and templates are all right.")
        return 0
    print(f"statusd check: {len(problems)} problem(s):")
    for problem in problems:
        print(f"  {problem}")
    return 1


def find_problems(config_flag: str | None) -> list[Problem | str]:
    """Every problem in the config, then (if it loads) status.yaml and the templates."""
    from statusd.app import build_channels
    from statusd.compose import Composer
    from statusd.sources import status_file

    try:
        config = config_module.load(paths.config_path(config_flag))
    except ConfigError as err:
        return list(err.problems)
    problems: list[Problem | str] = list(config_module.check_secret_values(config))
    try:
        status_file.read(config.status_file, config)
    except ConfigError as err:
        problems.extend(err.problems)
    channels = build_channels(config)
    problems.extend(Composer(config).check(
        (config.channels[name], channel.max_chars, channel.measure) for name, channel in channels.items()
    ))
    return problems
