"""Idle: the daemon's resident memory and CPU when nothing happens.

The shipped config (three console channels) plus two webhooks; the daemon settles,
then its counters in /proc are read at the start and the end of a quiet window.

    python bench/idle.py --settle 10 --window 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import Hooks, RunningDaemon, machine, webhook, write_config

RSS_TARGET_MB = 80.0
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """The /proc counters of one process at one moment."""

    at: float  # time.monotonic()
    cpu: float  # user + system seconds, every thread
    rss_mb: float
    wakeups: int  # context switches, summed over the threads alive at the time
    threads: int


@dataclass(frozen=True)
class Result:
    """What the idle daemon used over the window."""

    rss_mb: float
    cpu_percent: float  # of one core
    wakeups_per_s: float
    threads: int
    window: float
    channels: int


def sample(pid: int) -> Sample:
    """utime+stime from /proc/PID/stat (all threads), VmRSS and each thread's context switches."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    rss_kb = int(_status(Path(f"/proc/{pid}"))["VmRSS"].split()[0])
    switches, threads = 0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = _status(task)
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        switches += int(status["voluntary_ctxt_switches"])
        switches += int(status["nonvoluntary_ctxt_switches"])
        threads += 1
    return Sample(time.monotonic(), (utime + stime) / TICK, rss_kb / 1024, switches, threads)


def _status(proc: Path) -> dict[str, str]:
    lines = (proc / "status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def measure(settle: float = 10.0, window: float = 20.0) -> Result:
    """Start the daemon in a temporary directory, wait `settle` s, watch it for `window` s."""
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        directory = Path(tmp)
        with Hooks(2, directory / "hooks") as hooks:
            channels = {f"console-{lang}": {"type": "console", "language": lang}
                        for lang in ("fr", "en", "sv")}
            channels |= {f"signage-{i + 1}": webhook(url) for i, url in enumerate(hooks.urls)}
            config = write_config(directory, channels)  # the shipped status.yaml too
            running = RunningDaemon(config, directory / "state")
            with running as daemon:
                time.sleep(settle)
                first = sample(running.pid)
                time.sleep(window)
                last = sample(running.pid)
                if daemon.proc is not None and daemon.proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited during the window:\n{daemon.logs()}")
    elapsed = last.at - first.at
    return Result(
        rss_mb=last.rss_mb,
        cpu_percent=100 * (last.cpu - first.cpu) / elapsed,
        wakeups_per_s=(last.wakeups - first.wakeups) / elapsed,
        threads=last.threads,
        window=elapsed,
        channels=len(channels),
    )


def rows(result: Result) -> list[tuple[str, str, str]]:
    """Table rows: what was measured, its value, and the target."""
    return [
        (f"idle RSS ({result.channels} channels)", f"{result.rss_mb:.1f} MB",
         f"< {RSS_TARGET_MB:g} MB"),
        (f"idle CPU over {result.window:.0f} s", f"{result.cpu_percent:.2f} % of one core",
         "about 0 (no busy polling)"),
        (f"idle wake-ups ({result.threads} threads)", f"{result.wakeups_per_s:.1f} /s", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/idle.py", description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    args = parser.parse_args(argv)
    print(f"idle daemon; {machine()}")
    for name, value, target in rows(measure(args.settle, args.window)):
        print(f"{name:<46} {value:>24}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
