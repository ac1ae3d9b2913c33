"""`statusd push keys`: make the VAPID key pair the Web Push channel signs with."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from statusd.commands.shared import common
from statusd.errors import UserError

CONFIG_LINES = """\
Add a channel per language to statusd.yaml (the key is read by reference, like every secret):

channels:
  push-en:
    type: webpush
    language: en
    vapid_key: {reference}
    subject: mailto:it@library.example   # how push services reach you: mailto: or https:
    title: Library status

Public key (the page fetches it from /push/config.json; browsers call it applicationServerKey):
{public}
"""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = sub.add_parser("push", help="Web Push: make the VAPID keys")
    common(push)
    verbs = push.add_subparsers(dest="verb", required=True, metavar="VERB")
    keys = verbs.add_parser("keys", help="make a VAPID key pair; write the private key to a file (0600) "
                                         "or print it for a secret store")
    common(keys)
    where = keys.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="the private key's file (default: vapid.pem in the state "
                                                "directory); never overwritten")
    where.add_argument("--print", action="store_true", dest="to_stdout",
                       help="print the private key (PEM) on standard output, the rest on standard error, "
                            "e.g. for `systemd-creds encrypt - statusd-vapid`")
    keys.set_defaults(handler=make_keys)


def make_keys(args: argparse.Namespace) -> int:
    from statusd.channels.webpush_keys import generate

    private, public = generate()
    if args.to_stdout:
        sys.stdout.write(private)
        print(CONFIG_LINES.format(reference="{credential: statusd-vapid}", public=public), file=sys.stderr)
        return 0
    out: Path = args.out or _state_dir(args) / "vapid.pem"
    _write_private(out, private)
    print(f"Wrote the private key to {out} (mode 0600: only its owner may read it).\n")
    print(CONFIG_LINES.format(reference=f"{{file: {out.resolve()}}}", public=public))
    return 0


def _state_dir(args: argparse.Namespace) -> Path:
    from statusd import paths
    from statusd.commands.shared import load_config

    return paths.state_dir(getattr(args, "state_dir", None), load_config(args))


def _write_private(path: Path, pem: str) -> None:
    """Create `path` with mode 0600; an existing file is a key in use: never replace it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise UserError(f"{path} exists already: a new key would stop every subscription made with it; "
                        "choose another file with --out, or delete it first if you mean that") from err
    except OSError as err:
        raise UserError(f"cannot create {path} ({err.strerror or err}); choose another file with --out") from err
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(pem)
