"""`make bench`: every benchmark, one after the other, then one plain table.

Fan-out to 8 and 32 webhooks, fan-out to 12 social accounts, the idle daemon, SSE
fan-out (and through nginx+nchan), /status.json and ingest throughput (wrk), `statusd replay`, and how long a
local `statusd set` takes from 1 to 128 channels and 3 to 500 sites, one closure
to 10,000 and 50,000 Web Push subscriptions, and (cluster) the fail-over time over
20 leader kills and 32 webhooks on PostgreSQL vs SQLite. Takes about
ten minutes. Each benchmark starts its own daemon and fakes on 127.0.0.1 in a
temporary directory and stops them at the end, even after an error; one failing
benchmark is reported and the others still run.

    python bench/run.py                  # all
    python bench/run.py --only ingest --only replay
    python bench/run.py --only command --command-runs 20
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

import cluster
import command
import fanout
import fanout_peers
import hub
import idle
import ingest
import push
import replay
import social
import sse
import status_rps
from common import HOOK_DELAY, Summary, machine

Row = tuple[str, str, str]  # figure, value, target or note
BENCHES = ("fanout", "peers", "social", "idle", "sse", "hub", "status", "ingest", "replay", "command", "push",
           "cluster")


def _fanout_rows(flips: int) -> list[Row]:
    rows: list[Row] = []
    for n, sites in ((8, 0), (32, 0), (8, 500)):  # and flat to 500 sites (issue 15)
        rows += [(name, _ms(s), target) for name, s, target in fanout.rows(fanout.measure(n, flips, sites))]
    return rows


def _ms(s: Summary) -> str:
    return f"{s.median:.0f} ms (min {s.min:.0f}, p90 {s.p90:.0f}, max {s.max:.0f})"


def _plan(args: argparse.Namespace) -> list[tuple[str, str, Callable[[], list[Row]]]]:
    """(name, what is happening, how to get its rows) for every benchmark, in order."""
    return [
        ("fanout", f"fan-out to 8 and 32 webhooks, and to 8 at 500 sites, {args.flips} flips each",
         lambda: _fanout_rows(args.flips)),
        ("peers", f"ingest push to 1-128 webhooks beside an aiohttp gather and Apprise, {args.pushes} pushes each",
         lambda: fanout_peers.rows(fanout_peers.measure(pushes=args.pushes))),
        ("social", f"fan-out to 12 social accounts, {args.flips} flips",
         lambda: social.rows(social.measure(args.flips))),
        ("idle", f"idle daemon, {args.settle:g} s settle + {args.window:g} s window",
         lambda: idle.rows(idle.measure(args.settle, args.window))),
        ("sse", f"SSE fan-out to {args.subscribers} subscribers",
         lambda: sse.rows(sse.measure(args.subscribers))),
        ("hub", f"SSE: {args.hub_readers} readers through nginx+nchan beside {args.subscribers} from the daemon",
         lambda: hub.rows(hub.measure(args.hub_readers, args.subscribers))),
        ("status", f"/status.json with wrk, {args.seconds:g} s a run",
         lambda: status_rps.rows(status_rps.measure(args.seconds, 64))),
        ("ingest", f"ingest with wrk, {args.seconds:g} s a run",
         lambda: ingest.rows(ingest.measure(args.seconds, 64, 100), 64)),
        ("replay", f"statusd replay, {args.runs} runs a day",
         lambda: replay.rows(replay.measure(args.runs))),
        ("command", f"statusd set, {args.command_runs} runs at 1, 128 channels × 3, 100, 500 sites; daemon RSS",
         lambda: command.rows(command.measure(args.command_runs)) + command.memory_rows(command.memory())),
        ("push", f"Web Push: one closure to {' and '.join(f'{n:,}' for n in args.push)} subscriptions",
         lambda: push.rows([push.measure(n) for n in args.push])),
        ("cluster", f"3 nodes on PostgreSQL: {args.kills} leader kills; 32 webhooks on PostgreSQL vs SQLite",
         lambda: cluster.rows(cluster.failover(args.kills), cluster.compare(32, args.flips // 2 or 1))),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHES,
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--flips", type=int, default=20, help="flips for the fan-out benchmarks")
    parser.add_argument("--pushes", type=int, default=10, help="pushes a webhook count (peers)")
    parser.add_argument("--settle", type=float, default=10.0, help="idle: seconds before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="idle: seconds measured")
    parser.add_argument("--subscribers", type=int, default=5000, help="SSE streams")
    parser.add_argument("--hub-readers", type=int, default=20000, help="SSE streams through nginx+nchan")
    parser.add_argument("--seconds", type=float, default=5.0, help="each wrk run")
    parser.add_argument("--runs", type=int, default=5, help="replay runs a day")
    parser.add_argument("--kills", type=int, default=20, help="cluster: leader kills")
    parser.add_argument("--command-runs", type=int, default=10, help="command: timed `statusd set` runs a config")
    parser.add_argument("--push", type=int, action="append",
                        help="Web Push subscriptions for one closure (repeatable; default 10,000 and 50,000)")
    args = parser.parse_args(argv)
    args.push = args.push or [10_000, 50_000]
    started = time.monotonic()
    failures: list[str] = []
    sections: list[tuple[str, list[Row]]] = []
    for name, doing, rows in _plan(args):
        if args.only and name not in args.only:
            continue
        print(f"{doing} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            sections.append((name, rows()))
        except BaseException as err:  # one failure must not hide the other figures
            if isinstance(err, KeyboardInterrupt):
                raise
            failures.append(f"{name}:\n{traceback.format_exc()}")
        print(f"  ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    print()
    print(f"statusd benchmarks; {machine()}")
    print(f"webhook receivers and social fakes answer after {HOOK_DELAY * 1000:.0f} ms; "
          f"fan-out figures over {args.flips} flips each")
    print()
    print(f"{'measure':<52} {'value':>48}  target / note")
    for _, table in sections:
        for figure, value, target in table:
            print(f"{figure:<52} {value:>48}  {target}")
        print()
    if any(name in ("fanout", "social") for name, _ in sections):
        print(fanout.NOTE)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
