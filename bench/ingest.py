"""Ingest: readings per second that one daemon takes on POST /api/v1/readings.

wrk (from Debian) holds `connections` keep-alive connections to the real daemon on
127.0.0.1 and POSTs, with a feed's bearer token, either one seat reading a request or
a batch of `batch` readings a request. A Lua script counts every answer by status: all
should be 202; anything else is reported. One wrk run of `seconds` each, after a
short unreported warm-up.

    python bench/ingest.py --seconds 5 --connections 64 --batch 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import RunningDaemon, machine, write_config
from wrkout import latency, lua_string, number

from statusd.config.feeds import HttpFeedConfig

SINGLE_TARGET = 5_000  # readings/s, one reading a request, 64 connections
BATCH_TARGET = 50_000  # readings/s, 100 readings a request
TOKEN = "bench-counter-token-1f7c"
TOKEN_ENV = "BENCH_FEED_TOKEN"
THREADS = 1  # the daemon is one Python process: wrk keeps to the other core
WARMUP = 1.0
CHANNELS = {"console": {"type": "console", "language": "en"}}
ZONES = (("main", "floor1", 180), ("main", "floor2", 240), ("main", "floor3", 120),
         ("annexe", "reading", 80))  # the shipped statusd.yaml's zones

# wrk's Lua: the POST, and a count of answers by status gathered from every thread.
SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}

local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {{}} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\\n", status, n)) end
end
"""


@dataclass(frozen=True)
class Run:
    """One wrk run's figures."""

    name: str
    per_request: int  # readings in each request
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    statuses: dict[int, int]  # answers by HTTP status
    socket_errors: int
    ingested: int  # readings the daemon counted in (its /metrics), answered or still in flight

    @property
    def readings_per_s(self) -> float:
        """Accepted readings a second: requests a second × readings each × the share of 202s."""
        answered = sum(self.statuses.values())
        share = self.statuses.get(202, 0) / answered if answered else 0.0
        return self.requests_per_s * self.per_request * share

    @property
    def refused(self) -> int:
        """Answers other than 202."""
        return sum(n for status, n in self.statuses.items() if status != 202)


# -- the readings ----------------------------------------------------------------------------------

def reading(i: int) -> dict[str, Any]:
    """A plausible seat reading (no `at`: the daemon stamps it), one of the shipped zones."""
    site, zone, capacity = ZONES[i % len(ZONES)]
    return {"kind": "seats", "site": site, "zone": zone, "occupied": capacity // 2,
            "capacity": capacity, "sensor": f"bench-{zone}"}


def batch(size: int) -> dict[str, Any]:
    """A batch body of `size` readings, the zones taken in turn."""
    return {"readings": [reading(i) for i in range(size)]}


# -- the daemon ------------------------------------------------------------------------------------

def _write_config(work: Path) -> Path:
    """The shipped config (its sites and zones) with a console channel and an HTTP feed."""
    from ruamel.yaml import YAML

    config = write_config(work, CHANNELS, status="main:\n  level: open\n")
    yaml = YAML(typ="rt")
    data = yaml.load(config.read_text(encoding="utf-8"))
    feed: dict[str, Any] = {"type": "http", "token": {"env": TOKEN_ENV}}
    if "max_rate" in {f.name for f in dataclasses.fields(HttpFeedConfig)}:
        feed["max_rate"] = 0  # no per-token rate limit: the daemon's own speed is measured
    data["feeds"] = {"counters": feed}
    with config.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return config


def _ingested(base: str) -> int:
    """The daemon's own count of readings ingested, summed over feeds (/metrics, operator port)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return round(sum(float(n) for n in re.findall(
        r'^statusd_readings_total\{[^}]*result="ingested"[^}]*\} (\S+)$', text, re.MULTILINE)))


def _check_accepted(url: str, body: bytes) -> None:
    """One POST by hand: a clear error now rather than a table full of 4xx later."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    if status != 202:
        raise RuntimeError(f"POST {url} answered {status}, not 202: {text}")


# -- wrk -------------------------------------------------------------------------------------------

def ensure_wrk() -> None:
    """wrk from Debian, installed when missing (as root), or a clear error."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/ingest.py needs wrk: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL,
                   env=env)


def wrk(name: str, base: str, body: bytes, per_request: int, seconds: float, connections: int,
        work: Path, ops: str) -> Run:
    """One bounded wrk run POSTing `body` over `connections` keep-alive connections."""
    url = f"{base}/api/v1/readings"
    before = _ingested(ops)
    script = work / f"{name}.lua"
    script.write_text(SCRIPT.format(body=lua_string(body.decode()),
                                    authorization=lua_string(f"Bearer {TOKEN}")), encoding="utf-8")
    command = ["wrk", "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds:g}s",
               "--latency", "-s", str(script), url]
    done = subprocess.run(command, check=False, capture_output=True, text=True,
                          timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}:\n{done.stderr}{done.stdout}")
    out = done.stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE)}
    return Run(name, per_request, number(out, r"Requests/sec:\s+([\d.]+)"), latency(out, "50%"),
               latency(out, "99%"), statuses, _socket_errors(out), _ingested(ops) - before)


def _socket_errors(out: str) -> int:
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return sum(int(n) for n in found.groups()) if found else 0


# -- the measurement -------------------------------------------------------------------------------

def measure(seconds: float = 5.0, connections: int = 64, size: int = 100) -> list[Run]:
    """Single readings, then batches of `size`, against one daemon in a temporary directory."""
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="statusd-bench-ingest-") as tmp:
        work = Path(tmp)
        running = RunningDaemon(_write_config(work), work / "state")
        running.daemon.env[TOKEN_ENV] = TOKEN  # the feed's token, beside the hooks' secret
        with running as daemon:
            base = daemon.url
            single = json.dumps(reading(0), separators=(",", ":")).encode()
            many = json.dumps(batch(size), separators=(",", ":")).encode()
            runs = []
            for name, body, per_request in (("single", single, 1), (f"batch-{size}", many, size)):
                _check_accepted(f"{base}/api/v1/readings", body)
                wrk(f"{name}-warmup", base, body, per_request, WARMUP, connections, work, daemon.ops_url)
                runs.append(wrk(name, base, body, per_request, seconds, connections, work, daemon.ops_url))
            if daemon.proc is not None and daemon.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited during the runs:\n{daemon.logs()[-3000:]}")
            return runs


def rows(runs: list[Run], connections: int = 64) -> list[tuple[str, str, str]]:
    """(figure, value, target) lines for the report."""
    table = []
    for run in runs:
        target = SINGLE_TARGET if run.per_request == 1 else BATCH_TARGET
        what = "single readings" if run.per_request == 1 else f"batches of {run.per_request}"
        answers = ", ".join(f"{n} × {status}" for status, n in sorted(run.statuses.items()))
        table += [
            (f"ingest {what}, {connections} connections", f"{run.readings_per_s:,.0f} readings/s",
             f">= {target:,} readings/s"),
            (f"ingest {what}: requests, latency",
             (f"{run.requests_per_s:,.0f} req/s, p50 {run.latency_p50_ms:.1f} ms, "
              f"p99 {run.latency_p99_ms:.1f} ms"), ""),
            (f"ingest {what}: answers", answers or "none",
             f"{run.refused} non-202, {run.socket_errors} socket errors"),
            (f"ingest {what}: readings the daemon counted", f"{run.ingested:,}",
             f"wrk saw {run.statuses.get(202, 0) * run.per_request:,} accepted"),
        ]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/ingest.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    runs = measure(args.seconds, args.connections, args.batch)
    print(f"POST /api/v1/readings with wrk, {args.connections} connections, {THREADS} thread, "
          f"{args.seconds:g} s each; {machine()}")
    for name, value, target in rows(runs, args.connections):
        print(f"{name:<46} {value:>40}  {target}")
    return 0 if all(run.refused == 0 and run.socket_errors == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
