"""The wanted status in PostgreSQL, for daemons that share one database (cluster mode).

One row per target holds that target's entry written exactly as status.yaml would
hold it (`main: {services: {wifi: {level: closed, ...}}}`), and is read back through
the very parser that reads the file: the same checks, the same errors. A change is
committed with a NOTIFY on `statusd_wanted`, so every node hears of it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
import structlog

from statusd.config.load import Config
from statusd.config.store_section import limits
from statusd.errors import ConfigError, Problem, UserError
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status import edit as status_edit
from statusd.sources.status import file as status_file

__all__ = ["CHANNEL", "SCHEMA", "WantedRows", "address", "fragment", "migrate"]

log = structlog.get_logger()

CHANNEL = "statusd_wanted"
# pg_advisory_lock key of the wanted status ("statusd" in hex, near enough): undo and set.
LOCK_KEY = 0x57A7D5
SCHEMA = """
CREATE TABLE IF NOT EXISTS wanted (
    target TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
);
"""


def address(config: Config) -> str:
    """The store's address with its password (read now from its reference), for psycopg."""
    assert config.store.dsn is not None
    secret = config.store.password
    password = secret.read() if secret is not None else None
    if secret is not None and password is None:
        raise UserError(f"{config.path}: store_password: {secret.describe()} is not set")
    return psycopg.conninfo.make_conninfo(config.store.dsn, password=password) if password else config.store.dsn


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the wanted table if it is missing."""
    conn.execute(SCHEMA)


def fragment(config: Config, target: Target, entry: StatusEntry) -> str:
    """`entry` as status.yaml would hold it, alone in a document of its own."""
    site = config.sites.get(target.site)
    if site is None or (target.service is not None and target.service not in site.services):
        raise UserError(f"unknown target {str(target)!r} in {config.path}; nothing was changed")
    return status_edit.document(config, {target: entry})


def parse_row(config: Config, target: str, body: str) -> StatusEntry:
    """One row, checked as the file is; ConfigError names the row when it is wrong."""
    name = f"the wanted status row {target!r}"
    wanted = status_file.parse(body, name, config)
    entry = wanted.get(Target.parse(target))
    if entry is None:  # (a service's row also says its site is open: only its own entry counts)
        raise ConfigError([Problem(name, 1, "", f"should hold exactly the entry of {target}")])
    return entry


class WantedRows:
    """The `WantedStatus` of a cluster: rows in PostgreSQL, one connection per call."""

    def __init__(self, config: Config, dsn: str, keep: bool = False) -> None:
        self.config = config
        self.dsn = dsn
        self._held: psycopg.Connection[tuple[object, ...]] | None = None
        # The daemon reads on every notice: one connection kept for reads (one reader at a time).
        self._keep = keep
        self._reader: psycopg.Connection[tuple[object, ...]] | None = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        # The store's own limits (statement, lock, idle in a transaction, TCP): a writer whose link
        # is cut while it holds the rows' lock must not hold it, and every desk's `set`, for ever.
        try:
            return psycopg.connect(self.dsn, **limits(self.config.store.timeout))
        except psycopg.Error as err:
            raise UserError(f"cannot reach the database of {self.describe()}: {_reason(err)}") from err

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        if self._held is not None:
            yield self._held
            return
        with self._connect() as conn:
            yield conn

    def _rows(self) -> list[tuple[object, ...]]:
        query = "SELECT target, body FROM wanted ORDER BY target"
        if not self._keep:
            with self._connection() as conn:
                return conn.execute(query).fetchall()
        try:
            if self._reader is None or self._reader.closed:
                self._reader = self._connect()
            return self._reader.execute(query).fetchall()
        except psycopg.Error as err:
            if self._reader is not None:
                self._reader.close()
            self._reader = None
            raise UserError(f"cannot read {self.describe()}: {_reason(err)}") from err

    def read(self) -> Wanted:
        rows = self._rows()
        wanted: dict[Target, StatusEntry] = {}
        problems: list[Problem] = []
        for target, body in rows:
            try:
                wanted[Target.parse(str(target))] = parse_row(self.config, str(target), str(body))
            except ConfigError as err:
                problems.extend(err.problems)
        if problems:
            raise ConfigError(problems)
        return wanted

    def set(self, target: Target, entry: StatusEntry, lock: bool = True) -> None:
        self._write(target, entry, lock, None)

    def set_unless_newer(self, target: Target, entry: StatusEntry) -> bool:
        """`set`, but not over a row changed after `entry.at`; whether it was written.

        For a push written after the fact (retried once the database is back): it must
        not undo a desk change made meanwhile (latest last).
        """
        return self._write(target, entry, True, entry.at)

    def _write(self, target: Target, entry: StatusEntry, lock: bool, since: datetime | None) -> bool:
        body = fragment(self.config, target, entry)
        try:
            checked = parse_row(self.config, str(target), body)
        except ConfigError as err:
            raise UserError(f"{target} would not be accepted ({err.problems[0]}); nothing was changed") from err
        if checked != entry:
            raise UserError(f"{target} would read back differently; nothing was changed")
        try:
            with self._connection() as conn, conn.transaction():
                if lock and self._held is None:
                    # Long enough to outwait a writer cut off while holding the lock, whose session
                    # the server ends after twice the store's timeout (idle in a transaction).
                    wait = int(self.config.store.timeout * 3000)
                    conn.execute(f"SET LOCAL lock_timeout = {wait}")
                    conn.execute(f"SET LOCAL statement_timeout = {wait}")
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                written = conn.execute(
                    "INSERT INTO wanted (target, body, updated_at, updated_by) VALUES (%s, %s, now(), %s)"
                    " ON CONFLICT (target) DO UPDATE SET body = EXCLUDED.body, updated_at = now(),"
                    " updated_by = EXCLUDED.updated_by"
                    " WHERE %s::timestamptz IS NULL OR wanted.updated_at <= %s::timestamptz",
                    (str(target), body, entry.by, since, since)).rowcount > 0
                if not written:
                    log.info("status_entry_not_written", target=str(target), reason="changed since",
                             store="postgresql")
                    return False
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(target)))
        except psycopg.Error as err:
            # A link lost mid-write (a cut, a server restart): the caller's error, never a crash of
            # the daemon's writer. Whether a COMMIT without its answer took is unknown: a retry tells.
            raise UserError(f"cannot write {target} to {self.describe()}: {_reason(err)}") from err
        log.info("status_entry_written", target=str(target), to=entry.level.value, store="postgresql")
        return True

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the advisory lock on one connection; `set` within it uses that connection."""
        with self._connect() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            self._held = conn
            try:
                yield
            finally:
                self._held = None
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def describe(self) -> str:
        return f"the wanted table of {redacted(self.dsn)}"

    def export_text(self) -> str | None:
        """Every row as one status.yaml (for `statusd export-state`); None when there is none."""
        wanted = self.read()
        return status_edit.document(self.config, wanted) if wanted else None

    def import_text(self, text: str, replace: bool) -> int:
        """A status.yaml's entries as rows, checked whole first (for `statusd import-state`)."""
        wanted = status_file.parse(text, "the exported status.yaml", self.config)
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            held = conn.execute("SELECT count(*) FROM wanted").fetchone()
            if held and held[0] and not replace:
                raise UserError(f"{self.describe()} already holds a status; use --replace to replace it")
            conn.execute("DELETE FROM wanted")
            for target, entry in wanted.items():
                conn.execute("INSERT INTO wanted (target, body, updated_by) VALUES (%s, %s, %s)",
                             (str(target), fragment(self.config, target, entry), entry.by))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "*"))
        return len(wanted)


def redacted(dsn: str) -> str:
    """The DSN without its password, for people and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured database"
    host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname", "")
    return f"postgresql://{info.get('user', '')}@{host}:{port}/{db}"


def _reason(err: psycopg.Error) -> str:
    # libpq's first line says what failed; the lines after it are hints ("before or while processing").
    text = str(err).strip().splitlines()
    return text[0].rstrip(".") if text else type(err).__name__
