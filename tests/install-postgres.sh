#!/bin/sh
# Install the PostgreSQL server that the PostgreSQL store tests run against (Debian's package).
# The tests start their own throw-away cluster (tests/support/postgres.py); nothing here starts one.
set -e
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)
