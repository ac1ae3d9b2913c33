"""The store's tables, for both dialects, and the versioned steps that bring an older store up to them.

`VERSION` is the schema this code reads and writes. A SQLite file is brought up
to it when opened for writing, as it always was; a PostgreSQL database only by
`statusd migrate`, and the daemon refuses one that is behind (several nodes
share it: one upgrade, chosen by a person, not a race at start).
"""

from __future__ import annotations

from collections.abc import Callable

from statusd.outbox.dialect import Dialect

TABLES = """
CREATE TABLE IF NOT EXISTS events (
    seq {key},
    id {text} NOT NULL UNIQUE,
    kind {text} NOT NULL,
    target {text} NOT NULL,
    level {text} NOT NULL,
    author {text} NOT NULL,
    created_at {real} NOT NULL,
    body {text} NOT NULL,
    previous {text},
    retracted_at {real},
    retracted_by {text}
);
CREATE TABLE IF NOT EXISTS deliveries (
    id {key},
    event_id {text} NOT NULL REFERENCES events(id),
    channel {text} NOT NULL,
    action {text} NOT NULL DEFAULT 'post',
    state {text} NOT NULL,
    message {text},
    idempotency_key {text} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt {real} NOT NULL,
    deadline {real} NOT NULL,
    remote_id {text},
    remote_url {text},
    last_error {text},
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    sent_at {real},
    uncertain INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, channel, action)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_attempt);
CREATE INDEX IF NOT EXISTS events_target ON events (target, seq);
CREATE INDEX IF NOT EXISTS events_created ON events (created_at);
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (channel, created_at);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at {real} NOT NULL, pad {blob});
CREATE TABLE IF NOT EXISTS channel_state (
    channel {text} PRIMARY KEY,
    paused_until {real} NOT NULL,
    reason {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS announced (
    target {text} PRIMARY KEY,
    level {text} NOT NULL,
    fingerprint {text} NOT NULL,
    stamp {text} NOT NULL,
    event_id {text},
    since {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""

# The tables the store holds, in an order that satisfies their references (export, import).
DATA_TABLES = ("events", "deliveries", "unfinished", "announced", "channel_state")

# Columns added to SQLite files made before versions were kept: (table, column, definition).
ADDED = (("deliveries", "uncertain", "INTEGER NOT NULL DEFAULT 0"),)

# Version n's step, run on a store at version n - 1 (1: the tables above).
Execute = Callable[[str], object]
STEPS: dict[int, Callable[[Dialect, Execute], None]] = {}


def _tables(dialect: Dialect, execute: Execute) -> None:
    types = {"key": dialect.key, "real": dialect.real, "text": dialect.text, "blob": dialect.blob}
    for statement in TABLES.format(**types).split(";"):
        if statement.strip():
            execute(statement)


def _check_indexes(dialect: Dialect, execute: Execute) -> None:
    # What a post is checked against before it leaves, and what /metrics and /readyz report,
    # found without reading the whole history (on a store of 2,000 events to 128 channels: 7 s
    # a post, 1 s of the store's one thread a scrape): a channel's sent posts newest first
    # (queries.last_carried), the target's events newer than a post's (superseded_by), the
    # posts waiting (waiting, retry_depth), a channel's last sent or failed one (last_outcome),
    # and a site's status events among all its seat and queue ones (site_events: the crisis
    # thread, asked for every status post on every channel, 5 ms a post at 20,000 events).
    execute("CREATE INDEX IF NOT EXISTS deliveries_sent ON deliveries (channel, state, sent_at)")
    execute("CREATE INDEX IF NOT EXISTS events_target_created ON events (target, created_at)")
    execute("CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, channel)")
    execute("CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries (channel, state, updated_at)")
    execute("CREATE INDEX IF NOT EXISTS events_kind_target ON events (kind, target, seq)")


def _state_first(dialect: Dialect, execute: Execute) -> None:
    # An event's deliveries (one per channel) are all new and waiting: led by the channel, each of
    # these indexes took them at 128 places, one leaf page each, and a record at 128 channels wrote
    # ~270 pages (1 MB) to the log, more as the history grew (issue 15: 2.4 ms before the first
    # request). Led by the state, they sit together among the few waiting ones; the channel's
    # sent posts are found as before, one step down (state, channel, ...). The created index now
    # only finds the latest of all (store._last_created), at its end. deliveries_state was the
    # prefix of deliveries_due.
    for name in ("deliveries_due", "deliveries_sent", "deliveries_done", "deliveries_state", "deliveries_created"):
        execute(f"DROP INDEX IF EXISTS {name}")
    execute("CREATE INDEX deliveries_due ON deliveries (state, channel, next_attempt)")
    execute("CREATE INDEX deliveries_sent ON deliveries (state, channel, sent_at)")
    execute("CREATE INDEX deliveries_done ON deliveries (state, channel, updated_at)")
    execute("CREATE INDEX deliveries_created ON deliveries (created_at)")


def _unfinished(dialect: Dialect, execute: Execute) -> None:
    # An event recorded with its first few deliveries only, so that their requests leave before
    # the others are composed and written (issue 15: 128 of them took ~5 ms before the first
    # request). The rest are recorded a moment later in the same call on the store's thread; a
    # crash or a failed write in between leaves this row, and the next step records them
    # (announcer.py), so the split loses nothing. `created_at` is the event's deliveries' one value.
    execute(f"CREATE TABLE IF NOT EXISTS unfinished (event_id {dialect.text} PRIMARY KEY REFERENCES events(id),"
            f" created_at {dialect.real} NOT NULL)")


STEPS[1] = _tables
STEPS[2] = _check_indexes
STEPS[3] = _state_first
STEPS[4] = _unfinished
VERSION = max(STEPS)


def upgrade(dialect: Dialect, execute: Execute, current: int) -> list[int]:
    """Run the steps from `current` up to VERSION (within the caller's transaction); the versions made."""
    made = []
    for version in range(current + 1, VERSION + 1):
        STEPS[version](dialect, execute)
        made.append(version)
    if made:
        execute("DELETE FROM schema_version")
        execute(f"INSERT INTO schema_version (version) VALUES ({VERSION})")
    return made


class SchemaBehind(Exception):
    """The database's schema is older (or newer) than this code's: `statusd migrate` first."""
