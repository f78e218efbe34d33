#!/usr/bin/env bash
# Install the real components the integration and end-to-end tests run.
# Each step is idempotent and cached: a second run takes seconds.
#   - Prometheus + promtool from Debian's packages
#   - chromium (headless, for the HTML report tests) from Debian's packages
#   - etcd, kube-apiserver and helm built from their Go modules
#   - kustomize and tofu (the renderers that prove GitOps edits) from theirs
# Versions are pinned in tests/tools/versions.env.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/tools/install-prometheus.sh
tests/tools/install-chromium.sh
tests/tools/install-kube-tools.sh
tests/tools/install-render-tools.sh
