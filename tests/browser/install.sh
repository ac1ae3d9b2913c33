#!/usr/bin/env bash
# What the browser tests need beyond the virtualenv: Debian's Chromium (never a downloaded
# browser build) and axe-core from npm. Safe to run again: it installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: /usr/bin/chromium is missing; run as root: apt-get install -y chromium" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

if [ ! -f "$here/node_modules/axe-core/axe.min.js" ]; then
    command -v npm >/dev/null || { echo "install.sh: npm is missing (apt-get install -y npm)" >&2; exit 1; }
    # ci: exactly the locked version; install on the first run, when there is no lock yet.
    if [ -f "$here/package-lock.json" ]; then
        npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
    else
        npm install --prefix "$here" --no-audit --no-fund --loglevel=error
    fi
fi
