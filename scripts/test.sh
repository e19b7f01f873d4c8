#!/usr/bin/env bash
# EnrollQ checks, run by `make test` after `make up` (the services must be up:
# tests talk to the real MariaDB, Redis and OpenSearch).
#
#   1. gofmt: no file may need formatting
#   2. go vet ./...
#   3. import rule: nothing under internal/ may depend on Gin or melody
#   4. go test -race -count=1 -timeout 30m ./...
#
# Every step runs even if an earlier one failed; the exit status is non-zero if
# any failed, and the last line summarises.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Tests open many sockets (load and fan-out tests).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

GO="${GO:-go}"
TEST_TIMEOUT="${TEST_TIMEOUT:-30m}"
results=()
failed=0
T0=$SECONDS

run_step() { # run_step NAME CMD...
  local name=$1 t=$SECONDS rc
  shift
  printf '\n==> %s\n' "$name"
  "$@"
  rc=$?
  if ((rc == 0)); then
    results+=("PASS $name ($((SECONDS - t))s)")
  else
    results+=("FAIL $name ($((SECONDS - t))s, exit $rc)")
    failed=1
  fi
  return 0
}

check_gofmt() {
  local out
  out=$(gofmt -l . 2>&1)
  if [[ -n $out ]]; then
    echo "these files need gofmt (run 'make fmt'):"
    echo "$out"
    return 1
  fi
  echo "gofmt: all files formatted"
}

check_imports() {
  local deps bad
  deps=$($GO list -deps ./internal/... 2>&1) || { echo "$deps"; return 1; }
  bad=$(grep -E 'gin-gonic|melody' <<<"$deps" || true)
  if [[ -n $bad ]]; then
    echo "internal/ must not depend on Gin or melody (HTTP/WebSocket stay in cmd/); found:"
    echo "$bad"
    echo "importers:"
    $GO list -f '{{.ImportPath}}: {{join .Imports " "}}' ./internal/... | grep -E 'gin-gonic|melody' || true
    return 1
  fi
  echo "internal/ depends on neither Gin nor melody"
}

run_tests() {
  $GO test -race -count=1 -timeout "$TEST_TIMEOUT" ./...
}

echo "==> $($GO version), services: $(bash scripts/services.sh status >/dev/null 2>&1 && echo up || echo 'NOT all up')"
run_step "gofmt -l ." check_gofmt
run_step "go vet ./..." $GO vet ./...
run_step "import rule (internal/ without gin/melody)" check_imports
run_step "browser for e2e/ (scripts/install-chromium.sh)" scripts/install-chromium.sh
run_step "go test -race -count=1 -timeout $TEST_TIMEOUT ./..." run_tests
run_step "JMeter smoke: jmeter/enroll-burst.jmx + ws-watch.jmx, 20 students each" scripts/jmeter-smoke.sh

printf '\n==> summary\n'
printf '    %s\n' "${results[@]}"
if ((failed)); then
  echo "make test: FAILED ($((SECONDS - T0))s)"
  exit 1
fi
echo "make test: PASSED ($((SECONDS - T0))s)"
