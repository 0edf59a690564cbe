# shellcheck shell=bash
# The rooms scenarios of scripts/bench (issue 16): the load generator's
# rooms scenario on two of our nodes, over one fresh redis-server (rooms)
# or over a fresh Redis Cluster (rooms-cluster), BENCH_ROOMS the loadgen
# options of both so the two compare.
#
# The Redis Cluster is a throwaway: three primaries and a replica each, six redis-server
# processes with --cluster-enabled yes on free loopback ports, each in its
# own directory under the run's output directory (nodes.conf, log), no
# persistence. Formed with `redis-cli --cluster create … --cluster-replicas
# 1 --cluster-yes`, ready once every node says cluster_state:ok, stopped
# by PID. Sourced by scripts/bench, which provides LOADGEN, OUT, say,
# stop_pid, start_redis, run_two_nodes and the PIDs they set.
#
# A node's cluster bus listens on a port of its own (--cluster-port,
# Redis 7): both come from `loadgen free-port`, so neither is the usual
# port + 10 000, which may be taken.
#
#   REDIS_CLUSTER_URLS  set once it is up: the six nodes' URLs, comma-
#                       separated, the seeds a cluster-aware
#                       COMET_REDIS_URL takes
#   REDIS_CLUSTER_PIDS  its processes (stop_redis_cluster stops them)

REDIS_CLUSTER_PIDS=()
REDIS_CLUSTER_URLS=""
REDIS_CLUSTER_NODES=6

# Sets PORT to a free port not handed out before to this cluster (the
# caller's `taken`): a port is free until its node binds it.
cluster_port() {
  while :; do
    PORT="$("$LOADGEN" free-port)"
    case " ${taken[*]} " in *" $PORT "*) ;; *) taken+=("$PORT"); return 0 ;; esac
  done
}

# Starts the six nodes and forms the cluster in $OUT/$1.
start_redis_cluster() { # directory-name
  local base="$OUT/$1" i b port bus dir taken=() ports=() addrs=()
  for b in redis-server redis-cli; do
    command -v "$b" >/dev/null || { echo "bench: rooms-cluster needs $b (scripts/setup.sh test installs it)" >&2; return 1; }
  done
  for i in $(seq "$REDIS_CLUSTER_NODES"); do
    cluster_port; port="$PORT"
    cluster_port; bus="$PORT"
    dir="$base/node$i"
    mkdir -p "$dir"
    redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
      --dir "$dir" --save "" --appendonly no >>"$dir/redis.log" 2>&1 &
    REDIS_CLUSTER_PIDS+=($!)
    ports+=("$port")
    addrs+=("127.0.0.1:$port")
  done
  for port in "${ports[@]}"; do
    for i in $(seq 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 \
      || { echo "bench: a Redis Cluster node on port $port did not start; see $base/node*/redis.log" >&2; return 1; }
  done
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
    >>"$base/create.log" 2>&1; then
    echo "bench: redis-cli --cluster create failed; see $base/create.log" >&2
    return 1
  fi
  # Every node, replicas too, must agree the slots are covered, and every
  # node must know the three replicas as replicas.
  local ok replicas want=$((REDIS_CLUSTER_NODES / 2))
  for i in $(seq 300); do
    ok=0
    replicas=0
    for port in "${ports[@]}"; do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
      [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -c slave)" = "$want" ] \
        && replicas=$((replicas + 1))
    done
    if [ "$ok" = "${#ports[@]}" ] && [ "$replicas" = "${#ports[@]}" ]; then
      REDIS_CLUSTER_URLS="$(printf 'redis://%s,' "${addrs[@]}")"
      REDIS_CLUSTER_URLS="${REDIS_CLUSTER_URLS%,}"
      return 0
    fi
    sleep 0.1
  done
  echo "bench: the Redis Cluster was not ready (cluster_state:ok, $want replicas) within 30 s; see $base/create.log" >&2
  return 1
}

stop_redis_cluster() {
  local pid
  for pid in "${REDIS_CLUSTER_PIDS[@]}"; do
    stop_pid "$pid"
  done
  REDIS_CLUSTER_PIDS=()
  REDIS_CLUSTER_URLS=""
}

# `scripts/bench --check-redis-cluster`: the cluster alone, started,
# described and stopped, to test this file without a cluster-aware server.
check_redis_cluster() {
  start_redis_cluster redis-cluster-check || return 1
  say "Redis Cluster up: $REDIS_CLUSTER_URLS"
  local first="${REDIS_CLUSTER_URLS%%,*}" port
  port="${first##*:}"
  redis-cli -p "$port" cluster info | grep -E '^cluster_(state|slots_assigned|known_nodes|size):' >&2
  redis-cli -p "$port" cluster nodes | awk '{ print "  " $2, $3 }' | sed 's/@[0-9]*//' >&2
  # A key written through one node is read through another (-c follows
  # MOVED redirections).
  redis-cli -c -p "$port" set bench:check ok >/dev/null
  local last="${REDIS_CLUSTER_URLS##*:}"
  [ "$(redis-cli -c -p "$last" get bench:check)" = ok ] || { echo "bench: the Redis Cluster does not serve a key" >&2; return 1; }
  stop_redis_cluster
  say "Redis Cluster stopped"
}

# One run of rooms or rooms-cluster, everything it started stopped after.
run_rooms_scenario() { # rooms|rooms-cluster run-number
  local scenario="$1" n="$2" args=() status=0
  # shellcheck disable=SC2206 # word splitting of the options is intended
  args=(${BENCH_ROOMS:-})
  if [ "$scenario" = rooms ]; then
    { start_redis && run_two_nodes "$REDIS_URL" rooms rooms "${args[@]}"; } || status=1
  else
    { start_redis_cluster "redis-cluster-$n" \
      && run_two_nodes "$REDIS_CLUSTER_URLS" rooms rooms-cluster "${args[@]}"; } || status=1
  fi
  stop_pid "$SERVER_PID"; SERVER_PID=""
  stop_pid "$SERVER2_PID"; SERVER2_PID=""
  stop_pid "$REDIS_PID"; REDIS_PID=""
  stop_redis_cluster
  return $status
}
