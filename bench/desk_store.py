"""What the desk's storage costs a request, on SQLite and on PostgreSQL (a cluster's).

    python bench/desk_store.py                  # SQLite, and PostgreSQL when it is installed
    python bench/desk_store.py --calls 200

For each engine (the store's SQLite file; a throw-away PostgreSQL cluster on
127.0.0.1, as the tests start it) it times, called directly as the desk's worker
thread calls them: a token check (what every desk API request and page does first:
the token's row and its account's), a login (throttle look-up, argon2id
verification, clearing the count, then a new token), and a failed login (the
verification and the count, read and written in one transaction). Median and p90.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from statusd.desk import db as desk_db
from statusd.desk.db import DeskDb
from statusd.desk.db_postgres import PgDesk
from statusd.desk.login import Desk, LoginRefused, authenticate
from statusd.desk.tokens import TOKEN, Tokens
from tests.support.postgres import PASSWORD, PostgresServer, postgres_bindir

GOOD = "correct horse battery staple"
Row = tuple[str, str]


def _timed(call: Callable[[], object], n: int) -> str:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return f"{statistics.median(times) * 1000:.2f} ms / {times[int(len(times) * 0.9)] * 1000:.2f} ms"


def measure(name: str, db: DeskDb, n: int) -> list[Row]:
    desk = Desk.open(db)
    desk.accounts.add("bench", "Bench", "admin", [], ["main"])
    desk.accounts.enrol(desk.accounts.enrolment("bench", 3600), GOOD)
    tokens = Tokens(db, desk.accounts)
    token, _ = tokens.issue("bench", TOKEN, "bench")

    def login() -> None:
        authenticate(desk, "bench", GOOD, "192.0.2.1")
        tokens.issue("bench", TOKEN, "bench")

    addresses = iter(range(1_000_000))

    def failed() -> None:
        try:  # a new address each time, and the account's count cleared: never locked, always verified
            authenticate(desk, "bench", "wrong password", f"10.0.{next(addresses)}")
        except LoginRefused:
            desk.limits.clear("bench")

    rows = [(f"{name}: token check (median / p90)", _timed(lambda: tokens.check(token, 86400.0), n * 10)),
            (f"{name}: login and token", _timed(login, n)),
            (f"{name}: failed login", _timed(failed, n))]
    db.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="logins per figure; token checks ×10 (default 100)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # one line per login
    directory = Path(tempfile.mkdtemp(prefix="statusd-bench-desk-"))
    rows = measure("sqlite", desk_db.connect(directory / "statusd.db"), args.calls)
    try:
        postgres_bindir()
    except RuntimeError as err:
        rows.append(("postgresql: not measured", str(err)))
    else:
        cluster = Path(tempfile.mkdtemp(prefix="statusd-bench-pg-"))  # its own: the postgres user must enter it
        server = PostgresServer(cluster).start()
        try:
            rows += measure("postgresql", PgDesk(server.dsn(server.create_database(), password=False), PASSWORD),
                            args.calls)
        finally:
            server.stop()
            shutil.rmtree(cluster, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for figure, value in rows:
        print(f"{figure:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
