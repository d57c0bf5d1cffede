#!/usr/bin/env bash
# Installs everything the test suite needs into ./.venv (system packages too, when later suites
# need them) and runs the whole suite: lint, then pytest (slow suites included), as two shards at
# once; with arguments, one pytest with those arguments.
# As root it also installs Debian's PostgreSQL server binaries when missing (the tests start a
# throwaway cluster with them), and installs and starts a local Docker engine for the Docker
# runtime tests (scripts/docker-engine.sh), and stops it afterwards, pass or fail, if this run
# started it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'

.venv/bin/ruff check .

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`, which
# downloads a browser this network cannot reach).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null && \
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null || \
    echo "test.sh: could not install chromium; the browser tests will fail under CI" >&2
fi

# The process runtime runs bots under bubblewrap; its tests run real sandboxes.
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null && \
    apt-get install -y -q --no-install-recommends bubblewrap >/dev/null || \
    echo "test.sh: could not install bubblewrap; the sandbox tests will fail under CI" >&2
fi

# The PostgreSQL store's tests run against a real server: ASTRA_TEST_DATABASE_URL when set,
# otherwise a throwaway cluster that the test session starts (initdb + pg_ctl in a temp dir, on a
# free port) and stops at its end (tests/pg.py). That needs Debian's server binaries.
if [ -z "${ASTRA_TEST_DATABASE_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null && \
    apt-get install -y -q --no-install-recommends postgresql >/dev/null || \
    echo "test.sh: could not install postgresql; the PostgreSQL tests will fail under CI" >&2
fi

DOCKERD_PID_FILE=/tmp/astra-dockerd.pid
if [ "$(id -u)" = 0 ]; then
  pid_before=$(cat "$DOCKERD_PID_FILE" 2>/dev/null || true)
  # Fails only under CI=true, where the Docker tests must run.
  bash scripts/docker-engine.sh start
  pid_after=$(cat "$DOCKERD_PID_FILE" 2>/dev/null || true)
  if [ -n "$pid_after" ] && [ "$pid_after" != "$pid_before" ]; then
    # Ours: stop it however pytest ends. An engine that was already running is left alone.
    trap 'bash scripts/docker-engine.sh stop || true' EXIT
  fi
else
  echo "test.sh: not root, so no Docker engine is started; the Docker tests need one" \
    "(they are skipped without it, and fail when CI is set)" >&2
fi

# The Swarm runtime's tests need a swarm: the engine becomes a one-node swarm for the run and
# leaves it after (and the docker_gwbridge network, which `swarm leave` keeps), unless it was
# one already. Images are imported locally; the engine runs them without a registry
# (scripts/docker-engine.sh starts dockerd with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1).
SWARM_MADE=0
leave_swarm() {
  if [ "$SWARM_MADE" = 1 ]; then
    docker swarm leave --force >/dev/null 2>&1 || true
    docker network rm docker_gwbridge >/dev/null 2>&1 || true
  fi
}
if [ "$(id -u)" = 0 ] && timeout 10 docker version >/dev/null 2>&1; then
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != "active" ]; then
    # docker_gwbridge (the bridge that tasks reach their host through) is made only when a first
    # task starts: made first here, as Docker documents for a custom one, so the Swarm tests can
    # bind their servers on its gateway before any task runs.
    if ! docker network inspect docker_gwbridge >/dev/null 2>&1; then
      docker network create --subnet 172.31.0.0/16 --gateway 172.31.0.1 \
        --opt com.docker.network.bridge.name=docker_gwbridge \
        --opt com.docker.network.bridge.enable_icc=false \
        --opt com.docker.network.bridge.enable_ip_masquerade=true \
        docker_gwbridge >/dev/null || true
    fi
    if docker swarm init --advertise-addr 127.0.0.1 >/dev/null; then
      SWARM_MADE=1
    else
      echo "test.sh: docker swarm init failed; the Swarm tests will be skipped (failed in CI)" >&2
    fi
  fi
fi

status=0
if [ "$#" -gt 0 ]; then
  .venv/bin/python -m pytest -p no:cacheprovider --durations=30 "$@" || status=$?
else
  # The whole suite as two pytest processes at once (tests/conftest.py, "shards"): most long
  # tests wait on the Docker engine, subprocesses or sleeps, so two streams finish in a bit over
  # half the time on two cores. Each has its own range of ports and its own temp dir; their
  # reports are printed one after the other when both are done.
  logs=$(mktemp -d)
  run_shard() {
    ASTRA_TEST_PORTS="$2" .venv/bin/python -m pytest -p no:cacheprovider --durations=15 \
      --shard "$1" --basetemp "$logs/tmp-$1" >"$logs/$1.log" 2>&1
  }
  run_shard engines 20000-26383 & engines_pid=$!
  run_shard rest 26384-32700 & rest_pid=$!
  engines_status=0; rest_status=0
  wait "$engines_pid" || engines_status=$?
  wait "$rest_pid" || rest_status=$?
  for shard in rest engines; do
    echo "================================ shard: $shard ================================"
    cat "$logs/$shard.log"
  done
  echo "shard rest: exit $rest_status; shard engines: exit $engines_status"
  rm -rf "$logs"
  if [ "$engines_status" != 0 ] || [ "$rest_status" != 0 ]; then status=1; fi
fi
leave_swarm
exit "$status"
