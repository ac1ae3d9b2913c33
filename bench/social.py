"""Social fan-out: how long after `statusd set` the last of 12 social posts has arrived.

Four platforms × three accounts: each account is its own fake server (tests/fakes:
Mastodon, X over TLS, Facebook's Graph API, a Bluesky PDS), all twelve hosted in one
process away from the daemon. Each fake answers the POST that makes a post `delay` s
after making it (its `delay`), and logs the time it made each post (its `log`): a post
counts as arrived then (a status, a tweet, a Graph feed post or comment, a createRecord).
One unreported warm-up flip first (sessions, instance look-ups), then `flips` flips
alternating closed/open, each with a message of its own.

    python bench/social.py --flips 20 --accounts 3
    python bench/social.py fakes --accounts 3 --delay 0.15 --dir DIR   (run by the above)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from common import REPO, ArrivalLog, RunningDaemon, Summary, machine, stop, write_config
from fanout import Flip

from tests.support.daemon import Daemon

TARGET_MS = 300.0  # from `set` returning to the last of the 12 posts
DELAY = 0.15  # each fake answers a POST this long after it arrives
PLATFORMS = ("mastodon", "x", "facebook", "bluesky")
LANGUAGES = {"mastodon": "fr", "x": "en", "facebook": "fr", "bluesky": "en"}
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ARRIVAL_TIMEOUT = 15.0
SETTLE = 2.0  # after start: Bluesky sessions and X's /users/me happen now
POLL = 0.005
AFTER = 0.4  # after the last arrival: the delayed answers come back to the daemon


def _env() -> dict[str, str]:
    """The channels' secrets, the ones the fakes accept."""
    from tests.support.fakes.facebook import FakeGraph
    from tests.support.fakes.x import Credentials

    keys = Credentials()
    return {"BENCH_MASTODON_TOKEN": "fake-token", "BENCH_X_CONSUMER_KEY": keys.consumer_key,
            "BENCH_X_CONSUMER_SECRET": keys.consumer_secret, "BENCH_X_ACCESS_TOKEN": keys.access_token,
            "BENCH_X_ACCESS_SECRET": keys.access_token_secret, "BENCH_FB_TOKEN": FakeGraph.token,
            "BENCH_BSKY_PASSWORD": "app-pass-1234"}


# -- the fakes (their own process) -----------------------------------------------------------------

async def _host_fakes(accounts: int, delay: float, directory: Path) -> None:
    from tests.support.fakes import bluesky, facebook, mastodon, x

    tls = x.make_tls(directory / "tls")

    def log(platform: str, i: int) -> Path:
        return directory / f"{platform}-{i + 1}.jsonl"

    made: list[tuple[str, int, Any]] = []
    for i in range(accounts):
        made += [("mastodon", i, mastodon.MastodonServer(delay=delay, log=log("mastodon", i))),
                 ("x", i, x.XServer(tls, delay=delay, log=log("x", i))),
                 ("facebook", i, facebook.FakeGraph(delay=delay, log=log("facebook", i))),
                 ("bluesky", i, bluesky.FakeBluesky(f"library{i + 1}.bib.test", delay=delay,
                                                    log=log("bluesky", i)))]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started = []
    try:
        described = []
        for platform, i, fake in made:
            await fake.start()
            started.append(fake)
            described.append(_describe(platform, i, fake, log(platform, i)))
        # Written aside, then renamed: the parent never reads half a file.
        partial = directory / "fakes.json.part"
        partial.write_text(json.dumps({"ca_file": str(tls.ca_file), "fakes": described}), encoding="utf-8")
        partial.rename(directory / "fakes.json")
        await stop.wait()
    finally:
        for fake in started:
            await fake.stop()


def _describe(platform: str, i: int, fake: Any, log: Path) -> dict[str, Any]:
    """What the daemon's channel config needs to reach this fake."""
    where = {
        "mastodon": lambda: {"instance": fake.url},
        "x": lambda: {"connect_to": fake.connect_to},
        "facebook": lambda: {"graph_url": fake.graph_url, "page_id": fake.page_id},
        "bluesky": lambda: {"service": fake.url, "handle": fake.handle},
    }[platform]()
    return {"platform": platform, "name": f"{platform}-{i + 1}", "log": str(log), **where}


class Fakes:
    """The twelve fakes in one separate process; their channel configs and arrival logs."""

    def __init__(self, accounts: int, directory: Path, delay: float = DELAY) -> None:
        self.accounts, self.directory, self.delay = accounts, directory, delay
        self.described: dict[str, Any] = {}
        self.logs: dict[str, ArrivalLog] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._err = directory / "fakes.err"

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "fakes", "--accounts", str(self.accounts),
                   "--delay", str(self.delay), "--dir", str(self.directory)]
        with self._err.open("wb") as err:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO,
                                         env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            self.described = self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.logs = {f["name"]: ArrivalLog(Path(f["log"])) for f in self.described["fakes"]}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        stop(self.proc)

    def _wait_ready(self) -> dict[str, Any]:
        assert self.proc is not None
        ready = self.directory / "fakes.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready.exists():
                data: dict[str, Any] = json.loads(ready.read_text(encoding="utf-8"))
                return data
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fakes exited with {self.proc.returncode}:\n{self._err.read_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"the fakes did not listen within {START_TIMEOUT:g} s:\n{self._err.read_text()}")

    def channels(self) -> dict[str, dict[str, Any]]:
        """The daemon's channels, one per fake, secrets read from the environment."""
        ca_file, out = self.described["ca_file"], {}
        for f in self.described["fakes"]:
            common = {"type": f["platform"], "language": LANGUAGES[f["platform"]], "timeout": "5s"}
            out[f["name"]] = common | {
                "mastodon": lambda f=f: {"instance": f["instance"], "token": {"env": "BENCH_MASTODON_TOKEN"}},
                # A paid tier's budget (X Basic: 100 posts a day): the free tier's 17 a day held flip 17 and
                # after, as it must (outbox/budget.py), and a budget that waits a day is not a speed.
                "x": lambda f=f: {"connect_to": f["connect_to"], "ca_file": ca_file, "budget": {"per_day": 100},
                                  "consumer_key": {"env": "BENCH_X_CONSUMER_KEY"},
                                  "consumer_secret": {"env": "BENCH_X_CONSUMER_SECRET"},
                                  "access_token": {"env": "BENCH_X_ACCESS_TOKEN"},
                                  "access_token_secret": {"env": "BENCH_X_ACCESS_SECRET"}},
                "facebook": lambda f=f: {"graph_url": f["graph_url"], "page_id": f["page_id"],
                                         "token": {"env": "BENCH_FB_TOKEN"}},
                "bluesky": lambda f=f: {"service": f["service"], "handle": f["handle"],
                                        "app_password": {"env": "BENCH_BSKY_PASSWORD"}},
            }[f["platform"]]()
        return out


# -- the measurement -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """The measured flips to `channels` social channels, and the warm-up flip."""

    channels: int
    flips: list[Flip]
    warmup: Flip
    posts: dict[str, int]  # accepted posts per channel at the end

    @property
    def after_return(self) -> Summary:
        return Summary.of([f.after_return * 1000 for f in self.flips])

    @property
    def after_write(self) -> Summary:
        return Summary.of([f.after_write * 1000 for f in self.flips])

    @property
    def after_invoke(self) -> Summary:
        return Summary.of([f.after_invoke * 1000 for f in self.flips])


def measure(flips: int = 20, accounts: int = 3, delay: float = DELAY) -> Result:
    """Start the fakes and a daemon in a temporary directory, flip 1 + `flips` times, clean up."""
    with tempfile.TemporaryDirectory(prefix="statusd-bench-social-") as tmp:
        work = Path(tmp)
        with Fakes(accounts, work / "fakes", delay) as fakes:
            config = write_config(work, fakes.channels(), status="main:\n  level: open\n")
            running = RunningDaemon(config, work / "state")
            running.daemon.env.update(_env())
            with running as daemon:
                time.sleep(SETTLE)
                warmup = _flip(daemon, fakes, 0)
                measured = [_flip(daemon, fakes, n) for n in range(1, flips + 1)]
            posts = {name: len(log.poll()) for name, log in fakes.logs.items()}
            if any(n != flips + 1 for n in posts.values()):
                print(f"warning: {flips + 1} flips, but the fakes got {posts} posts", file=sys.stderr)
            return Result(len(fakes.logs), measured, warmup, posts)


def _flip(daemon: Daemon, fakes: Fakes, n: int) -> Flip:
    level = "closed" if n % 2 == 0 else "open"
    seen = {name: len(log.poll()) for name, log in fakes.logs.items()}
    invoked = time.time()
    daemon.cli("set", "main", level, "-m", f"fr:Essai {n} : {_FR[level]}.",
               "-m", f"en:Benchmark flip {n}: {level}.")
    returned = time.time()
    written = daemon.config.with_name("status.yaml").stat().st_ctime_ns / 1e9
    try:
        last = _last_arrival(fakes, seen)
    except TimeoutError as err:
        # The temporary directory goes with the run: show the daemon's last words now.
        raise TimeoutError(f"{err}; the daemon's log ends:\n{daemon.logs()[-3000:]}") from None
    time.sleep(AFTER)
    return Flip(invoked, written, returned, last)


_FR = {"closed": "fermé", "open": "ouvert"}


def _last_arrival(fakes: Fakes, seen: dict[str, int]) -> float:
    """The latest arrival of this flip's post across all channels (the first new one each)."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    times: dict[str, float] = {}
    while True:
        for name, log in fakes.logs.items():
            found = log.poll()[seen[name]:]
            if found and name not in times:
                times[name] = float(found[0]["received_at"])
        if len(times) == len(fakes.logs):
            return max(times.values())
        if time.monotonic() > deadline:
            missing = sorted(set(fakes.logs) - set(times))
            raise TimeoutError(f"{len(times)} of {len(fakes.logs)} channels posted within "
                               f"{ARRIVAL_TIMEOUT:g} s; missing {', '.join(missing)}")
        time.sleep(POLL)


def rows(result: Result) -> list[tuple[str, str, str]]:
    """(figure, value, target) lines: medians with min / p90 / max."""
    n = result.channels
    return [
        (f"social N={n}: set returned -> last post", _ms(result.after_return), f"< {TARGET_MS:g} ms"),
        (f"social N={n}: status.yaml written -> last", _ms(result.after_write), ""),
        (f"social N={n}: set invoked -> last post", _ms(result.after_invoke), ""),
        (f"social N={n}: first flip after start", f"{result.warmup.after_return * 1000:.0f} ms",
         "(warm-up, not in the above)"),
        (f"social N={n}: accepted posts per channel",
         "/".join(str(v) for v in sorted(set(result.posts.values()))),
         f"{len(result.flips) + 1} each"),
    ]


def _ms(s: Summary) -> str:
    return f"{s.median:.0f} ms (min {s.min:.0f}, p90 {s.p90:.0f}, max {s.max:.0f})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fakes"]:
        parser = argparse.ArgumentParser(prog="bench/social.py fakes")
        parser.add_argument("--accounts", type=int, required=True)
        parser.add_argument("--delay", type=float, default=DELAY)
        parser.add_argument("--dir", type=Path, required=True)
        args = parser.parse_args(argv[1:])
        asyncio.run(_host_fakes(args.accounts, args.delay, args.dir))
        return 0
    parser = argparse.ArgumentParser(prog="bench/social.py", description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=3, help="accounts (fake servers) per platform")
    parser.add_argument("--delay", type=float, default=DELAY, help="seconds each fake takes to answer a POST")
    args = parser.parse_args(argv)
    result = measure(args.flips, args.accounts, args.delay)
    print(f"social fan-out to {result.channels} channels ({len(PLATFORMS)} platforms × "
          f"{args.accounts} accounts), answers after {args.delay * 1000:.0f} ms, "
          f"{args.flips} flips; {machine()}")
    for name, value, target in rows(result):
        print(f"{name:<46} {value:>40}  {target}")
    print("A negative 'set returned' figure is real: every post had arrived before the `set`\n"
          "process finished exiting.")
    return 0 if result.after_return.median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
