#!/usr/bin/env bash
# Admission throughput, measured in one run on this machine (see docs/BENCHMARKS.md):
#   1. redis-benchmark running admit.lua itself via EVALSHA (the floor: Redis alone)
#   2. BenchmarkAdmit: the same script through go-redis from parallel Go callers
#   3. BenchmarkAdmissionHTTP: POST /api/v1/enrollments through the whole Gin handler
# and prints each as a ratio to (1). Needs the services (`make up`).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${N:-200000}"
C="${C:-50}"
T="eqbench$$"
K="eq:{$T}:"
cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }
SHA=$(cli SCRIPT LOAD "$(cat internal/queue/lua/admit.lua)")
cli SET "${K}open" 1 >/dev/null
for c in $(seq 1 100); do cli HSET "${K}seats" "$c" 1000000000 >/dev/null; done
# admit.lua's keys: 13 shared, then 6 per request; arguments: 6, then 5 per request.
evalsha() { # evalsha N: redis-benchmark calls of admit.lua, one request each
  redis-benchmark -h 127.0.0.1 -p 6379 -n "$1" -c "$C" -r 1000000000 -q \
    EVALSHA "$SHA" 19 "${K}open" "${K}seq" "${K}waiting" "${K}pending" "${K}req" "${K}dup" "${K}seats" "${K}pcount" "${K}stats" \
    "${K}preopen" "${K}prestu" "${K}draw" "${K}refusals" \
    "${K}enr:__rand_int__" "${K}rl:__rand_int__" "${K}mine:__rand_int__" "${K}rl:__rand_int__" "${K}pre:__rand_int__" "${K}rl:__rand_int__" \
    0 1000 86400000 -1 15 "${K}notices" __rand_int__ 7 0 0 0 2>&1 | tr '\r' '\n' | grep -E 'requests per second' | tail -1
}
echo "==> redis-benchmark: EVALSHA admit.lua, $N calls, $C clients"
# __rand_int__ gives each call a random student (12 digits) so most calls take the admit path.
out=$(evalsha "$N")
echo "$out"
floor=$(echo "$out" | grep -oE '[0-9.]+ requests per second' | awk '{print $1}')
admitted=$(cli HGET "${K}stats" admitted)
echo "    admitted by the script: $admitted of $N"
redis-cli -h 127.0.0.1 --scan --pattern "${K}*" | xargs -r -n 500 redis-cli -h 127.0.0.1 DEL >/dev/null
# The sold-out path (every seat taken): each refusal records its section's
# refusal mark (law 7) in the same call.
cli SET "${K}open" 1 >/dev/null
cli HSET "${K}seats" 7 0 >/dev/null
echo "==> redis-benchmark: EVALSHA admit.lua on a sold-out section, $N calls"
evalsha "$N"
echo "    sold out: $(cli HGET "${K}stats" sold_out) of $N; refusal mark: $(cli HGET "${K}refusals" 7)"
redis-cli -h 127.0.0.1 --scan --pattern "${K}*" | xargs -r -n 500 redis-cli -h 127.0.0.1 DEL >/dev/null

echo "==> go test -bench BenchmarkAdmit (go-redis, parallel callers)"
go_out=$(go test -run '^$' -bench 'BenchmarkAdmit$' -benchtime "${BENCHTIME:-3s}" ./internal/queue/ | grep BenchmarkAdmit)
echo "$go_out"
echo "==> go test -bench BenchmarkAdmissionHTTP (whole Gin handler)"
http_out=$(go test -run '^$' -bench 'BenchmarkAdmissionHTTP' -benchtime "${BENCHTIME:-3s}" ./cmd/api/ | grep BenchmarkAdmissionHTTP)
echo "$http_out"
g=$(echo "$go_out" | grep -oE '[0-9.]+ admissions/s' | awk '{print $1}')
h=$(echo "$http_out" | grep -oE '[0-9.]+ admissions/s' | awk '{print $1}')
awk -v f="$floor" -v g="$g" -v h="$h" 'BEGIN { printf "\nratio to redis-benchmark (%s/s): go-redis %.2f, HTTP handler %.2f\n", f, g / f, h / f }'
