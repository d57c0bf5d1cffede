#!/usr/bin/env bash
# Installs everything the test suite needs into ./.venv (system packages too, when later suites
# need them) and runs the whole suite: lint, then pytest (slow suites included).
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check .
.venv/bin/python -m pytest -p no:cacheprovider "$@"
