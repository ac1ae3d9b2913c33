"""`statusd replay FILE`: what a day of readings would have posted, posting nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from statusd.commands.shared import common, load_config
from statusd.config.load import Config
from statusd.config.rules import RulesConfig


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser(
        "replay", help="play a day of sensor readings and print the posts it would make"
    )
    common(command)
    command.add_argument(
        "file", type=Path, help="readings, one JSON object a line (.jsonl) or CSV with a header"
    )
    command.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="time compression: 3600 plays an hour a second; 0 (default) as fast as possible",
    )
    command.set_defaults(handler=replay)


def replay(args: argparse.Namespace) -> int:
    from statusd import replay as replaying
    from statusd.errors import UserError

    if args.speed < 0:
        raise UserError(
            "--speed should be 0 (as fast as possible) or more, e.g. 3600 for an hour a second"
        )
    config = load_config(args)
    loaded = replaying.load(args.file, config)
    for problem in loaded.problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not loaded.readings:
        raise UserError(f"{args.file} holds no usable reading")
    out = sys.stdout
    first, last = loaded.readings[0].at, loaded.readings[-1].at
    print(
        f"Replaying {len(loaded.readings)} readings from {args.file} ({first:%Y-%m-%d %H:%M} to "
        f"{last:%H:%M}); nothing is posted.\n",
        file=out,
        flush=True,
    )
    posts = replaying.play(
        loaded.readings,
        config,
        _rules(config),
        speed=args.speed,
        on_post=lambda post: _print(post, config, out),
    )
    said = sum(1 for p in posts if p.messages)
    notices = sum(1 for p in posts if p.operator_only)
    print(f"{said} post(s) and {notices} operator notice(s) for the day.", file=out)
    return 0


def _rules(config: Config) -> RulesConfig | None:
    # The config carries the parsed `rules:` section once the daemon wires it in; until
    # then (None) the defaults apply.
    rules = getattr(config, "rules", None)
    return rules if isinstance(rules, RulesConfig) else None


def _print(post: object, config: Config, out: TextIO) -> None:
    from statusd.replay import Post

    assert isinstance(post, Post)
    event = post.event
    local = event.at.astimezone(config.sites[event.target.site].tz)
    what = event.extra.get("zone") or event.extra.get("queue") or ""
    band = event.extra.get("band")
    change = (
        f" {event.extra.get('previous_band')} → {band}"
        if event.kind.value.endswith("_changed")
        else ""
    )
    header = f"{local:%H:%M}  {event.target}  {event.kind.value}  {what}{change}"
    if post.operator_only:
        print(f"{header}  (operator notice: log and `statusd show` only)\n", file=out, flush=True)
        return
    print(header, file=out)
    for channel, text in post.messages:
        body = text.replace("\n\n", "  ").replace("\n", " ")
        print(f"    {channel}: {body}", file=out)
    print(file=out, flush=True)
