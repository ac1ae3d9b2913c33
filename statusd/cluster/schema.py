"""The cluster's tables in PostgreSQL: the leader's lease, the fence on in-flight deliveries,
the wanted status rows, the shared sensor figures, and the notices every node listens to.

The fence is a trigger, so it holds whatever code writes a delivery: an update that
touches a delivery in flight (state `sending` before or after) is refused unless the
connection's node (`statusd.holder`, set per connection by the daemon) holds the lease
right now, by the database's clock, and unless a claim it made under an earlier lease
of its own is being recorded late. The writer then owns the claim under the current
epoch. Connections without a holder (commands, migrations) never send, and pass.
"""

from __future__ import annotations

import psycopg

from statusd.sources.status import rows

__all__ = ["CLAIM", "FENCED", "STORE_CHANNEL", "migrate"]

# SQLSTATE of a refused in-flight write (class "SD": statusd's own).
FENCED = "SD001"
# Notified (payload: node) when a node recorded events or deliveries: followers refresh.
STORE_CHANNEL = "statusd_store"

# The leader's workers claim their next delivery: locked as it is taken (another claimer skips
# it), marked with the lease epoch it is taken under; nothing at all without the lease.
CLAIM = """
UPDATE deliveries SET claim_holder = current_setting('statusd.holder'), claim_epoch = l.epoch
FROM cluster_lease l
WHERE l.name = 'leader' AND l.holder = current_setting('statusd.holder') AND l.expires_at > clock_timestamp()
  AND deliveries.id = (SELECT id FROM deliveries WHERE channel = ? AND state IN (?, ?)
                       ORDER BY next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING deliveries.*
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    node TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_sensors (
    site TEXT NOT NULL,
    zone TEXT NOT NULL,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, zone, kind, node)
);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claim_epoch BIGINT;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claim_holder TEXT;
CREATE OR REPLACE FUNCTION statusd_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    me TEXT := current_setting('statusd.holder', true);
    current_epoch BIGINT;
BEGIN
    IF coalesce(me, '') = '' THEN
        RETURN NEW;
    END IF;
    IF OLD.state = 'sent' AND NEW.state IS DISTINCT FROM 'sent'
       OR NEW.state = 'sending' AND OLD.state NOT IN ('pending', 'sending') THEN
        RAISE EXCEPTION 'delivery % refused: it is % already', OLD.id, OLD.state USING ERRCODE = 'SD001';
    END IF;
    IF NOT (OLD.state = 'sending' OR NEW.state = 'sending') THEN
        RETURN NEW;
    END IF;
    SELECT epoch INTO current_epoch FROM cluster_lease
        WHERE name = 'leader' AND holder = me AND expires_at > clock_timestamp();
    IF current_epoch IS NULL THEN
        RAISE EXCEPTION 'delivery % refused: this node does not hold the lease', OLD.id
            USING ERRCODE = 'SD001';
    END IF;
    IF OLD.claim_holder = me AND OLD.claim_epoch IS DISTINCT FROM current_epoch THEN
        RAISE EXCEPTION 'delivery % refused: claimed under lease epoch %, now %', OLD.id,
            OLD.claim_epoch, current_epoch USING ERRCODE = 'SD001';
    END IF;
    NEW.claim_epoch := current_epoch;
    NEW.claim_holder := me;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS deliveries_fence ON deliveries;
CREATE TRIGGER deliveries_fence BEFORE UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION statusd_fence();
CREATE OR REPLACE FUNCTION statusd_store_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statusd_store', TG_TABLE_NAME);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS events_notice ON events;
CREATE TRIGGER events_notice AFTER INSERT OR UPDATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION statusd_store_notice();
DROP TRIGGER IF EXISTS announced_notice ON announced;
CREATE TRIGGER announced_notice AFTER INSERT OR UPDATE OR DELETE ON announced
    FOR EACH STATEMENT EXECUTE FUNCTION statusd_store_notice();
"""


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the cluster's tables and triggers (after the store's own tables exist).

    Several nodes may start at once: the DDL runs under one advisory lock.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7413)")
        rows.migrate(conn)
        conn.execute(SCHEMA)
