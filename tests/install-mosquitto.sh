#!/bin/sh
# Install the Mosquitto broker that the MQTT feed tests run against (Debian/Ubuntu).
set -e
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || (apt-get update && apt-get install -y mosquitto)
