# Sourced by scripts/services.sh (nginx) and scripts/run.sh (queue-ws): how
# many processes the local stack runs so that it holds registration day's
# WebSocket sessions on this host.
#
# Every process has an open-files limit. Where the hard limit cannot be raised
# (no CAP_SYS_RESOURCE; 20,000 on our CI machines) one process holds at most
# about that many sockets, so the stack spreads the sessions over processes:
#
#   queue-ws instances = max(2, ceil(S / (85% × (F − 1,024))))
#       one descriptor per session; 15% spare because nginx's least_conn
#       balances per worker; ports 8082, 8084, 8086, ... (step 2)
#   nginx workers      = max(cores, ceil((2 × S / 85% + 1,024) / (W − 256)))
#       two descriptors per proxied session (client + upstream) in one worker;
#       the listen socket is reuseport, so the kernel spreads connections by
#       hash (15% spare); 1,024 for the HTTP burst's client connections and
#       256 per worker for its upstream keep-alive pool;
#       W = worker_connections = min(200,000, F) − 1,024
#
# S = ENROLLQ_WS_SESSIONS (default 100,000: one per student on registration
# day), F = the hard open-files limit after raising it as far as allowed.
# With F = 1,048,576 that is 2 instances and one worker per core; with
# F = 20,000, 7 instances and 13 workers. cmd/loadgen reads the rendered
# nginx.conf and computes the same bounds (cmd/loadgen/budget.go).

ENROLLQ_WS_SESSIONS="${ENROLLQ_WS_SESSIONS:-100000}"

# fd_limit: the hard open-files limit of processes started from this shell,
# after trying to raise it to 1,048,576.
fd_limit() {
  local h
  ulimit -Hn 1048576 2>/dev/null || true
  h=$(ulimit -Hn)
  [[ $h == unlimited ]] && h=1048576
  ((h > 1048576)) && h=1048576
  echo "$h"
}

# ws_instances: how many queue-ws processes hold ENROLLQ_WS_SESSIONS.
ws_instances() {
  local per=$((($(fd_limit) - 1024) * 85 / 100)) s=$ENROLLQ_WS_SESSIONS
  ((per < 1)) && per=1
  local n=$(((s + per - 1) / per))
  ((n < 2)) && n=2
  echo "$n"
}

# ws_ports: the queue-ws ports, 8082 and 8084 first (DESIGN's two), then 8086, 8088, ...
ws_ports() {
  local i n
  n=$(ws_instances)
  for ((i = 0; i < n; i++)); do printf '%s ' $((8082 + 2 * i)); done
  echo
}

# nginx_worker_connections: worker_connections for nginx's rlimit F.
nginx_worker_connections() {
  local f
  f=$(fd_limit)
  ((f > 200000)) && f=200000
  echo $((f - 1024))
}

# nginx_workers: worker_processes holding 2 × ENROLLQ_WS_SESSIONS proxied connections.
nginx_workers() {
  local wc need n cores
  wc=$(nginx_worker_connections)
  need=$((2 * ENROLLQ_WS_SESSIONS * 100 / 85 + 1024))
  n=$(((need + wc - 257) / (wc - 256)))
  cores=$(nproc 2>/dev/null || echo 2)
  ((n < cores)) && n=$cores
  echo "$n"
}
