# Sourced by scripts/services.sh (Redis, the MariaDB primary, nginx) and
# scripts/run.sh (the apis): each process's share of a saturated CPU.
#
# Every service runs in its own session (setsid). With sched_autogroup (on in
# Debian's kernel) the CPU is shared between sessions first and only then
# between the threads inside one, so on registration day's box (~15 sessions:
# the queue-ws instances, two apis, nginx, two MariaDB servers, the search
# node, Redis, the load generator) each got about an equal part. A process's
# own nice value (renice) does not change its session's part; the nice value
# of its autogroup (/proc/PID/autogroup) does. The decision path — Redis
# (ENROLLQ_REDIS_NICE, -20), the MariaDB primary (ENROLLQ_DB_NICE, -10), the
# apis that run the scheduler (ENROLLQ_API_NICE, -10) and nginx in front of
# them (ENROLLQ_NGINX_NICE, -5) — gets the larger parts; the queue-ws
# instances, the replica and the search node keep the default (0).
# docs/OPERATIONS.md, "CPU shares".

# cpu_share NAME PID NICE: set the nice value of PID's scheduler autogroup.
# No-op where autogroups are off (e.g. under systemd, where the service's
# cgroup and CPUWeight= decide instead); a warning where it is not permitted
# (a negative value needs CAP_SYS_NICE).
cpu_share() {
  local name=$1 pid=$2 nice=$3
  [[ -n $pid && $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null) == 1 && -w /proc/$pid/autogroup ]] || return 0
  if echo "$nice" 2>/dev/null >"/proc/$pid/autogroup"; then
    printf '    %s: CPU share of its session set to nice %s (%s)\n' "$name" "$nice" "$(cat "/proc/$pid/autogroup")"
  else
    printf '    warning: %s: could not set its session'"'"'s CPU share to nice %s (needs CAP_SYS_NICE below 0)\n' "$name" "$nice" >&2
  fi
}

# share_of PID: "nice N" of PID's autogroup, for status lines.
share_of() { sed 's/^.* nice /nice /' "/proc/$1/autogroup" 2>/dev/null || echo n/a; }
