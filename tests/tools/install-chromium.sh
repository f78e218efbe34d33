#!/usr/bin/env bash
# Install Debian's `chromium` package for the browser tests of the HTML report
# (tests/e2e/test_report_browser.py opens it headless: console errors, DOM, screenshot).
#
# Idempotent: does nothing when `chromium` is already on PATH.
# --no-install-recommends keeps the desktop extras out; the fonts package gives
# the screenshots readable text.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core

chromium --version | head -n1
