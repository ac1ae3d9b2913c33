#!/bin/sh
# Install nginx and Debian's nchan module, the live-readers hub the hub tests and benchmarks run
# against (Debian/Ubuntu). The tests start their own nginx (tests/support/nginx.py) on free ports;
# no system service is needed or started here.
set -e
if [ -x /usr/sbin/nginx ] && [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    exit 0
fi
# Another helper's `apt-get install` may hold the lock for a while: wait for it, bounded.
i=0
while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 && [ "$i" -lt 120 ]; do
    i=$((i + 1)); sleep 1
done
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx libnginx-mod-nchan
