#!/usr/bin/env bash
# Installs Astra into ./.venv and runs `astra serve` on the embedded defaults: JSON store in
# ./data, sandbox payments, process runtime. Extra arguments go to `astra serve`.
#
# The install (an editable one: code changes need none) runs only when .venv is new or
# pyproject.toml changed since the last one, which .venv/.astra-serve-stamp records; a start
# with nothing to install goes straight to `astra serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.astra-serve-stamp
# constraints.txt is part of what was installed: a change to it reinstalls too.
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')"
if [ ! -x .venv/bin/astra ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "serve.sh: installing Astra into .venv (pyproject.toml or constraints.txt is new or changed)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e .
  printf '%s\n' "$want" > "$STAMP"
fi
# Bots run as supervised processes walled in by bubblewrap (without it they could read and
# write ./data); root on Debian gets it here, anyone else is told how.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "serve.sh: installing bubblewrap (the bots' sandbox)" >&2
    { apt-get update -q && apt-get install -y -q --no-install-recommends bubblewrap; } >/dev/null \
      || echo "serve.sh: could not install bubblewrap; bots will run without walls" >&2
  else
    echo "serve.sh: bubblewrap (bwrap) is missing: install it, or bots run without walls" >&2
  fi
fi
exec .venv/bin/astra serve "$@"
