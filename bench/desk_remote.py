"""The remote command: `statusd set --server` → the last of 8 webhook receivers (150 ms each).

Also the remote command's own start-up (parse, find no token, exit) and its
whole run (the request included). Flips alternate closed/open with a message
of their own, as in fanout.py.

    python bench/desk_remote.py --flips 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import Hooks, RunningDaemon, Summary, machine, webhook, write_config
from fanout import AFTER, SETTLE, _last_arrival, format_rows

from tests.support.daemon import REPO, Daemon

PASSWORD = "benchmark password here"
TARGET_MS, STARTUP_MS = 400.0, 150.0


def _account(daemon: Daemon, env: dict[str, str]) -> None:
    link = daemon.cli("user", "add", "bench", "--name", "Bench", "--role", "admin").stdout.strip().splitlines()[-1]
    body = json.dumps({"code": link.rsplit("/", 1)[1], "password": PASSWORD}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{daemon.url}/api/v1/enrol", data=body), timeout=10).read()
    subprocess.run([sys.executable, "-m", "statusd", "login", daemon.url, "--user", "bench", "--password-stdin"],
                   input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True, timeout=30)


def _remote(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "statusd", *args], env=env, check=True, capture_output=True,
                   timeout=30, cwd="/")


def measure(receivers: int, flips: int) -> list[tuple[str, Summary, str]]:
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        directory = Path(tmp)
        env = {**os.environ, "XDG_CONFIG_HOME": str(directory / "home"), "PYTHONPATH": str(REPO)}
        with Hooks(receivers, directory / "hooks") as hooks:
            channels = {f"hook{i:02d}": webhook(url) for i, url in enumerate(hooks.urls)}
            config = write_config(directory, channels, status="main:\n  level: open\n")
            with RunningDaemon(config, directory / "state") as daemon:
                _account(daemon, env)
                remote = {**env, "STATUSD_SERVER": daemon.url}
                time.sleep(SETTLE)
                startup = []
                for _ in range(flips):
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "statusd", "--server", "http://127.0.0.1:9", "show"],
                                   env={**env, "XDG_CONFIG_HOME": str(directory / "nobody")},
                                   capture_output=True, timeout=30)
                    startup.append((time.perf_counter() - start) * 1000)
                to_last, command = [], []
                for n in range(flips):
                    level = "closed" if n % 2 == 0 else "open"
                    seen = [len(log.poll()) for log in hooks.logs]
                    invoked = time.time()
                    _remote(remote, "set", "main", level, "-m", f"en:Remote flip {n + 1}: {level}.")
                    command.append((time.time() - invoked) * 1000)
                    to_last.append((_last_arrival(hooks, seen, level) - invoked) * 1000)
                    time.sleep(AFTER)
    return [
        (f"remote set invoked -> last of N={receivers}", Summary.of(to_last), f"< {TARGET_MS:g} ms"),
        ("remote set command, request included", Summary.of(command), ""),
        ("remote command start-up (no request)", Summary.of(startup), f"< {STARTUP_MS:g} ms"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/desk_remote.py", description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=8)
    parser.add_argument("--flips", type=int, default=20)
    args = parser.parse_args(argv)
    table = measure(args.receivers, args.flips)
    print(f"remote command, {args.flips} flips; {machine()}")
    print(format_rows(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
