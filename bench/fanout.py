"""Fan-out: how long after `statusd set` the last of N webhook receivers has the message.

Each receiver answers 150 ms after a request arrives; a message counts as received when
its request arrives (the receiver's wall clock). Flips alternate closed/open, each with a
message of its own, so every flip is new.

    python bench/fanout.py --receivers 8 --flips 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from command import sites
from common import Hooks, RunningDaemon, Summary, machine, webhook, write_config

from tests.support.daemon import Daemon

TARGET_MS = 300.0  # for N = 8, from `set` returning to the last arrival
FIRST_MS = 15.0  # issue 15: status.yaml replaced -> the first request leaving (arriving, here)
ARRIVAL_TIMEOUT = 15.0
SETTLE = 1.0  # after start, before the first flip
POLL = 0.005
AFTER = 0.3  # after the last arrival: the 150 ms answers come back and are recorded


@dataclass(frozen=True)
class Flip:
    """One flip's times, in seconds since the epoch (wall clocks of this machine)."""

    invoked: float
    written: float  # status.yaml replaced (its ctime): when the daemon can first see the flip
    returned: float
    last_arrival: float
    first_arrival: float = float("nan")

    @property
    def after_write(self) -> float:
        return self.last_arrival - self.written

    @property
    def first_after_write(self) -> float:
        return self.first_arrival - self.written

    @property
    def after_return(self) -> float:
        return self.last_arrival - self.returned

    @property
    def after_invoke(self) -> float:
        return self.last_arrival - self.invoked


@dataclass(frozen=True)
class Result:
    """The flips to `receivers` receivers, summed up in milliseconds."""

    receivers: int
    flips: list[Flip]
    sites: int = 0  # generated sites (0: the shipped config's)

    @property
    def after_write(self) -> Summary:
        return Summary.of([f.after_write * 1000 for f in self.flips])

    @property
    def first_after_write(self) -> Summary:
        return Summary.of([f.first_after_write * 1000 for f in self.flips])

    @property
    def after_return(self) -> Summary:
        return Summary.of([f.after_return * 1000 for f in self.flips])

    @property
    def after_invoke(self) -> Summary:
        return Summary.of([f.after_invoke * 1000 for f in self.flips])

    @property
    def cli(self) -> Summary:
        return Summary.of([(f.returned - f.invoked) * 1000 for f in self.flips])


def measure(receivers: int, flips: int, site_count: int = 0) -> Result:
    """Start receivers and a daemon in a temporary directory, flip `flips` times, clean up.

    `site_count` above the shipped config's: generated sites (bench/command.py), each in status.yaml.
    """
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        directory = Path(tmp)
        with Hooks(receivers, directory / "hooks") as hooks:
            channels = {f"hook{i:02d}": webhook(url) for i, url in enumerate(hooks.urls)}
            config = write_config(directory, channels, status="main:\n  level: open\n")
            if site_count:
                _more_sites(config, site_count)
            with RunningDaemon(config, directory / "state") as daemon:
                time.sleep(SETTLE)
                result = Result(receivers, [_flip(daemon, hooks, n) for n in range(flips)], site_count)
            _check_once(hooks, flips)
            return result


def _more_sites(config: Path, count: int) -> None:
    """The config's sites, and its status.yaml, grown to `count` sites (`statusd set` rewrites one)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load(config.read_text(encoding="utf-8"))
    data["sites"], status = sites(count, dict(data["sites"]))
    with config.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    config.with_name("status.yaml").write_text(status, encoding="utf-8")


def _check_once(hooks: Hooks, flips: int) -> None:
    """Warn when a receiver got other than one message per flip: the figures hide it."""
    counts = [len(log.poll()) for log in hooks.logs]
    if any(count != flips for count in counts):
        print(f"warning: {flips} flips, but the receivers got {counts} messages", file=sys.stderr)


def _flip(daemon: Daemon, hooks: Hooks, n: int) -> Flip:
    level = "closed" if n % 2 == 0 else "open"
    seen = [len(log.poll()) for log in hooks.logs]
    invoked = time.time()
    daemon.cli("set", "main", level, "-m", f"en:Benchmark flip {n + 1}: {level}.")
    returned = time.time()
    written = daemon.config.with_name("status.yaml").stat().st_ctime_ns / 1e9
    try:
        first, last = _arrivals(hooks, seen, level)
    except TimeoutError as err:
        # The temporary directory goes with the run: show the daemon's last words now.
        raise TimeoutError(f"{err}; the daemon's log ends:\n{daemon.logs()[-3000:]}") from None
    time.sleep(AFTER)
    return Flip(invoked, written, returned, last, first)


def _last_arrival(hooks: Hooks, seen: list[int], level: str) -> float:
    """The latest receive time of this flip's message across all receivers."""
    return _arrivals(hooks, seen, level)[1]


def _arrivals(hooks: Hooks, seen: list[int], level: str) -> tuple[float, float]:
    """The earliest and the latest receive time of this flip's message across all receivers."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    times: dict[int, float] = {}
    while True:
        for i, log in enumerate(hooks.logs):
            found = [a for a in log.poll()[seen[i]:] if a["body"].get("level") == level]
            if found and i not in times:
                times[i] = float(found[0]["received_at"])
        if len(times) == len(hooks.logs):
            return min(times.values()), max(times.values())
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(times)} of {len(hooks.logs)} receivers got the {level!r} "
                               f"flip within {ARRIVAL_TIMEOUT:g} s")
        time.sleep(POLL)


def rows(result: Result) -> list[tuple[str, Summary, str]]:
    """Table rows: what was measured, its summary in ms, and the target if any."""
    n = f"{result.receivers}, {result.sites} sites" if result.sites else result.receivers
    target = f"< {TARGET_MS:g} ms" if result.receivers == 8 else ""
    return [
        (f"fan-out N={n}: set returned -> last arrival", result.after_return, target),
        (f"fan-out N={n}: status.yaml written -> first", result.first_after_write,
         f"< {FIRST_MS:g} ms"),
        (f"fan-out N={n}: status.yaml written -> last", result.after_write, ""),
        (f"fan-out N={n}: set invoked -> last arrival", result.after_invoke, ""),
        (f"fan-out N={n}: set command itself (CLI)", result.cli, ""),
    ]


NOTE = ("A negative 'set returned' figure is real: every receiver had the message before\n"
        "the `set` process finished exiting (it writes status.yaml, then prints and exits).")


def format_rows(table: list[tuple[str, Summary, str]], unit: str = "ms") -> str:
    lines = [f"{'measure':<56} {'median':>8} {'min':>8} {'p90':>8} {'max':>8}  target"]
    for name, s, target in table:
        lines.append(f"{name:<56} {s.median:>6.0f}{unit} {s.min:>6.0f}{unit} {s.p90:>6.0f}{unit} "
                     f"{s.max:>6.0f}{unit}  {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fanout.py", description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, action="append",
                        help="N (repeatable; default 8 and 32)")
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--sites", type=int, default=0,
                        help="grow the config to this many sites, each in status.yaml (issue 15: flat to 500)")
    args = parser.parse_args(argv)
    table: list[tuple[str, Summary, str]] = []
    for n in args.receivers or [8, 32]:
        table.extend(rows(measure(n, args.flips, args.sites)))
    print(f"fan-out, {args.flips} flips each; {machine()}")
    print(format_rows(table))
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
