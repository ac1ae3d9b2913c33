"""More than one node: fail-over time over leader kills, and PostgreSQL against SQLite.

Fail-over: three daemons on one PostgreSQL (the default 5 s lease), four webhook
receivers; the leader is SIGKILLed, a change is written at once, and the time from
the kill to the first delivery (by the new leader) is taken; the killed node is
started again as a follower. 20 kills.

PostgreSQL vs SQLite: one daemon with 32 webhook receivers (150 ms each), flipped with
`statusd set` as at the desk: from the command's start to the last receiver having
the message, and from the change being committed (status.yaml written / the row's
commit) to the last arrival; the same flips on each store, in one run.

    python bench/cluster.py --kills 20 --flips 10
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from common import SECRET, SECRET_ENV, Hooks, Summary, machine, webhook, write_config

from tests.cluster.nodes import migrate
from tests.support.daemon import Daemon
from tests.support.postgres import PostgresServer

FAILOVER_TARGET = 10.0
PASSWORD_ENV = "BENCH_DB_PASSWORD"
ARRIVAL_TIMEOUT = 30.0
POLL = 0.005
TRANSIT = 0.2


def _server() -> PostgresServer:
    """A throw-away PostgreSQL in a directory of its own (its owner must reach it)."""
    return PostgresServer(Path(tempfile.mkdtemp(prefix="statusd-bench-pg-"))).start()


def _store_lines(server: PostgresServer, database: str, node: str | None, lease: str = "5s") -> str:
    url = server.dsn(database, password=False)
    text = f"\nstore: '{url}'\nstore_password: {{env: {PASSWORD_ENV}}}\n"
    return text + (f"cluster: {{node: {node}, lease: {lease}}}\n" if node else "")


def _env() -> dict[str, str]:
    from tests.support.postgres import PASSWORD

    return {SECRET_ENV: SECRET, PASSWORD_ENV: PASSWORD}


def _role(daemon: Daemon) -> str | None:
    try:
        with urllib.request.urlopen(f"{daemon.ops_url}/readyz", timeout=1) as answer:
            return str(json.loads(answer.read()).get("cluster", {}).get("role"))
    except (OSError, ValueError):
        return None


def _leader(daemons: list[Daemon], timeout: float = 30.0) -> Daemon:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [d for d in daemons if d.proc is not None and d.proc.poll() is None]
        leading = [d for d in alive if _role(d) == "leader"]
        if len(leading) == 1:
            return leading[0]
        time.sleep(0.05)
    raise RuntimeError("no single leader")


def _first_arrival_after(hooks: Hooks, moment: float) -> float:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while time.monotonic() < deadline:
        # (the first TRANSIT seconds: a request the dead leader wrote just before may still arrive)
        times = [float(a["received_at"]) for log in hooks.logs for a in log.poll()
                 if float(a["received_at"]) > moment + TRANSIT]
        if times:
            return min(times)
        time.sleep(POLL)
    raise TimeoutError("no delivery after the kill")


def failover(kills: int) -> list[float]:
    """Seconds from each leader kill to the first delivery after it."""
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        directory = Path(tmp)
        server = _server()
        try:
            database = server.create_database()
            migrate(server.dsn(database))
            with Hooks(4, directory / "hooks") as hooks:
                channels = {f"hook{i:02d}": webhook(url) for i, url in enumerate(hooks.urls)}
                daemons = []
                for n in range(3):
                    home = directory / f"n{n + 1}"
                    home.mkdir()
                    path = write_config(home, channels, status="main:\n  level: open\n")
                    path.write_text(path.read_text() + _store_lines(server, database, f"n{n + 1}"))
                    daemons.append(Daemon(path, home / "state", env=_env()))
                try:
                    for daemon in daemons:
                        daemon.start(timeout=30)
                    PROPAGATION.extend(_propagation(daemons, server, database, 10))
                    return [_one_kill(daemons, hooks, server, database, n) for n in range(kills)]
                finally:
                    for daemon in daemons:
                        daemon.kill()
        finally:
            server.stop()
            shutil.rmtree(server.directory, ignore_errors=True)


PROPAGATION: list[float] = []  # ms, filled by failover()


def _propagation(daemons: list[Daemon], server: PostgresServer, database: str, flips: int) -> list[float]:
    """A change committed to the database (as a desk flip on any node commits it) → every node's
    /status.json shows it: ms from the commit's return to the slowest node."""
    from concurrent.futures import ThreadPoolExecutor

    from statusd import loading
    from statusd.sources.status import entry as desk
    from statusd.sources.status.rows import WantedRows

    config = loading.load(daemons[0].config)
    rows = WantedRows(config, server.dsn(database))
    times = []
    with ThreadPoolExecutor(len(daemons)) as pool:
        for n in range(flips):
            text = f"Propagation {n + 1}."
            target, entry = desk.build(config, "annexe", "limited", [f"en:{text}"], None, None, "bench",
                                       datetime.now(UTC))
            rows.set(target, entry)
            written = time.time()
            seen = list(pool.map(_shows, daemons, [text] * len(daemons)))
            times.append((max(seen) - written) * 1000)
            time.sleep(0.2)
    return times


def _shows(daemon: Daemon, text: str, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{daemon.url}/status.json", timeout=2) as answer:
            if text in answer.read().decode("utf-8"):
                return time.time()
        time.sleep(0.01)
    raise TimeoutError(f"{daemon.url} did not show the change within {timeout:g} s")


def _one_kill(daemons: list[Daemon], hooks: Hooks, server: PostgresServer, database: str, n: int) -> float:
    from statusd import loading
    from statusd.sources.status import entry as desk
    from statusd.sources.status.rows import WantedRows

    leader = _leader(daemons)
    config = loading.load(leader.config)
    rows = WantedRows(config, server.dsn(database))
    leader.kill()
    killed = time.time()  # once it is dead
    level = random.choice(("closed", "limited", "open", "emergency"))
    target, entry = desk.build(config, "main", level, [f"en:Fail-over {n + 1}: {level}."], None, None,
                               "bench", datetime.now(UTC))
    rows.set(target, entry)
    seconds = _first_arrival_after(hooks, killed) - killed
    leader.start(timeout=30)
    return seconds


def compare(receivers: int, flips: int) -> dict[str, tuple[Summary, Summary]]:
    """Per store: (set invoked → last arrival, change committed → last arrival), in ms."""
    from fanout import _last_arrival

    results: dict[str, tuple[Summary, Summary]] = {}
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        directory = Path(tmp)
        server = _server()
        try:
            with Hooks(receivers, directory / "hooks") as hooks:
                channels = {f"hook{i:02d}": webhook(url) for i, url in enumerate(hooks.urls)}
                database = ""
                for store in ("sqlite", "postgresql"):
                    home = directory / store
                    home.mkdir()
                    path = write_config(home, channels, status="main:\n  level: open\n")
                    if store == "postgresql":
                        database = server.create_database()
                        migrate(server.dsn(database))
                        path.write_text(path.read_text() + _store_lines(server, database, "solo"))
                    daemon = Daemon(path, home / "state", env=_env()).start(timeout=30)
                    try:
                        time.sleep(1.0)
                        invoked, committed = [], []
                        for n in range(flips):
                            level = "closed" if n % 2 == 0 else "open"
                            seen = [len(log.poll()) for log in hooks.logs]
                            start = time.time()
                            daemon.cli("set", "main", level, "-m", f"en:Bench {store} {n + 1}: {level}.")
                            done = time.time()
                            last = _last_arrival(hooks, seen, level)
                            invoked.append((last - start) * 1000)
                            committed.append((last - _committed(store, path, done, server, database)) * 1000)
                            time.sleep(0.3)
                        results[store] = (Summary.of(invoked), Summary.of(committed))
                    finally:
                        daemon.kill()
        finally:
            server.stop()
            shutil.rmtree(server.directory, ignore_errors=True)
    return results


def _committed(store: str, path: Path, returned: float, server: PostgresServer, database: str) -> float:
    """When the change became visible to the daemon: status.yaml's ctime, or (PostgreSQL) the
    row's time (its transaction's, on this machine's clock), just before its commit."""
    if store == "sqlite":
        return path.with_name("status.yaml").stat().st_ctime_ns / 1e9
    import psycopg

    with psycopg.connect(server.dsn(database)) as conn:
        row = conn.execute("SELECT extract(epoch FROM updated_at) FROM wanted WHERE target = 'main'").fetchone()
    return float(str(row[0])) if row else returned


def rows(kills: list[float], compared: dict[str, tuple[Summary, Summary]]) -> list[tuple[str, str, str]]:
    table = []
    if PROPAGATION:
        table.append(("a change on any node -> every node's status.json", _ms(Summary.of(PROPAGATION)),
                      "< 100 ms"))
    if kills:
        table.append((f"fail-over, {len(kills)} leader kills (kill -> 1st delivery)",
                      f"median {statistics.median(kills):.2f} s, max {max(kills):.2f} s",
                      f"< {FAILOVER_TARGET:g} s max"))
    for store, (invoked, committed) in compared.items():
        table.append((f"32 webhooks, {store}: desk `set` -> last delivery", _ms(invoked), ""))
        table.append((f"32 webhooks, {store}: change committed -> last", _ms(committed), ""))
    return table


def _ms(s: Summary) -> str:
    return f"{s.median:.0f} ms (min {s.min:.0f}, p90 {s.p90:.0f}, max {s.max:.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--flips", type=int, default=10)
    parser.add_argument("--receivers", type=int, default=32)
    args = parser.parse_args(argv)
    kills = failover(args.kills) if args.kills >= 0 else []
    compared = compare(args.receivers, args.flips) if args.flips else {}
    print(f"more than one node; {machine()}")
    for figure, value, target in rows(kills, compared):
        print(f"{figure:<56} {value:>44}  {target}")
    if kills:
        print("each fail-over:", ", ".join(f"{k:.2f}" for k in kills))
    return 0


if __name__ == "__main__":
    sys.exit(main())
