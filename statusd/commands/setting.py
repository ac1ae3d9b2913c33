"""`statusd set` and `statusd preview`: the desk's one command, and a dry run of it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from statusd.commands.shared import common, load_config
from statusd.errors import ConfigError, UserError

# `set` must start fast (issue 15): beside a running daemon it only asks (handoff.py), so what
# making the change needs (the config's reader, the status file's editor, the store's probe) is
# imported where it is used, and what only `preview` needs (channels, compose, rules) too.
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from statusd.channels.base import Channel
    from statusd.commands import handoff
    from statusd.config.load import Config
    from statusd.model import Announced, StatusEntry, Target, Wanted

# The change is in status.yaml but cannot be recorded yet (os.EX_IOERR: an I/O error).
EX_STORE = 74


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, handler, text in (
        ("set", set_status, "set the status of a site or service (e.g. main, main/wifi)"),
        ("preview", preview, "print what each channel would post for a `set`, posting nothing"),
    ):
        command = sub.add_parser(name, help=text)
        common(command)
        command.add_argument("target", help="a site (main) or a service of a site (main/wifi)")
        command.add_argument("level", help="open, limited, closed or emergency")
        command.add_argument("-m", "--message", action="append", default=[], metavar="LANG:TEXT",
                             help='message in one language, e.g. -m fr:"Fermé" (repeat per language)')
        command.add_argument("--from", dest="starts", metavar="WHEN", help='planned start, "YYYY-MM-DD HH:MM"')
        command.add_argument("--until", metavar="WHEN", help='end, "YYYY-MM-DD HH:MM" in the site\'s time zone')
        command.set_defaults(handler=handler)


def current_user() -> str:
    """Who is at the desk: the person behind sudo if any (the desk API passes its account as args.by)."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def _entry(args: argparse.Namespace, config: Config) -> tuple[Target, StatusEntry]:
    from statusd.sources.status import entry as desk
    from statusd.sources.status import languages as required_languages

    target, entry = desk.build(
        config, args.target, args.level, args.message, args.starts, args.until,
        getattr(args, "by", None) or current_user(), _now(args),
    )
    required_languages.check(config, entry)
    return target, entry


def _now(args: argparse.Namespace) -> datetime:
    """The change's time: the command's own when it asked the daemon first (args.at, epoch seconds)."""
    from datetime import UTC, datetime

    at = getattr(args, "at", None)
    return datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)


def set_status(args: argparse.Namespace) -> int:
    """`statusd set`: by the running daemon when one reads this config (handoff.py), else here."""
    if getattr(args, "by", None) is None:  # the command line's, not the desk API's run inside the daemon
        outcome = _handed(args)
        if outcome is not None:
            sys.stdout.write(outcome.stdout)
            sys.stderr.write(outcome.stderr)
            args.done_with_everything = True
            return outcome.exit
    return set_here(args)


def _handed(args: argparse.Namespace) -> handoff.Outcome | None:
    import time

    from statusd import paths
    from statusd.commands import handoff

    config = paths.config_path(args.config)
    # The command's own time: made here after all, the change is the one the daemon made.
    args.at = time.time()
    return handoff.ask(args.state_dir, config, {
        "target": args.target, "level": args.level, "message": list(args.message), "starts": args.starts,
        "until": args.until, "by": current_user(), "at": args.at})


def set_here(args: argparse.Namespace) -> int:
    """`statusd set` made by this process: the status file written, the daemon told."""
    from statusd import paths
    from statusd.config import scoped
    from statusd.outbox import probe
    from statusd.sources.status import entry as desk
    from statusd.sources.status import nudge
    from statusd.sources.status import wanted as wanted_status

    # Only what `set` uses is read and checked (issue 15: flat from 3 to 500 sites, 1 to 128 channels);
    # the daemon making a change for a command hands in the very config this read gave it last time.
    config = getattr(args, "loaded", None) or scoped.load_for(paths.config_path(args.config), _site_of(args.target),
                                                              _whole)
    args.loaded = config
    target, entry = _entry(args, config)
    status = wanted_status.for_config(config)
    state = paths.state_dir(args.state_dir, config)
    # Probed before the write: once written, the daemon is recording it, and a probe then would wait for it.
    if config.store.postgresql:
        from statusd.outbox.opening import postgres_trouble

        trouble = postgres_trouble(config)
    else:
        trouble = probe.sqlite_trouble(paths.store_path(state))
    if getattr(args, "make_only", False):
        # The daemon's run for a command beside it (desk/handoff.py): made and checked here, and
        # written by the command itself, with its own rights (commands/handoff.py).
        from statusd.sources.status import edit

        args.made = edit.make_entry(config.status_file, config, target, entry, getattr(args, "parse", None))
    else:
        written = status.set(target, entry)
        if written is not None:
            nudge.tell(state, written)  # the daemon reads it now, not at its file watch's next look
    for note in desk.notes(config, target, entry):
        print(f"note: {note}")
    # The file is written and synced, the store's probe closed, the nudge sent: nothing to tear down.
    args.done_with_everything = True
    if trouble is not None:
        print(f"statusd: {target}: {entry.level.value}{_window(entry)} is written to {status.describe()}, but "
              f"{trouble}; nothing is announced until it can (the daemon tries again by itself)", file=sys.stderr)
        return EX_STORE
    print(f"{target}: {entry.level.value}{_window(entry)} — written to {status.describe()}; "
          f"the daemon announces it on {_channels(config)}.")
    return 0


def _whole(path: Path) -> Config:
    from statusd import loading  # the channel types' options: only when the whole file must be read

    return loading.load(path)


def _site_of(target: str) -> str:
    """The site a target names (`main` of `main/wifi`); refusals of a bad one are entry.build's."""
    return target.strip().strip("/").split("/")[0]


def _channels(config: Config) -> str:
    if config.scope is not None:  # the channels were not read: their names are known, not which are on
        return f"its {len(config.scope.channels)} configured channel(s)"
    return f"{len(config.channels)} channel(s)"


def preview(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from statusd.announcer import render
    from statusd.compose.composer import Composer
    from statusd.rules import reconcile

    config = load_config(args)
    target, entry = _entry(args, config)
    wanted = dict(_wanted(config))
    wanted[target] = entry
    plan = reconcile(wanted, _announced(args, config), config, datetime.now(UTC))
    events = [e for e in plan.events if e.target == target]
    if not events:
        print(f"{target}: nothing new to say; this is what has already been announced.")
        return 0
    from statusd.outbox.senders import build_channels

    channels = build_channels(config)
    for line in asyncio.run(_learn_limits(channels, config.delivery.timeout)):
        print(line)
    print()
    composer = Composer(config)
    for event in events:
        for planned in render(config, composer, channels, event):
            settings = config.channels[planned.channel]
            print(f"── {planned.channel} ({settings.type}, {settings.language}) {event.kind.value}"
                  f"{_fallback(settings.language, planned.message.language if planned.message else None)}")
            print(planned.message.text if planned.message else f"NOT SENT: {planned.error}")
            print()
    for name, reason in config.inactive.items():
        print(f"── {name}: {reason}")
    return 0


async def _learn_limits(channels: Mapping[str, Channel], seconds: float) -> list[str]:
    """Ask each server that sets its own limit (a Mastodon instance) for it, as the daemon
    does; one line per channel saying which limit the preview uses and where it came from."""
    import asyncio

    from statusd.channels.base import ChannelError

    async def learn(name: str, channel: Channel) -> str:
        describe = getattr(channel, "describe_limit", None)
        if describe is None:  # the platform's published limit, the same for every account
            limit = f"{channel.max_chars} characters" if channel.max_chars else "no length limit"
            return f"── {name}: {limit} (the platform's published limit)"
        try:
            await asyncio.wait_for(channel.open(), seconds)
        except (TimeoutError, ChannelError) as err:
            return (f"── {name}: {channel.max_chars} characters, a default: the server was not read "
                    f"({err or 'no answer within the timeout'})")
        finally:
            await channel.close()
        return f"── {name}: {describe()}"

    return list(await asyncio.gather(*(learn(n, c) for n, c in channels.items())))


def _wanted(config: Config) -> Wanted:
    from statusd.sources.status import wanted as wanted_status

    status = wanted_status.for_config(config)  # status.yaml, or a cluster's rows
    try:
        return status.read()
    except ConfigError as err:
        raise UserError(f"{err.problems[0]}; fix {status.describe()} first (see `statusd check`)") from err


def _announced(args: argparse.Namespace, config: Config) -> dict[str, Announced]:
    from statusd import paths
    from statusd.outbox.opening import open_reader

    store = open_reader(config, paths.store_path(paths.state_dir(args.state_dir, config)))
    if store is None:
        return {}
    try:
        return store.announced()
    finally:
        store.close()


def _fallback(language: str, posted: str | None) -> str:
    """Say so when a channel will post in another language than its own (no text in its own)."""
    if posted is None or posted == language:
        return ""
    return f" — no {language} text: falls back to {posted}"


def _window(entry: StatusEntry) -> str:
    text = ""
    if entry.starts:
        text += f" from {entry.starts:%Y-%m-%d %H:%M}"
    if entry.until:
        text += f" until {entry.until:%Y-%m-%d %H:%M}"
    return text
