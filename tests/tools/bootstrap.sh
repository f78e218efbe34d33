#!/usr/bin/env bash
# Create .venv and install the package with its test extras. Idempotent: pip
# runs again only when pyproject.toml changes (its hash is the stamp).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.finops-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
