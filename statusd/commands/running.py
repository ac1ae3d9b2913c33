"""`statusd run`: the daemon."""

from __future__ import annotations

import argparse
import asyncio

from statusd import paths
from statusd.commands.shared import common, load_config


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("run", help="run the daemon")
    common(command)
    command.add_argument("--port", type=int, help="web port (default: $STATUSD_PORT or listen.port)")
    command.add_argument("--ops-port", type=int,
                         help="operator port of /readyz and /metrics (default: $STATUSD_OPS_PORT or ops.listen)")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from statusd.app import App

    config = load_config(args)

    async def main() -> int:
        app = App(config, paths.state_dir(args.state_dir, config), paths.port(args.port, config),
                  paths.ops_port(args.ops_port, config))
        return await app.run()

    return asyncio.run(main())
