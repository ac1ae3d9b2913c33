"""What every subcommand shares: the options it accepts after its name, and loading the config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from statusd.errors import ConfigError, StoreError, UserError

if TYPE_CHECKING:
    from statusd.config.load import Config

# Nothing here imports the config, YAML or the channels at module level: `statusd login`
# and the remote command import this module with only the standard library at hand. Nor
# sqlite3: a command that never opened the store (`statusd set` before the daemon's first
# run) cannot have raised its error, so it is looked for only once it is imported.


def load_config(args: argparse.Namespace) -> Config:
    """statusd.yaml as --config, $STATUSD_CONFIG or ./statusd.yaml names it, checked."""
    from statusd import loading, paths

    return loading.load(paths.config_path(args.config))


def common(command: argparse.ArgumentParser) -> None:
    """Options every command accepts after its name too."""
    command.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    command.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


EX_USAGE = 2
EX_CONFIG = 78

# Set by a command that has closed and flushed all it opened (files written and synced, the
# store closed, no thread left): the process may then end without the interpreter's teardown.
done_with_everything = False


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
    except StoreError as err:
        print(f"statusd: the store cannot be used: {err}", file=sys.stderr)
        return _refused(args)
    except Exception as err:
        if not _is_sqlite_error(err):
            raise
        print(f"statusd: the store cannot be used ({err}); desk staff must be in the statusd group, "
              "and the state directory must be the daemon's (--state-dir or STATUSD_STATE_DIR)",
              file=sys.stderr)
        return _refused(args)
    except KeyboardInterrupt:
        return 130


def _is_sqlite_error(err: Exception) -> bool:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(err, sqlite3.Error)


def _refused(args: argparse.Namespace) -> int:
    # For the daemon a file it may not use is a setup error: restarting will not fix it.
    return EX_CONFIG if args.command == "run" else EX_USAGE
