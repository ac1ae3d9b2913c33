"""The remote command: `statusd set|show|preview|undo|retract|history` through a daemon's desk API.

Chosen by `--server URL` or `STATUSD_SERVER`. It imports only the standard
library (a desk PC installs statusd without using any platform client) and
prints what the server's own command printed, with its exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statusd.commands.argv import Parser
from statusd.errors import UserError

REMOTE = ("set", "show", "preview", "undo", "retract", "history")
ACCOUNT = ("login", "logout")  # always light: a desk PC may have only the remote command
EX_REFUSED = 2
TIMEOUT = 30.0
VALUED = ("--config", "--state-dir", "--server")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand's name: the first word that is neither an option nor an option's value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUED:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def server_of(argv: Sequence[str]) -> str | None:
    """--server URL (or --server=URL) anywhere in argv, else $STATUSD_SERVER."""
    for i, word in enumerate(argv):
        if word == "--server" and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith("--server="):
            return word.partition("=")[2]
    return os.environ.get("STATUSD_SERVER") or None


def wanted(argv: Sequence[str]) -> bool:
    """True when this command line goes to a daemon rather than to the local files."""
    command = command_of(argv)
    return command in ACCOUNT or (command in REMOTE and bool(server_of(argv)))


def parser() -> argparse.ArgumentParser:
    """The same arguments as the local commands (tests compare the two parsers)."""
    top: argparse.ArgumentParser = Parser(prog="statusd", description="statusd through a daemon's desk API.")
    for flag in VALUED:
        top.add_argument(flag, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ("set", "preview"):
        command = _sub(sub, name)
        command.add_argument("target")
        command.add_argument("level")
        command.add_argument("-m", "--message", action="append", default=[], metavar="LANG:TEXT")
        command.add_argument("--from", dest="starts", metavar="WHEN")
        command.add_argument("--until", metavar="WHEN")
    _sub(sub, "show").add_argument("-n", type=int, default=5)
    _sub(sub, "history").add_argument("-n", type=int, default=20)
    _sub(sub, "undo")
    _sub(sub, "retract").add_argument("update")
    return top


def _sub(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> argparse.ArgumentParser:
    command = sub.add_parser(name)
    for flag in VALUED:
        command.add_argument(flag, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return command


def request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body of the desk API call for parsed `args`."""
    change = {"level": getattr(args, "level", None), "messages": getattr(args, "message", []),
              "from": getattr(args, "starts", None), "until": getattr(args, "until", None)}
    if args.command == "set":
        site, _, service = args.target.strip().partition("/")
        path = "/api/v1/status/" + urllib.parse.quote(site, safe="")
        if service:
            path += "/" + urllib.parse.quote(service, safe="")
        return "PUT", path, change
    if args.command == "preview":
        return "POST", "/api/v1/preview", {"target": args.target, **change}
    if args.command in ("show", "history"):
        where = "status" if args.command == "show" else "history"
        return "GET", f"/api/v1/{where}?n={args.n}", None
    if args.command == "undo":
        return "POST", "/api/v1/undo", {}
    return "POST", "/api/v1/retract/" + urllib.parse.quote(args.update, safe=""), {}


def call(server: str, method: str, path: str, body: dict[str, Any] | None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    """One desk API request; (HTTP status, JSON answer). Raises OSError when unreachable."""
    import json
    import urllib.error  # with http.client and ssl: imported only by a command that goes remote
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", "User-Agent": "statusd-remote"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = server.rstrip("/") + path
    if not url.startswith(("https://", "http://")):
        raise OSError(f"{server} is not an http(s) URL")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as answer:  # noqa: S310
            return answer.status, _json(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, _json(err.read())


def _json(raw: bytes) -> dict[str, Any]:
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_account(argv: Sequence[str]) -> bool:
    """True for `statusd login` and `logout`, which commands.login carries out."""
    return command_of(argv) in ACCOUNT


def main(argv: Sequence[str]) -> int:
    """A set, show, preview, undo, retract or history through the daemon's desk API."""
    args = parser().parse_args(argv)
    server = (server_of(argv) or "").rstrip("/")
    token = Tokens().get(server)
    if token is None:
        return refuse(f"not logged in to {server}; run `statusd login {server}` first")
    method, path, body = request(args)
    try:
        status, answer = call(server, method, path, body, token)
    except OSError as err:
        return refuse(f"cannot reach {server} ({getattr(err, 'reason', err)}); check --server or STATUSD_SERVER")
    if "exit" in answer:
        sys.stdout.write(str(answer.get("stdout", "")))
        sys.stderr.write(str(answer.get("stderr", "")))
        return int(answer["exit"])
    return refuse(str(answer.get("error") or f"{server} answered HTTP {status}; is it a statusd daemon?"))


def refuse(sentence: str) -> int:
    print(f"statusd: {sentence}", file=sys.stderr)
    return EX_REFUSED


class Tokens:
    """Personal tokens per server in ~/.config/statusd/tokens.json, readable by its owner only."""

    def __init__(self) -> None:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        self.path = Path(base) / "statusd" / "tokens.json"

    def _all(self) -> dict[str, str]:
        import json  # here: every command imports this module to see whether it goes remote

        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def get(self, server: str) -> str | None:
        return self._all().get(server.rstrip("/"))

    def put(self, server: str, token: str | None) -> None:
        """Store (or with None forget) the token of `server`; the file is written 0600, atomically."""
        import json

        tokens = self._all()
        if token is None:
            tokens.pop(server.rstrip("/"), None)
        else:
            tokens[server.rstrip("/")] = token
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                json.dump(tokens, out, indent=1)
            os.replace(tmp, self.path)
        except OSError as err:
            raise UserError(f"cannot keep the token in {self.path} ({err.strerror or err}); "
                            "set XDG_CONFIG_HOME to a directory of yours") from err
