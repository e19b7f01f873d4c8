#!/usr/bin/env bash
# The 100k benchmark of docs/BENCHMARKS.md, in one run on this machine:
#
#   1. `make run`'s stack is up (started if not);
#   2. baselines, measured right before the burst on the same machine:
#      - Redis alone: redis-benchmark running the admission script
#        (internal/queue/lua/admit.lua, SCRIPT LOAD + EVALSHA) on keys of its
#        own, -n 200000 -c 50, against the same Redis (same AOF policy);
#      - MariaDB alone: a raw batched INSERT of 200,000 enrollment_requests
#        rows, 500 rows per statement, one connection, into a scratch copy of
#        the table on the same primary;
#   3. cmd/loadgen with -reset and -baselines, which puts both baselines and
#      the ratios into its JSON and HTML reports.
#
#   scripts/loadtest.sh [--students N] [--out DIR] [--skip-baselines] [-- loadgen flags]
#
# Defaults: 100,000 students, output out/loadtest/<time>/. Loopback only;
# bounded by loadgen's -max-duration (10 minutes).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# It drives `make run`'s stack, which runs in development mode (ENROLLQ_DEV=1:
# the public dev token secret and admin/admin1234); export the real settings
# and ENROLLQ_DEV=0 to aim it at a production-mode stack.
export ENROLLQ_DEV="${ENROLLQ_DEV:-1}"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

students=100000 out="" baselines=1
while (($#)); do
  case $1 in
    --students) students=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --skip-baselines) baselines=0; shift ;;
    --) shift; break ;;
    *) echo "usage: scripts/loadtest.sh [--students N] [--out DIR] [--skip-baselines] [-- loadgen flags]" >&2; exit 2 ;;
  esac
done
out="${out:-$REPO/out/loadtest/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
T0=$SECONDS
step() { printf '==> [%3ss] %s\n' "$((SECONDS - T0))" "$*"; }

# MariaDB connection from ENROLLQ_DB_DSN (user:pass@tcp(host:port)/db).
dsn="${ENROLLQ_DB_DSN:-enrollq:enrollq@tcp(127.0.0.1:3306)/enrollq}"
if [[ $dsn =~ ^([^:]+):([^@]*)@tcp\(([^:]+):([0-9]+)\)/([^?]+) ]]; then
  DB_USER=${BASH_REMATCH[1]} DB_PASS=${BASH_REMATCH[2]} DB_HOST=${BASH_REMATCH[3]} DB_PORT=${BASH_REMATCH[4]} DB_NAME=${BASH_REMATCH[5]}
else
  echo "cannot parse ENROLLQ_DB_DSN=$dsn" >&2
  exit 2
fi
redis_addr="${ENROLLQ_REDIS_ADDR:-127.0.0.1:6379}"
RH=${redis_addr%:*} RP=${redis_addr##*:}
sql() { mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$DB_PASS" "$@"; }

if [[ $(curl -s -o /dev/null -m 3 -w '%{http_code}' http://127.0.0.1:8080/healthz) != 200 ]]; then
  step "make run's stack is not up: scripts/run.sh"
  scripts/run.sh
fi
mkdir -p bin
go build -o bin/ ./cmd/loadgen

now_ns() { date +%s%N; }

if ((baselines)); then
  step "baseline: Redis alone, admit.lua via EVALSHA (redis-benchmark -n 200000 -c 50)"
  p="eq:{loadbench}:"
  redis-cli -h "$RH" -p "$RP" --scan --pattern "${p}*" | xargs -r -n 500 redis-cli -h "$RH" -p "$RP" unlink >/dev/null
  redis-cli -h "$RH" -p "$RP" set "${p}open" 1 >/dev/null
  redis-cli -h "$RH" -p "$RP" hset "${p}seats" 1 1000000000 >/dev/null
  sha=$(redis-cli -h "$RH" -p "$RP" script load "$(cat internal/queue/lua/admit.lua)")
  # One admission per call (the script's batch of one; see its header): the
  # twelve shared keys, then the request's enr, rl, mine, ip and pre keys (the
  # student's keys get a random suffix; ip = rl since the address budget is
  # off), ARGV: student rate limit 0 (off), window, request-set expiry, draw
  # cursor -1 (not a draw), pre-queue cap, notices channel (draws only), then
  # student (random), course 1,
  # address limit 0, window. Every call admits a new student into course 1,
  # the path a real admission takes.
  keys=("${p}open" "${p}seq" "${p}waiting" "${p}pending" "${p}req" "${p}dup" "${p}seats" "${p}pcount" "${p}stats"
    "${p}preopen" "${p}prestu" "${p}draw"
    "${p}enr:__rand_int__" "${p}rl:__rand_int__" "${p}mine:__rand_int__" "${p}rl:__rand_int__" "${p}pre:__rand_int__")
  argv=(0 1000 86400000 -1 15 "${p}notices" __rand_int__ 1 0 0)
  redis-benchmark -h "$RH" -p "$RP" -n 200000 -c 50 -r 100000000 --csv \
    EVALSHA "$sha" "${#keys[@]}" "${keys[@]}" "${argv[@]}" >"$out/redis-benchmark.csv"
  admitted=$(redis-cli -h "$RH" -p "$RP" hget "${p}stats" admitted)
  redis-cli -h "$RH" -p "$RP" --scan --pattern "${p}*" | xargs -r -n 500 redis-cli -h "$RH" -p "$RP" unlink >/dev/null
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  IFS=, read -r _ r_rps r_avg _ r_p50 r_p95 r_p99 _ < <(tail -n 1 "$out/redis-benchmark.csv" | tr -d '"')
  echo "    ${r_rps} EVALSHA admissions/s (p50 ${r_p50} ms, p99 ${r_p99} ms), ${admitted} admitted"

  step "baseline: MariaDB alone, batched INSERT of 200000 enrollment_requests rows (500 per statement)"
  bdb="enrollq_loadbench"
  sql -e "DROP DATABASE IF EXISTS $bdb; CREATE DATABASE $bdb; CREATE TABLE $bdb.r LIKE $DB_NAME.enrollment_requests"
  awk 'BEGIN {
    for (b = 0; b < 400; b++) {
      printf "INSERT INTO r (id, student_id, course_id, ticket, status, reason, created_at, decided_at) VALUES ";
      for (i = 0; i < 500; i++) {
        id = b * 500 + i + 1;
        printf "%s(%d,%d,%d,%d,\"%s\",\"\",NOW(6),NOW(6))", (i ? "," : ""), id, id % 100000 + 1, id % 2400 + 1, id, (id % 5 ? "enrolled" : "rejected");
      }
      print ";";
    }
  }' >"$out/insert.sql"
  t1=$(now_ns)
  sql "$bdb" <"$out/insert.sql"
  t2=$(now_ns)
  rows=$(sql -N "$bdb" -e "SELECT COUNT(*) FROM r")
  sql -e "DROP DATABASE $bdb"
  rm -f "$out/insert.sql"
  secs=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  ins_rps=$(awk -v n="$rows" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "    $rows rows in ${secs}s: ${ins_rps} rows/s"

  cat >"$out/baselines.json" <<EOF
{
  "redis_admit_evalsha": {"requests": 200000, "clients": 50, "per_s": $r_rps, "avg_ms": $r_avg, "p50_ms": $r_p50, "p95_ms": $r_p95, "p99_ms": $r_p99,
    "command": "redis-benchmark -n 200000 -c 50 -r 100000000 EVALSHA <sha of internal/queue/lua/admit.lua> ${#keys[@]} <keys> ${argv[*]}"},
  "mariadb_batched_insert": {"rows": $rows, "rows_per_statement": 500, "connections": 1, "seconds": $secs, "rows_per_s": $ins_rps,
    "command": "400 x INSERT INTO enrollment_requests-shaped table VALUES (500 rows), autocommit, one connection"}
}
EOF
  set -- -baselines "$out/baselines.json" "$@"
fi

step "loadgen: $students students through nginx (-reset)"
rc=0
bin/loadgen -students "$students" -reset -out "$out" "$@" >/dev/null || rc=$? # JSON: $out/report.json
step "done (loadgen exit $rc): $out/report.json, $out/report.html"
exit "$rc"
