"""`statusd login URL` and `statusd logout`: a personal token for the remote command."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence

from statusd.commands import remote
from statusd.commands.argv import Parser
from statusd.commands.shared import common
from statusd.errors import UserError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login_cmd = sub.add_parser("login", help="log in to a daemon's desk; later commands use --server URL")
    common(login_cmd)
    login_cmd.add_argument("url", help="the daemon's public address, e.g. https://status.example.org")
    login_cmd.add_argument("--user", help="your desk account (default: your login name)")
    login_cmd.add_argument("--password-stdin", action="store_true",
                           help="read the password from standard input instead of asking")
    login_cmd.add_argument("--sso", action="store_true",
                           help="sign in with your library account (the identity provider's device flow): "
                                "prints an address and a code to enter there")
    login_cmd.set_defaults(handler=login)
    logout_cmd = sub.add_parser("logout", help="revoke and forget the token of a daemon")
    common(logout_cmd)
    logout_cmd.add_argument("url", nargs="?", help="the daemon (default: --server or $STATUSD_SERVER)")
    logout_cmd.set_defaults(handler=logout)


def login(args: argparse.Namespace) -> int:
    server = args.url.rstrip("/")
    if args.sso:
        return _login_sso(server)
    account = args.user or getpass.getuser()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {account} at {server}: ")
    body = {"account": account, "password": password, "label": f"statusd login from {_host()}"}
    status, answer = _call(server, "/api/v1/login", body, None)
    if status != 200 or "token" not in answer:
        raise UserError(str(answer.get("error") or f"{server} answered HTTP {status}; is it a statusd daemon?"))
    return _keep(server, answer)


def _keep(server: str, answer: dict[str, object]) -> int:
    tokens = remote.Tokens()
    tokens.put(server, str(answer["token"]))
    print(f"Logged in to {server} as {answer['display']} ({answer['account']}), {answer['role']}; "
          f"the token is in {tokens.path}. Use --server {server} or STATUSD_SERVER={server}.")
    return 0


def _login_sso(server: str) -> int:
    """The device flow, run by the daemon (which keeps the client secret): show the code, then wait."""
    status, answer = _call(server, "/api/v1/sso/device", {"label": f"statusd login --sso from {_host()}"}, None)
    if status != 200 or "handle" not in answer:
        raise UserError(str(answer.get("error") or f"{server} answered HTTP {status} for single sign-on; "
                                                     "is desk.sso set up there?"))
    complete = answer.get("verification_uri_complete")
    print(f"To sign in, open {answer['verification_uri']} and enter the code {answer['user_code']}"
          + (f"\n(or open {complete} directly)" if complete else ""), flush=True)
    interval = max(1.0, float(str(answer.get("interval") or 5)))
    deadline = time.monotonic() + float(str(answer.get("expires_in") or 600))
    while time.monotonic() < deadline:
        time.sleep(interval)
        status, polled = _call(server, "/api/v1/sso/device/token", {"handle": str(answer["handle"])}, None)
        if status == 202:
            interval += 5.0 if polled.get("slow_down") else 0.0
            continue
        if status == 200 and "token" in polled:
            return _keep(server, polled)
        raise UserError(str(polled.get("error") or f"{server} answered HTTP {status}"))
    raise UserError("the sign-in was not finished in time; run `statusd login URL --sso` again")


def logout(args: argparse.Namespace) -> int:
    server = (args.url or getattr(args, "server", None) or os.environ.get("STATUSD_SERVER") or "").rstrip("/")
    if not server:
        raise UserError("which daemon? `statusd logout URL`")
    tokens = remote.Tokens()
    token = tokens.get(server)
    if token is None:
        raise UserError(f"not logged in to {server}")
    status, _ = _call(server, "/api/v1/logout", {}, token)
    tokens.put(server, None)
    note = "the token is revoked" if status == 200 else "the server no longer knew the token"
    print(f"Logged out of {server}: {note} and forgotten here.")
    return 0


def _call(server: str, path: str, body: dict[str, str], token: str | None) -> tuple[int, dict[str, object]]:
    try:
        return remote.call(server, "POST", path, body, token)
    except OSError as err:
        raise UserError(f"cannot reach {server} ({getattr(err, 'reason', err)}); check the address") from err


def _host() -> str:
    import socket

    return socket.gethostname()


def main(argv: Sequence[str]) -> int:
    """`statusd login` or `logout`, parsed with only the options they need."""
    from statusd.commands.shared import dispatch

    top: argparse.ArgumentParser = Parser(prog="statusd")
    for flag in remote.VALUED:
        top.add_argument(flag, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_commands(top.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return dispatch(top.parse_args(argv))
