"""What the benchmarks share: a shipped-like config, the real daemon, and webhook receivers.

The receivers run in their own process, away from the daemon and from the benchmark's
polling, so none of them steals the others' event loop:

    python bench/common.py hooks --count 8 --secret S --delay 0.15 --dir DIR

hosts `count` fake webhook receivers (tests/support/fakes/webhook.py) in one process; each appends
its accepted messages to DIR/hook-NN.jsonl with the wall time it received them, and the
process writes DIR/urls.json once every receiver listens. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the fakes and the daemon runner live in tests/

from tests.support.daemon import Daemon  # after the path above

SECRET = "bench-hook-secret-5c1e"
SECRET_ENV = "BENCH_HOOK_SECRET"
HOOK_DELAY = 0.15  # the receivers answer after this long, like a slow real endpoint
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


# -- config ----------------------------------------------------------------------------------------

def webhook(url: str, language: str = "en", timeout: str = "5s") -> dict[str, Any]:
    """One webhook channel's config, its secret read from the environment."""
    return {"type": "webhook", "language": language, "url": url,
            "secret": {"env": SECRET_ENV}, "timeout": timeout}


def write_config(
    directory: Path, channels: dict[str, dict[str, Any]], status: str | None = None
) -> Path:
    """The shipped statusd.yaml with `channels` in place of its own, written into `directory`.

    status.yaml is `status`, or the shipped one when None. Returns the config's path.
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load((REPO / "statusd.yaml").read_text(encoding="utf-8"))
    data["channels"] = channels
    data["alerts"] = str(REPO / "alerts")  # the templates stay in the repository
    path = directory / "statusd.yaml"
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    shipped = (REPO / "status.yaml").read_text(encoding="utf-8")
    (directory / "status.yaml").write_text(shipped if status is None else status, encoding="utf-8")
    return path


# -- the daemon ------------------------------------------------------------------------------------

class RunningDaemon:
    """`statusd run` in its own process (tests/daemon.py), stopped on exit even after an error."""

    def __init__(self, config: Path, state_dir: Path) -> None:
        self.daemon = Daemon(config, state_dir, env={SECRET_ENV: SECRET})

    def __enter__(self) -> Daemon:
        try:
            return self.daemon.start(timeout=START_TIMEOUT)
        except BaseException:
            self.__exit__(None, None, None)  # it may still run, only silent
            raise

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self.daemon.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            self.daemon.terminate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.daemon.kill()

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid


# -- the receivers ---------------------------------------------------------------------------------

class ArrivalLog:
    """Reads a receiver's JSON-lines log as it grows, one complete line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.arrivals: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """Every arrival so far (new lines are read in)."""
        try:
            if self.path.stat().st_size == self._offset:
                return self.arrivals
            with self.path.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except FileNotFoundError:
            return self.arrivals
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        self.arrivals.extend(json.loads(line) for line in lines if line.strip())
        return self.arrivals


class Hooks:
    """`count` webhook receivers in one separate process; their URLs and arrival logs."""

    def __init__(self, count: int, directory: Path, delay: float = HOOK_DELAY) -> None:
        self.count, self.directory, self.delay = count, directory, delay
        self.urls: list[str] = []
        self.logs: list[ArrivalLog] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._err = directory / "hooks.err"

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "hooks", "--count", str(self.count),
                   "--secret", SECRET, "--delay", str(self.delay), "--dir", str(self.directory)]
        with self._err.open("wb") as err:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO,
                                         env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            self.urls = self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.logs = [ArrivalLog(self.directory / f"hook-{i:02d}.jsonl") for i in range(self.count)]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        stop(self.proc)

    def _wait_ready(self) -> list[str]:
        assert self.proc is not None
        ready = self.directory / "urls.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready.exists():
                urls: list[str] = json.loads(ready.read_text(encoding="utf-8"))
                return urls
            if self.proc.poll() is not None:
                raise RuntimeError(f"the receivers exited with {self.proc.returncode}:\n"
                                   f"{self._err.read_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"the receivers did not listen within {START_TIMEOUT:g} s:\n"
                           f"{self._err.read_text()}")


async def _host_hooks(count: int, secret: str, delay: float, directory: Path) -> None:
    from tests.support.fakes.webhook import WebhookReceiver

    hooks = [WebhookReceiver(secret, delay=delay, log=directory / f"hook-{i:02d}.jsonl")
             for i in range(count)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for hook in hooks:
            await hook.start()
        # Written aside, then renamed: the parent never reads half a file.
        partial = directory / "urls.json.part"
        partial.write_text(json.dumps([hook.url for hook in hooks]), encoding="utf-8")
        partial.rename(directory / "urls.json")
        await stop.wait()
    finally:
        for hook in hooks:
            await hook.stop()


# -- figures ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """Median, min, 90th percentile and max of a series, in its own unit."""

    median: float
    min: float
    p90: float
    max: float
    count: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        ordered = sorted(values)
        if len(ordered) == 1:
            return cls(ordered[0], ordered[0], ordered[0], ordered[0], 1)
        p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8]
        return cls(statistics.median(ordered), ordered[0], p90, ordered[-1], len(ordered))


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM, then SIGKILL if it does not go within STOP_TIMEOUT."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def machine() -> str:
    """One line saying where the figures were measured."""
    return (f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPU(s)")


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/common.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    hooks = sub.add_parser("hooks", help="host webhook receivers until SIGTERM")
    hooks.add_argument("--count", type=int, required=True)
    hooks.add_argument("--secret", required=True)
    hooks.add_argument("--delay", type=float, default=HOOK_DELAY)
    hooks.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_host_hooks(args.count, args.secret, args.delay, args.dir))


if __name__ == "__main__":
    _main()
