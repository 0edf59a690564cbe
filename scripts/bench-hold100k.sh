# shellcheck shell=bash
# The hold100k scenario of scripts/bench (issue 14): 100 000 clients
# logged in and holding a poll, one broadcast, on several of our nodes
# sharing one redis-server; then the same 100 000 held by one nginx with
# Nchan and enough workers, for the memory comparison. Sourced by
# scripts/bench, which provides LOADGEN, OUT, RESULTS, EXTRA, say,
# stop_pid, start_redis, start_server (with SERVER_ENV) and start_nchan.
#
# Why several processes everywhere: a process may have at most 20 000 open
# files here (the hard limit, not raised), and a held poll is one socket
# on each side. So: NODES of ours (6: ~16 700 polls each), an nginx with
# WORKERS workers (6 as well), and the load generator as PROCS processes
# (7: ~14 300 clients each). Every process is checked to stay at or below
# 17 000 connections, which leaves room for nginx's reuseport spreading
# connections unevenly over its workers and for our nodes' own sockets.
#
# Loopback has ~28 000 ephemeral ports per source and destination
# address pair (net.ipv4.ip_local_port_range, not changed here), so the
# clients bind to SOURCES loopback source addresses (127.0.0.1 …
# 127.0.0.16, loadgen's --source-addrs) in turn, the same for both
# servers: ~6 300 connections per source address to Nchan's one port,
# fewer to each of our nodes.
#
# Our nodes run with every cap of the HTTP front and of the chat on,
# sized for a test in which every client comes from one of 16 addresses:
#   COMET_MAX_CLIENTS               clients + 1 000 (the default, 100 000,
#                                   would refuse the publisher's login)
#   CHAT_LOGIN_RATE / _BURST        10 a minute (the default) after a burst
#   HTTP_MAX_CONNECTIONS_PER_ADDR   of twice the most logins (connections)
#                                   one address makes on one node
#   CHAT_SEND_RATE                  10 a second (the default; one send)
#   COMET_MAX_POLLS, HTTP_MAX_CONNECTIONS, timeouts: the defaults (20 000
#                                   polls and 19 488 connections a node)
# Two settings that are not caps change for the ramp, not for what is
# measured once every poll is held:
#   CHAT_HISTORY=1 (default 50): before its first poll a client reads the
#     history for its cursor (POST /api/recent_messages, as the chat page
#     does). After 100 000 joins the last 50 messages are presence lists
#     of ~40 names each, ~120 kB a reply: 12 GB for the ramp. With the
#     default, a first try reached 93 % polling only after 233 s and then
#     fell over (idle removals, their leaves woken every poll, 503s from
#     an overloaded Redis); one message of history is ~2.4 kB.
#   COMET_IDLE_TIMEOUT=120s (default 30 s): every client logs in before
#     any polls, so the first to log in waits for the whole login phase
#     and the other clients' history reads before its first poll.
#
#   BENCH_HOLD100K_CLIENTS  clients [100000]
#   BENCH_HOLD100K_NODES    our nodes [6]
#   BENCH_HOLD100K_WORKERS  Nchan's nginx workers [6]
#   BENCH_HOLD100K_PROCS    load generator processes [7]
#   BENCH_HOLD100K_HISTORY  our nodes' CHAT_HISTORY [1]
#   BENCH_HOLD100K_IDLE     our nodes' COMET_IDLE_TIMEOUT [120s]
#   BENCH_HOLD100K          more loadgen options, for both servers

HOLD100K_CLIENTS="${BENCH_HOLD100K_CLIENTS:-100000}"
HOLD100K_NODES="${BENCH_HOLD100K_NODES:-6}"
HOLD100K_WORKERS="${BENCH_HOLD100K_WORKERS:-6}"
HOLD100K_PROCS="${BENCH_HOLD100K_PROCS:-7}"
HOLD100K_SOURCES=16
HOLD100K_IDLE="${BENCH_HOLD100K_IDLE:-120s}"
HOLD100K_HISTORY="${BENCH_HOLD100K_HISTORY:-1}"
HOLD100K_MAX_PER_PROCESS=17000
# Our nodes, started per run; stopped by scripts/bench's cleanup too.
NODE_PIDS=()

# Refuses sizes that would put a process over its open-file limit.
hold100k_check() {
  local what n
  for what in NODES WORKERS PROCS; do
    n="HOLD100K_$what"
    case "${!n}" in ''|0|*[!0-9]*) echo "bench: BENCH_HOLD100K_$what takes a positive number" >&2; return 1 ;; esac
  done
  case "$HOLD100K_CLIENTS" in ''|0|*[!0-9]*) echo "bench: BENCH_HOLD100K_CLIENTS takes a positive number" >&2; return 1 ;; esac
  for what in NODES WORKERS PROCS; do
    n="HOLD100K_$what"
    if [ $(((HOLD100K_CLIENTS + ${!n} - 1) / ${!n})) -gt "$HOLD100K_MAX_PER_PROCESS" ]; then
      echo "bench: $HOLD100K_CLIENTS clients over ${!n} would put more than $HOLD100K_MAX_PER_PROCESS" \
        "on one process (open-file limit 20 000); raise BENCH_HOLD100K_$what" >&2
      return 1
    fi
  done
}

# The options both servers' runs share.
hold100k_args() {
  local var=BENCH_HOLD100K
  # shellcheck disable=SC2206 # word splitting of the options is intended
  HOLD100K_ARGS=(hold --clients "$HOLD100K_CLIENTS" --procs "$HOLD100K_PROCS"
    --source-addrs "$HOLD100K_SOURCES" --ready-timeout 300 --json "${EXTRA[@]}" ${!var:-})
}

# Runs loadgen with the given options; its result is labelled hold100k, so
# it is summarized apart from the one-node hold scenario.
hold100k_loadgen() {
  local status=0
  "$LOADGEN" "$@" 2> >(tee -a "$OUT/loadgen.log" >&2) \
    | sed 's/"scenario":"hold"/"scenario":"hold100k"/' >>"$RESULTS" || status=1
  return $status
}

stop_nodes() { # TERM all at once (each may take its drain time), then wait
  local pid
  for pid in "${NODE_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${NODE_PIDS[@]}"; do
    stop_pid "$pid"
  done
  NODE_PIDS=()
}

# Ours: a fresh redis-server and NODES nodes on it; clients spread over
# the nodes in turn (no sticky sessions: a client logs in and polls on its
# node, any node could serve it). RSS and CPU summed over the nodes and
# redis-server (the last --server-pid).
run_hold100k() {
  local per pair sized i addrs=() pids=() status=0
  hold100k_check || return 1
  per=$(((HOLD100K_CLIENTS + HOLD100K_NODES - 1) / HOLD100K_NODES))
  # Client k logs in on node k mod NODES from address k mod SOURCES: the
  # busiest (node, address) pair gets clients ÷ lcm(NODES, SOURCES).
  pair=$(((HOLD100K_CLIENTS + $(hold100k_lcm "$HOLD100K_NODES" "$HOLD100K_SOURCES") - 1)
    / $(hold100k_lcm "$HOLD100K_NODES" "$HOLD100K_SOURCES")))
  sized=$((2 * pair + 100))
  start_redis || return 1
  SERVER_ENV=(
    "COMET_REDIS_URL=$REDIS_URL"
    "COMET_MAX_CLIENTS=$((HOLD100K_CLIENTS + 1000))"
    "COMET_IDLE_TIMEOUT=$HOLD100K_IDLE"
    "CHAT_HISTORY=$HOLD100K_HISTORY"
    "CHAT_LOGIN_RATE=10" "CHAT_LOGIN_BURST=$sized"
    "HTTP_MAX_CONNECTIONS_PER_ADDR=$sized"
    "CHAT_SEND_RATE=10"
  )
  say "hold100k: $HOLD100K_NODES nodes (~$per clients each) on redis at $REDIS_URL; per-address caps $sized"
  for i in $(seq "$HOLD100K_NODES"); do
    if ! start_server; then
      [ -z "$SERVER_PID" ] || NODE_PIDS+=("$SERVER_PID")
      SERVER_PID=""
      SERVER_ENV=()
      return 1
    fi
    NODE_PIDS+=("$SERVER_PID")
    addrs+=(--server "$SERVER_ADDR")
    pids+=(--server-pid "$SERVER_PID")
    SERVER_PID=""
  done
  SERVER_ENV=()
  pids+=(--server-pid "$REDIS_PID")
  hold100k_args
  hold100k_loadgen "${HOLD100K_ARGS[@]}" "${addrs[@]}" "${pids[@]}" || status=1
  return $status
}

# Nchan: one nginx, WORKERS workers behind one reuseport port.
run_hold100k_nchan() { # run-number
  local status=0
  hold100k_check || return 1
  start_nchan "nchan-hold100k-$1" "$HOLD100K_WORKERS" || return 1
  hold100k_args
  hold100k_loadgen "${HOLD100K_ARGS[@]}" --protocol nchan --server "$NCHAN_ADDR" \
    --server-pid "$NCHAN_PID" || status=1
  return $status
}

hold100k_lcm() { # a b
  local a="$1" b="$2" t x="$1" y="$2"
  while [ "$y" -gt 0 ]; do t=$((x % y)); x=$y; y=$t; done
  echo $((a / x * b))
}
