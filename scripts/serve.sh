#!/usr/bin/env bash
# Installs Astra into ./.venv and runs `astra serve` on the embedded defaults: JSON store in
# ./data, sandbox payments, process runtime. Extra arguments go to `astra serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e .
exec .venv/bin/astra serve "$@"
