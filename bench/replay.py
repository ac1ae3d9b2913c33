"""Replay: how long `statusd replay FILE --speed 0` takes to play a day of readings.

Two figures per example day, each the median of `runs` runs:
- the whole `statusd replay` process, Python start-up and printing included (wall time);
- in a separate Python process, `statusd.replay.load` and `play` timed alone.

    python bench/replay.py --runs 5
    python bench/replay.py inproc --file FILE --runs N --out OUT   (run by the above)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import REPO, Summary, machine

TARGET_S = 2.0  # a whole day, whole process
DAYS = {
    "large library": REPO / "examples" / "day-large-library.jsonl",
    "university exams": REPO / "examples" / "day-university-exams.csv",
}
CONFIG = REPO / "statusd.yaml"
RUN_TIMEOUT = 60.0
_SUMMARY = re.compile(r"(\d+) post\(s\) and (\d+) operator notice\(s\) for the day\.")


@dataclass(frozen=True)
class Result:
    """One day's replay times, in seconds, over `runs` runs."""

    name: str
    readings: int
    posts: str  # the command's own summary, e.g. "15 posts, 0 notices"
    process: Summary
    load: Summary
    play: Summary


def measure(runs: int = 5) -> list[Result]:
    """Replay each example day `runs` times as a process and `runs` times in-process."""
    results = []
    with tempfile.TemporaryDirectory(prefix="statusd-bench-replay-") as tmp:
        work = Path(tmp)
        for name, path in DAYS.items():
            walls, posts = [], ""
            for _ in range(runs):
                wall, posts = _process(path, work)
                walls.append(wall)
            inproc = _inproc(path, runs, work)
            results.append(Result(name, inproc["readings"], posts, Summary.of(walls),
                                  Summary.of(inproc["load"]), Summary.of(inproc["play"])))
    return results


def _process(path: Path, work: Path) -> tuple[float, str]:
    """Wall time of one `statusd replay PATH --speed 0`, and the summary it printed."""
    command = [sys.executable, "-m", "statusd", "--config", str(CONFIG), "--state-dir",
               str(work / "state"), "replay", str(path), "--speed", "0"]
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=work,
                          timeout=RUN_TIMEOUT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"statusd replay {path.name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    found = _SUMMARY.search(done.stdout)
    return wall, f"{found.group(1)} posts, {found.group(2)} notices" if found else "?"


def _inproc(path: Path, runs: int, work: Path) -> dict:  # type: ignore[type-arg]
    """load() and play() timed in a fresh Python process (its logs kept away from our table)."""
    out = work / f"{path.stem}.json"
    command = [sys.executable, __file__, "inproc", "--file", str(path), "--runs", str(runs),
               "--out", str(out)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=work,
                          timeout=RUN_TIMEOUT * runs)
    if done.returncode != 0:
        raise RuntimeError(f"in-process replay of {path.name} exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    data: dict = json.loads(out.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    return data


def _time_inproc(path: Path, runs: int, out: Path) -> None:
    from statusd import replay as replaying
    from statusd.config.rules import RulesConfig
    from statusd.loading import load as load_config

    config = load_config(CONFIG)
    # As the command does: the parsed `rules:` section when the config has one, else the defaults.
    rules = getattr(config, "rules", None)
    rules = rules if isinstance(rules, RulesConfig) else None
    loads, plays, readings = [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        loaded = replaying.load(path, config)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        replaying.play(loaded.readings, config, rules, speed=0.0)
        plays.append(time.perf_counter() - started)
        readings = len(loaded.readings)
    out.write_text(json.dumps({"readings": readings, "load": loads, "play": plays}), encoding="utf-8")


def rows(results: list[Result]) -> list[tuple[str, str, str]]:
    """(figure, value, target) lines: medians, with min and max beside them."""
    table = []
    for r in results:
        table += [
            (f"replay {r.name} ({r.readings} readings): process", _seconds(r.process),
             f"< {TARGET_S:g} s"),
            (f"replay {r.name}: load() + play() in-process",
             f"{r.load.median * 1000:.0f} + {r.play.median * 1000:.0f} ms", r.posts),
        ]
    return table


def _seconds(s: Summary) -> str:
    return f"{s.median:.2f} s (min {s.min:.2f}, max {s.max:.2f})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["inproc"]:
        parser = argparse.ArgumentParser(prog="bench/replay.py inproc")
        parser.add_argument("--file", type=Path, required=True)
        parser.add_argument("--runs", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True)
        args = parser.parse_args(argv[1:])
        _time_inproc(args.file, args.runs, args.out)
        return 0
    parser = argparse.ArgumentParser(prog="bench/replay.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results = measure(args.runs)
    print(f"statusd replay --speed 0, median of {args.runs} runs; {machine()}")
    for name, value, target in rows(results):
        print(f"{name:<52} {value:>28}  {target}")
    return 0 if all(r.process.median < TARGET_S for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
