"""`make bench`: fan-out to 8 and 32 webhooks, then the idle daemon; one plain table.

Takes about a minute. Each benchmark starts its own daemon and receivers on 127.0.0.1
in a temporary directory and stops them at the end, even after an error.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import fanout
import idle
from common import HOOK_DELAY, Summary, machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    failures: list[str] = []
    table: list[tuple[str, Summary, str]] = []
    for n in (8, 32):
        print(f"fan-out to {n} receivers, {args.flips} flips ...", file=sys.stderr, flush=True)
        try:
            table.extend(fanout.rows(fanout.measure(n, args.flips)))
        except Exception:  # noqa: BLE001  one failure must not hide the other figures
            failures.append(f"fan-out N={n}:\n{traceback.format_exc()}")
    print(f"idle daemon, {args.settle:g} s settle + {args.window:g} s window ...",
          file=sys.stderr, flush=True)
    try:
        idle_rows = idle.rows(idle.measure(args.settle, args.window))
    except Exception:  # noqa: BLE001  as above
        failures.append(f"idle:\n{traceback.format_exc()}")
        idle_rows = []
    print()
    print(f"statusd benchmarks; {machine()}")
    print(f"webhook receivers answer after {HOOK_DELAY * 1000:.0f} ms; "
          f"fan-out figures over {args.flips} flips each")
    print()
    if table:
        print(fanout.format_rows(table))
        print(fanout.NOTE)
        print()
    for name, value, target in idle_rows:
        print(f"{name:<46} {value:>24}  {target}")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
