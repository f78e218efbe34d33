#!/usr/bin/env bash
# Install the real components the integration tests run (filled in per component).
set -euo pipefail
cd "$(dirname "$0")/../.."
