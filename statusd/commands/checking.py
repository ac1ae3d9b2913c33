"""`statusd check`: the config, status.yaml and every template, all problems at once."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from statusd import loading, paths
from statusd.commands.shared import common
from statusd.errors import ConfigError, Problem

if TYPE_CHECKING:  # the channels are imported by the checks that build them, not by every command
    from statusd.channels.base import Channel


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("check", help="validate the config, status.yaml and templates")
    common(command)
    command.add_argument("--live", action="store_true",
                         help="also log in to every channel and say who it posts as")
    command.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    problems = find_problems(args.config)
    if not problems:
        print("statusd check: config, status file and templates are all right.")
    else:
        print(f"statusd check: {len(problems)} problem(s):")
        for problem in problems:
            print(f"  {problem}")
    live_ok = asyncio.run(_live(args.config, getattr(args, "state_dir", None))) if args.live else True
    return 0 if not problems and live_ok else 1


async def _live(config_flag: str | None, state_flag: str | None = None) -> bool:
    """Ask every platform who each channel posts as; never prints a secret."""
    from statusd.outbox.senders import build_channels

    try:
        config = loading.load(paths.config_path(config_flag))
    except ConfigError:
        return False
    channels = build_channels(config)
    for channel in channels.values():
        if keep := getattr(channel, "keep_sessions", None):
            keep(paths.state_dir(state_flag, config))  # the daemon's login, not a new one per check
    results = await asyncio.gather(*(_whoami(ch) for ch in channels.values()))
    for name, (ok, text) in zip(channels, results):
        print(f"  {name:<16} {'posts as' if ok else 'CANNOT POST:'} {text}")
    for name, reason in config.inactive.items():
        print(f"  {name:<16} {reason}")
    for channel in channels.values():
        await channel.close()
    return all(ok for ok, _ in results)


async def _whoami(channel: Channel) -> tuple[bool, str]:
    from statusd.channels.base import ChannelError

    try:
        await channel.open()
        return True, await channel.whoami()
    except ChannelError as err:
        return False, str(err)


def find_problems(config_flag: str | None) -> list[Problem | str]:
    """Every problem in the config, then (if it loads) status.yaml and the templates."""
    from statusd.compose.composer import Composer
    from statusd.outbox.senders import build_channels
    from statusd.sources.status import file as status_file

    try:
        config = loading.load(paths.config_path(config_flag))
    except ConfigError as err:
        return list(err.problems)
    problems: list[Problem | str] = []
    try:
        status_file.read(config.status_file, config)
    except ConfigError as err:
        problems.extend(err.problems)
    channels = build_channels(config)
    problems.extend(Composer(config).check(
        (config.channels[name], channel.max_chars, channel.measure) for name, channel in channels.items()
    ))
    return problems
