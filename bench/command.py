"""The command: wall time of a local `statusd set`, from 1 to 128 channels and 3 to 500 sites.

Twice at each point: beside the running daemon (the desk's usual case: the command hands the
change over the status socket, commands/handoff.py) and alone (no daemon: the command makes
the change itself, as it must when the daemon is down).

Then the daemon's memory: its RSS after start and after one `set`, at 3, 100 and 500 sites.

Each run is a fresh `statusd set main closed -m …` (the installed script) against a generated
config in a temporary directory (the shipped statusd.yaml with generated channels
and sites, the shipped alerts/), beside the daemon's store, which `set` probes, as a
running daemon leaves it.
Channels cycle through every channel type, so a platform client imported on the
way shows in the figures. One more run under `python -X importtime` gives the
modules that cost most.

    python bench/command.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, Summary, machine

TARGET_MS = 120.0  # issue 15: the command starts fast, whatever the channels and sites
SECRET_ENV = "BENCH_COMMAND_SECRET"
CHANNEL_COUNTS = (1, 128)
SITE_COUNTS = (3, 100, 500)
LANGUAGES = ("fr", "en", "sv")
MESSAGE = ("-m", "fr:Fermé pour travaux.", "-m", "en:Closed for works.", "-m", "sv:Stängt för arbete.")
SECRET = {"env": SECRET_ENV}

# One channel of each type, as examples/statusd.full.yaml writes them; the first is a webhook,
# so one channel is the shipped config's kind.
KINDS: tuple[dict[str, Any], ...] = (
    {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET},
    {"type": "mastodon", "instance": "http://127.0.0.1:9", "token": SECRET},
    {"type": "x", "consumer_key": SECRET, "consumer_secret": SECRET, "access_token": SECRET,
     "access_token_secret": SECRET},
    {"type": "facebook", "page_id": "104857600123456", "token": SECRET},
    {"type": "bluesky", "service": "http://127.0.0.1:9", "handle": "library.bsky.social",
     "app_password": SECRET},
    {"type": "telegram", "chat_id": "@biblio", "token": SECRET},
    {"type": "matrix", "homeserver": "http://127.0.0.1:9", "room": "#status:bib.test", "token": SECRET},
    {"type": "apprise", "url": SECRET},
    {"type": "google_business", "account_id": "1234567890", "location_id": "987654321", "client_id": SECRET,
     "client_secret": SECRET, "refresh_token": SECRET},
    {"type": "console"},
)


@dataclass(frozen=True)
class Result:
    """One config's wall times, and the costliest imports of one run."""

    channels: int
    sites: int
    beside: bool  # a daemon running (the change handed to it), or the command alone
    wall: Summary  # milliseconds
    cpu: Summary  # milliseconds of CPU (user + system): what a busy shared machine inflates least
    imports: list[tuple[float, str]]  # (cumulative ms, top-level module), costliest first


def channels(count: int) -> dict[str, dict[str, Any]]:
    """`count` channels cycling through every type, in every language."""
    # Copied through JSON: a dict used twice would be written as a YAML anchor and aliases,
    # which a real config does not hold.
    return {f"ch-{i:03d}": {**json.loads(json.dumps(KINDS[i % len(KINDS)])), "language": LANGUAGES[i % len(LANGUAGES)]}
            for i in range(count)}


def sites(count: int, shipped: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The shipped sites plus generated ones up to `count`, and a status.yaml naming each."""
    generated = dict(shipped)
    for i in range(len(shipped), count):
        generated[f"site{i:03d}"] = {
            "name": {"fr": f"Bibliothèque {i}", "en": f"Library {i}", "sv": f"Bibliotek {i}"},
            "timezone": "Europe/Paris",
            "hours": {"mo-fr": "09:00-20:00", "sa": "10:00-18:00", "su": "closed"},
            "services": {"wifi": "Wi-Fi", "printing": {"fr": "Impression", "en": "Printing", "sv": "Utskrifter"}},
        }
    status = "".join(f"{name}:\n  level: open\n" for name in generated)
    return generated, status


def write(directory: Path, channel_count: int, site_count: int, console: bool = False) -> Path:
    """statusd.yaml and status.yaml for one point of the grid (`console`: console channels only); the config."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load((REPO / "statusd.yaml").read_text(encoding="utf-8"))
    data["channels"] = ({f"console-{i}": {"type": "console", "language": LANGUAGES[i % 3]} for i in range(channel_count)}
                        if console else channels(channel_count))
    data["sites"], status = sites(site_count, dict(data["sites"]))
    data["alerts"] = str(REPO / "alerts")
    path = directory / "statusd.yaml"
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    (directory / "status.yaml").write_text(status, encoding="utf-8")
    return path


def _command(config: Path, level: str, *python_flags: str) -> list[str]:
    # The `statusd` command the desk types (the installed script), as `python -m statusd` when
    # there is none: runpy's own imports are not the command's.
    script = Path(sys.executable).parent / "statusd"
    program = [str(script)] if script.exists() else ["-m", "statusd"]
    return [sys.executable, *python_flags, *program, "--config", str(config),
            "--state-dir", str(config.parent / "state"), "set", "main", level, *MESSAGE]


def _env() -> dict[str, str]:
    # Bytecode cached, as an installed package has it (pip compiles at install): a shell that sets
    # PYTHONDONTWRITEBYTECODE would otherwise make every run compile statusd again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, SECRET_ENV: "bench-command-secret", "PYTHONPATH": str(REPO)}


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _run(config: Path, level: str, *python_flags: str) -> tuple[float, str, float]:
    """One `statusd set`: its wall time in ms, its stderr and its CPU time in ms. Raises if it fails."""
    began, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(_command(config, level, *python_flags), env=_env(), cwd=config.parent,
                          capture_output=True, text=True, timeout=60, check=False)
    wall = (time.perf_counter() - began) * 1000
    cpu = (_cpu() - cpu) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"statusd set failed ({done.returncode}): {done.stderr.strip()[:400]}")
    return wall, done.stderr, cpu


def _store(config: Path) -> None:
    """The daemon's store, as it leaves it: `set` probes it (the usual case, a daemon running)."""
    from statusd.outbox.sqlite import SqliteStore

    SqliteStore(config.parent / "state" / "statusd.db").close()


def top_imports(stderr: str, count: int = 8) -> list[tuple[float, str]]:
    """The costliest top-level imports in `python -X importtime` output, cumulative ms."""
    found: list[tuple[float, str]] = []
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the heading
        if not parts[2].startswith("  "):  # nested imports are indented by two spaces a level
            found.append((int(parts[1]) / 1000, parts[2].strip()))
    return sorted(found, reverse=True)[:count]


def measure(runs: int, grid: list[tuple[int, int]] | None = None) -> list[Result]:
    """`runs` timed `set`s (closed and open in turn) at each (channels, sites) of `grid`, alone then beside a daemon."""
    from common import RunningDaemon

    results = []
    for channel_count, site_count in grid or default_grid():
        with tempfile.TemporaryDirectory(prefix="statusd-bench-command-") as tmp:
            config = write(Path(tmp), channel_count, site_count)
            _store(config)
            results.append(_timed(config, (channel_count, site_count), runs, beside=False))
            with RunningDaemon(config, config.parent / "state"):
                results.append(_timed(config, (channel_count, site_count), runs, beside=True))
    return results


def _timed(config: Path, point: tuple[int, int], runs: int, beside: bool) -> Result:
    _run(config, "limited")  # warm the file cache and compile bytecode once
    timed = [_run(config, ("closed", "open")[i % 2]) for i in range(runs)]
    _, stderr, _ = _run(config, "closed", "-X", "importtime")
    return Result(*point, beside, Summary.of([t[0] for t in timed]), Summary.of([t[2] for t in timed]),
                  top_imports(stderr))


def default_grid() -> list[tuple[int, int]]:
    """1 and 128 channels, each at 3, 100 and 500 sites."""
    return [(n, s) for n in CHANNEL_COUNTS for s in SITE_COUNTS]


def memory(site_counts: tuple[int, ...] = SITE_COUNTS, settle: float = 2.0) -> list[tuple[int, float, float]]:
    """The daemon's VmRSS (MB) after its start and after one `statusd set`, per site count (3 console channels)."""
    from common import RunningDaemon

    found = []
    for site_count in site_counts:
        with tempfile.TemporaryDirectory(prefix="statusd-bench-memory-") as tmp:
            config = write(Path(tmp), 3, site_count, console=True)
            running = RunningDaemon(config, config.parent / "state")
            with running:
                time.sleep(settle)
                started = _rss(running.pid)
                _run(config, "closed")
                time.sleep(settle)
                found.append((site_count, started, _rss(running.pid)))
    return found


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def memory_rows(found: list[tuple[int, float, float]]) -> list[tuple[str, str, str]]:
    """One row per site count, then the growth per 100 sites between the smallest and the largest."""
    table = [(f"daemon RSS, {sites} sites (start / after a set)", f"{start:.1f} / {after:.1f} MB", "linear, modest")
             for sites, start, after in found]
    (low, low_mb, _), (high, high_mb, _) = found[0], found[-1]
    table.append(("  daemon RSS growth per 100 sites", f"{100 * (high_mb - low_mb) / (high - low):.2f} MB", ""))
    return table


def rows(results: list[Result]) -> list[tuple[str, str, str]]:
    """(figure, value, target) per grid point, then the costliest imports of the largest config, each way."""
    table = [(f"statusd set, {'beside a daemon' if r.beside else 'alone'}, {r.channels} ch, {r.sites} sites",
              f"{r.wall.median:.0f} ms (p90 {r.wall.p90:.0f}, cpu {r.cpu.median:.0f})",
              f"< {TARGET_MS:.0f} ms" + ("" if r.wall.median < TARGET_MS else "  MISSED"))
             for r in results]
    for beside in (True, False):
        largest = max((r for r in results if r.beside == beside), key=lambda r: (r.channels * r.sites, r.channels))
        for ms, name in largest.imports:
            table.append((f"  import {name} ({'beside' if beside else 'alone'}, {largest.channels} ch, "
                          f"{largest.sites} sites)", f"{ms:.1f} ms", ""))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/command.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per config (median and p90 of these)")
    parser.add_argument("--no-memory", action="store_true", help="skip the daemon's RSS at 3, 100 and 500 sites")
    args = parser.parse_args(argv)
    print(machine())
    table = rows(measure(args.runs)) + ([] if args.no_memory else memory_rows(memory()))
    for figure, value, target in table:
        print(f"{figure:<60} {value:>32}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
