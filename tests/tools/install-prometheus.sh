#!/usr/bin/env bash
# Install Debian's `prometheus` package (prometheus + promtool) for the integration
# tests, which start their own server on loopback with a backfilled TSDB.
#
# Idempotent: does nothing when both binaries are already on PATH.
# Container-safe: a temporary /usr/sbin/policy-rc.d (exit 101) stops the
# package's maintainer scripts from starting the system service, and
# --no-install-recommends keeps node-exporter and friends out.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "prometheus and promtool already installed: $(command -v prometheus)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi

policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# installed by install-prometheus.sh: no service starts\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [[ -n "$made_policy" ]]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends prometheus

# Belt and braces: if an init system did start the packaged service, stop it so
# it does not hold port 9090 or the default TSDB (the tests use their own ports).
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

prometheus --version | head -n1
promtool --version | head -n1
