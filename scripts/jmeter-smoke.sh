#!/usr/bin/env bash
# JMeter smoke for `make test`: both plans, about 20 students each, against a
# real api and queue-ws built from this tree, on the real MariaDB and Redis,
# in a database and a queue term of their own (nothing of `make run`'s data is
# touched). Fails when any JMeter sample fails.
#
#   scripts/jmeter-smoke.sh            (services must be up: make up)
#
# Steps: build; create and migrate database enrollq_jmeter_<random>; import
# the fixture catalog and roster; start api and queue-ws on free ports;
# prepare tokens (loadgen -prepare-only); open the window; run
# jmeter/enroll-burst.jmx and jmeter/ws-watch.jmx with scripts/jmeter.sh;
# check both JTLs; stop what it started, drop the database and the term's
# Redis keys. Output under out/jmeter-smoke/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

USERS="${SMOKE_USERS:-20}"
DB_HOST=127.0.0.1 DB_PORT=3306 DB_USER=enrollq DB_PASS=enrollq
REDIS_ADDR="${ENROLLQ_REDIS_ADDR:-127.0.0.1:6379}"
suffix=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
DB="enrollq_jmeter_$suffix"
TERM_NAME="jmeter-$suffix"
OUT="$REPO/out/jmeter-smoke"
BIN="$OUT/bin"
T0=$SECONDS
step() { printf '==> [%3ss] %s\n' "$((SECONDS - T0))" "$*"; }

pids=()
cleanup() {
  local rc=$? pid i
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$DB_PASS" -e "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
  redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" --scan --pattern "eq:{$TERM_NAME}:*" 2>/dev/null |
    xargs -r -n 500 redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" del >/dev/null 2>&1 || true
  if ((rc != 0)); then
    for f in "$OUT"/api.log "$OUT"/queue-ws.log; do
      [[ -f $f ]] && { echo "----- last lines of $f -----"; tail -n 20 "$f"; }
    done
  fi
  exit "$rc"
}
trap cleanup EXIT

free_port() {
  local p
  for p in "$@"; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

rm -rf "$OUT"
mkdir -p "$BIN"
step "go build api queue-ws enrollctl loadgen"
go build -o "$BIN/" ./cmd/api ./cmd/queue-ws ./cmd/enrollctl ./cmd/loadgen

API_PORT=$(free_port 18081 18091 18101 18111) || { echo "no free port for the api"; exit 1; }
WS_PORT=$(free_port 18082 18092 18102 18112) || { echo "no free port for queue-ws"; exit 1; }
export ENROLLQ_DB_DSN="$DB_USER:$DB_PASS@tcp($DB_HOST:$DB_PORT)/$DB"
export ENROLLQ_REPLICA_DSN="$ENROLLQ_DB_DSN" # a fresh database: read it where it is written
export ENROLLQ_REDIS_ADDR="$REDIS_ADDR"
export ENROLLQ_TERM="$TERM_NAME"
export ENROLLQ_SEARCH_INDEX="courses-$TERM_NAME"
export ENROLLQ_TOKEN_SECRET="jmeter-smoke-$suffix"
export ENROLLQ_ADMIN_USER=admin ENROLLQ_ADMIN_PASSWORD="smoke-$suffix"
export ENROLLQ_WS_PUBLIC_URL=/ws ENROLLQ_BCRYPT_COST=4
export ENROLLQ_DEV=1 # a throwaway smoke stack: development mode, explicitly (short secret)

step "database $DB: migrate, import fixture catalog and roster"
mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$DB_PASS" \
  -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
"$BIN/enrollctl" migrate >/dev/null
"$BIN/enrollctl" import-catalog testdata/fixtures/catalog.csv >/dev/null
"$BIN/enrollctl" import-students testdata/fixtures/students.csv --initial-password "smoke-$suffix" >/dev/null

step "starting api on 127.0.0.1:$API_PORT and queue-ws on 127.0.0.1:$WS_PORT (term $TERM_NAME)"
ENROLLQ_HTTP_ADDR="127.0.0.1:$API_PORT" "$BIN/api" >"$OUT/api.log" 2>&1 &
pids+=($!)
ENROLLQ_WS_ADDR="127.0.0.1:$WS_PORT" "$BIN/queue-ws" >"$OUT/queue-ws.log" 2>&1 &
pids+=($!)
for url in "http://127.0.0.1:$API_PORT/healthz" "http://127.0.0.1:$WS_PORT/healthz"; do
  ok=0
  for ((i = 0; i < 300; i++)); do
    if [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url") == 200 ]]; then ok=1; break; fi
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a process exited during startup"; exit 1; }; done
    sleep 0.1
  done
  ((ok)) || { echo "$url did not answer within 30s"; exit 1; }
done

step "tokens for $((2 * USERS)) students, courses"
"$BIN/loadgen" -prepare-only -students $((2 * USERS)) -out "$OUT/data" -quiet \
  -url "http://127.0.0.1:$API_PORT"
# Each plan gets its own students (a student admitted by the burst would only
# be refused as already queued/enrolled by the watcher).
{ head -n 1 "$OUT/data/tokens.csv"; sed -n "2,$((USERS + 1))p" "$OUT/data/tokens.csv"; } >"$OUT/burst-tokens.csv"
{ head -n 1 "$OUT/data/tokens.csv"; sed -n "$((USERS + 2)),$((2 * USERS + 1))p" "$OUT/data/tokens.csv"; } >"$OUT/watch-tokens.csv"
mkdir -p "$OUT/burst-data" "$OUT/watch-data"
mv "$OUT/burst-tokens.csv" "$OUT/burst-data/tokens.csv"
mv "$OUT/watch-tokens.csv" "$OUT/watch-data/tokens.csv"
cp "$OUT/data/courses.csv" "$OUT/burst-data/"
cp "$OUT/data/courses.csv" "$OUT/watch-data/"

rc=0
step "JMeter enroll-burst, $USERS students"
scripts/jmeter.sh enroll-burst --users "$USERS" --cart 2 --url "http://127.0.0.1:$API_PORT" \
  --data "$OUT/burst-data" --out "$OUT/enroll-burst" || rc=1
step "JMeter ws-watch, $USERS students"
scripts/jmeter.sh ws-watch --users "$USERS" --url "http://127.0.0.1:$API_PORT" --ws "127.0.0.1:$WS_PORT" \
  --data "$OUT/watch-data" --out "$OUT/ws-watch" --no-open || rc=1
if ((rc)); then
  step "FAILED: a JMeter plan had failed samples (see above; JTLs and dashboards under $OUT)"
  exit 1
fi
step "both plans passed (dashboards: $OUT/enroll-burst/dashboard, $OUT/ws-watch/dashboard)"
