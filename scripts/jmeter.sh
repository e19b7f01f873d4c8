#!/usr/bin/env bash
# Run one of EnrollQ's JMeter plans headless and render JMeter's HTML dashboard.
# `make jmeter PLAN=enroll-burst USERS=1000` calls this.
#
#   scripts/jmeter.sh PLAN [options] [-- extra JMeter arguments]
#
#   PLAN             enroll-burst | ws-watch (jmeter/PLAN.jmx) or a path to a .jmx
#   --users N        JMeter threads, default 100
#   --loops N        students per thread, one after the other, default 1
#                    (users × loops students in all, each its own tokens row)
#   --ramp S         seconds over which the threads start, default 1
#   --cart N         requests per student (enroll-burst), default 2
#   --url URL        EnrollQ front door, default http://127.0.0.1:8080 (nginx)
#   --ws HOST:PORT   queue-ws, default the host and port of --url
#   --data DIR       tokens.csv and courses.csv to use (default: prepared in the
#                    output dir with `loadgen -prepare-only`, which imports load
#                    students when the roster is short, and signs their tokens
#                    like `enrollctl issue-tokens`)
#   --out DIR        output dir, default out/jmeter/PLAN-<time>
#   --no-open        do not open the registration window first (admin API)
#   --no-report      skip the HTML dashboard
#
# Output: DIR/results.jtl (CSV), DIR/jmeter.log, DIR/dashboard/index.html.
# The exit status is non-zero when any sample failed (`loadgen -check-jtl`).
#
# JMeter itself: there is no JMeter distribution archive on Maven Central, so
# jmeter/pom.xml assembles one (launcher, components, the WebSocket samplers
# plugin, their dependencies, and bin/ with the report templates from
# ApacheJMeter_config) under jmeter/.cache/ on first use. Needs java (11+) and
# mvn, which `make up` installs for OpenSearch.
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

JMETER_VERSION=5.6.3
JMETER_HOME="${JMETER_HOME:-$REPO/jmeter/.cache/apache-jmeter-$JMETER_VERSION}"
JVM_ARGS="${JVM_ARGS:--Xms256m -Xmx1g -XX:+UseG1GC}"

die() { printf 'jmeter.sh: %s\n' "$*" >&2; exit 2; }

plan="${1:-}"
[[ -n $plan ]] || die "usage: scripts/jmeter.sh PLAN [--users N] [--ramp S] [--cart N] [--url URL] [--ws HOST:PORT] [--data DIR] [--out DIR] [--no-open] [--no-report] [-- JMeter args]"
shift
users=100 loops=1 ramp=1 cart=2 url="http://127.0.0.1:8080" ws="" data="" out="" open=1 report=1
extra=()
while (($#)); do
  case $1 in
    --users) users=$2; shift 2 ;;
    --loops) loops=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --cart) cart=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    --ws) ws=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-open) open=0; shift ;;
    --no-report) report=0; shift ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $users =~ ^[0-9]+$ && $users -gt 0 ]] || die "--users must be a positive number"
[[ $loops =~ ^[0-9]+$ && $loops -gt 0 ]] || die "--loops must be a positive number"
students=$((users * loops))

case $plan in
  *.jmx) jmx=$plan ;;
  *) jmx="$REPO/jmeter/$plan.jmx" ;;
esac
[[ -f $jmx ]] || die "no plan $jmx (plans: $(cd jmeter && ls *.jmx | tr '\n' ' '))"
name=$(basename "$jmx" .jmx)
out="${out:-$REPO/out/jmeter/$name-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# --- JMeter home, assembled once from Maven Central -------------------------
ensure_jmeter() {
  local stamp="$JMETER_HOME/.enrollq-pom" want
  want=$(sha256sum "$REPO/jmeter/pom.xml" | cut -c1-16)
  if [[ -f $JMETER_HOME/bin/ApacheJMeter.jar && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  command -v java >/dev/null || die "java is missing (make up installs it)"
  command -v mvn >/dev/null || die "mvn is missing (make up installs it)"
  echo "==> assembling JMeter $JMETER_VERSION + WebSocket samplers under $JMETER_HOME (Maven Central, first run only)"
  rm -rf "$JMETER_HOME"
  mvn -B -q -f "$REPO/jmeter/pom.xml" -Djmeter.home="$JMETER_HOME" package \
    || die "could not assemble JMeter with Maven (see above)"
  # NewDriver warns about missing optional dirs; give it empty ones.
  mkdir -p "$JMETER_HOME/lib/junit" "$JMETER_HOME/lib/ext"
  echo "$want" >"$stamp"
}
ensure_jmeter

# --- binaries and test data --------------------------------------------------
mkdir -p "$REPO/bin"
go build -o "$REPO/bin/" ./cmd/loadgen

hostport=${url#*://}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
[[ $port != "$host" ]] || port=80
proto=${url%%://*}
ws_host=${ws%:*}
ws_port=${ws##*:}
[[ -n $ws ]] || { ws_host=$host; ws_port=$port; }

if [[ -z $data ]]; then
  "$REPO/bin/loadgen" -prepare-only -students "$students" -out "$out" -url "$url" -quiet
  data=$out
fi
[[ -f $data/tokens.csv && -f $data/courses.csv ]] || die "$data must hold tokens.csv and courses.csv"
have=$(($(wc -l <"$data/tokens.csv") - 1))
((have >= students)) || die "$data/tokens.csv has $have students, --users × --loops is $students"

if ((open)); then
  admin_user="${ENROLLQ_ADMIN_USER:-admin}" admin_pw="${ENROLLQ_ADMIN_PASSWORD:-admin1234}"
  tok=$(curl -fsS -m 10 -H 'Content-Type: application/json' \
    -d "{\"username\":\"$admin_user\",\"password\":\"$admin_pw\"}" "$url/api/v1/admin/login" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p') || die "admin login at $url failed (is the API up?)"
  [[ -n $tok ]] || die "admin login at $url gave no token"
  curl -fsS -m 30 -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"open":true}' "$url/api/v1/admin/window" || die "could not open the registration window"
  echo "==> registration window open at $url"
fi

# --- run ---------------------------------------------------------------------
args=(-n -t "$jmx" -l "$out/results.jtl" -j "$out/jmeter.log"
  -Jjmeter.save.saveservice.output_format=csv
  -Jjmeter.save.saveservice.print_field_names=true
  -Jhost="$host" -Jport="$port" -Jprotocol="$proto" -Jws_host="$ws_host" -Jws_port="$ws_port"
  -Jusers="$users" -Jloops="$loops" -Jramp="$ramp" -Jcart="$cart"
  -Jtokens="$data/tokens.csv" -Jcourses="$data/courses.csv"
  -Jsummariser.interval=5
  # Dashboard percentiles over every sample (JMeter's default is a sliding
  # window of the last 20,000).
  -Jjmeter.reportgenerator.statistic_window=-1)
if ((report)); then
  args+=(-e -o "$out/dashboard")
fi
echo "==> JMeter $name: $students students ($users threads × $loops), ramp ${ramp}s against $url (queue-ws $ws_host:$ws_port)"
t0=$SECONDS
set +e
# shellcheck disable=SC2086 # JVM_ARGS is a list of options
java $JVM_ARGS -jar "$JMETER_HOME/bin/ApacheJMeter.jar" "${args[@]}" "${extra[@]}" 2>&1 |
  grep --line-buffered -v -e 'StatusConsoleListener' -e 'java.lang.Throwable: Could not access' -e 'at org.apache.jmeter.NewDriver'
rc=${PIPESTATUS[0]}
set -e
((rc == 0)) || die "JMeter exited with status $rc (log: $out/jmeter.log)"
echo "==> JMeter finished in $((SECONDS - t0))s"
[[ -f $out/results.jtl ]] || die "JMeter wrote no $out/results.jtl (log: $out/jmeter.log)"
((report == 0)) || echo "    dashboard: $out/dashboard/index.html"
echo "    results:   $out/results.jtl"
"$REPO/bin/loadgen" -check-jtl "$out/results.jtl"
