"""The command line: parses arguments, loads the config once, runs one command.

Only this layer turns errors into exit codes: 78 for a configuration error
(systemd's RestartPreventExitStatus=78 then stops a restart loop), 2 for a
refused command, 1 when `check` finds problems.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence

from statusd.errors import ConfigError, UserError
from statusd.safetext import TerminalText

EX_USAGE = 2
EX_CONFIG = 78


def parser() -> argparse.ArgumentParser:
    from statusd.commands import checking, login, replay, report, running, setting, undo, user

    top = argparse.ArgumentParser(
        prog="statusd", description="Tell the public, everywhere at once, how the library is doing.")
    top.add_argument("--config", help="config file (default: $STATUSD_CONFIG or ./statusd.yaml)")
    top.add_argument("--state-dir", help="where the store lives (default: $STATUSD_STATE_DIR or ./state)")
    top.add_argument("--server", help="a daemon's URL: set, show, preview, undo, retract and history go "
                                      "through its desk API (default: $STATUSD_SERVER; see `statusd login`)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (running, setting, undo, report, checking, replay, user, login):
        module.add_commands(sub)
    return top


def main(argv: Sequence[str]) -> int:
    from statusd.commands.remote import main as remote_main
    from statusd.commands.remote import wanted as remote_wanted

    if remote_wanted(argv):
        # Through a daemon's desk API: only the few modules the remote command needs are imported.
        return remote_main(argv)
    from statusd import logs

    args = parser().parse_args(argv)
    # Commands other than the daemon speak through their output; their logs only warn.
    logs.configure(level=logging.INFO if args.command == "run" else logging.WARNING)
    if args.command == "run":
        return dispatch(args)
    # What `show`, `history` and the others print comes from files and the store: staff
    # messages may hold escape sequences, which must be shown, not obeyed by the terminal.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalText(out), TerminalText(err)
    try:
        return dispatch(args)
    finally:
        sys.stdout, sys.stderr = out, err


def dispatch(args: argparse.Namespace) -> int:
    """Run the command of parsed `args`: its output, and errors as one sentence and an exit code.

    The desk API runs remote commands through this too, so both say the same.
    """
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as err:
        print(f"statusd: the configuration has {len(err.problems)} problem(s):", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EX_CONFIG
    except UserError as err:
        print(f"statusd: {err}", file=sys.stderr)
        return EX_USAGE
    except PermissionError as err:
        print(f"statusd: {err.filename or 'a file'}: permission denied; desk staff must be in the "
              "statusd group (see README, Install as a service)", file=sys.stderr)
        return _refused(args)
    except sqlite3.Error as err:
        print(f"statusd: the store cannot be used ({err}); desk staff must be in the statusd group, "
              "and the state directory must be the daemon's (--state-dir or STATUSD_STATE_DIR)",
              file=sys.stderr)
        return _refused(args)
    except KeyboardInterrupt:
        return 130


def _refused(args: argparse.Namespace) -> int:
    # For the daemon a file it may not use is a setup error: restarting will not fix it.
    return EX_CONFIG if args.command == "run" else EX_USAGE
