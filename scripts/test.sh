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

GO_TEST_LOG="${GO_TEST_LOG:-$REPO/out/go-test.log}"
run_tests() {
  # -v into a log (every test's verdict counted for the summary); package
  # lines and failures on the console, the whole log on failure.
  mkdir -p "$(dirname "$GO_TEST_LOG")"
  local rc
  $GO test -race -count=1 -timeout "$TEST_TIMEOUT" -v ./... >"$GO_TEST_LOG" 2>&1
  rc=$?
  grep -E '^(ok|FAIL|\?|panic:|--- FAIL)' "$GO_TEST_LOG"
  if ((rc != 0)); then
    printf '\n==> full go test output (%s)\n' "$GO_TEST_LOG"
    grep -vE '^(=== (RUN|PAUSE|CONT|NAME)|    --- PASS|--- PASS|--- SKIP|PASS$)' "$GO_TEST_LOG"
  fi
  fail_blocks >"$GO_TEST_LOG.failures"
  TESTS_PASSED=$(grep -cE '^\s*--- PASS' "$GO_TEST_LOG")
  TESTS_FAILED=$(grep -cE '^\s*--- FAIL' "$GO_TEST_LOG")
  ((rc == 0 || TESTS_FAILED > 0)) || TESTS_FAILED=1 # a build failure or panic counts
  return $rc
}
TESTS_PASSED=0
TESTS_FAILED=0

# fail_blocks: each failing test's verdict line and the first 40 lines of its
# output (each cut at 400 characters), from the go test log; printed again
# under the summary so that the reason is on the last screen of a long run.
fail_blocks() {
  awk '
    /^[ \t]*--- FAIL/ { inb = 1; n = 0; print; next }
    inb && /^(=== |--- |[ \t]*--- (PASS|FAIL|SKIP)|ok |FAIL|PASS$)/ { inb = 0 }
    inb && /^[ \t]/ { if (n++ < 40) print substr($0, 1, 400); else if (n == 41) print "        [... more lines in the full log]"; next }
    inb { inb = 0 }
  ' "$GO_TEST_LOG"
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
  if [[ -s $GO_TEST_LOG.failures ]]; then
    printf '\n==> failing tests (first lines of each; the whole log: %s)\n' "$GO_TEST_LOG"
    cat "$GO_TEST_LOG.failures"
  fi
  echo "tests: $TESTS_PASSED passed, $TESTS_FAILED failed"
  exit 1
fi
echo "make test: PASSED ($((SECONDS - T0))s)"
echo "tests: $TESTS_PASSED passed, $TESTS_FAILED failed"
