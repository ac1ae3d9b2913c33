"""The command line: parses arguments, loads the config once, runs one command.

Only this layer turns errors into exit codes: 78 for a configuration error
(systemd's RestartPreventExitStatus=78 then stops a restart loop), 2 for a
refused command, 1 when `check` finds problems.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from statusd.commands import shared
from statusd.commands.argv import Parser
from statusd.commands.shared import EX_CONFIG, EX_USAGE, dispatch
from statusd.safetext import TerminalText

__all__ = ["EX_CONFIG", "EX_USAGE", "dispatch", "main", "parser"]


# Which module carries each subcommand: only that one is imported for a command line
# that names it (issue 15: `statusd set` must not pay for `check`, `user` or `history`).
MODULES = {
    "run": "running", "set": "setting", "preview": "setting", "undo": "undo", "retract": "undo",
    "show": "report", "history": "report", "check": "checking", "replay": "replay", "user": "user",
    "login": "login", "logout": "login", "push": "push",
    "migrate": "state", "export-state": "state", "import-state": "state",
}


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; only `command`'s subcommands when it is a known one (else all, for help)."""
    import importlib

    names = [MODULES[command]] if command in MODULES else list(dict.fromkeys(MODULES.values()))
    top: argparse.ArgumentParser = Parser(
        prog="statusd", description="Tell the public, everywhere at once, how the library is doing.")
    top.add_argument("--config", help="config file (default: $STATUSD_CONFIG or ./statusd.yaml)")
    top.add_argument("--state-dir", help="where the store lives (default: $STATUSD_STATE_DIR or ./state)")
    top.add_argument("--server", help="a daemon's URL: set, show, preview, undo, retract and history go "
                                      "through its desk API (default: $STATUSD_SERVER; see `statusd login`)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in names:
        importlib.import_module(f"statusd.commands.{name}").add_commands(sub)
    return top


def main(argv: Sequence[str]) -> int:
    from statusd.commands import remote

    if remote.is_account(argv):
        from statusd.commands import login

        return login.main(argv)
    if remote.wanted(argv):
        # Through a daemon's desk API: only the few modules the remote command needs are imported.
        return remote.main(argv)
    from statusd import logs

    args = parser(remote.command_of(argv)).parse_args(argv)
    # Commands other than the daemon speak through their output; their logs only warn.
    daemon = args.command == "run"
    if daemon:
        logs.configure(level=logs.INFO, cache=True)
    else:
        logs.configure_on_import(level=logs.WARNING)
    if args.command == "run":
        return dispatch(args)
    # What `show`, `history` and the others print comes from files and the store: staff
    # messages may hold escape sequences, which must be shown, not obeyed by the terminal.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalText(out), TerminalText(err)
    try:
        code = dispatch(args)
    finally:
        sys.stdout, sys.stderr = out, err
    # Only this process's own command says so (the desk API runs commands inside the daemon).
    shared.done_with_everything = bool(getattr(args, "done_with_everything", False))
    return code
