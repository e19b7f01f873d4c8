#!/usr/bin/env bash
# Start EnrollQ locally: services, schema, fixture data, two API instances and
# the queue-ws instances behind nginx. `make run` calls this; `make stop` calls
# `scripts/run.sh stop`.
#
#   scripts/run.sh          build, migrate, import fixtures, (re)start the app processes
#   scripts/run.sh stop     stop the app processes (services keep running; `make down` stops those)
#
#   api       127.0.0.1:8081 and 127.0.0.1:8083 (both with --scheduler=true; a Redis lock elects one drainer;
#             the search indexer runs in the first only)
#   queue-ws  127.0.0.1:8082 and 127.0.0.1:8084, and 8086, 8088, ... where one process cannot hold
#             ENROLLQ_WS_SESSIONS (default 100,000) WebSocket sessions (scripts/sizing.sh)
#   nginx     127.0.0.1:8080 in front of both
#
# Pid files and logs: ${ENROLLQ_STATE_DIR:-<repo>/.state}/app/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=scripts/sizing.sh
source "$REPO/scripts/sizing.sh"
# shellcheck source=scripts/cpushare.sh
source "$REPO/scripts/cpushare.sh"
API_NICE="${ENROLLQ_API_NICE:--10}"
STATE="${ENROLLQ_STATE_DIR:-$REPO/.state}"
mkdir -p "$STATE/app"
STATE="$(cd "$STATE" && pwd)"
APP="$STATE/app"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

URL=http://127.0.0.1:8080
# make run is a local trial: development mode, loudly (the api and queue-ws
# log a warning). Production mode (no ENROLLQ_DEV) refuses the public dev
# secret and admin/admin1234.
export ENROLLQ_DEV=1
INITIAL_PASSWORD="${ENROLLQ_INITIAL_PASSWORD:-enrollq-2026}"
T0=$SECONDS
step() { printf '==> [%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

stop_apps() {
  local f pid name i any=0
  for f in "$APP"/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    pid=$(tr -dc '0-9' <"$f")
    if [[ -n $pid ]] && alive "$pid"; then
      any=1
      echo "    stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for f in "$APP"/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    pid=$(tr -dc '0-9' <"$f")
    if [[ -n $pid ]]; then
      # Graceful shutdown drains the scheduler's in-flight batch; give it time.
      for ((i = 0; i < 300; i++)); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then
        echo "    $name (pid $pid) still running after 30s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$f"
  done
  ((any)) || echo "    no app process was running"
}

if [[ ${1:-} == stop ]]; then
  step "stopping api and queue-ws"
  stop_apps
  exit 0
fi
[[ $# == 0 ]] || die "usage: scripts/run.sh [stop]"

# Many WebSocket sessions and keep-alive connections: as many files as allowed.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

step "services"
bash scripts/services.sh up

step "go build -o bin/ ./cmd/..."
mkdir -p bin
go build -o bin/ ./cmd/...

step "stopping app processes from an earlier run"
stop_apps

step "bin/enrollctl migrate"
bin/enrollctl migrate
step "bin/enrollctl import-catalog testdata/fixtures/catalog.csv"
bin/enrollctl import-catalog testdata/fixtures/catalog.csv
step "bin/enrollctl import-students testdata/fixtures/students.csv --initial-password ..."
bin/enrollctl import-students testdata/fixtures/students.csv --initial-password "$INITIAL_PASSWORD"

export ENROLLQ_WEB_DIR="${ENROLLQ_WEB_DIR:-$REPO/web}"
export ENROLLQ_WS_PUBLIC_URL="${ENROLLQ_WS_PUBLIC_URL:-/ws}"

start() { # start NAME ENV=VALUE... -- CMD...
  local name=$1 envs=()
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  : >>"$APP/$name.log"
  printf '\n===== %s start %s =====\n' "$name" "$(date -u +%FT%TZ)" >>"$APP/$name.log"
  env "${envs[@]}" setsid nohup "$@" </dev/null >>"$APP/$name.log" 2>&1 &
  echo $! >"$APP/$name.pid"
  echo "    $name pid $! (log $APP/$name.log)"
}

WS_PORTS=($(ws_ports))
step "starting api x2 and queue-ws x${#WS_PORTS[@]} (${WS_PORTS[*]}: sized for $ENROLLQ_WS_SESSIONS WebSocket sessions)"
# ENROLLQ_PPROF=1 also serves Go's profiler of each api and queue-ws on its port + 1000.
pprof() { [[ ${ENROLLQ_PPROF:-0} == 1 ]] && echo "--pprof=127.0.0.1:$1" || true; }
start api-8081 ENROLLQ_HTTP_ADDR=127.0.0.1:8081 -- bin/api --scheduler=true $(pprof 9081)
start api-8083 ENROLLQ_HTTP_ADDR=127.0.0.1:8083 -- bin/api --scheduler=true --indexer=false $(pprof 9083)
# The apis decide (the scheduler) and admit: a larger CPU share than the
# fan-out when the crowd saturates the box (scripts/cpushare.sh).
for name in api-8081 api-8083; do
  cpu_share "$name" "$(tr -dc '0-9' <"$APP/$name.pid")" "$API_NICE"
done
for port in "${WS_PORTS[@]}"; do
  start "queue-ws-$port" "ENROLLQ_WS_ADDR=127.0.0.1:$port" -- bin/queue-ws $(pprof $((port + 1000)))
done

show_logs() {
  local f
  for f in "$APP"/*.log; do
    printf -- '----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null) == 200 ]]; }

# Ready means: nginx answers /healthz with 200, each API instance does too, and
# each queue-ws instance accepts connections; every process is still alive.
ready() {
  local port
  http_ok "$URL/healthz" && http_ok http://127.0.0.1:8081/healthz && http_ok http://127.0.0.1:8083/healthz || return 1
  for port in "${WS_PORTS[@]}"; do port_open "$port" || return 1; done
}

step "waiting for $URL/healthz (and each instance)"
ok=0
for ((i = 0; i < 600; i++)); do
  if ready; then
    ok=1
    break
  fi
  for f in "$APP"/*.pid; do
    pid=$(tr -dc '0-9' <"$f")
    if ! alive "$pid"; then
      show_logs
      die "$(basename "$f" .pid) exited during startup"
    fi
  done
  sleep 0.1
done
if ((ok == 0)); then
  show_logs
  echo "nginx /healthz: $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/healthz"), api 8081: $(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8081/healthz), api 8083: $(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8083/healthz)" >&2
  die "EnrollQ did not become ready within 60s"
fi
for f in "$APP"/*.pid; do
  pid=$(tr -dc '0-9' <"$f")
  alive "$pid" || { show_logs; die "$(basename "$f" .pid) is not running"; }
done

step "ready ($((SECONDS - T0))s)"
echo "EnrollQ is running at $URL"
echo "development mode (ENROLLQ_DEV=1): registrar ${ENROLLQ_ADMIN_USER:-admin} / ${ENROLLQ_ADMIN_PASSWORD:-admin1234};" \
  "students: initial password $INITIAL_PASSWORD (must be changed at first login)"
